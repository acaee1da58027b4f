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
    ("train.q_steps=3", "'model.separation.distancing.q_steps'"),  # an estimator's key
    ("train.patiense=3", "'train.patience'"),             # a typo in the same section
    ("model.separation.distancing.q_step=3", "'q_steps'"),
])
def test_mistyped_keys_suggest_across_sections(override, suggested):
    with pytest.raises(ConfigError, match="did you mean") as err:
        load_config(None, [override])
    assert suggested in str(err.value)


def test_old_flat_separation_keys_name_their_new_place():
    with pytest.raises(ConfigError, match=r"'model\.q_steps' moved to 'model\.separation"
                                          r"\.distancing\.q_steps'"):
        load_config(None, ["model.q_steps=5"])
    with pytest.raises(ConfigError, match=r"'q_steps' moved into the distancing estimator's "
                                          r"own section: model\.separation\.distancing"
                                          r"\.q_steps"):
        load_config(None, ["model.separation.q_steps=5"])
    cfg = load_config(None, ["model.separation.distancing=club",
                             "model.separation.distancing.q_steps=7"])
    assert cfg.model_params["separation"]["distancing"]["q_steps"] == 7


def test_a_setting_of_another_estimator_says_whose_it_is():
    """SEA's default distancing is hsic; CLUB's settings alone name CLUB, not just hsic's."""
    with pytest.raises(ConfigError, match=r"'q_steps' is a setting of club and l1out, not of "
                       r"hsic, the default distancing estimator: choose one first, e\.g\. "
                       r"distancing=club"):
        load_config(None, ["model.separation.distancing.q_steps=7"])
    with pytest.raises(ConfigError, match=r"not of hsic: choose one first"):
        load_config(None, ["model.separation.distancing={name: hsic, q_steps: 3}"])


def test_numbers_in_scientific_notation_are_numbers(tmp_path):
    """YAML 1.1 reads 1e-4 as a string; searec reads it as the float a user meant."""
    assert parse_overrides(["train.lr=1e-4", "a.b=2E3", "a.c=1.5e-3", "a.d=1e", "a.e=x1e3"]) == {
        "train": {"lr": 1e-4}, "a": {"b": 2000.0, "c": 1.5e-3, "d": "1e", "e": "x1e3"}}
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 3e-4\n")
    assert load_config(f).train.lr == 3e-4


# ---------------------------------------------------------------- bounded, strict input
BOMB = "".join(f"{a}: &{a} [{', '.join([f'*{p}'] * 9 if p else ['lol'] * 9)}]\n"
               for p, a in zip([None, *"abcdefgh"], "abcdefghi", strict=True))


def test_a_yaml_alias_bomb_is_refused_with_a_short_message(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    assert len(BOMB) < 400
    with pytest.raises(ConfigError) as err:
        load_config(bomb)
    assert "more than 100,000 values, YAML aliases expanded" in str(err.value)
    assert len(str(err.value)) < 300
    # aliases within the bound are fine
    ok = tmp_path / "ok.yaml"
    ok.write_text("train:\n  epochs: &e 3\n  patience: *e\n")
    assert load_config(ok).train.patience == 3


def test_a_large_or_deep_config_file_is_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("train:\n  lr: 0.1\n" + "# padding\n" * 120_000)
    with pytest.raises(ConfigError, match=r"big\.yaml: the config file is larger than "
                                          r"1,048,576 bytes"):
        load_config(big)
    deep = tmp_path / "deep.yaml"
    deep.write_text("model:\n  knn_weights: " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(ConfigError, match=r"deep\.yaml: refused, nested deeper than 64"):
        load_config(deep)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"train:\n  lr: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)


@pytest.mark.parametrize(("text", "line", "first", "key"), [
    ("train:\n  lr: 0.1\ntrain:\n  epochs: 3\n", 3, 1, "train"),
    ("train:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n", 4, 2, "lr"),
    ("model:\n  name: sea\n  separation:\n    q_steps: 1\n    q_steps: 2\n", 5, 4, "q_steps"),
])
def test_duplicate_keys_and_sections_are_errors_naming_the_line(tmp_path, text, line, first,
                                                                key):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"dup\.yaml, line {line}: key '{key}' appears a "
                                          rf"second time \(first on line {first}\)"):
        load_config(path)


def test_error_messages_quote_only_a_short_prefix_of_a_value(tmp_path):
    for value in ("x" * 100_000, "[" + ", ".join(["1"] * 50_000) + "]"):
        path = tmp_path / "long.yaml"
        path.write_text(f"train:\n  lr: {value}\n")
        with pytest.raises(ConfigError, match=r"config key 'train\.lr'") as err:
            load_config(path)
        assert len(str(err.value)) < 400, len(str(err.value))
    with pytest.raises(ConfigError) as err:
        load_config(None, ["train.lr=" + "y" * 100_000])
    assert len(str(err.value)) < 400


def test_an_empty_override_is_an_error():
    with pytest.raises(ConfigError, match=r"override 'train.lr=': no value after '='"):
        load_config(None, ["train.lr="])
    assert load_config(None, ["train.lr=null"]).train.lr is not None  # null: the default


@pytest.mark.parametrize(("override", "message"), [
    ("model.separation.distancing=clubb",
     r"unknown distancing estimator 'clubb' \(did you mean 'club'\?\)"),
    ("model.separation.alignment=infonse",
     r"unknown alignment estimator 'infonse' \(did you mean 'infonce'\?\)"),
    ("model.name=saa", r"unknown model 'saa' \(did you mean 'sea'\?\)"),
])
def test_registry_names_are_checked_when_the_config_is_read(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_a_model_that_cannot_fit_is_refused_before_allocation(tmp_path):
    from searec.runs import train

    cfg = load_config(None, ["model.embedding_dim=1000000000", "train.epochs=1",
                             "data.synthetic.n_users=50", "data.synthetic.n_items=30"])
    with pytest.raises(ConfigError, match=r"config key 'model.embedding_dim' "
                                          r"\(1,000,000,000\): model 'sea' on 50 users and "
                                          r"30 items needs about [\d,.]+ GiB to train") as err:
        train(cfg, tmp_path / "run", log=lambda _m: None)
    assert "1,000,000,000 x 256; about" in str(err.value)
    assert not (tmp_path / "run").exists()


def test_the_memory_check_changes_no_random_draw(tmp_path):
    """The estimate builds the model once on the meta device; the real build that
    follows initialises exactly as without it."""
    import torch

    from searec.data.load import load_dataset
    from searec.runs import build_model, check_model_memory
    from searec.training.trainer import seed_everything

    cfg = load_config(None, ["data.synthetic.n_users=50", "data.synthetic.n_items=30"])
    dataset = load_dataset(cfg.data)
    seed_everything(1)
    plain = build_model(cfg, dataset).state_dict()
    seed_everything(1)
    check_model_memory(cfg, dataset, torch.device("cpu"), training=True)
    checked = build_model(cfg, dataset).state_dict()
    assert all(torch.equal(plain[k], checked[k]) for k in plain)


def test_cold_start_section_merges_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: vbpr\n  cold_start:\n    method: mapper\n")
    cfg = load_config(path, ["model.cold_start.steps=7"])
    section = cfg.model_params["cold_start"]
    assert section["method"] == "mapper" and section["steps"] == 7
