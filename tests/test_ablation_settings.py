"""The settings of the paper's ablations (Table 5): partners within a class (`mixup_partner`), mixing the
inputs only (`mixup_targets`), Gaussian input noise (`input_noise_std`), and label smoothing as the paper
defines it, on the engine, the collator and the trainer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import digits_batch, fixed_mixer, mixed_by_hand, mixup_args, tiny_vit
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_mixup import DataCollatorForMixup, MixupArguments, MixupTrainer
from hf_mixup.mixing import MixDraw, Mixer, dominant_targets, mix_targets, one_hot, same_class_partners

DRAW = MixDraw(
    lam=torch.tensor([0.2, 0.9, 0.35, 0.6, 0.75, 0.5, 0.1, 0.45]),
    index=torch.tensor([3, 6, 5, 0, 7, 2, 1, 4]),
)


# -- partners within a class ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=40), st.integers(0, 2**31 - 1))
def test_same_class_partners_are_a_permutation_within_each_class(labels, seed):
    """Every partner has the example's class; each example is somebody's partner exactly once; only an
    example alone in its class is its own partner."""
    labels = torch.tensor(labels)
    index = same_class_partners(labels, torch.Generator().manual_seed(seed))
    assert torch.equal(labels[index], labels)
    assert sorted(index.tolist()) == list(range(len(labels)))
    alone = torch.bincount(labels)[labels] == 1
    assert torch.equal(index == torch.arange(len(labels)), alone)


def test_same_class_partners_are_drawn_at_random():
    labels = torch.tensor([0] * 6 + [1] * 6)
    seen = {tuple(same_class_partners(labels, torch.Generator().manual_seed(s)).tolist()) for s in range(30)}
    assert len(seen) > 10


def test_the_collator_mixes_inputs_within_a_class_so_the_targets_stay_pure(digits_dataset):
    """Within a class a mixed target is the class's own one-hot: the inputs change, the targets do not."""
    batch = digits_batch(digits_dataset, n=32)
    features = [{"pixel_values": x, "labels": int(y)} for x, y in zip(batch["pixel_values"], batch["labels"])]
    collator = DataCollatorForMixup(num_labels=10, mixup_alpha=1.0, mixup_partner="same_class", seed=0, rank=0)
    mixed = collator(features)
    torch.testing.assert_close(mixed["labels"], one_hot(batch["labels"], 10))
    assert not torch.allclose(mixed["pixel_values"], batch["pixel_values"])
    # ... while random partners mix the targets of different classes.
    other = DataCollatorForMixup(num_labels=10, mixup_alpha=1.0, seed=0, rank=0)(features)
    assert not torch.allclose(other["labels"], one_hot(batch["labels"], 10))


def test_the_trainer_draws_partners_from_the_batch_labels(tmp_path, digits_dataset):
    """On the device, the trainer hands the batch's class ids to the mixer; every recorded partner shares its
    example's class, and the loss is the pair-form loss with those partners."""
    seen = []

    class Recording(Mixer):
        def draw(self, batch_size, spatial_size=None, labels=None):
            result = super().draw(batch_size, spatial_size, labels=labels)
            seen.append((labels.clone(), result))
            return result

    model = tiny_vit().train()
    args = mixup_args(tmp_path, mixup_partner="same_class")
    trainer = MixupTrainer(model=model, args=args, mixer=Recording(1.0, partner="same_class", seed=3))
    batch = digits_batch(digits_dataset, n=32)
    loss = trainer.compute_loss(model, batch)
    labels, draw = seen[-1]
    assert torch.equal(labels, batch["labels"])
    assert torch.equal(labels[draw.index], labels) and not draw.is_identity
    logits = model(pixel_values=mixed_by_hand(batch["pixel_values"], draw)).logits
    expected = F.cross_entropy(logits, labels)  # same-class partners: both halves of the loss are one CE
    torch.testing.assert_close(loss, expected)


def test_the_trainer_builds_a_same_class_mixer_from_the_arguments(tmp_path):
    trainer = MixupTrainer(model=tiny_vit(), args=mixup_args(tmp_path, mixup_partner="same_class"))
    assert trainer.mixer.partner == "same_class"


# -- mixing the inputs only -------------------------------------------------------------------------


def test_dominant_targets_pick_the_label_of_the_larger_weight():
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    # lam >= 0.5 keeps the example's own label (0.5 included), else the partner's.
    assert dominant_targets(labels, DRAW).tolist() == [3, 1, 5, 3, 4, 5, 1, 4]
    soft = dominant_targets(labels, DRAW, num_classes=8, label_smoothing=0.1)
    torch.testing.assert_close(soft, one_hot(torch.tensor([3, 1, 5, 3, 4, 5, 1, 4]), 8, 0.1))


def test_input_only_loss_is_cross_entropy_on_the_dominant_label(tmp_path, digits_dataset):
    model = tiny_vit().train()
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path, mixup_targets="input_only"), mixer=fixed_mixer(DRAW))
    batch = digits_batch(digits_dataset)
    loss = trainer.compute_loss(model, batch)
    logits = model(pixel_values=mixed_by_hand(batch["pixel_values"], DRAW)).logits
    y = batch["labels"]
    dominant = torch.where(DRAW.lam >= 0.5, y, y[DRAW.index])
    torch.testing.assert_close(loss, F.cross_entropy(logits, dominant))
    mixed = MixupTrainer(model=model, args=mixup_args(tmp_path, "m"), mixer=fixed_mixer(DRAW)).compute_loss(model, batch)
    assert not torch.allclose(loss, mixed)


def test_the_collator_gives_one_hot_dominant_targets_for_input_only(digits_dataset):
    batch = digits_batch(digits_dataset, n=16)
    features = [{"pixel_values": x, "labels": int(y)} for x, y in zip(batch["pixel_values"], batch["labels"])]
    out = DataCollatorForMixup(num_labels=10, mixup_alpha=1.0, mixup_targets="input_only", seed=0, rank=0)(features)
    assert torch.equal(out["labels"].max(-1).values, torch.ones(16))  # one-hot: no mixed target
    assert not torch.allclose(out["pixel_values"], batch["pixel_values"])


# -- Gaussian input noise ---------------------------------------------------------------------------


def test_input_noise_is_added_in_training_only(tmp_path, digits_dataset):
    model = tiny_vit()
    seen = []
    model.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs["pixel_values"].detach().clone()),
                                    with_kwargs=True)
    args = mixup_args(tmp_path, mixup_alpha=0.0, input_noise_std=0.5)
    trainer = MixupTrainer(model=model, args=args)
    batch = digits_batch(digits_dataset, n=64)
    model.train()
    trainer.compute_loss(model, batch)
    noise = seen[-1] - batch["pixel_values"]
    assert abs(float(noise.std()) - 0.5) < 0.02 and abs(float(noise.mean())) < 0.02
    model.eval()
    trainer.compute_loss(model, batch)
    assert torch.equal(seen[-1], batch["pixel_values"])


# -- label smoothing --------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.2, 0.4])
def test_label_smoothing_is_the_papers_and_composes_with_mixup(eps):
    """The paper's smoothing puts eps / C on each wrong class and 1 - (C - 1) eps / C on the true one; with
    mixup ("mix inputs + label smoothing") the smoothed targets are mixed with the inputs' weights."""
    c = 10
    y = torch.tensor([3, 7, 0, 9, 1, 2, 5, 6])
    smooth = one_hot(y, c, label_smoothing=eps)
    for row, label in zip(smooth, y.tolist()):
        assert row[label] == pytest.approx(1 - (c - 1) * eps / c)
        assert torch.allclose(row[torch.arange(c) != label], torch.full((c - 1,), eps / c))
    mixed = mix_targets(y, DRAW, num_classes=c, label_smoothing=eps)
    by_hand = DRAW.lam[:, None] * smooth + (1 - DRAW.lam[:, None]) * smooth[DRAW.index]
    torch.testing.assert_close(mixed, by_hand)


# -- bad values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings_, field",
    [
        (dict(mixup_partner="nearest"), "mixup_partner"),
        (dict(mixup_partner="same_class", mixup_mode="pair"), "mixup_partner"),
        (dict(mixup_targets="labels_only"), "mixup_targets"),
        (dict(input_noise_std=-0.1), "input_noise_std"),
        (dict(input_noise_std=float("nan")), "input_noise_std"),
    ],
)
def test_bad_settings_name_their_field(tmp_path, settings_, field):
    with pytest.raises(ValueError, match=field):
        MixupArguments(output_dir=str(tmp_path), report_to="none", **settings_)


def test_same_class_needs_class_ids(tmp_path):
    with pytest.raises(ValueError, match="single-label"):
        MixupTrainer(model=tiny_vit(num_labels=2, problem_type="regression"), args=mixup_args(tmp_path, mixup_partner="same_class"))
    with pytest.raises(ValueError, match="class ids"):
        Mixer(1.0, partner="same_class").draw(4)
    with pytest.raises(ValueError, match="mixup_targets"):
        DataCollatorForMixup(num_labels=3, mixup_targets="soft")


def test_the_card_recipe_names_the_ablation_settings_it_was_trained_with(tmp_path):
    from hf_mixup.hub.card import recipe_of

    recipe = recipe_of(mixup_args(tmp_path, mixup_partner="same_class", mixup_targets="input_only", input_noise_std=0.1))
    assert (recipe["mixup_partner"], recipe["mixup_targets"], recipe["input_noise_std"]) == ("same_class", "input_only", 0.1)
    assert not {"mixup_partner", "mixup_targets", "input_noise_std"} & set(recipe_of(mixup_args(tmp_path)))


def test_input_only_needs_a_class_id_for_every_example(tmp_path, digits_dataset):
    model = tiny_vit().train()
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path, mixup_targets="input_only"), mixer=fixed_mixer(DRAW))
    batch = digits_batch(digits_dataset)
    batch["labels"][3] = -100
    with pytest.raises(ValueError, match="class id for every training example"):
        trainer.compute_loss(model, batch)


def test_the_trainer_hands_its_partner_and_target_settings_to_a_default_collator(tmp_path):
    args = mixup_args(tmp_path, mixup_partner="same_class", mixup_targets="input_only")
    collator = DataCollatorForMixup()
    MixupTrainer(model=tiny_vit(), args=args, data_collator=collator)
    assert (collator.mixup_partner, collator.mixup_targets, collator._mixer.partner) == ("same_class", "input_only", "same_class")
    own = DataCollatorForMixup(mixup_partner="same_class")  # a collator's own setting stays
    MixupTrainer(model=tiny_vit(), args=mixup_args(tmp_path, "b"), data_collator=own)
    assert own.mixup_partner == "same_class" and own._mixer.partner == "same_class"
