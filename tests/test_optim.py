"""Adam kernels: the fused switch, and checkpoints that cross kernels without switching."""

import copy

import pytest
import torch

from searec.config import build_config, load_config
from searec.data.load import load_dataset
from searec.graphs import InteractionGraph
from searec.models.sea import SEA
from searec.optim import adam, is_fused, load_adam_state
from searec.runs import build_model
from searec.training.trainer import Trainer


def _quadratic_steps(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                     n: int) -> None:
    for _ in range(n):
        opt.zero_grad()
        sum(((p - 1.0) ** 2).sum() for p in params).backward()
        opt.step()


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(5, 3, generator=g)),
            torch.nn.Parameter(torch.randn(3, generator=g))]


def test_fused_switch_and_equal_updates():
    a, b = _params(), _params()
    fused, loop = adam(a, lr=0.1, fused=True), adam(b, lr=0.1, fused=False)
    assert is_fused(fused) and not is_fused(loop)
    _quadratic_steps(fused, a, 5)
    _quadratic_steps(loop, b, 5)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)  # same algorithm; rounding may differ


def test_loading_a_checkpoint_keeps_the_optimisers_own_kernel():
    saved_from = _params()
    loop = adam(saved_from, lr=0.1, fused=False)
    _quadratic_steps(loop, saved_from, 3)
    resumed = [torch.nn.Parameter(p.detach().clone()) for p in saved_from]
    fused = adam(resumed, lr=0.1, fused=True)
    load_adam_state(fused, copy.deepcopy(loop.state_dict()))  # as torch.load gives it
    assert is_fused(fused)  # torch alone would take fused=None from the saved groups
    assert float(fused.state[resumed[0]]["step"]) == 3.0
    _quadratic_steps(loop, saved_from, 2)
    _quadratic_steps(fused, resumed, 2)
    for x, y in zip(saved_from, resumed, strict=True):
        torch.testing.assert_close(x, y)


def _trainer(cfg, tmp_path) -> Trainer:
    dataset = load_dataset(cfg.data)
    model = build_model(cfg, dataset)
    return Trainer(model, dataset, InteractionGraph.from_train(dataset.train), cfg.train,
                   cfg.eval, tmp_path, torch.device("cpu"), log=lambda _m: None)


def test_train_fused_adam_reaches_the_auxiliary_optimisers(tmp_path):
    tiny = {"data": {"synthetic": {"n_users": 40, "n_items": 30}},
            "model": {"name": "sea", "separation": {"distancing": "club"}},
            "train": {"progress": False}}
    default = _trainer(build_config(tiny), tmp_path / "a")
    assert is_fused(default.optimizer)
    assert list(default.auxiliary_optimizers) == ["q_nll"]
    assert is_fused(default.auxiliary_optimizers["q_nll"])
    loop = _trainer(build_config({**tiny, "train": {"progress": False,
                                                     "fused_adam": False}}), tmp_path / "b")
    assert not is_fused(loop.optimizer)
    assert not is_fused(loop.auxiliary_optimizers["q_nll"])
    # the main optimiser never holds what an auxiliary one fits
    main = {id(p) for g in default.optimizer.param_groups for p in g["params"]}
    q = default.auxiliary_optimizers["q_nll"].param_groups[0]["params"]
    assert q and not main & {id(p) for p in q}
    assert len(main) + len(q) == len(list(default.model.parameters()))


def test_reference_preset_keeps_torchs_default_adam():
    assert load_config("preset:reference", []).train.fused_adam is False
    assert load_config(None, []).train.fused_adam is True


def test_checkpoints_of_an_earlier_format_are_a_clear_error(tmp_path):
    from searec.errors import RunDirError
    from searec.training.trainer import CHECKPOINT_FORMAT, read_checkpoint

    torch.save({"model": {}, "optimizer": None}, tmp_path / "old.pt")  # format 1: no key
    with pytest.raises(RunDirError, match=r"checkpoint format 1, written by an earlier "
                                          r"searec \(0\.1\)"):
        read_checkpoint(tmp_path / "old.pt")
    torch.save({"format": CHECKPOINT_FORMAT, "model": {}}, tmp_path / "new.pt")
    assert read_checkpoint(tmp_path / "new.pt")["format"] == CHECKPOINT_FORMAT


def test_trainer_resolves_an_unset_lr_to_the_models_rate(tmp_path):
    # build_config fills train.lr in; a TrainConfig made in Python code leaves it None
    cfg = build_config({"data": {"synthetic": {"n_users": 40, "n_items": 30}},
                        "model": {"name": "sea", "separation": {"distancing": "club"}},
            "train": {"progress": False}})
    cfg.train.lr = None
    trainer = _trainer(cfg, tmp_path)
    assert trainer.optimizer.param_groups[0]["lr"] == SEA.default_lr == 3e-4
