"""Pair-form and soft-target cross-entropy agree with each other, with torch, and with the official
mixup code's `mixup_criterion`."""

import pytest
import torch
import torch.nn.functional as F

from hf_mixup.losses import (
    cross_entropy,
    mixup_cross_entropy,
    multi_label_bce,
    reduce_loss,
    regression_mse,
    soft_target_cross_entropy,
)
from hf_mixup.mixing import MixDraw, mix_targets


def official_mixup_criterion(criterion, pred, y_a, y_b, lam):
    # facebookresearch/mixup-cifar10, train.py
    return lam * criterion(pred, y_a) + (1 - lam) * criterion(pred, y_b)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 10, generator=g, dtype=torch.float64).float()
    y = torch.randint(0, 10, (16,), generator=g)
    index = torch.randperm(16, generator=g)
    return logits, y, index


def test_pair_form_equals_official_mixup_criterion(batch):
    logits, y, index = batch
    lam = 0.37
    ours = mixup_cross_entropy(logits, y, y[index], lam).mean()
    official = official_mixup_criterion(torch.nn.CrossEntropyLoss(), logits, y, y[index], lam)
    assert torch.allclose(ours, official, atol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_pair_form_equals_soft_target_ce_per_example(batch, smoothing):
    logits, y, index = batch
    lam = torch.rand(16, generator=torch.Generator().manual_seed(1))
    draw = MixDraw(lam=lam, index=index)
    soft = mix_targets(y, draw, num_classes=10, label_smoothing=smoothing)
    pair = mixup_cross_entropy(logits, y, y[index], lam, label_smoothing=smoothing)
    assert torch.allclose(pair, soft_target_cross_entropy(logits, soft), atol=1e-5)
    # and smoothing then mixing equals torch's smoothed CE mixed in pair form
    reference = lam * F.cross_entropy(logits, y, reduction="none", label_smoothing=smoothing) + (1 - lam) * F.cross_entropy(
        logits, y[index], reduction="none", label_smoothing=smoothing
    )
    assert torch.allclose(pair, reference, atol=1e-5)


def test_unmixed_losses_equal_torch(batch):
    logits, y, _ = batch
    assert torch.allclose(cross_entropy(logits, y, 0.1), F.cross_entropy(logits, y, reduction="none", label_smoothing=0.1))
    one_hot = F.one_hot(y, 10).float()
    assert torch.allclose(soft_target_cross_entropy(logits, one_hot), F.cross_entropy(logits, y, reduction="none"), atol=1e-6)
    assert torch.allclose(
        soft_target_cross_entropy(logits, one_hot, label_smoothing=0.2),
        F.cross_entropy(logits, y, reduction="none", label_smoothing=0.2),
        atol=1e-6,
    )


def test_multi_label_and_regression_losses():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])
    targets = torch.tensor([[0.5, 1.0], [0.0, 0.25]])
    assert torch.allclose(multi_label_bce(logits, targets), F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1))
    assert torch.equal(regression_mse(torch.tensor([[1.0], [3.0]]), torch.tensor([2.0, 1.0])), torch.tensor([1.0, 4.0]))
    with pytest.raises(ValueError, match="num_labels"):
        regression_mse(torch.zeros(2, 3), torch.zeros(2))


def test_reduce_loss_over_accumulated_items():
    per_example = torch.tensor([1.0, 2.0, 3.0, 6.0])
    assert reduce_loss(per_example) == 3.0
    # two micro-batches of 4 out of an accumulated batch of 8 examples
    assert reduce_loss(per_example, torch.tensor(8)) == 1.5


def test_soft_target_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="same shape"):
        soft_target_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4))


# -- the one loss of every site: per_example_loss against a Targets ------------------------------------------

LAM = torch.tensor([0.2, 0.9, 0.35, 0.6, 0.75, 0.5, 0.1, 0.45])


def loss_batch(num_labels: int = 5):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(8, num_labels, generator=g)
    own = torch.randint(0, num_labels, (8,), generator=g)
    partner = (own + 1 + torch.randint(0, num_labels - 1, (8,), generator=g)) % num_labels  # never the same class
    return logits, own, partner


def by_formula(own_loss, partner_loss, lam=LAM):
    return lam * own_loss + (1 - lam) * partner_loss


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_class_ids_mixed_give_lam_ce_own_plus_one_minus_lam_ce_partner(smoothing):
    from hf_mixup.losses import Targets, per_example_loss

    logits, own, partner = loss_batch()
    got = per_example_loss(logits, Targets(own, partner, LAM), label_smoothing=smoothing)
    ce = lambda y: F.cross_entropy(logits, y, reduction="none", label_smoothing=smoothing)  # noqa: E731
    torch.testing.assert_close(got, by_formula(ce(own), ce(partner)))


def test_soft_labels_mixed_give_the_soft_target_ce_of_the_mixed_distribution():
    from hf_mixup.losses import Targets, per_example_loss

    logits, _, _ = loss_batch()
    g = torch.Generator().manual_seed(4)
    own, partner = torch.softmax(torch.randn(8, 5, generator=g), -1), torch.softmax(torch.randn(8, 5, generator=g), -1)
    mixed = LAM[:, None] * own + (1 - LAM[:, None]) * partner
    expected = -(mixed * F.log_softmax(logits, -1)).sum(-1)
    torch.testing.assert_close(per_example_loss(logits, Targets(own, partner, LAM)), expected)
    # premixed (a collator's soft labels, smoothed there): taken as they are, not smoothed again nor mixed
    premixed = per_example_loss(logits, Targets(mixed, lam=LAM, premixed=True), label_smoothing=0.1)
    torch.testing.assert_close(premixed, expected)


def test_input_only_takes_the_label_of_the_larger_weight_unmixed():
    from hf_mixup.losses import Targets, per_example_loss

    logits, own, partner = loss_batch()
    got = per_example_loss(logits, Targets(own, partner, LAM, input_only=True), label_smoothing=0.1)
    dominant = torch.where(LAM >= 0.5, own, partner)
    torch.testing.assert_close(got, F.cross_entropy(logits, dominant, reduction="none", label_smoothing=0.1))


def test_multi_label_and_regression_targets_mix_linearly():
    from hf_mixup.losses import MULTI_LABEL, REGRESSION, Targets, per_example_loss

    logits, _, _ = loss_batch(3)
    g = torch.Generator().manual_seed(5)
    own, partner = torch.randint(0, 2, (8, 3), generator=g), torch.randint(0, 2, (8, 3), generator=g)
    mixed = LAM[:, None] * own.float() + (1 - LAM[:, None]) * partner.float()
    expected = F.binary_cross_entropy_with_logits(logits, mixed, reduction="none").mean(-1)
    torch.testing.assert_close(per_example_loss(logits, Targets(own, partner, LAM), MULTI_LABEL), expected)
    y, y_partner = torch.linspace(-2, 5, 8), torch.linspace(7, 1, 8)
    predictions = logits[:, :1]
    expected = (predictions.squeeze(1) - (LAM * y + (1 - LAM) * y_partner)) ** 2
    torch.testing.assert_close(per_example_loss(predictions, Targets(y, y_partner, LAM), REGRESSION), expected)


def test_unmixed_targets_give_the_plain_losses():
    from hf_mixup.losses import Targets, per_example_loss

    logits, own, _ = loss_batch()
    torch.testing.assert_close(per_example_loss(logits, Targets(own), label_smoothing=0.1),
                               F.cross_entropy(logits, own, reduction="none", label_smoothing=0.1))
    with pytest.raises(ValueError, match="problem_type must be one of"):
        per_example_loss(logits, Targets(own), "ranking")
    with pytest.raises(ValueError, match=r"give class ids \[batch\] or soft labels"):
        per_example_loss(logits, Targets(own.float()))
