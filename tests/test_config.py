import pytest

from searec.config import build_config, config_reference, load_config, parse_overrides
from searec.errors import ConfigError


def test_defaults_resolve_model_params_and_lr():
    cfg = build_config({"model": {"name": "lightgcn"}})
    assert cfg.model_params == {"embedding_dim": 64, "n_layers": 2, "reg_weight": 1e-4}
    assert cfg.train.lr == 1e-3


def test_overrides_are_typed_yaml_values():
    cfg = load_config(None, ["model.name=bpr", "train.lr=0.01", "model.embedding_dim=32",
                             "eval.topk=[5, 20]"])
    assert cfg.train.lr == 0.01 and cfg.model_params["embedding_dim"] == 32
    assert cfg.eval.topk == [5, 20]


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"unknown config key 'train.patiense' \(did you mean "
                                          r"'train.patience'\?\)"):
        load_config(None, ["train.patiense=3"])


def test_unknown_model_param_suggests_closest():
    with pytest.raises(ConfigError, match=r"'model.n_layer'.*did you mean 'model.n_layers'"):
        load_config(None, ["model.name=lightgcn", "model.n_layer=3"])


def test_unknown_model_name():
    with pytest.raises(ConfigError, match=r"unknown model 'lightgnc' \(did you mean 'lightgcn'"):
        load_config(None, ["model.name=lightgnc"])


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.epochs=ten", "train.epochs"),
        ("train.lr=-0.1", "must be a number > 0"),
        ("train.batch_size=0", "greater than 0"),
        ("train.valid_metric=auc@20", "expected <metric>@<K>"),
        ("eval.topk=[0, 10]", "integers > 0"),
        ("train.device=tpu", "train.device"),
        ("data.cold_users=maybe", "data.cold_users"),
        ("model.name=bpr", None),
    ],
)
def test_wrong_values_name_the_key(override, expected):
    if expected is None:
        load_config(None, [override])
        return
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
        load_config(None, ["model.name=lightgcn", override])


def test_yaml_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml, line"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listy)


def test_file_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  name: lightgcn\n  n_layers: 3\ntrain:\n  lr: 0.005\n")
    cfg = load_config(f, ["train.lr=0.002"])
    assert cfg.model_params["n_layers"] == 3 and cfg.train.lr == 0.002
    # The written config reloads to the same config.
    assert build_config(__import__("yaml").safe_load(cfg.to_yaml())) == cfg


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["train.lr"])


def test_reference_documents_every_model():
    doc = config_reference()
    for key in ("train.patience", "data.cold_users", "eval.topk", "model = lightgcn",
                "model.n_layers"):
        assert key in doc


def test_docs_config_md_is_the_generated_reference():
    """docs/config.md is `searec config docs`; regenerate it when a key changes."""
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "config.md"
    assert doc.read_text().strip() == config_reference().strip(), \
        "run: searec config docs > docs/config.md"


@pytest.mark.parametrize(("override", "suggested"), [
    ("model.lr=0.1", "'train.lr'"),                       # another section's key
    ("train.q_steps=3", "'model.separation.q_steps'"),    # a nested section's key
    ("train.patiense=3", "'train.patience'"),             # a typo in the same section
    ("model.separation.q_step=3", "'model.separation.q_steps'"),
])
def test_mistyped_keys_suggest_across_sections(override, suggested):
    with pytest.raises(ConfigError, match="did you mean") as err:
        load_config(None, [override])
    assert suggested in str(err.value)


def test_old_flat_separation_keys_name_their_new_place():
    with pytest.raises(ConfigError, match=r"'model\.q_steps' moved to 'model\.separation"
                                          r"\.q_steps'"):
        load_config(None, ["model.q_steps=5"])
    cfg = load_config(None, ["model.separation.q_steps=7"])
    assert cfg.model_params["separation"]["q_steps"] == 7


def test_numbers_in_scientific_notation_are_numbers(tmp_path):
    """YAML 1.1 reads 1e-4 as a string; searec reads it as the float a user meant."""
    assert parse_overrides(["train.lr=1e-4", "a.b=2E3", "a.c=1.5e-3", "a.d=1e", "a.e=x1e3"]) == {
        "train": {"lr": 1e-4}, "a": {"b": 2000.0, "c": 1.5e-3, "d": "1e", "e": "x1e3"}}
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 3e-4\n")
    assert load_config(f).train.lr == 3e-4
