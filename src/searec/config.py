"""Typed, documented configuration: YAML file + ``key=value`` overrides.

Every key has a type, a default and a description (``searec config docs`` prints them all).
Unknown keys and wrong types are errors that name the key, say what was expected and, for
typos, suggest the closest known key.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from searec.errors import ConfigError
from searec.evaluation.metrics import METRICS


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, no silent type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class SyntheticConfig(StrictModel):
    n_users: int = Field(800, gt=1, description="Users in the generated dataset.")
    n_items: int = Field(500, gt=1, description="Items in the generated dataset.")
    modalities: dict[str, int] = Field(
        default_factory=lambda: {"image": 64, "text": 48, "audio": 32},
        description="Modality name -> feature dimension.",
    )
    interactions_per_user: int = Field(
        20, gt=2, description="Mean interactions per user (each user has at least 5)."
    )
    generic_dim: int = Field(8, gt=0, description="Latent factors shared by all modalities.")
    unique_dim: int = Field(4, gt=0, description="Latent factors private to each modality.")
    id_dim: int = Field(4, ge=0, description="Latent factors visible in no modality (pure CF).")
    noise: float = Field(0.5, ge=0, description="Std of Gaussian noise added to features.")
    seed: int = Field(0, description="Seed of the generator (independent of train.seed).")
    generator: Literal["latent", "clustered"] = Field(
        "latent", description="latent: users score every item through latent factors "
        "(O(users x items), for small sets); clustered: items fall into n_clusters clusters "
        "and users draw from a few favourite clusters (O(interactions), for millions).")
    n_clusters: int = Field(256, gt=1, description="clustered: number of item clusters.")


class Perturbation(StrictModel):
    """One change to a modality's item features, applied after loading (robustness runs)."""

    kind: Literal["noise", "duplicate", "drop", "scale"] = Field(
        description="noise: replace with Gaussian noise of the same per-column mean and std; "
        "duplicate: replace with a copy of modality `source` (through a fixed random linear "
        "map when widths differ); drop: zero (or mean-fill) the features of a `fraction` of "
        "items; scale: multiply by `factor`.")
    modality: str = Field(description="The modality changed.")
    source: str | None = Field(None, description="duplicate: the modality copied.")
    fraction: float = Field(0.5, gt=0, le=1, description="drop: share of items affected.")
    fill: Literal["mean", "zero"] = Field("mean", description="drop: value given to them: the "
                                          "mean feature vector (as MMRec imputes missing "
                                          "features) or zeros (cosine kNN graphs refuse zero "
                                          "rows).")
    factor: float = Field(10.0, gt=0, description="scale: the multiplier.")
    seed: int = Field(0, description="Seed of the noise, the items dropped, the linear map.")

    @model_validator(mode="after")
    def _source_for_duplicate(self) -> Perturbation:
        if (self.kind == "duplicate") != (self.source is not None):
            raise ValueError("'source' is required by kind=duplicate and only by it")
        if self.source == self.modality:
            raise ValueError("'source' must differ from 'modality'")
        return self


class DataConfig(StrictModel):
    path: str | None = Field(
        None,
        description="MMRec folder (<name>.inter + *_feat.npy). None: the embedded synthetic "
        "dataset described by data.synthetic.",
    )
    name: str | None = Field(
        None, description="Stem of the .inter file. None: the folder's name, or its only .inter."
    )
    modalities: list[str] | None = Field(
        None,
        description="Modalities to use (file <m>_feat.npy). None: every *_feat.npy found.",
    )
    cold_users: Literal["error", "drop", "keep"] = Field(
        "error",
        description="Users with valid/test interactions but none in training: error refuses "
        "the dataset, drop leaves them out of evaluation (MMRec's behaviour), keep scores them.",
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    perturb: list[Perturbation] = Field(
        default_factory=list,
        description="Feature perturbations applied in order after loading (see "
        "docs/experiments.md, robustness): e.g. [{kind: noise, modality: image}].")


class TrainConfig(StrictModel):
    epochs: int = Field(1000, gt=0, description="Maximum number of epochs.")
    batch_size: int = Field(2048, gt=0, description="Training (user, pos, neg) triples per step.")
    lr: float | None = Field(
        None, description="Adam learning rate. None: the model's recommended rate."
    )
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay.")
    fused_adam: bool = Field(
        True, description="Update all parameters in one fused Adam kernel per step (also "
        "CLUB's q optimiser); false: torch's default per-tensor Adam, as the authors' code. "
        "Same algorithm, different rounding in the last bits (docs/performance.md).")
    patience: int = Field(
        20, gt=0, description="Stop after this many evaluations without improvement."
    )
    lr_schedule: Literal["constant", "plateau"] = Field(
        "constant", description="constant: train.lr throughout. plateau: multiply the "
        "learning rate by lr_factor once more than lr_patience evaluations in a row have not "
        "improved valid_metric, then count afresh (torch's ReduceLROnPlateau); never below "
        "min_lr. Auxiliary optimisers (CLUB's q, model.q_lr) keep their rate.")
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


class EvalConfig(StrictModel):
    topk: list[int] = Field(
        default_factory=lambda: [10, 20, 50], description="Cut-offs K for every metric."
    )
    batch_size: int = Field(4096, gt=0, description="Users scored per evaluation batch "
                            "(lowered so one batch holds at most 2^28 scores, 1 GiB).")
    mask_valid_in_test: bool = Field(
        False,
        description="Also exclude a user's validation items when ranking for test (MMRec "
        "masks training items only).",
    )

    @field_validator("topk")
    @classmethod
    def _positive_k(cls, v: list[int]) -> list[int]:
        if not v or any(k <= 0 for k in v):
            raise ValueError(f"must be a non-empty list of integers > 0, got {v}")
        return sorted(set(v))


class ModelConfig(BaseModel):
    """``name`` picks a registered model; every other key is that model's parameter."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(
        "sea", description="Registered model name (`searec models` lists them)."
    )


class Config(StrictModel):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    cache_dir: str | None = Field(
        None, description="Cache for kNN graphs. None: $SEAREC_CACHE or ~/.cache/searec."
    )

    @property
    def model_params(self) -> dict[str, Any]:
        return dict(self.model.model_extra or {})

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def parse_metric(name: str) -> tuple[str, int]:
    """'recall@20' -> ('recall', 20); raises ValueError naming what is expected."""
    base, sep, k = name.partition("@")
    if not sep or base not in METRICS or not k.isdigit() or int(k) <= 0:
        raise ValueError(
            f"expected <metric>@<K> with metric in {', '.join(METRICS)} and K > 0, "
            f"got {name!r}"
        )
    return base, int(k)


# ---------------------------------------------------------------- loading and overrides


def _known_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys.extend(_known_keys(ann, prefix + name + "."))
    return keys


def _suggest(key: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _format_validation_error(
    err: ValidationError, known: list[str], source: str, prefix: str = ""
) -> str:
    lines = []
    for e in err.errors():
        key = prefix + ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown config key {key!r}{_suggest(key, known)}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"config key {key!r}: {msg}{shown}")
    return f"{source}: " + "; ".join(lines)


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for p in parts[:-1]:
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {p!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """['train.lr=0.01', 'model.n_layers=2'] -> nested dict (values parsed as YAML scalars)."""
    tree: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.lr=0.001")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from None
        _set_dotted(tree, key.strip(), value)
    return tree


# Config sections merge key by key; any other mapping (e.g. model.knn_weights) is one value
# that a later source replaces whole.
SECTIONS = {"data", "data.synthetic", "model", "train", "eval"}


def deep_merge(
    base: Mapping[str, Any], top: Mapping[str, Any], prefix: str = ""
) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        path = prefix + k
        if path in SECTIONS and isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v, path + ".")
        else:
            out[k] = v
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections at the top level")
    return tree


def preset_path(name: str) -> Path:
    """Path of a preset shipped with the package (searec/presets/<name>.yaml)."""
    ref = resources.files("searec") / "presets" / f"{name}.yaml"
    path = Path(str(ref))
    if not path.is_file():
        shipped = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"unknown preset {name!r}; shipped presets: {', '.join(shipped)}")
    return path


def build_config(
    tree: Mapping[str, Any] | None = None, source: str = "config"
) -> Config:
    """Validate a nested dict into a Config, resolving model parameters and defaults."""
    from searec.models import resolve_model_section

    tree = dict(tree or {})
    try:
        cfg = Config.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, _known_keys(Config), source)) from None
    name, params, default_lr = resolve_model_section(cfg.model.name, cfg.model_params, source)
    cfg.model = ModelConfig(name=name, **params)
    if cfg.train.lr is None:
        cfg.train.lr = default_lr
    if max(cfg.eval.topk) < parse_metric(cfg.train.valid_metric)[1]:
        cfg.eval.topk = sorted({*cfg.eval.topk, parse_metric(cfg.train.valid_metric)[1]})
    return cfg


def load_config(
    file: str | Path | None = None,
    overrides: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> Config:
    """Config from an optional YAML file (or ``preset:NAME``), then ``extra``, then overrides."""
    tree: dict[str, Any] = {}
    source = "config"
    if file is not None:
        file_str = str(file)
        path = preset_path(file_str[7:]) if file_str.startswith("preset:") else Path(file_str)
        tree = read_yaml(path)
        source = str(path)
    if extra:
        tree = deep_merge(tree, extra)
    ov = parse_overrides(overrides)
    if ov:
        tree = deep_merge(tree, ov)
        source = f"{source} + overrides" if file is not None else "overrides"
    return build_config(tree, source)


def config_reference() -> str:
    """Markdown table of every config key: type, default, description."""
    from searec.models import registry

    rows = ["| key | type | default | description |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel) and ann is not ModelConfig:
                walk(ann, prefix + name + ".")
                continue
            default = ("(required)" if field.is_required()
                       else field.get_default(call_default_factory=True))
            item = typing.get_args(ann)[0] if typing.get_origin(ann) is list else None
            if isinstance(item, type) and issubclass(item, BaseModel):
                cells = [f"`{prefix}{name}`", f"list of {item.__name__}", f"`{default}`",
                         field.description or ""]
                rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
                walk(item, f"{prefix}{name}[].")
                continue
            tname = str(ann).replace("typing.", "") if "[" in str(ann) or "|" in str(ann) \
                else getattr(ann, "__name__", str(ann))
            cells = [f"`{prefix}{name}`", tname, f"`{default}`", field.description or ""]
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")

    walk(Config, "")
    for mname, cls in sorted(registry().items()):
        rows.append(f"| **model = {mname}** | | | {cls.summary()} |")
        walk(cls.Params, "model.")
    return "\n".join(rows)
