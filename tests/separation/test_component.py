"""SEA's separation component: gradient flow, q's fitting, pair directions, any number of
modalities. (Every registered estimator on Gaussians with known MI:
tests/contract/test_estimator_contract.py.)"""

import math
import warnings

import pytest
import torch

from searec.errors import ConfigError
from searec.optim import fit_auxiliary
from searec.separation import Separation, SeparationParams
from searec.separation.alignment import alignment_registry, infonce_loss, solosim_loss
from searec.separation.distancing import (
    GaussianQ,
    club_sample_bound,
    neg_l2,
    normalised_hsic,
)


def test_contrastive_bound_never_exceeds_log_n_even_for_identical_views():
    z = torch.randn(64, 8)
    for cls in alignment_registry().values():
        sharp = cls(cls.Params(name=cls.name, temperature=0.01))
        assert float(sharp.lower_bound(z, z)) <= math.log(64) + 1e-5
    # the estimators are the plain losses, at their default temperature 0.2
    torch.testing.assert_close(alignment_registry()["solosim"]()(z, z * 2),
                               solosim_loss(z, z * 2, 0.2))
    torch.testing.assert_close(alignment_registry()["infonce"]()(z, z * 2),
                               infonce_loss(z, z * 2, 0.2))


def test_neg_l2_is_bounded_where_raw_mse_runs_away():
    torch.manual_seed(0)
    a = torch.randn(128, 8, requires_grad=True)
    b = torch.randn(128, 8, requires_grad=True)
    opt = torch.optim.Adam([a, b], lr=0.1)
    for _ in range(200):
        loss = neg_l2(a, b)
        assert -1.0 - 1e-6 <= float(loss.detach()) <= 0.0
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(neg_l2(a.detach() * 1e6, b.detach())) >= -1.0 - 1e-6
    # The reference's unnormalised form, -MSE, has no floor: it decreases without bound.
    raw = -torch.nn.functional.mse_loss(a.detach() * 1e3, b.detach())
    assert float(raw) < -1e3


def test_hsic_sees_nonlinear_dependence_and_ignores_scale():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 4, generator=g)
    independent = torch.randn(1024, 4, generator=g)
    squared = x**2 + 0.1 * torch.randn(1024, 4, generator=g)  # uncorrelated with x
    correlation = torch.corrcoef(torch.cat([x, squared], dim=1).T)[:4, 4:]
    assert float(correlation.abs().max()) < 0.15  # a linear decorrelation sees ~nothing
    low, high = float(normalised_hsic(x, independent)), float(normalised_hsic(x, squared))
    assert abs(low) < 0.01 and high > 0.1
    # unbiased: independent parts of high dimension read about 0 at any batch size (the
    # plain biased estimate reads 0.27 at 64 dimensions and 512 rows)
    wide = torch.randn(4096, 64, generator=g), torch.randn(4096, 64, generator=g)
    for n in (256, 512, 4096):
        assert abs(float(normalised_hsic(wide[0][:n], wide[1][:n]))) < 0.02, n
    assert float(normalised_hsic(x, x)) == pytest.approx(1.0, abs=1e-5)
    # the median-heuristic bandwidth follows the scale: the value does not
    torch.testing.assert_close(normalised_hsic(1e3 * x, squared * 1e-3),
                               normalised_hsic(x, squared), rtol=1e-4, atol=1e-5)


def _hsic_by_autograd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The normalised HSIC as the plain composition (Gaussian kernels with 2 s^2 = 2 x the
    total variance, held constant; Song et al.'s unbiased estimator), differentiated by
    autograd."""
    def kernel(z: torch.Tensor) -> torch.Tensor:
        sq = (z * z).sum(dim=1)
        dist = (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_min(0.0)
        with torch.no_grad():
            mean_sq = 2.0 * z.var(dim=0, unbiased=False).sum()
        return torch.exp(-dist / mean_sq.clamp_min(1e-12))

    def unbiased(k: torch.Tensor, l_: torch.Tensor) -> torch.Tensor:
        n = k.shape[0]
        rk, rl = k.sum(dim=1) - 1.0, l_.sum(dim=1) - 1.0  # zero diagonals, on the sums
        trace = (k * l_).sum() - n
        return (trace + rk.sum() * rl.sum() / ((n - 1) * (n - 2))
                - 2.0 / (n - 2) * (rk * rl).sum()) / (n * (n - 3))

    k, l_ = kernel(x), kernel(y)
    norm = (unbiased(k, k) * unbiased(l_, l_)).clamp_min(1e-24).sqrt()
    return (unbiased(k, l_) / norm).clamp(-1.0, 1.0)


@pytest.mark.parametrize("case", ["independent", "dependent", "identical", "one_row_twice"])
def test_hsic_backward_matches_autograd_of_the_composition(case):
    """The hand-written backward gives autograd's gradient of the composition, in float64:
    inside the clamps, at the clamp (identical parts: value 1) and with repeated rows (zero
    distances off the diagonal)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = {"independent": torch.randn(40, 5, generator=g, dtype=torch.float64),
         "dependent": torch.cat([x[:, :3] ** 2, torch.tanh(x[:, 3:])], dim=1)
         + 0.3 * torch.randn(40, 6, generator=g, dtype=torch.float64),
         "identical": x.clone(),
         "one_row_twice": x[:, :4].clone()}[case]
    if case == "one_row_twice":
        x[7] = x[2]
        y[7] = y[2]
    weight = torch.tensor(0.7, dtype=torch.float64)  # an upstream gradient other than 1
    values, grads = [], []
    for fn in (normalised_hsic, _hsic_by_autograd):
        xa, ya = x.clone().requires_grad_(), y.clone().requires_grad_()
        value = fn(xa, ya)
        (weight * value).backward()
        values.append(value.detach())
        grads.append((xa.grad, ya.grad))
    torch.testing.assert_close(values[0], values[1], rtol=1e-10, atol=1e-12)
    for ours, reference in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-8, atol=1e-12)



def test_hsic_of_a_constant_part_is_zero_with_finite_gradients():
    """A constant part has a kernel of ones and an HSIC of 0: the norm's floor holds, the
    value is about 0 and the gradient finite (both computations then only amplify
    rounding, so they are not compared)."""
    x = torch.randn(40, 6, dtype=torch.float64, requires_grad=True)
    value = normalised_hsic(x, torch.ones(40, 3, dtype=torch.float64))
    value.backward()
    assert abs(float(value)) < 1e-3 and torch.isfinite(x.grad).all()


def test_hsic_in_bf16_autocast_is_computed_in_float32_and_returns_bf16_gradients():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(256, 16, generator=g)
    y = torch.tanh(x) + 0.5 * torch.randn(256, 16, generator=g)
    reference = normalised_hsic(x, y)
    xb, yb = x.bfloat16().requires_grad_(), y.bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = normalised_hsic(xb, yb)
    value.backward()
    assert value.dtype == torch.bfloat16 and xb.grad.dtype == torch.bfloat16
    # the inputs' own rounding to bf16 is all that differs from float32
    torch.testing.assert_close(value.float(), reference, rtol=0.02, atol=0.01)


def test_hsic_acts_on_the_parts_themselves_and_lowers_their_dependence():
    """No transforms, nothing to fit; descending it makes dependent parts less dependent
    (the gradient reaches both parts at every step: there is no clamp)."""
    sep = _component(1, distancing="hsic", alignment="none")
    assert len(sep.distancing.generic_tf) == 0 and not list(sep.distancing.parameters())
    assert sep.objectives() == []
    torch.manual_seed(0)
    generic = torch.randn(256, 3)
    unique = (generic @ torch.randn(3, 3)).tanh() + 0.1 * torch.randn(256, 3)
    generic.requires_grad_()
    unique.requires_grad_()
    opt = torch.optim.Adam([generic, unique], lr=0.05)
    values = []
    for _ in range(60):
        value = sep.distancing({"m0": generic}, {"m0": unique})[0]["m0"]
        values.append(float(value.detach()))
        opt.zero_grad()
        value.backward()
        assert generic.grad.abs().sum() > 0 and unique.grad.abs().sum() > 0
        opt.step()
    assert values[0] > 0.2 and values[-1] < values[0] / 3


def _component(n_modalities: int = 2, distancing: str = "club", **kw) -> Separation:
    """A component over ``n_modalities``; ``q_*`` keywords go to a variational
    estimator's section (3 q steps unless given)."""
    dims = {f"m{i}": 6 + i for i in range(n_modalities)}
    section = {"name": distancing, **{k: v for k, v in kw.items() if k.startswith("q_")}}
    if distancing in ("club", "l1out"):
        section.setdefault("q_steps", 3)
    rest = {k: v for k, v in kw.items() if not k.startswith("q_")}
    return Separation(dims, SeparationParams(distancing=section, **rest))


def _features(sep: Separation, n: int = 40) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {m: torch.randn(n, s.proj.in_features, generator=g) for m, s in sep.split.items()}


def _grads(sep: Separation, loss: torch.Tensor) -> dict[str, torch.Tensor | None]:
    sep.zero_grad(set_to_none=True)
    loss.backward()
    return {name: p.grad for name, p in sep.named_parameters()}


def _fit(sep: Separation) -> dict[str, float | None]:
    """Run each auxiliary objective's steps with a fresh Adam, as the trainer would."""
    return {o.name: fit_auxiliary(o, torch.optim.Adam(o.parameters, lr=o.lr))
            for o in sep.objectives()}


def _nonzero(g: torch.Tensor | None) -> bool:
    return g is not None and bool(g.abs().sum() > 0)


def test_alignment_gradient_reaches_generic_split_and_heads_only():
    torch.manual_seed(0)
    sep = _component()
    out = sep.losses(sep.project(_features(sep)))
    grads = _grads(sep, out.parts["align"])
    for m, split in sep.split.items():
        w = grads[f"split.{m}.proj.weight"]
        assert _nonzero(w[: split.generic_dim])
        assert not _nonzero(w[split.generic_dim :])  # unique rows untouched by alignment
    for name, g in grads.items():
        if name.startswith("alignment.heads"):
            assert g is not None
        if name.startswith("distancing."):
            assert not _nonzero(g), name


@pytest.mark.parametrize("method", ["club", "l1out"])
def test_distancing_gradient_reaches_split_and_transforms_never_q(method):
    torch.manual_seed(0)
    sep = _component(distancing=method)
    out = sep.losses(sep.project(_features(sep)))
    grads = _grads(sep, out.parts["distance"])
    for name, g in grads.items():
        if name.startswith(("distancing.generic_tf", "distancing.unique_tf", "split.")):
            assert _nonzero(g), name
        elif name.startswith(("distancing.estimator.q", "alignment.")):
            assert not _nonzero(g), name


def test_q_update_moves_only_q():
    torch.manual_seed(0)
    sep = _component()
    sep.losses(sep.project(_features(sep)))
    before = {n: p.detach().clone() for n, p in sep.named_parameters()}
    logged = _fit(sep)
    assert "q_nll" in logged and math.isfinite(logged["q_nll"])
    for name, p in sep.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        assert changed == name.startswith("distancing.estimator.q."), name


def test_one_q_per_modality_trained_on_its_own_pairs():
    sep = _component(3)
    assert sep.distancing.estimator.q.copies == 3
    sep.losses(sep.project(_features(sep)))
    pairs = sep.distancing.estimator.training_pairs()
    assert len(pairs) == 3


def test_reference_mode_shares_q_and_trains_on_cross_modal_pairs():
    sep = _component(2, q_pairs="reference")
    assert sep.distancing.estimator.q.copies == 1
    p = sep.project(_features(sep))
    sep.losses(p)
    pairs = sep.distancing.estimator.training_pairs()
    tf = sep.distancing
    g0, u0 = sep.split["m0"].parts(p["m0"])
    g1, _ = sep.split["m1"].parts(p["m1"])
    assert len(pairs) == 2
    torch.testing.assert_close(pairs[0][0], tf.generic_tf["m0"](g0).detach())
    torch.testing.assert_close(pairs[0][1], tf.generic_tf["m1"](g1).detach())
    assert not torch.allclose(pairs[1][0], tf.generic_tf["m0"](g0).detach())
    assert u0.shape[1] == sep.split["m0"].unique_dim


def test_pair_order_sets_the_anchor_and_the_direction_of_the_shared_q():
    """The authors' code calls Solosimloss(z_text, z_image) (text anchors, softmax over
    images) and fits its shared q as q(image | text): pair_order [text, image] gives both."""
    torch.manual_seed(0)
    sep = Separation({"image": 6, "text": 5},
                     SeparationParams(distancing={"name": "club", "q_steps": 1,
                                                 "q_pairs": "reference"},
                                      pair_order=["text", "image"]))
    p = sep.project({"image": torch.randn(30, 6), "text": torch.randn(30, 5)})
    sep.eval()  # batch norm on running statistics: the heads give the same output twice
    out = sep.losses(p)
    generic = {m: sep.split[m].parts(x)[0] for m, x in p.items()}
    z = {m: sep.alignment.heads[m](g) for m, g in generic.items()}
    torch.testing.assert_close(out.parts["align"], solosim_loss(z["text"], z["image"], 0.2))
    assert not torch.allclose(out.parts["align"], solosim_loss(z["image"], z["text"], 0.2))
    (x, y), _ = sep.distancing.estimator.training_pairs()
    tf = sep.distancing.generic_tf
    torch.testing.assert_close(x, tf["text"](generic["text"]).detach())  # q(image | text)
    torch.testing.assert_close(y, tf["image"](generic["image"]).detach())
    with pytest.raises(ConfigError, match="pair_order"):
        Separation({"image": 6, "text": 5}, SeparationParams(pair_order=["text"]))


def test_a_shared_q_needs_two_modalities():
    with pytest.raises(ConfigError, match=r"q_pairs.*at least two"):
        Separation({"image": 6}, SeparationParams(
            distancing={"name": "club", "q_pairs": "reference"}, alignment="none"))


def test_single_modality_turns_alignment_off_with_a_warning():
    with pytest.warns(UserWarning, match="alignment across modalities is off"):
        sep = _component(1)
    out = sep.losses(sep.project(_features(sep)))
    assert "align" not in out.parts and "distance" in out.parts


def test_three_modalities_align_every_pair():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sep = _component(3)
    assert sep.alignment.pairs == [("m0", "m1"), ("m0", "m2"), ("m1", "m2")]
    out = sep.losses(sep.project(_features(sep)))
    assert set(out.parts) == {"align", "distance", "distance_m0", "distance_m1", "distance_m2"}
    assert set(out.weighted) == {"align", "distance"}


@pytest.mark.parametrize("alignment", ["solosim", "infonce", "none"])
@pytest.mark.parametrize("distancing", ["club", "l1out", "neg_l2", "hsic", "none"])
def test_every_combination_runs(alignment, distancing):
    sep = _component(2, alignment=alignment, distancing=distancing)
    out = sep.losses(sep.project(_features(sep)))
    assert ("align" in out.parts) == (alignment != "none")
    assert ("distance" in out.parts) == (distancing != "none")
    assert torch.isfinite(out.total)
    assert ("q_nll" in _fit(sep)) == (distancing in ("club", "l1out"))


def test_split_ratio_and_projection_width():
    sep = _component(2, split_ratio=0.25, proj_dim=8)
    assert sep.split["m0"].generic_dim == 2 and sep.split["m0"].unique_dim == 6
    assert sep.out_dims() == {"m0": 8, "m1": 8}


def test_pairwise_log_density_equals_the_direct_formula():
    from searec.separation.distancing import pairwise_log_density

    g = torch.Generator().manual_seed(0)
    mu, logvar, y = (torch.randn(7, 5, generator=g, dtype=torch.float64) for _ in range(3))
    direct = (-((y[:, None, :] - mu[None, :, :]) ** 2) / logvar.exp()[None] / 2.0
              - logvar[None] / 2.0).sum(dim=2)
    torch.testing.assert_close(pairwise_log_density(mu, logvar, y), direct)


def test_stacked_q_copies_equal_separate_networks():
    """All copies at once (batched products) give what each copy gives on its own, and
    each copy starts as the nn.Linear layers it replaces would (same seed, same order)."""
    torch.manual_seed(3)
    q = GaussianQ(5, 4, hidden=6, copies=3)
    torch.manual_seed(3)
    linears = [torch.nn.Linear(i, o) for _ in range(3) for i, o in ((5, 6), (6, 4)) * 2]
    for c in range(3):
        for j, name in enumerate(("mu_in", "mu_out", "logvar_in", "logvar_out")):
            lin = linears[4 * c + j]
            assert torch.equal(getattr(q, f"{name}_weight")[c], lin.weight.detach())
            assert torch.equal(getattr(q, f"{name}_bias")[c], lin.bias.detach())
    x = torch.randn(3, 20, 5)
    mu, logvar = q(x)
    for c in range(3):
        mu_c, logvar_c = q(x[c], copy=c)
        torch.testing.assert_close(mu[c], mu_c)
        torch.testing.assert_close(logvar[c], logvar_c)
    with pytest.raises(ValueError, match="copy="):
        q(x[0])
    with pytest.raises(ValueError, match="3 stacked"):
        q(x[:2])


def test_stacked_club_bound_equals_per_copy_bounds():
    torch.manual_seed(0)
    q = GaussianQ(4, 4, hidden=8, copies=2)
    x, y = torch.randn(2, 30, 4), torch.randn(2, 30, 4)
    perm = torch.randperm(30)
    both = club_sample_bound(q, x, y, perm=perm, clamp=False)
    for c in range(2):
        torch.testing.assert_close(both[c], club_sample_bound(q, x[c], y[c], perm=perm,
                                                              clamp=False, copy=c))


def test_each_modality_q_learns_only_from_its_own_pairs():
    torch.manual_seed(0)
    sep = _component(2)
    feats = _features(sep)
    sep.losses(sep.project(feats))
    estimator = sep.distancing.estimator
    pending = dict(estimator._pending)
    state = {k: v.clone() for k, v in estimator.q.state_dict().items()}
    _fit(sep)
    after = {k: v.clone() for k, v in estimator.q.state_dict().items()}
    # Same start, modality m1's pairs replaced: copy 0 (m0) must move exactly as before.
    estimator.q.load_state_dict(state)
    estimator._pending = {"m0": pending["m0"], "m1": tuple(t + 1.0 for t in pending["m1"])}
    _fit(sep)
    for name, value in estimator.q.state_dict().items():
        assert torch.equal(value[0], after[name][0]), name
        assert not torch.equal(value[1], after[name][1]), name
