"""The mixing settings are checked in one place (`hf_mixup.mixing.check_mixing_settings`): a bad value gets the
same message from `Mixer`, `MixupArguments` and `DataCollatorForMixup`; and a collator can take a `Mixer`."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import mixed_by_hand, mixup_args, tiny_resnet

from hf_mixup import DataCollatorForMixup, MixupTrainer
from hf_mixup.collator import MIXUP_LAMBDA_KEY
from hf_mixup.mixing import Mixer

# (the setting as MixupArguments and the collator name it, the bad value, the Mixer's keyword, extra settings)
BAD = [
    ("mixup_alpha", -0.5, "mixup_alpha", {}),
    ("mixup_alpha", math.nan, "mixup_alpha", {}),
    ("cutmix_alpha", math.inf, "cutmix_alpha", {}),
    ("mixup_prob", 1.5, "prob", {}),
    ("mixup_switch_prob", -0.1, "switch_prob", {}),
    ("mixup_mode", "rows", "mode", {}),
    ("cutmix_minmax", [0.9, 0.1], "cutmix_minmax", {}),
    ("cutmix_minmax", [0.5], "cutmix_minmax", {}),
    ("mixup_partner", "nearest", "partner", {}),
    ("mixup_partner", "same_class", "partner", {"mixup_mode": "pair"}),
]


def message(build) -> str:
    with pytest.raises(ValueError) as error:
        build()
    return str(error.value)


@pytest.mark.parametrize("name, value, mixer_name, extra", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_a_bad_setting_gets_the_same_message_from_every_entry_point(tmp_path, name, value, mixer_name, extra):
    mixer_extra = {"mode": extra["mixup_mode"]} if extra else {}
    from_arguments = message(lambda: mixup_args(tmp_path, **{name: value}, **extra))
    from_collator = message(lambda: DataCollatorForMixup(num_labels=3, **{name: value}, **extra))
    from_mixer = message(lambda: Mixer(**{mixer_name: value}, **mixer_extra))
    assert from_arguments == from_collator == from_mixer
    assert name in from_arguments


def test_bad_targets_get_the_same_message_from_the_arguments_and_the_collator(tmp_path):
    from_arguments = message(lambda: mixup_args(tmp_path, mixup_targets="soft"))
    assert from_arguments == message(lambda: DataCollatorForMixup(mixup_targets="soft"))
    assert from_arguments == "mixup_targets must be one of mixed, input_only; got 'soft'"


def test_knn_partners_are_refused_by_the_mixer_and_the_collator_with_what_to_do():
    assert "takes partners from the dataset" in message(lambda: Mixer(partner="knn"))
    assert "leave DataCollatorForMixup out" in message(lambda: DataCollatorForMixup(mixup_partner="knn"))


# -- DataCollatorForMixup(mixer=...) ----------------------------------------------------------------------------


def features(n: int = 6):
    g = torch.Generator().manual_seed(0)
    return [{"pixel_values": torch.randn(3, 4, 4, generator=g), "label": i % 3} for i in range(n)]


def test_a_collator_draws_from_the_given_mixer():
    """The batch is lam * x_i + (1 - lam) * x_j for the given mixer's draw (replayed from the same seed), and the
    soft labels mix with the same weights."""
    mixer = Mixer(mixup_alpha=0.4, mode="elem", seed=5)
    collator = DataCollatorForMixup(num_labels=3, mixer=mixer, seed=123, rank=1)
    batch = collator(features())
    draw = Mixer(mixup_alpha=0.4, mode="elem", seed=5).draw(6)
    assert torch.equal(batch[MIXUP_LAMBDA_KEY], draw.lam) and bool((draw.lam < 1).all())
    x = torch.stack([f["pixel_values"] for f in features()])
    torch.testing.assert_close(batch["pixel_values"], mixed_by_hand(x, draw))
    one_hot = torch.eye(3)[torch.arange(6) % 3]
    torch.testing.assert_close(batch["labels"], mixed_by_hand(one_hot, draw))
    assert collator._mixer is mixer
    assert (collator.mixup_alpha, collator.mixup_mode, collator.mixup_prob) == (0.4, "elem", 1.0)
    # the next batch goes on with the mixer's generator
    again = Mixer(mixup_alpha=0.4, mode="elem", seed=5)
    again.draw(6)
    assert torch.equal(collator(features())[MIXUP_LAMBDA_KEY], again.draw(6).lam)


def test_a_collator_takes_a_mixer_or_the_fields_not_both():
    with pytest.raises(ValueError, match="mixer= and mixup_alpha=0.2.*not both"):
        DataCollatorForMixup(num_labels=3, mixer=Mixer(mixup_alpha=0.4), mixup_alpha=0.2)
    same = DataCollatorForMixup(num_labels=3, mixer=Mixer(mixup_alpha=0.4, cutmix_minmax=(0.2, 0.8)),
                                mixup_alpha=0.4, cutmix_minmax=[0.2, 0.8])
    assert same.cutmix_minmax == (0.2, 0.8)


def test_the_trainer_keeps_the_collators_mixer(tmp_path):
    mixer = Mixer(mixup_alpha=0.4, seed=5)
    trainer = MixupTrainer(model=tiny_resnet(), args=mixup_args(tmp_path, seed=9),
                           data_collator=DataCollatorForMixup(mixer=mixer))
    assert trainer._mixup_collator._mixer is mixer and trainer._mixup_collator.num_labels == 10
    with pytest.raises(ValueError, match="build the Mixer with partner="):
        MixupTrainer(model=tiny_resnet(), args=mixup_args(tmp_path, mixup_partner="same_class"),
                     data_collator=DataCollatorForMixup(mixer=Mixer()))
