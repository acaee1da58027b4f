"""Typed, documented configuration: YAML file + ``key=value`` overrides.

This module only composes, merges, loads and documents: each section's schema lives beside
its owner (``DataConfig`` in :mod:`searec.data.load`, ``TrainConfig`` in
:mod:`searec.training.trainer`, ``EvalConfig`` in :mod:`searec.evaluation.evaluator`, a
model's ``Params`` in its module, ``SeparationParams`` in :mod:`searec.separation`), all on
the strict base of :mod:`searec.schema`. Every key has a type, a default and a description
(``searec config docs`` prints them all). Unknown keys and wrong types are errors that name
the key, say what was expected and, for typos, suggest the closest known key of any section.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from searec.data.load import DataConfig
from searec.data.perturb import Perturbation
from searec.data.synthetic import SyntheticConfig
from searec.errors import ConfigError
from searec.evaluation.evaluator import EvalConfig
from searec.evaluation.metrics import parse_metric
from searec.io import read_bounded_text
from searec.models import model_keys, registry, resolve_model_section
from searec.schema import StrictModel, known_keys, section_type, short_repr, validate
from searec.separation import ALIGNMENTS, DISTANCINGS, EstimatorParams, SeparationParams
from searec.training.trainer import TrainConfig

# the sections, importable from here too
__all__ = ["Config", "DataConfig", "EvalConfig", "ModelConfig", "Perturbation",
           "SyntheticConfig", "TrainConfig", "build_config", "config_reference",
           "deep_merge", "load_config", "parse_overrides", "read_yaml"]


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


# ---------------------------------------------------------------- loading and overrides


# Bounds on config input, which may come from anyone (a received run's config.yaml):
MAX_CONFIG_BYTES = 1 << 20  # a config file's size
MAX_CONFIG_VALUES = 100_000  # scalars, lists and mappings, aliases expanded (YAML bombs)
MAX_CONFIG_DEPTH = 64  # nesting


class _ConfigTooLarge(yaml.YAMLError):
    """The YAML is well formed but too large once its aliases are expanded, or too deep."""


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, line: int, first: int) -> None:
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


def _check_nodes(root: yaml.Node) -> None:
    """Refuse a document whose values, aliases expanded, exceed MAX_CONFIG_VALUES or
    nest deeper than MAX_CONFIG_DEPTH (an alias bomb is a few hundred bytes), and a
    mapping that names a key twice (PyYAML keeps the last silently)."""
    sizes: dict[int, int] = {}  # id(node) -> its expanded size: each node is sized once

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_CONFIG_DEPTH:
            raise _ConfigTooLarge(f"nested deeper than {MAX_CONFIG_DEPTH} levels")
        if id(node) in sizes:
            return sizes[id(node)]
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        raise _DuplicateKey(key.value, line, seen[key.value])
                    seen[key.value] = line
                total += size(key, depth + 1) + size(value, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item, depth + 1) for item in node.value)
        if total > MAX_CONFIG_VALUES:
            raise _ConfigTooLarge(f"more than {MAX_CONFIG_VALUES:,} values, YAML aliases "
                                  "expanded")
        sizes[id(node)] = total
        return total

    size(root, 0)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML with 1.2's numbers: ``1e-4`` is a float (YAML 1.1, PyYAML's default, reads it as
    a string, which a float key then refuses). Bounded (:func:`_check_nodes`) and strict
    about duplicate keys. libyaml's parser where PyYAML has it (3x faster)."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_nodes(node)
        return self.construct_document(node)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."))


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for depth, p in enumerate(parts[:-1]):
        child = node.setdefault(p, {})
        if isinstance(child, str) and ".".join(parts[: depth + 1]) in ESTIMATOR_SECTIONS:
            child = node[p] = {"name": child}  # a bare estimator name, then its settings
        if not isinstance(child, dict):
            raise ConfigError(f"override {short_repr(key)}: {p!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """['train.lr=0.01', 'model.n_layers=2'] -> nested dict (values parsed as YAML scalars)."""
    tree: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        shown = short_repr(item)
        if not sep or not key.strip():
            raise ConfigError(f"override {shown}: expected key=value, e.g. train.lr=0.001")
        if not raw.strip():
            raise ConfigError(f"override {shown}: no value after '='; give one (null for "
                              "none, where the key allows it)")
        try:
            value = _load_yaml(raw)
        except _ConfigTooLarge as exc:
            raise ConfigError(f"override {shown}: refused, {exc}") from None
        except _DuplicateKey as exc:
            raise ConfigError(f"override {shown}: key {short_repr(exc.key)} given twice"
                              ) from None
        except (yaml.YAMLError, RecursionError):
            raise ConfigError(f"override {shown}: value is not valid YAML") from None
        _set_dotted(tree, key.strip(), value)
    return tree


# Config sections merge key by key; any other mapping (e.g. model.knn_weights) is one value
# that a later source replaces whole.
SECTIONS = {"data", "data.synthetic", "model", "model.separation", "model.cold_start", "train",
            "eval"}
# Estimator sections: a bare name is the section {name: ...}; settings merge into the
# estimator named below them, and naming another estimator starts its section afresh.
ESTIMATOR_SECTIONS = {"model.separation.alignment", "model.separation.distancing"}


def deep_merge(
    base: Mapping[str, Any], top: Mapping[str, Any], prefix: str = ""
) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        path = prefix + k
        below = out.get(k)
        if path in ESTIMATOR_SECTIONS and isinstance(v, Mapping) \
                and isinstance(below, str | Mapping):
            below = {"name": below} if isinstance(below, str) else below
            if "name" not in v or v["name"] == below.get("name"):
                out[k] = {**below, **v}
                continue
        if path in SECTIONS and isinstance(v, Mapping) and isinstance(below, Mapping):
            out[k] = deep_merge(below, v, path + ".")
        else:
            out[k] = v
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping; refused with a ConfigError naming the file (and line) when
    it is missing, over MAX_CONFIG_BYTES, not YAML, too large once its aliases are
    expanded, or names a key twice."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    text = read_bounded_text(path, MAX_CONFIG_BYTES, "config file", ConfigError)
    try:
        tree = _load_yaml(text)
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}, line {exc.line}: key {short_repr(exc.key)} appears a "
                          f"second time (first on line {exc.first}); give each key, and "
                          "each section, once") from None
    except _ConfigTooLarge as exc:
        raise ConfigError(f"{path}: refused, {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: refused, nested too deeply") from None
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
    tree = dict(tree or {})
    section = tree.get("model")
    name = section.get("name", "sea") if isinstance(section, Mapping) else "sea"
    # a typo in any section may have meant a key of another: suggest across all of them
    every_key = known_keys(Config) + model_keys(name if isinstance(name, str) else "sea")
    cfg = validate(Config, tree, source, known=every_key)
    name, params, default_lr = resolve_model_section(cfg.model.name, cfg.model_params, source,
                                                     known=every_key)
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
    rows = ["| key | type | default | description |", "|---|---|---|---|"]

    def row(*cells: str) -> None:
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")

    def walk(model: type[BaseModel], prefix: str, estimators: bool = True) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            nested = section_type(ann)
            if not estimators and nested is not None and issubclass(nested, EstimatorParams):
                default = field.get_default(call_default_factory=True)
                row(f"`{prefix}{name}`", "section or name",
                    f"`{default.model_dump(mode='json')}`", field.description or "")
                continue
            if nested is SeparationParams:  # documented once, below the models
                default = "{} (its defaults)" if field.default_factory else field.default
                nullable = field.default is None and not field.default_factory
                row(f"`{prefix}{name}`", "section" + (" or null" if nullable else ""),
                    f"`{default}`", field.description or "")
                continue
            if nested is not None and nested is not ModelConfig:
                walk(nested, prefix + name + ".")
                continue
            default = ("(required)" if field.is_required()
                       else field.get_default(call_default_factory=True))
            item = typing.get_args(ann)[0] if typing.get_origin(ann) is list else None
            if isinstance(item, type) and issubclass(item, BaseModel):
                row(f"`{prefix}{name}`", f"list of {item.__name__}", f"`{default}`",
                    field.description or "")
                walk(item, f"{prefix}{name}[].")
                continue
            tname = str(ann).replace("typing.", "") if "[" in str(ann) or "|" in str(ann) \
                else getattr(ann, "__name__", str(ann))
            row(f"`{prefix}{name}`", tname, f"`{default}`", field.description or "")

    walk(Config, "")
    for mname, cls in sorted(registry().items()):
        rows.append(f"| **model = {mname}** | | | {cls.summary()} |")
        walk(cls.Params, "model.")
    rows.append("| **model.separation** | | | SEA's separation component: required by sea, "
                "optional (null = off) on multimodal backbones |")
    walk(SeparationParams, "model.separation.", estimators=False)
    for kind, estimators in (("alignment", ALIGNMENTS), ("distancing", DISTANCINGS)):
        for name, estimator in sorted(estimators.copy().items()):
            summary = (estimator.__dict__.get("__doc__") or "").strip().splitlines()
            rows.append(f"| **{kind} = {name}** | | | "
                        f"{summary[0] if summary else ''} |")
            walk(estimator.Params, f"model.separation.{kind}.")
    return "\n".join(rows)
