"""The contract every registered model meets: each check of searec.testing.models, run
for each model with its defaults and, where it takes one, with SEA's separation."""

import pytest

from searec.models import registry
from searec.testing import MODEL_CHECKS, Built, NotApplicable, check_model


def _variants() -> list[tuple[str, dict]]:
    """Every registered model with its defaults, and with SEA's separation where it can."""
    out = []
    for name, cls in sorted(registry().items()):
        out.append((name, {}))
        if "separation" in cls.Params.model_fields:
            out.append((name, {"separation": {"distancing": {"name": "club", "q_steps": 2}}}))
    return out


VARIANTS = _variants()


@pytest.mark.parametrize("check", MODEL_CHECKS, ids=[c.__name__ for c in MODEL_CHECKS])
@pytest.mark.parametrize(("name", "params"), VARIANTS,
                         ids=[n + ("+sea" if p else "") for n, p in VARIANTS])
def test_model_contract(name, params, check, tiny, tmp_path):
    try:
        check(Built.of(name, params, tiny, tmp_path))
    except NotApplicable as why:
        pytest.skip(str(why))


def test_check_model_fails_a_broken_model(tiny, tmp_path, monkeypatch):
    """The suite can fail: a model whose recommendations include training items is caught."""
    from searec.models import get_model_class
    from searec.models.base import Recommender

    def ignores_seen_items(self, users, k=10, user_items=None, batch_size=4096):
        return Recommender.recommend(self, users, k, None, batch_size)

    monkeypatch.setattr(get_model_class("bpr"), "recommend", ignores_seen_items)
    with pytest.raises(AssertionError):
        check_model("bpr", {}, tiny, tmp_path)
