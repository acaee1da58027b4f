"""The training loop: BPR batches, early stopping on validation, checkpoints, resume.

The trainer talks to models only through the contract in :mod:`searec.models.base`.
Randomness is reproducible and resumable: each epoch draws its samples from a generator
seeded by (seed, epoch), and torch's RNG state is saved in every checkpoint.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field, field_validator
from tqdm.auto import tqdm

from searec.data.dataset import Dataset
from searec.data.sampling import NegativeSampler, bpr_batches
from searec.errors import ConfigError, NonFiniteLossError, RunDirError
from searec.evaluation.evaluator import EvalConfig
from searec.evaluation.metrics import parse_metric
from searec.evaluation.protocol import evaluate_model, metric_values, warm_and_cold_metrics
from searec.graphs import InteractionGraph
from searec.io import atomic_path, rows_to_csv, write_text
from searec.models.base import LossResult, Recommender
from searec.optim import AuxiliaryObjective, adam, fit_auxiliary, load_adam_state
from searec.schema import StrictModel
from searec.training import distributed
from searec.training.checkpoint import (
    BEST,
    CHECKPOINT_FORMAT,
    LAST,
    load_model_state,
    read_checkpoint,
)
from searec.training.cold_start import cold_path_off, fit_cold_start
from searec.training.terms import gradient_shares, inert_terms, term_gradients


class TrainConfig(StrictModel):
    epochs: int = Field(1000, gt=0, description="Maximum number of epochs.")
    batch_size: int = Field(2048, gt=0, description="Training (user, pos, neg) triples per step.")
    lr: float | None = Field(
        None, description="Adam learning rate. None: the model's recommended rate."
    )
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay.")
    fused_adam: bool = Field(
        True, description="Update all parameters in one fused Adam kernel per step (also "
        "in the optimisers of auxiliary objectives such as CLUB's q); false: torch's "
        "default per-tensor Adam, as the authors' code. Same algorithm, different rounding "
        "in the last bits (docs/performance.md).")
    negatives: Literal["catalogue", "trained"] = Field(
        "catalogue", description="Where BPR negatives are drawn from (uniformly, never a "
        "training positive of the user): catalogue: every item; trained: only items with "
        "at least one training interaction, as MMRec, so items absent from training are "
        "never pushed down as negatives.")
    item_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="DropoutNet-style cold-start training (Volkovs "
        "et al., 2017): in each epoch this share of the items with training interactions "
        "(a seeded draw of its own) loses its edges in the graph the model trains on, so "
        "that the model learns to represent items the graph does not reach; their "
        "interactions still supervise the loss, and evaluation uses the whole graph. Acts "
        "through the graph handed to forward (models that build other structures from "
        "the training interactions keep them). 0: off.")
    patience: int = Field(
        20, gt=0, description="Stop after this many evaluations without improvement."
    )
    lr_schedule: Literal["constant", "plateau"] = Field(
        "constant", description="constant: train.lr throughout. plateau: multiply the "
        "learning rate by lr_factor once more than lr_patience evaluations in a row have not "
        "improved valid_metric, then count afresh (torch's ReduceLROnPlateau); never below "
        "min_lr. Auxiliary optimisers (CLUB's q, model.separation.distancing.q_lr) keep "
        "their rate.")
    lr_factor: float = Field(0.5, gt=0, lt=1, description="plateau: the factor per decay.")
    lr_patience: int = Field(
        5, ge=0, description="plateau: evaluations without improvement tolerated before a "
        "decay; keep it below train.patience, or early stopping comes first.")
    min_lr: float = Field(0.0, ge=0, description="plateau: the learning rate never goes "
                          "below this.")
    valid_metric: str = Field("recall@20", description="Validation metric for early stopping.")
    eval_every: int = Field(1, gt=0, description="Evaluate on validation every N epochs.")
    seed: int = Field(999, description="Seed for model init, sampling and everything random.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: cuda when available, else cpu."
    )
    threads: int | None = Field(
        None, gt=0, description="torch CPU threads. None: torch's default."
    )
    progress: bool = Field(True, description="Show a progress bar per epoch.")
    term_diagnostics: bool = Field(
        True, description="Once per epoch, on its first batch, measure each separately "
        "measured loss term's share of the gradient on the parameters it shares with the "
        "rest of the loss (history.csv term_grad_share_*; one extra backward pass through "
        "each term's own part of the graph).")
    thorough_diagnostics_every: int = Field(
        0, ge=0, description="Every N-th validation, also the model's costly diagnostics "
        "(with separation: held-out MI between the parts from fresh critics, history.csv "
        "diag_heldout_<estimator>_<pair>; about 10-60 s each on TikTok on one CPU thread). "
        "They use their own random stream: training is unchanged. 0: off (searec diagnose "
        "measures the best checkpoint after training).")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="bfloat16: each step's forward pass and loss run under "
        "torch.autocast to bfloat16 (dense products in bf16 with float32 accumulation); "
        "parameters, optimiser state, sparse graph products, BPR and evaluation stay "
        "float32. Faster only on a device with bf16 arithmetic (CPUs with AVX-512 BF16 or "
        "AMX, NVIDIA Ampere and later). auto: bfloat16 on such a device, float32 "
        "elsewhere; the run's log and metrics.json say which. SEA's validation recall "
        "in bfloat16 is level with float32 (5 seeds, TikTok and ml100k; docs/results.md); "
        "on an AVX-512 BF16 CPU its TikTok epoch took 2.54 s against 3.01 s with two "
        "threads (docs/performance.md).")
    cpu_memory: Literal["reuse", "release"] = Field(
        "reuse", description="reuse: keep freed CPU memory in the process for the next "
        "step's tensors instead of returning it to the OS (glibc); CPU epochs 1.2-2.1x "
        "faster, but peak resident memory grows on large data (1.6-2.2x at 1M-5M "
        "interactions, 200k items). release: the C library's default; use it when memory "
        "is the limit. No effect on CUDA (docs/performance.md).")

    @field_validator("lr")
    @classmethod
    def _positive_lr(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError(f"must be a number > 0, got {v}")
        return v

    @field_validator("valid_metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        parse_metric(v)
        return v


def main_parameters(model: Recommender, objectives: list[AuxiliaryObjective]
                    ) -> list[torch.nn.Parameter]:
    """The model's parameters that its main optimiser updates: all but those of its
    auxiliary objectives."""
    auxiliary = {id(p) for o in objectives for p in o.parameters}
    return [p for p in model.parameters() if id(p) not in auxiliary]


def has_bf16_arithmetic(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 natively (so that autocast to it is faster):
    x86 CPUs with AVX-512 BF16 or AMX, CUDA GPUs of compute capability 8.0 or later."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(
            including_emulation=False)
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def resolve_precision(name: str, device: torch.device) -> Literal["float32", "bfloat16"]:
    """train.precision on ``device``: auto is bfloat16 where it has bf16 arithmetic."""
    if name == "auto":
        return "bfloat16" if has_bf16_arithmetic(device) else "float32"
    return "bfloat16" if name == "bfloat16" else "float32"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from searec.errors import ConfigError

        raise ConfigError("config key 'train.device': cuda requested but no CUDA device is "
                          "available (use auto or cpu)")
    return torch.device(name)


def _negative_sampler(dataset: Dataset, pool: Literal["catalogue", "trained"]
                      ) -> NegativeSampler:
    # the loader already rejects a user with every item; only the "trained" pool can
    # still leave a user without negatives
    try:
        return NegativeSampler(dataset.train, pool)
    except ValueError as exc:
        raise ConfigError(f"train.negatives={pool}: {exc}; use train.negatives=catalogue"
                          ) from None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Callback:
    """Hooks the trainer calls after each epoch, once it is checkpointed; subclass and
    override what you need. An exception raised by a hook stops training there (the
    hyper-parameter search prunes trials this way); the run folder stays resumable."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, row: dict[str, Any]) -> None:
        """After every epoch: ``row`` is its history.csv row."""

    def on_evaluation(self, trainer: Trainer, epoch: int, score: float) -> None:
        """After an epoch that was evaluated: ``score`` is its validation metric."""


@dataclass
class TrainState:
    """Everything needed to continue a run exactly where it stopped."""

    epoch: int = 0  # epochs completed
    best_score: float = -math.inf
    best_epoch: int = 0
    bad_evals: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    # what to try when a loss term turns out inert, as the model's losses said
    term_hints: dict[str, str] = field(default_factory=dict)


def train_state(saved: Any, path: str | Path) -> TrainState:
    """The TrainState a checkpoint saved; anything else is a RunDirError naming ``path``."""
    names = {f.name for f in fields(TrainState)}
    # term_hints came later (searec 0.2 checkpoints lack it; the next step fills it)
    if not isinstance(saved, dict) or not names - {"term_hints"} <= set(saved) <= names:
        raise RunDirError(f"{path}: the checkpoint has no training state to resume from")
    state = TrainState(**saved)
    numbers = (state.epoch, state.best_epoch, state.bad_evals)
    if not all(isinstance(n, int) and n >= 0 for n in numbers) \
            or not isinstance(state.history, list) or not isinstance(state.term_hints, dict):
        raise RunDirError(f"{path}: the checkpoint's training state is damaged")
    return state


class Trainer:
    def __init__(
        self,
        model: Recommender,
        dataset: Dataset,
        graph: InteractionGraph,
        train_cfg: TrainConfig,
        eval_cfg: EvalConfig,
        run_dir: str | Path,
        device: torch.device,
        log: Callable[[str], None] = print,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.model = model.to(device)
        self.dataset = dataset
        self.graph = graph.to(device)
        # the graph the model trains on this epoch (train.item_dropout: a thinned copy)
        self.epoch_graph = self.graph
        self.cfg = train_cfg
        self.eval_cfg = eval_cfg
        self.run_dir = Path(run_dir)
        self.device = device
        # train.precision as this device runs it (auto: bfloat16 where it is native)
        self.precision = resolve_precision(train_cfg.precision, device)
        self.dist = distributed.world()
        self.main = self.dist.rank == 0
        self.log = log if self.main else (lambda _msg: None)
        self.callbacks = list(callbacks)
        self.state = TrainState()
        self.last_term_stats: dict[str, float] = {}
        # a TrainConfig built in Python leaves lr None ("the model's rate"); resolve it here too
        lr = train_cfg.lr if train_cfg.lr is not None else type(model).default_lr
        # Every optimiser lives here: the main one, and one per auxiliary objective the
        # model declares (their parameters are not the main optimiser's).
        self.objectives = self.model.auxiliary_objectives() if model.trainable else []
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"auxiliary objective names must be distinct, got {names}")
        # what the main optimiser updates (and what term diagnostics measure gradients on)
        self.main_params = main_parameters(self.model, self.objectives)
        self.optimizer = (
            adam(self.main_params, lr=lr,
                 weight_decay=train_cfg.weight_decay, fused=train_cfg.fused_adam)
            if model.trainable else None
        )
        self.auxiliary_optimizers = {
            o.name: adam(o.parameters, lr=o.lr, fused=train_cfg.fused_adam)
            for o in self.objectives}
        self.scheduler = (
            torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="max", factor=train_cfg.lr_factor,
                patience=train_cfg.lr_patience, min_lr=train_cfg.min_lr,
                # "better" must mean what it means to early stopping: strictly higher
                threshold=0.0, threshold_mode="abs")
            if self.optimizer is not None and train_cfg.lr_schedule == "plateau" else None
        )
        self.users, self.items = dataset.train_pairs()
        # models that train on positive pairs alone (BM3) get no negatives
        self.sampler = (_negative_sampler(dataset, train_cfg.negatives)
                        if model.trainable and model.uses_negatives else None)
        # computes model.loss; under torchrun a DDP wrapper that averages gradients
        self.loss_module = distributed.wrap(self.model, device) if model.trainable else None

    # ------------------------------------------------------------- checkpoints
    def _save(self, name: str, payload: dict[str, Any]) -> None:
        if not self.main:
            return
        with atomic_path(self.run_dir / name) as tmp:
            torch.save(payload, tmp)

    def save_checkpoint(self) -> None:
        self._save(LAST, {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "auxiliary": {name: opt.state_dict()
                          for name, opt in self.auxiliary_optimizers.items()},
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "state": self.state.__dict__,
        })

    def load_checkpoint(self, path: str | Path) -> None:
        ckpt = read_checkpoint(path, self.device)
        load_model_state(self.model, ckpt["model"], path)
        state = train_state(ckpt.get("state"), path)
        auxiliary = ckpt.get("auxiliary")
        for name in self.auxiliary_optimizers:
            if not isinstance(auxiliary, dict) or name not in auxiliary:
                raise RunDirError(f"{path}: no optimiser state for the auxiliary objective "
                                  f"{name!r}; was the run started with another config?")
        try:  # every part below was written by save_checkpoint; anything else is damage
            if self.optimizer is not None and ckpt.get("optimizer") is not None:
                load_adam_state(self.optimizer, ckpt["optimizer"])
            for name, opt in self.auxiliary_optimizers.items():
                load_adam_state(opt, auxiliary[name])  # type: ignore[index]
            if self.scheduler is not None and ckpt.get("scheduler") is not None:
                self.scheduler.load_state_dict(ckpt["scheduler"])
            torch.set_rng_state(ckpt["torch_rng"])
            if ckpt.get("cuda_rng") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
            raise RunDirError(f"{path}: the checkpoint's optimiser or random state is "
                              f"damaged ({type(exc).__name__}); resume from a good copy "
                              "or train the run again") from None
        self.state = state

    def write_history(self) -> None:
        if self.state.history and self.main:
            write_text(self.run_dir / "history.csv", rows_to_csv(self.state.history))

    def evaluate(self, split: str, items: np.ndarray | None = None,
                 rank_only_items: bool = False) -> dict[str, float]:
        return evaluate_model(self.model, self.graph, self.dataset, split, self.eval_cfg,
                              self.device, items, rank_only_items)

    # ------------------------------------------------------------- loop
    def _check_finite(self, name: str, value: float, epoch: int) -> None:
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"loss term {name!r} became {value} in epoch {epoch}; training stopped, the "
                f"last good checkpoint is {self.run_dir / LAST} (try a lower train.lr or "
                "smaller loss weights)")

    def train_step(self, batch: tuple[np.ndarray, np.ndarray, np.ndarray], epoch: int,
                   measure_terms: bool = False
                   ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """One optimisation step on (users, pos, neg): the loss parts and the auxiliary logs.

        The step's facts (the model's ``LossResult.stats``) are left in
        ``self.last_term_stats``, with, when ``measure_terms``, each measured loss term's
        share of the gradient on the parameters it shares with the rest of the loss
        (``grad_share_<term>``)."""
        assert self.optimizer is not None and self.loss_module is not None
        users, pos, neg = (torch.from_numpy(a).to(self.device) for a in batch)
        # Before the forward pass: gradients left by anyone else (the trainer frees its
        # own after each update; they are as large as the parameters) need not live
        # through this step's activations.
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16,
                            enabled=self.precision == "bfloat16"):
            result = LossResult(**self.loss_module(self.epoch_graph, users, pos, neg))
        parts = result.logged()
        # Name the term that diverged, not just the total it poisoned.
        for name, value in sorted(parts.items(), key=lambda kv: kv[0] == "loss"):
            self._check_finite(name, float(value.detach()), epoch)
        term_grads = term_gradients(result.terms if measure_terms else {}, self.main_params)
        result.loss.backward()
        stats = {k: float(v) for k, v in result.stats.items()}
        stats.update(gradient_shares(term_grads, self.main_params))
        self.last_term_stats = stats
        self.state.term_hints.update(result.hints)
        self.optimizer.step()
        # Nothing reads the gradients after the update: the evaluation after the epoch's
        # last step need not hold them (SEA's user tables: 1.4 GiB at 1M users).
        self.optimizer.zero_grad(set_to_none=True)
        logged = {}
        for objective in self.objectives:
            value = fit_auxiliary(objective, self.auxiliary_optimizers[objective.name],
                                  distributed.average_gradients)  # a no-op outside torchrun
            if value is not None:
                self._check_finite(objective.name, value, epoch)
                logged[objective.name] = value
        return parts, logged

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training interactions (epoch numbers start at 1): the mean of
        each loss part and step fact over its steps."""
        self.model.train()
        rng = np.random.default_rng([self.cfg.seed, epoch])
        self.model.on_epoch_start(epoch, rng)
        self.epoch_graph = self._thinned_graph(epoch) if self.cfg.item_dropout else self.graph
        n_batches = math.ceil(len(self.users) / self.cfg.batch_size)
        sums: dict[str, float] = {}
        term_sums: dict[str, float] = {}
        term_counts: dict[str, int] = {}
        done = 0
        batches = bpr_batches(self.users, self.items, self.sampler, self.cfg.batch_size, rng)
        bar = tqdm(batches, total=n_batches, desc=f"epoch {epoch}", leave=False,
                   disable=not (self.cfg.progress and self.main), unit="batch")
        for batch in bar:
            share = distributed.shard(batch, self.dist)  # this rank's part of the batch
            if share is None:
                continue
            # one batch per epoch measures how much gradient each loss term gives
            parts, logged = self.train_step(share, epoch, measure_terms=done == 0 and
                                            self.cfg.term_diagnostics)
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            for name, value in logged.items():
                sums[name] = sums.get(name, 0.0) + float(value)
            for name, value in self.last_term_stats.items():  # means over the steps that
                term_sums[name] = term_sums.get(name, 0.0) + value  # reported each fact
                term_counts[name] = term_counts.get(name, 0) + 1
            done += 1
            bar.set_postfix(loss=f"{float(parts['loss'].detach()):.4f}", refresh=False)
        bar.close()
        means = distributed.mean_across_ranks({k: v / max(done, 1) for k, v in sums.items()})
        out = {f"loss_{k}" if k != "loss" else "loss": v for k, v in means.items()}
        terms = {k: v / term_counts[k] for k, v in term_sums.items()}
        out.update({f"term_{k}": v for k, v in distributed.mean_across_ranks(terms).items()})
        return out

    def _thinned_graph(self, epoch: int) -> InteractionGraph:
        """The training graph without the edges of a seeded ``item_dropout`` share of the
        items that have any (train.item_dropout), drawn from a stream of its own so that
        sampling is the same as without it."""
        train = self.dataset.train
        rng = np.random.default_rng([self.cfg.seed, epoch, 0xD0])
        active = np.flatnonzero(np.diff(train.tocsc().indptr) > 0)
        dropped = rng.choice(active, size=round(self.cfg.item_dropout * len(active)),
                             replace=False)
        keep = np.ones(train.shape[1], dtype=np.float32)
        keep[dropped] = 0.0
        thinned = (train @ sp.diags(keep)).tocsr()
        thinned.eliminate_zeros()
        return InteractionGraph.from_train(thinned, self.device)

    def fit(self) -> TrainState:
        """Train until max epochs or early stop; keeps best.pt and last.pt up to date."""
        metric = self.cfg.valid_metric
        st = self.state
        if not self.model.trainable:
            if not (self.run_dir / BEST).exists():
                t0 = time.perf_counter()
                valid = self.evaluate("valid")
                st.eval_seconds += time.perf_counter() - t0
                st.best_epoch, st.best_score = 0, valid[metric]
                st.history.append({"epoch": 0, **{f"valid_{k}": v for k, v in valid.items()}})
                self._save(BEST, {"format": CHECKPOINT_FORMAT,
                                  "model": self.model.state_dict(), "epoch": 0})
                self.write_history()
            return st
        while st.epoch < self.cfg.epochs and not st.stopped_early:
            epoch = st.epoch + 1
            t0 = time.perf_counter()
            losses = self.train_epoch(epoch)
            train_s = time.perf_counter() - t0
            row: dict[str, Any] = {"epoch": epoch, **losses, "train_seconds": round(train_s, 4)}
            if self.scheduler is not None:
                row["lr"] = self.scheduler.get_last_lr()[0]  # the rate this epoch trained with
            st.train_seconds += train_s
            if epoch % self.cfg.eval_every == 0 or epoch == self.cfg.epochs:
                t1 = time.perf_counter()
                valid = self.evaluate("valid")
                eval_s = time.perf_counter() - t1
                st.eval_seconds += eval_s
                row.update({f"valid_{k}": v for k, v in metric_values(valid).items()})
                row["eval_seconds"] = round(eval_s, 4)
                every = self.cfg.thorough_diagnostics_every  # counted in validations
                thorough = every > 0 and (epoch // self.cfg.eval_every) % every == 0
                row.update({f"diag_{k}": v
                            for k, v in self.model.diagnostics(thorough).items()})
                score = valid[metric]
                if self.scheduler is not None:
                    self.scheduler.step(score)
                improved = score > st.best_score
                if improved:
                    st.best_score, st.best_epoch, st.bad_evals = score, epoch, 0
                    self._save(BEST, {"format": CHECKPOINT_FORMAT,
                                      "model": self.model.state_dict(), "epoch": epoch,
                                      "valid": valid})
                else:
                    st.bad_evals += 1
                    st.stopped_early = st.bad_evals >= self.cfg.patience
                mark = " *" if improved else ""
                self.log(f"epoch {epoch:4d}  loss {losses['loss']:.4f}  valid {metric} "
                         f"{score:.4f}  best {st.best_score:.4f}@{st.best_epoch}  "
                         f"({train_s:.1f}s + {eval_s:.1f}s){mark}")
            st.history.append(row)
            st.epoch = epoch
            self.save_checkpoint()
            self.write_history()
            for callback in self.callbacks:
                callback.on_epoch_end(self, epoch, row)
                if "eval_seconds" in row:
                    callback.on_evaluation(self, epoch, row[f"valid_{metric}"])
        return st

    def fit_cold_path(self, best: dict[str, Any], refit: bool = False) -> dict[str, Any] | None:
        """Fit the model's cold-item path on the best checkpoint (loaded) and save it into
        best.pt, unless best.pt holds a fitted one already and not ``refit`` (what was
        fitted, or None). Refitting with ``model.cold_start.method=none`` removes it."""
        mapper = getattr(self.model, "cold_mapper", None)
        if mapper is not None and mapper.is_fitted and not refit:
            return best.get("cold_start")
        report = fit_cold_start(self.model, self.graph, self.dataset, self.cfg.valid_metric,
                                self.cfg.seed, self.log)
        if report is None and mapper is not None:
            self.model.cold_mapper = None  # type: ignore[assignment]
        if report is not None or mapper is not None:
            best = {k: v for k, v in best.items() if k != "cold_start"}
            self._save(BEST, {**best, "model": self.model.state_dict(),
                              **({"cold_start": report} if report is not None else {})})
        return report

    def _cold_split_views(self) -> dict[str, Any]:
        """Validation metrics over the cold items alone (the cold-validation items of
        the cold-start protocol, ranked in the whole catalogue), when there are any."""
        cold = self.dataset.cold_items()
        if not len(cold) or not self.dataset.valid[:, cold].nnz \
                or not type(self.model).scores_new_items:
            return {}
        return {"valid_cold": metric_values(self.evaluate("valid", items=cold))}

    def final_metrics(self, test: bool = True, refit_cold_path: bool = False
                      ) -> dict[str, Any]:
        """Load best.pt, fit its cold-item path where it has none yet (or anew with
        ``refit_cold_path``), evaluate valid (and test, unless ``test=False``: model
        selection must never see it) once, return the metrics.json content."""
        best = read_checkpoint(self.run_dir / BEST, self.device)
        load_model_state(self.model, best["model"], self.run_dir / BEST)
        cold_start = self.fit_cold_path(best, refit=refit_cold_path)
        t0 = time.perf_counter()
        valid = self.evaluate("valid")
        test_m = self.evaluate("test") if test else None
        out: dict[str, Any] = {"valid": metric_values(valid)}
        if test_m is not None:
            out["test"] = metric_values(test_m)
            out.update(warm_and_cold_metrics(self.model, self.graph, self.dataset,
                                             self.eval_cfg, self.device, self.log))
        out.update(self._cold_split_views())
        if cold_start is not None:
            out["cold_start"] = cold_start
            if test and self.dataset.cold_items().size:
                # the same run without the cold-item path: the paired comparison
                with cold_path_off(self.model):
                    plain = {"valid": metric_values(self.evaluate("valid")),
                             "test": metric_values(self.evaluate("test")),
                             **warm_and_cold_metrics(self.model, self.graph, self.dataset,
                                                     self.eval_cfg, self.device,
                                                     lambda _m: None),
                             **self._cold_split_views()}
                out["without_cold_path"] = plain
        self.state.eval_seconds += time.perf_counter() - t0
        inert = [{**t, "try": self.state.term_hints.get(t["term"], "")}
                 for t in inert_terms(self.state.history)]
        for t in inert:
            self.log(f"warning: loss term {t['term']!r} was inert: {t['why']}"
                     + (f"; try: {t['try']}" if t["try"] else ""))
        return {
            **out,
            "valid_users": int(valid["users"]),
            **({"test_users": int(test_m["users"])} if test_m is not None else {}),
            "best_epoch": self.state.best_epoch,
            "epochs_run": self.state.epoch,
            "stopped_early": self.state.stopped_early,
            "train_seconds": round(self.state.train_seconds, 3),
            "eval_seconds": round(self.state.eval_seconds, 3),
            **({"inert_terms": inert} if inert else {}),
        }
