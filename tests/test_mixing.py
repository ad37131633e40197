"""The mixing engine: exact tensors for given draws, properties of random draws."""

import math

import numpy as np
import pytest
import torch
from conftest import mixed_by_hand
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from hf_mixup.mixing import (
    MixDraw,
    Mixer,
    box_mask,
    derive_seed,
    mix_batch,
    mix_inputs,
    mix_targets,
    sample_beta,
)

# -- exact tensors ---------------------------------------------------------------------------------


def test_mix_inputs_exact_per_example_weights():
    x = torch.tensor([[0.0, 0.0], [4.0, 8.0], [8.0, 4.0]])
    draw = MixDraw(lam=torch.tensor([0.25, 0.5, 1.0]), index=torch.tensor([1, 2, 0]))
    out = mix_inputs(x, draw)
    expected = torch.tensor([[3.0, 6.0], [6.0, 6.0], [8.0, 4.0]])
    assert torch.equal(out, expected)


def test_mix_inputs_exact_batch_wide_lambda():
    x = torch.arange(12, dtype=torch.float32).view(3, 4)
    draw = MixDraw(lam=torch.full((3,), 0.75), index=torch.tensor([2, 0, 1]), batch_wide=True)
    out = mix_inputs(x, draw)
    expected = torch.tensor([[2.0, 3.0, 4.0, 5.0], [3.0, 4.0, 5.0, 6.0], [7.0, 8.0, 9.0, 10.0]])
    assert torch.equal(out, expected)


def test_mix_targets_class_ids_exact():
    draw = MixDraw(lam=torch.tensor([0.25, 0.5, 1.0]), index=torch.tensor([1, 2, 0]))
    soft = mix_targets(torch.tensor([0, 1, 2]), draw, num_classes=3)
    expected = torch.tensor([[0.25, 0.75, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    assert torch.equal(soft, expected)


def test_mix_targets_smooth_then_mix_exact():
    draw = MixDraw(lam=torch.tensor([0.5, 0.5]), index=torch.tensor([1, 0]))
    soft = mix_targets(torch.tensor([0, 1]), draw, num_classes=2, label_smoothing=0.5)
    # smoothed one-hots [0.75, 0.25] and [0.25, 0.75], mixed half and half
    assert torch.equal(soft, torch.full((2, 2), 0.5))


def test_mix_targets_regression_and_multilabel_linear():
    draw = MixDraw(lam=torch.tensor([0.25, 0.5]), index=torch.tensor([1, 0]))
    assert torch.equal(mix_targets(torch.tensor([1.0, 5.0]), draw), torch.tensor([4.0, 3.0]))
    multi = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    assert torch.equal(mix_targets(multi, draw), torch.tensor([[0.25, 0.75, 1.0], [0.5, 0.5, 1.0]]))


def test_cutmix_batch_wide_box_exact():
    x = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
    boxes = torch.tensor([[1, 3, 0, 2]]).expand(2, 4)
    draw = MixDraw(
        lam=torch.full((2,), 0.75), index=torch.tensor([1, 0]), use_cutmix=torch.ones(2, dtype=torch.bool),
        boxes=boxes, batch_wide=True,
    )
    out = mix_inputs(x, draw)
    expected0 = torch.zeros(1, 4, 4)
    expected0[:, 1:3, 0:2] = 1.0
    assert torch.equal(out[0], expected0)
    assert torch.equal(out[1], 1.0 - expected0)


def test_cutmix_and_mixup_per_example_exact():
    x = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 4.0), torch.full((1, 2, 2), 8.0)])
    draw = MixDraw(
        lam=torch.tensor([0.75, 0.25, 1.0]),
        index=torch.tensor([1, 2, 0]),
        use_cutmix=torch.tensor([True, False, False]),
        boxes=torch.tensor([[0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]),
    )
    out = mix_inputs(x, draw)
    assert torch.equal(out[0], torch.tensor([[[4.0, 0.0], [0.0, 0.0]]]))
    assert torch.equal(out[1], torch.full((1, 2, 2), 7.0))
    assert torch.equal(out[2], x[2])


def test_mix_batch_mixes_float_inputs_and_labels_only():
    batch = {
        "pixel_values": torch.tensor([[0.0], [4.0]]),
        "attention_mask": torch.tensor([[1], [0]]),
        "labels": torch.tensor([0, 1]),
    }
    draw = MixDraw(lam=torch.tensor([0.25, 0.25]), index=torch.tensor([1, 0]))
    out = mix_batch(batch, draw, num_classes=2)
    assert torch.equal(out["pixel_values"], torch.tensor([[3.0], [1.0]]))
    assert torch.equal(out["attention_mask"], batch["attention_mask"])
    assert torch.equal(out["labels"], torch.tensor([[0.25, 0.75], [0.75, 0.25]]))
    assert torch.equal(batch["labels"], torch.tensor([0, 1]))  # caller's batch untouched


# -- refusals --------------------------------------------------------------------------------------


def test_integer_inputs_are_refused_with_a_clear_message():
    draw = MixDraw(lam=torch.tensor([0.5, 0.5]), index=torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="floating point"):
        mix_inputs(torch.tensor([[1, 2], [3, 4]]), draw)
    with pytest.raises(ValueError, match="no floating-point input"):
        mix_batch({"input_ids": torch.tensor([[1, 2], [3, 4]]), "labels": torch.tensor([0, 1])}, draw, num_classes=2)


def test_batch_axis_mismatch_is_refused():
    draw = MixDraw(lam=torch.tensor([0.5, 0.5]), index=torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="batch axis"):
        mix_inputs(torch.zeros(3, 2), draw)


def test_cutmix_needs_spatial_axes():
    mixer = Mixer(mixup_alpha=0.0, cutmix_alpha=1.0, seed=0)
    with pytest.raises(ValueError, match="spatial"):
        mixer.draw(4, None)
    draw = mixer.draw(4, (4, 4))
    with pytest.raises(ValueError, match="height, width"):
        mix_inputs(torch.zeros(4, 16), draw)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mixup_alpha": -1.0}, "mixup_alpha"),
        ({"mixup_alpha": float("nan")}, "mixup_alpha"),
        ({"cutmix_alpha": -0.5}, "cutmix_alpha"),
        ({"prob": 1.5}, "mixup_prob"),
        ({"switch_prob": -0.1}, "mixup_switch_prob"),
        ({"mode": "row"}, "batch, pair, elem"),
        ({"cutmix_minmax": (0.8, 0.2)}, "cutmix_minmax"),
    ],
)
def test_mixer_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Mixer(**kwargs)


# -- draws -----------------------------------------------------------------------------------------


def test_alpha_zero_is_erm_and_returns_the_batch_itself():
    mixer = Mixer(mixup_alpha=0.0, seed=0)
    assert not mixer.enabled
    x = torch.randn(5, 3)
    draw = mixer.draw(5)
    assert draw.is_identity
    assert mix_inputs(x, draw) is x


def test_batch_of_one_is_a_no_op():
    mixer = Mixer(mixup_alpha=1.0, seed=0)
    x = torch.randn(1, 3, 4, 4)
    assert mix_inputs(x, mixer.draw(1, (4, 4))) is x


def test_draws_are_reproducible_and_state_round_trips():
    a, b = Mixer(seed=7, mode="elem"), Mixer(seed=7, mode="elem")
    first = a.draw(16)
    assert torch.equal(first.lam, b.draw(16).lam)
    state = a.state_dict()
    nxt = a.draw(16)
    b.load_state_dict(state)
    again = b.draw(16)
    assert torch.equal(nxt.lam, again.lam) and torch.equal(nxt.index, again.index)


def test_draws_do_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    Mixer(seed=0, cutmix_alpha=1.0, mode="elem").draw(32, (8, 8))
    assert torch.equal(torch.rand(3), expected)


def test_derive_seed_separates_ranks_and_seeds():
    seeds = {derive_seed(s, r) for s in range(50) for r in range(8)}
    assert len(seeds) == 400
    assert derive_seed(1, 0) != derive_seed(0, 1)


def test_pair_mode_pairs_partners_with_one_lambda():
    draw = Mixer(mode="pair", seed=3).draw(9)
    index, lam = draw.index, draw.lam
    assert torch.equal(index[index], torch.arange(9))  # an involution
    assert torch.equal(lam, lam[index])  # both members share lam
    assert int((index == torch.arange(9)).sum()) == 1  # odd batch: one example left alone...
    alone = int((index == torch.arange(9)).nonzero())
    assert lam[alone] == 1.0  # ...and unmixed


def test_batch_mode_has_one_lambda_and_a_permutation():
    draw = Mixer(mode="batch", seed=1).draw(7)
    assert torch.all(draw.lam == draw.lam[0])
    assert torch.equal(draw.index.sort().values, torch.arange(7))


def test_mixup_prob_per_example():
    draw = Mixer(mode="elem", prob=0.3, seed=0).draw(4000)
    share_unmixed = float((draw.lam == 1.0).double().mean())
    assert abs(share_unmixed - 0.7) < 0.03


def test_switch_prob_between_mixup_and_cutmix():
    draw = Mixer(mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=0.25, mode="elem", seed=0).draw(4000, (8, 8))
    assert abs(float(draw.use_cutmix.double().mean()) - 0.25) < 0.03


def test_cutmix_lambda_is_the_area_left_to_the_example():
    draw = Mixer(mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", seed=5).draw(64, (10, 12))
    mask = box_mask(draw, 10, 12)
    area_kept = 1.0 - mask.flatten(1).float().mean(1)
    assert torch.allclose(draw.lam, area_kept)
    x = torch.randn(64, 3, 10, 12)
    out = mix_inputs(x, draw)
    partner = x[draw.index]
    assert torch.equal(torch.where(mask, partner, x), out)


def test_cutmix_minmax_box_sides():
    draw = Mixer(mixup_alpha=0.0, cutmix_minmax=(0.4, 0.6), mode="elem", seed=2).draw(500, (20, 20))
    y0, y1, x0, x1 = draw.boxes.unbind(1)
    assert int((y1 - y0).min()) >= 8 and int((y1 - y0).max()) <= 12
    assert int((x1 - x0).min()) >= 8 and int((x1 - x0).max()) <= 12
    assert bool((y1 <= 20).all() and (x1 <= 20).all() and (y0 >= 0).all())


@pytest.mark.parametrize("alpha", [0.1, 0.2, 0.4, 1.0, 2.0, 4.0])
def test_beta_sampler_matches_the_beta_distribution(alpha):
    samples = sample_beta(alpha, 20000, torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    assert stats.kstest(samples, stats.beta(alpha, alpha).cdf).pvalue > 1e-3


@pytest.mark.parametrize("alpha", [0.1, 0.2, 0.4, 1.0, 8.0, 32.0])
def test_the_scalar_beta_sampler_of_batch_draws_matches_the_beta_distribution(alpha):
    """One or two samples at a time (the one lam of a batch-wide draw) take the Python-float path."""
    generator = torch.Generator().manual_seed(0)
    samples = torch.cat([sample_beta(alpha, 2, generator, dtype=torch.float64) for _ in range(10000)]).numpy()
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    assert stats.kstest(samples, stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    batch_lams = [float(Mixer(mixup_alpha=alpha, seed=s).draw(4).lam[0]) for s in range(3000)]
    reference = stats.beta(alpha, alpha).rvs(size=3000, random_state=0).astype(np.float32)
    assert stats.ks_2samp(batch_lams, reference).pvalue > 1e-3


@pytest.mark.parametrize("alpha", [0.2, 1.0, 4.0])
def test_mixup_weights_of_a_mixer_follow_beta_alpha_alpha(alpha):
    """A mixer's float32 weights against float32 samples of scipy's Beta(alpha, alpha): a two-sample test,
    since for small alphas float32 rounds a share of the weights to exactly 1.0 (ties a one-sample test
    would count as a deviation)."""
    lam = Mixer(mixup_alpha=alpha, mode="elem", seed=0).draw(20000).lam.numpy()
    reference = stats.beta(alpha, alpha).rvs(20000, random_state=np.random.default_rng(0)).astype(np.float32)
    assert stats.ks_2samp(lam, reference).pvalue > 1e-3
    # and the test tells a neighbouring distribution apart at this sample size
    skewed = stats.beta(alpha, 1.5 * alpha).rvs(20000, random_state=np.random.default_rng(0)).astype(np.float32)
    assert stats.ks_2samp(lam, skewed).pvalue < 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_dtype_kept_and_caller_tensor_untouched(dtype, mode):
    x = torch.randn(6, 3, 8, 8).to(dtype)
    before = x.clone()
    mixer = Mixer(mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, seed=0)
    for _ in range(4):
        out = mix_inputs(x, mixer.draw(6, (8, 8)))
        assert out.dtype == dtype and out.shape == x.shape
    assert torch.equal(x, before)


# -- properties ------------------------------------------------------------------------------------

settings.register_profile("engine", deadline=None, max_examples=60)
settings.load_profile("engine")


@given(
    batch=st.integers(1, 12),
    alpha=st.sampled_from([0.1, 0.4, 1.0, 4.0]),
    mode=st.sampled_from(["batch", "pair", "elem"]),
    prob=st.sampled_from([0.0, 0.5, 1.0]),
    seed=st.integers(0, 2**31),
    shape=st.sampled_from([(3,), (2, 5), (1, 4, 4), (2, 3, 6, 5)]),
)
def test_mixup_properties(batch, alpha, mode, prob, seed, shape):
    mixer = Mixer(mixup_alpha=alpha, mode=mode, prob=prob, seed=seed)
    draw = mixer.draw(batch)
    assert bool(((draw.lam >= 0) & (draw.lam <= 1)).all())
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed % 1000))
    out = mix_inputs(x, draw)
    partner = x[draw.index]
    lo, hi = torch.minimum(x, partner), torch.maximum(x, partner)
    tol = 1e-5
    assert bool(((out >= lo - tol) & (out <= hi + tol)).all())  # on the segment between the sources
    expected = draw.lam.view(-1, *[1] * len(shape)) * x + (1 - draw.lam.view(-1, *[1] * len(shape))) * partner
    assert torch.allclose(out, expected, atol=1e-5)
    targets = mix_targets(torch.randint(0, 7, (batch,), generator=torch.Generator().manual_seed(seed % 997)), draw, 7)
    assert torch.allclose(targets.sum(-1), torch.ones(batch))
    assert bool((targets >= 0).all())


@given(
    batch=st.integers(1, 10),
    mode=st.sampled_from(["batch", "pair", "elem"]),
    seed=st.integers(0, 2**31),
    minmax=st.sampled_from([None, (0.2, 0.8)]),
)
def test_cutmix_properties(batch, mode, seed, minmax):
    mixer = Mixer(mixup_alpha=1.0, cutmix_alpha=1.0, cutmix_minmax=minmax, mode=mode, seed=seed)
    draw = mixer.draw(batch, (6, 7))
    assert bool(((draw.lam >= 0) & (draw.lam <= 1)).all())
    x = torch.randn(batch, 2, 6, 7)
    out = mix_inputs(x, draw)
    partner = x[draw.index]
    # every pixel is its own value, its partner's, or a convex combination of both
    lo, hi = torch.minimum(x, partner), torch.maximum(x, partner)
    assert bool(((out >= lo - 1e-5) & (out <= hi + 1e-5)).all())
    targets = mix_targets(torch.randint(0, 4, (batch,)), draw, 4)
    assert torch.allclose(targets.sum(-1), torch.ones(batch))


@given(batch=st.integers(1, 10), shape=st.sampled_from([(3,), (1, 4, 4)]), seed=st.integers(0, 100))
def test_alpha_zero_returns_the_batch_unchanged(batch, shape, seed):
    x = torch.randn(batch, *shape)
    mixer = Mixer(mixup_alpha=0.0, cutmix_alpha=0.0, seed=seed)
    out = mix_inputs(x, mixer.draw(batch, shape[-2:] if len(shape) == 3 else None))
    assert out is x
    labels = torch.randint(0, 3, (batch,))
    assert torch.equal(mix_targets(labels, mixer.draw(batch), 3).argmax(-1), labels)


def test_beta_sampler_small_alpha_does_not_underflow():
    samples = sample_beta(0.05, 5000, torch.Generator().manual_seed(1))
    assert not torch.isnan(samples).any()
    assert math.isclose(float(samples.mean()), 0.5, abs_tol=0.03)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("shape", [(6, 3, 8, 8), (6, 3, 128, 128)], ids=["gathered", "per-example-loop"])
def test_both_mixing_paths_and_the_out_workspace_agree_with_the_formula(dtype, mode, shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    draw = Mixer(mode=mode, seed=1).draw(shape[0])
    lam = draw.lam.view(-1, 1, 1, 1).double()
    expected = (lam * x.double() + (1 - lam) * x.double()[draw.index]).to(dtype)
    tol = dict(atol=1e-6, rtol=1e-6) if dtype == torch.float32 else dict(atol=2e-2, rtol=1e-2)
    torch.testing.assert_close(mix_inputs(x, draw), expected, **tol)
    workspace = torch.full_like(x, float("nan"))
    result = mix_inputs(x, draw, out=workspace)
    assert result.data_ptr() == workspace.data_ptr()
    torch.testing.assert_close(result, expected, **tol)


# -- the per-example loop: large examples, partners that are not a roll of the batch, or half precision --

LARGE = (5, 2, 128, 128)  # 32,768 elements an example: mixed by a loop of per-example lerps


def loop_draw(partners: str) -> MixDraw:
    lam = torch.tensor([0.2, 0.9, 0.35, 0.6, 0.75])
    if partners == "pair":
        draw = Mixer(mode="pair", seed=4).draw(5)  # an odd batch: one example is its own partner, lam 1
        assert int((draw.index == torch.arange(5)).sum()) == 1
        return draw
    if partners == "permutation":
        return MixDraw(lam=lam, index=torch.tensor([3, 0, 4, 1, 2]))
    if partners == "batch-wide-permutation":
        return MixDraw(lam=torch.full((5,), 0.3), index=torch.tensor([2, 4, 1, 0, 3]), batch_wide=True)
    return MixDraw(lam=lam, index=(torch.arange(5) + 2) % 5)  # "rolled": half precision only


LOOP_TOLERANCE = {torch.float32: 1e-6, torch.bfloat16: 2**-8, torch.float16: 2**-10}


LOOP_CASES = [
    (partners, dtype)
    for partners in ("pair", "permutation", "batch-wide-permutation", "rolled")
    for dtype in (torch.float32, torch.bfloat16, torch.float16)
    if not (partners == "rolled" and dtype == torch.float32)  # that one takes the two-lerp roll path
]


@pytest.mark.parametrize("with_out", [False, True], ids=["new-tensor", "into-out"])
@pytest.mark.parametrize("partners, dtype", LOOP_CASES, ids=[f"{p}-{str(d)[6:]}" for p, d in LOOP_CASES])
def test_per_example_loop_mixes_each_example_exactly(partners, dtype, with_out):
    from hf_mixup import mixing

    draw = loop_draw(partners)
    x = torch.randn(*LARGE, generator=torch.Generator().manual_seed(0)).to(dtype)
    before = x.clone()
    assert x[0].numel() >= mixing._PER_EXAMPLE_LOOP_NUMEL
    out = torch.full_like(x, float("nan")) if with_out else None
    mixed = mix_inputs(x, draw, out=out)
    expected = mixed_by_hand(x.double(), draw)
    tol = LOOP_TOLERANCE[dtype]
    assert mixed.dtype == dtype and mixed.shape == x.shape
    torch.testing.assert_close(mixed.double(), expected, atol=tol, rtol=tol)
    for i, j in enumerate(draw.index.tolist()):  # each example mixed with its own partner, not another's
        if draw.lam[i] == 1.0:
            assert torch.equal(mixed[i], x[i])
        else:
            torch.testing.assert_close(mixed[i].double(), expected[i], atol=tol, rtol=tol)
    if with_out:
        assert mixed.data_ptr() == out.data_ptr()
    assert torch.equal(x, before)


@pytest.mark.parametrize("partners", ["pair", "permutation", "batch-wide-permutation", "rolled"])
def test_hidden_features_mix_out_of_place_with_the_formula_and_its_gradient(partners):
    """Inputs that require grad (hidden features) are mixed out of place, for autograd, whatever their size."""
    draw = loop_draw(partners)
    for shape in (LARGE, (5, 3, 4)):
        leaf = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64, requires_grad=True)
        x = leaf * 1.0  # a non-leaf, as features inside a network are
        mixed = mix_inputs(x, draw)
        reference_leaf = leaf.detach().clone().requires_grad_(True)
        expected = mixed_by_hand(reference_leaf, draw)
        torch.testing.assert_close(mixed, expected, atol=1e-12, rtol=1e-12)
        weights = torch.randn(*shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        (mixed * weights).sum().backward()
        (expected * weights).sum().backward()
        torch.testing.assert_close(leaf.grad, reference_leaf.grad, atol=1e-12, rtol=1e-12)
        assert torch.equal(x, leaf.detach())


def test_out_workspace_validation():
    x = torch.randn(4, 3)
    draw = MixDraw(lam=torch.full((4,), 0.5), index=torch.tensor([1, 2, 3, 0]))
    with pytest.raises(ValueError, match="out must match"):
        mix_inputs(x, draw, out=torch.empty(4, 4))
    with pytest.raises(ValueError, match="not be the inputs"):
        mix_inputs(x, draw, out=x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("batch_wide", [True, False])
@pytest.mark.parametrize("with_out", [True, False])
def test_rolled_partners_mix_like_the_gathered_formula(dtype, batch_wide, with_out):
    # Partners that are a roll of the batch take the two-pass path; any other index the gather path.
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(6, 2, 3, 3, generator=generator).to(dtype)
    lam = torch.full((6,), 0.3) if batch_wide else torch.rand(6, generator=generator)
    for index in (torch.tensor([2, 3, 4, 5, 0, 1]), torch.tensor([1, 0, 3, 2, 5, 4])):
        draw = MixDraw(lam, index, batch_wide=batch_wide)
        out = torch.empty_like(x) if with_out else None
        mixed = mix_inputs(x, draw, out=out)
        w = lam.double().view(-1, 1, 1, 1)
        expected = (w * x.double() + (1 - w) * x.double()[index]).to(dtype)
        tol = 1e-6 if dtype == torch.float32 else 1e-2
        torch.testing.assert_close(mixed, expected, atol=tol, rtol=tol)
        if with_out:
            assert mixed.data_ptr() == out.data_ptr()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_per_example_weights_are_not_rounded(dtype):
    x = torch.tensor([[1.0], [0.0]]).to(dtype)
    draw = MixDraw(lam=torch.tensor([0.2, 0.9]), index=torch.tensor([1, 0]))
    out = mix_inputs(x, draw).float()
    torch.testing.assert_close(out, torch.tensor([[0.2], [0.1]]), atol=2e-3, rtol=0)


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_no_example_is_its_own_partner(mode):
    mixer = Mixer(mode=mode, seed=0)
    for batch_size in (2, 3, 7, 64):
        for _ in range(20):
            index = mixer.draw(batch_size).index
            assert not bool((index == torch.arange(batch_size)).any())
            assert torch.equal(index.sort().values, torch.arange(batch_size))


def test_partners_are_a_roll_by_every_shift():
    mixer = Mixer(mode="elem", seed=1)
    shifts = set()
    for _ in range(200):
        index = mixer.draw(5).index
        shift = int(index[0])
        assert torch.equal(index, (torch.arange(5) + shift) % 5)
        shifts.add(shift)
    assert shifts == {1, 2, 3, 4}
