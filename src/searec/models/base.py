"""The contract every searec model meets, and the registry that names models.

A model is a ``torch.nn.Module`` that

- is built from a :class:`~searec.data.Dataset` and its typed ``Params``
  (``Model.build(dataset, params, cache_dir)``): modalities come in with the data, and a
  model never reads files itself;
- maps the training graph to user and item representations (``forward(graph)``), whose
  dot product is the ranking score;
- returns what its training loss computed as one :class:`LossResult`
  (``loss(graph, users, pos, neg)``): the total the optimiser minimises, the named parts
  that are logged, and, where it has them, weighted terms whose share of the gradient is
  measured, facts about the step and hints for terms that turn out inert; nothing of a
  step is kept on the model for later calls to read;
- may declare auxiliary objectives (``auxiliary_objectives``: name, parameters, rate,
  steps per batch, loss), e.g. a variational network fitted beside the main loss; the
  trainer builds, checkpoints and steps their optimisers, and the main optimiser
  never sees their parameters;
- may act at epoch start (``on_epoch_start``), and may train on positive pairs alone
  (``uses_negatives = False``: the trainer then samples no negatives). The trainer knows
  nothing else about a model.

After training, ``prepare_inference(graph)`` caches the representations, and
``recommend`` / ``similar_items`` answer queries in batches, in the style of ``implicit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from searec.csr import csr_rows_positions, users_per_batch
from searec.data.dataset import Dataset
from searec.errors import ConfigError
from searec.graphs import CacheDir, InteractionGraph
from searec.optim import AuxiliaryObjective
from searec.schema import Registry, StrictModel
from searec.scores import ScoreBuffer
from searec.topk import topk_stable

MODELS: Registry[type[Recommender]] = Registry("model")


def register(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator: make a model available under ``cls.name``."""
    return MODELS.register(cls)


def registry() -> dict[str, type[Recommender]]:
    return MODELS.copy()


def get_model_class(name: str) -> type[Recommender]:
    if name in MODELS:
        return MODELS.entries[name]
    raise ConfigError(f"config key 'model.name': unknown model {str(name)[:60]!r}"
                      f"{MODELS.suggestion(name)}; available: {', '.join(MODELS.names())}")


@dataclass(frozen=True)
class LossResult:
    """What one ``loss`` call computed, for the trainer to read."""

    loss: torch.Tensor  # the total the optimiser minimises
    # named parts, logged per epoch as history.csv loss_<name> (their mean over steps)
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    # terms of ``loss`` as they entered it (weights included) whose share of the gradient
    # the trainer measures (history.csv term_grad_share_<name>)
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    # detached facts about the step, logged as term_<name>; clamped_<part> is 1 when that
    # part's bound was clamped (it then gives no gradient)
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    # term or part name -> what to try when it turns out inert
    hints: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, parts: dict[str, torch.Tensor]) -> LossResult:
        """From named parts whose ``"loss"`` is the total."""
        named = dict(parts)
        return cls(named.pop("loss"), named)

    def logged(self) -> dict[str, torch.Tensor]:
        """The total (``"loss"``) and the named parts, as history.csv logs them."""
        return {"loss": self.loss, **self.parts}

    def as_dict(self) -> dict[str, Any]:
        """Its fields, shallowly (tensors kept as they are): what crosses DDP's forward."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class NoParams(StrictModel):
    """A model without parameters."""


class Recommender(nn.Module):
    """Base class of every model; see the module docstring for the contract."""

    name: ClassVar[str]
    Params: ClassVar[type[StrictModel]] = NoParams
    default_lr: ClassVar[float] = 1e-3
    trainable: ClassVar[bool] = True
    min_modalities: ClassVar[int] = 0
    # False: ``loss`` ignores ``neg`` and the trainer samples none (an empty tensor)
    uses_negatives: ClassVar[bool] = True
    # True: an item's representation follows from its features, so items added after
    # training (searec items add) get a meaningful one from the trained weights
    scores_new_items: ClassVar[bool] = False

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        self.n_users = n_users
        self.n_items = n_items
        self._user_rep: torch.Tensor | None = None
        self._item_rep: torch.Tensor | None = None
        self._unit_items: torch.Tensor | None = None  # normalised _item_rep, for similar_items

    # ---------------------------------------------------------------- construction
    @classmethod
    def build(
        cls, dataset: Dataset, params: StrictModel, cache_dir: CacheDir = None
    ) -> Recommender:
        """Construct the model for ``dataset`` from its validated ``Params`` (every model
        takes its settings as that one typed object). Override when the model needs more of
        the dataset than its sizes (features, graphs), typing ``params`` as its ``Params``."""
        return cls(dataset.n_users, dataset.n_items, params)  # type: ignore[call-arg]

    @classmethod
    def summary(cls) -> str:
        """The first line of the class docstring ("" without one), for model listings."""
        # __doc__ is not inherited: a registered subclass without a docstring has None
        lines = (cls.__dict__.get("__doc__") or "").strip().splitlines()
        return lines[0] if lines else ""

    @classmethod
    def check_dataset(cls, dataset: Dataset) -> None:
        if len(dataset.modalities) < cls.min_modalities:
            raise ConfigError(
                f"model {cls.name!r} needs at least {cls.min_modalities} modality feature "
                f"file(s), but dataset {dataset.name!r} has {len(dataset.modalities)}"
            )

    def expect_state(self, state: dict[str, torch.Tensor]) -> None:
        """Before ``state`` is loaded: create the optional parts it holds that a freshly
        built model lacks (e.g. a cold-item mapper fitted after training). Nothing by
        default."""

    # ---------------------------------------------------------------- training
    def forward(self, graph: InteractionGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """User representations (n_users, d) and item representations (n_items, d)."""
        raise NotImplementedError

    def loss(
        self,
        graph: InteractionGraph,
        users: torch.Tensor,
        pos: torch.Tensor,
        neg: torch.Tensor,
    ) -> LossResult:
        """The training loss on (users, pos, neg) triples, and what it computed."""
        raise NotImplementedError

    def auxiliary_objectives(self) -> list[AuxiliaryObjective]:
        """Objectives fitted beside the main loss, each with its own optimiser (none by
        default). Called once by the trainer, after the model is on its device."""
        return []

    def on_epoch_start(self, epoch: int, rng: np.random.Generator) -> None:
        """Optional per-epoch action (e.g. resampling a pruned graph)."""

    def diagnostics(self, thorough: bool = False) -> dict[str, float]:
        """Optional values logged at each evaluation (history.csv columns diag_<name>);
        ``thorough``: also the costly ones (``train.thorough_diagnostics_every``)."""
        return {}

    # ---------------------------------------------------------------- inference
    @torch.no_grad()
    def prepare_inference(self, graph: InteractionGraph) -> None:
        """Compute and cache user/item representations for scoring and recommend."""
        was_training = self.training
        self.eval()
        self._user_rep, self._item_rep = (t.detach() for t in self(graph))
        self._unit_items = None
        self.train(was_training)

    def _reps(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._user_rep is None or self._item_rep is None:
            raise RuntimeError("call prepare_inference(graph) (or train the model) first")
        return self._user_rep, self._item_rep

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached (user, item) representations of ``prepare_inference``; their dot
        product is the score (e.g. for an external index)."""
        return self._reps()

    def use_representations(self, user_rep: torch.Tensor, item_rep: torch.Tensor) -> None:
        """Answer queries (``recommend``, ``similar_items``) over these representations
        instead, e.g. a catalogue extended after training (searec.inference.items)."""
        self._user_rep, self._item_rep = user_rep, item_rep
        self._unit_items = None
        self.n_users, self.n_items = user_rep.shape[0], item_rep.shape[0]

    def score_users(self, users: torch.Tensor, out: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """Scores of every item for the given users -> (len(users), n_items); written into
        ``out`` (and ``out`` returned) where it has the representations' device and dtype,
        so that batched callers reuse one allocation (see
        :class:`searec.scores.ScoreBuffer`)."""
        user_rep, item_rep = self._reps()
        rows = user_rep[users.to(user_rep.device)]
        if out is not None and out.device == item_rep.device and out.dtype == item_rep.dtype:
            return torch.matmul(rows, item_rep.T, out=out)
        return rows @ item_rep.T

    @torch.no_grad()
    def recommend(
        self,
        user_ids: np.ndarray | list[int] | int,
        k: int = 10,
        user_items: sp.csr_matrix | None = None,
        batch_size: int = 4096,
        exclude_items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items per user -> (ids (n, k), scores (n, k)); rows of ``user_items``
        (e.g. the training matrix) and, for every user, ``exclude_items`` are excluded
        (score -inf where fewer than k items are left). Ties go to the lower item id."""
        users = np.atleast_1d(np.asarray(user_ids, dtype=np.int64))
        if len(users) and (users.min() < 0 or users.max() >= self.n_users):
            raise ValueError(f"user ids must be in 0..{self.n_users - 1}")
        k = min(k, self.n_items)
        batch_size = users_per_batch(batch_size, self.n_items)
        ids = np.empty((len(users), k), dtype=np.int64)
        scores = np.empty((len(users), k), dtype=np.float32)
        score_batch = ScoreBuffer(self.score_users, self.n_items, self._reps()[1].device)
        for start in range(0, len(users), batch_size):
            batch = users[start : start + batch_size]
            s = score_batch(torch.from_numpy(batch))
            if user_items is not None:
                s[csr_rows_positions(user_items, batch, s.device)] = -torch.inf
            if exclude_items is not None:
                s[:, torch.from_numpy(exclude_items).to(s.device)] = -torch.inf
            v, i = topk_stable(s, k)
            ids[start : start + len(batch)] = i.cpu().numpy()
            scores[start : start + len(batch)] = v.cpu().numpy()
        return ids, scores

    @torch.no_grad()
    def similar_items(
        self, item_ids: np.ndarray | list[int] | int, k: int = 10
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k items most cosine-similar in representation space (the item itself
        excluded) -> (ids (n, k), similarities (n, k))."""
        items = np.atleast_1d(np.asarray(item_ids, dtype=np.int64))
        if len(items) and (items.min() < 0 or items.max() >= self.n_items):
            raise ValueError(f"item ids must be in 0..{self.n_items - 1}")
        _, item_rep = self._reps()
        if self._unit_items is None:  # once per set of representations, not per query
            self._unit_items = torch.nn.functional.normalize(item_rep.float(), dim=1)
        normed = self._unit_items
        query = torch.from_numpy(items).to(normed.device)
        sims = normed[query] @ normed.T
        sims[torch.arange(len(items), device=normed.device), query] = -torch.inf
        v, i = topk_stable(sims, min(k, self.n_items - 1))
        return i.cpu().numpy(), v.cpu().numpy()
