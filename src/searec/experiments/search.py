"""`searec search FILE.yaml`: hyper-parameter search with Optuna, on validation only.

The file declares a base config, a dataset and a search space::

    base:                       # config shared by every trial (same keys as --config)
      model: {name: sea, separation: {distancing: {q_steps: 5}, mi_items: batch}}
      train: {epochs: 100, patience: 10, progress: false}
    data: ../shared/data/tiktok # MMRec folder relative to this file; omit for synthetic
    trials: 30                  # total trials of the study (resumed studies count theirs)
    timeout_minutes: 120        # optional wall-clock budget of this invocation
    seed: 0                     # sampler seed
    pruner: {type: median, startup_trials: 3, warmup_evals: 5}   # or {type: none}
    space:                      # config key -> distribution
      train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      model.separation.alignment: {type: categorical, choices: [solosim, infonce]}
      model.n_layers: {type: int, low: 1, high: 4}
    enqueue:                    # optional: configurations to try first
      - {train.lr: 1.0e-3, model.separation.alignment: solosim, model.n_layers: 2}

Every trial is an ordinary run folder, OUT/trials/trial-NNNN, trained with early stopping;
its objective is the best validation value of ``train.valid_metric``, reported after every
evaluation so the pruner can stop poor trials early. The test split is never evaluated.
The study lives in OUT/study.db (SQLite): running the command again continues it, and a
trial that was interrupted is marked failed and tried again first. OUT/best.yaml is the
full config of the best trial (``searec train --config OUT/best.yaml``), OUT/trials.csv
lists every trial and OUT/search.md summarises the study.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from searec.config import Config, build_config, deep_merge, read_yaml
from searec.errors import ConfigError, NonFiniteLossError, SearecError
from searec.io import rows_to_csv, write_text
from searec.runs import train
from searec.schema import StrictModel, validate
from searec.training.trainer import Callback, Trainer


class Distribution(StrictModel):
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Distribution:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical needs a non-empty 'choices' list")
        else:
            if self.low is None or self.high is None or not self.low < self.high:
                raise ValueError(f"{self.type} needs 'low' < 'high'")
            if self.log and self.low <= 0:
                raise ValueError("log scale needs 'low' > 0")
            if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
                raise ValueError("int needs integer 'low' and 'high'")
        return self

    def suggest(self, trial: Any, name: str) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(name, self.choices)
        if self.type == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)


class PrunerSpec(StrictModel):
    type: Literal["median", "none"] = "median"
    startup_trials: int = Field(3, ge=0, description="trials run to the end before pruning")
    warmup_evals: int = Field(5, ge=0, description="evaluations of a trial before pruning")


class SearchSpec(StrictModel):
    base: dict[str, Any] = Field(default_factory=dict)
    data: str | None = None
    trials: int = Field(20, gt=0)
    timeout_minutes: float | None = Field(None, gt=0)
    seed: int = 0
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    space: dict[str, Distribution]
    enqueue: list[dict[str, Any]] = Field(default_factory=list)


def _nested(key: str, value: Any) -> dict[str, Any]:
    """'model.separation.alignment' -> {'model': {'separation': {'alignment': value}}}."""
    tree: Any = value
    for part in reversed(key.split(".")):
        tree = {part: tree}
    return tree


def load_search(path: str | Path) -> tuple[SearchSpec, Path]:
    path = Path(path)
    spec = validate(SearchSpec, read_yaml(path), str(path))
    if not spec.space:
        raise ConfigError(f"{path}: 'space' is empty; declare at least one parameter")
    return spec, path.parent.resolve()


def trial_config(spec: SearchSpec, root: Path, params: dict[str, Any], source: str) -> Config:
    tree = dict(spec.base)
    if spec.data is not None:
        tree = deep_merge(tree, {"data": {"path": str((root / spec.data).resolve())}})
    for key, value in params.items():
        if "." not in key:
            raise ConfigError(f"{source}: search key {key!r} must be section.key, e.g. train.lr")
        tree = deep_merge(tree, _nested(key, value))
    return build_config(tree, source)


def check_space(spec: SearchSpec, root: Path, path: Path) -> None:
    """Every corner of the space must be a valid config, before any trial runs."""
    for key, dist in spec.space.items():
        values = dist.choices if dist.type == "categorical" else [dist.low, dist.high]
        for value in values or []:
            if dist.type == "int":
                value = int(value)
            trial_config(spec, root, {key: value}, f"{path}: space {key!r}={value!r}")
    for i, params in enumerate(spec.enqueue):
        unknown = set(params) - set(spec.space)
        if unknown:
            raise ConfigError(f"{path}: enqueue[{i}] sets {sorted(unknown)}, which are not in "
                              "'space'")
        trial_config(spec, root, params, f"{path}: enqueue[{i}]")


def run_search(
    file: str | Path, out: str | Path, log: Callable[[str], None] = print,
    trials: int | None = None,
) -> dict[str, Any]:
    """Run (or continue) the study; returns the best trial's number, value and params."""
    try:
        import optuna
    except ImportError:
        raise SearecError("hyper-parameter search needs optuna (pip install optuna)") from None
    spec, root = load_search(file)
    path = Path(file)
    check_space(spec, root, path)
    metric = build_config(spec.base).train.valid_metric
    out = Path(out)
    (out / "trials").mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=spec.pruner.startup_trials,
                                          n_warmup_steps=spec.pruner.warmup_evals)
              if spec.pruner.type == "median" else optuna.pruners.NopPruner())
    study = optuna.create_study(
        study_name=path.stem, storage=f"sqlite:///{(out / 'study.db').resolve()}",
        load_if_exists=True, direction="maximize", pruner=pruner,
        sampler=optuna.samplers.TPESampler(seed=spec.seed))
    states = optuna.trial.TrialState
    for t in study.get_trials(deepcopy=False, states=(states.RUNNING,)):
        # left RUNNING by a killed process: fail it and try its configuration again first
        study.tell(t.number, state=states.FAIL)
        study.enqueue_trial(t.params)
        log(f"trial {t.number} was interrupted; it will be run again")
    if not study.trials:
        for params in spec.enqueue:
            study.enqueue_trial(params)
    done = len(study.get_trials(states=(states.COMPLETE, states.PRUNED)))
    todo = max(0, (trials or spec.trials) - done)

    def objective(trial: Any) -> float:
        params = {}
        for key, dist in spec.space.items():
            try:
                params[key] = dist.suggest(trial, key)
            except ValueError as exc:  # the study was started with another space
                raise ConfigError(f"{path}: space {key!r} does not match the study in "
                                  f"{out / 'study.db'} ({exc}); restore it or use a new "
                                  "--out") from None
        cfg = trial_config(spec, root, params, f"{path}: trial {trial.number}")
        run_dir = out / "trials" / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))

        class Pruning(Callback):
            def on_evaluation(self, trainer: Trainer, epoch: int, score: float) -> None:
                trial.report(score, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"valid {metric} {score:.4f} at epoch {epoch}")

        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in params.items())
        log(f"trial {trial.number}: {shown}")
        metrics = train(cfg, run_dir, overwrite=True, log=lambda _msg: None,
                        callbacks=[Pruning()], test=False)
        trial.set_user_attr("best_epoch", metrics["best_epoch"])
        value = float(metrics["valid"][metric])
        log(f"trial {trial.number}: valid {metric} {value:.4f} (epoch {metrics['best_epoch']})")
        return value

    if todo:
        timeout = spec.timeout_minutes * 60 if spec.timeout_minutes else None
        # a diverging trial (too high a learning rate, say) fails alone; the study goes on
        study.optimize(objective, n_trials=todo, timeout=timeout,
                       catch=(NonFiniteLossError,))
    return write_search_outputs(study, spec, root, path, out, metric)


def write_search_outputs(
    study: Any, spec: SearchSpec, root: Path, path: Path, out: Path, metric: str
) -> dict[str, Any]:
    import optuna

    rows = []
    for t in study.trials:
        complete = t.state.name == "COMPLETE"
        last = max(t.intermediate_values, default=None)
        rows.append({"trial": t.number, "state": t.state.name,
                     # a pruned trial has no objective value, only what it had reached
                     f"valid_{metric}": t.value if complete and t.value is not None else "",
                     "last_reported": "" if last is None else t.intermediate_values[last],
                     "last_epoch": "" if last is None else last,
                     "best_epoch": t.user_attrs.get("best_epoch", ""),
                     **{k: t.params.get(k, "") for k in spec.space},
                     "run_dir": t.user_attrs.get("run_dir", "")})
    write_text(out / "trials.csv", rows_to_csv(rows))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise SearecError(f"{out}: no trial has completed yet; nothing to select")
    best = study.best_trial
    cfg = trial_config(spec, root, best.params, f"{path}: best trial")
    header = (f"# best of study {study.study_name!r}: trial {best.number}, valid {metric} "
              f"{best.value:.6f}\n# params: {best.params}\n")
    write_text(out / "best.yaml", header + cfg.to_yaml())
    counts = {s: sum(1 for t in study.trials if t.state.name == s)
              for s in ("COMPLETE", "PRUNED", "FAIL")}
    lines = [f"# Search: {study.study_name}", "",
             f"Trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
             f"{counts['FAIL']} failed. Objective: best validation {metric} (test never "
             "evaluated).", "",
             f"Best: trial {best.number}, valid {metric} = {best.value:.4f}", "",
             "| parameter | best value |", "|---|---|",
             *[f"| {k} | {v} |" for k, v in best.params.items()], "",
             f"Train it: `searec train --config {out / 'best.yaml'} --out RUN_DIR`", "",
             "| trial | state | valid | " + " | ".join(spec.space) + " |",
             "|---" * (3 + len(spec.space)) + "|"]
    for r in rows:
        value = r[f"valid_{metric}"]
        shown = f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else ""
        lines.append(f"| {r['trial']} | {r['state']} | {shown} | "
                     + " | ".join(_fmt(r[k]) for k in spec.space) + " |")
    write_text(out / "search.md", "\n".join(lines) + "\n")
    return {"trial": best.number, "value": best.value, "params": best.params,
            "best_yaml": str(out / "best.yaml"), **{k.lower(): v for k, v in counts.items()}}


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
