"""MixupArguments: validation with clear messages, and the help of every field."""

import dataclasses
import math

import pytest
from conftest import mixup_args

from hf_mixup import MixupArguments

MIXUP_FIELDS = [
    "mixup_alpha", "cutmix_alpha", "cutmix_minmax", "mixup_prob", "mixup_switch_prob", "mixup_mode",
    "mixup_off_epoch", "mixup_warmup_epochs",
]


def test_defaults_and_help(tmp_path):
    args = mixup_args(tmp_path)
    assert args.mixup_alpha == 1.0 and args.mixup_mode == "batch" and args.mixing_enabled
    fields = {f.name: f for f in dataclasses.fields(MixupArguments)}
    for name in MIXUP_FIELDS:
        assert fields[name].metadata.get("help"), name


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mixup_alpha": -0.2}, "mixup_alpha must be a finite number >= 0"),
        ({"mixup_alpha": math.nan}, "mixup_alpha"),
        ({"cutmix_alpha": math.inf}, "cutmix_alpha"),
        ({"mixup_prob": 1.2}, r"mixup_prob must be a probability in \[0, 1\]"),
        ({"mixup_switch_prob": -0.5}, "mixup_switch_prob"),
        ({"mixup_mode": "rows"}, "mixup_mode must be one of batch, pair, elem"),
        ({"cutmix_minmax": [0.5]}, "cutmix_minmax"),
        ({"cutmix_minmax": [0.9, 0.1]}, "cutmix_minmax"),
        ({"mixup_off_epoch": -1}, "mixup_off_epoch"),
        ({"mixup_warmup_epochs": math.nan}, "mixup_warmup_epochs"),
        ({"mixup_warmup_epochs": 5, "mixup_off_epoch": 3}, "must be after mixup_warmup_epochs"),
    ],
)
def test_bad_values_raise_value_error_naming_the_field(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        mixup_args(tmp_path, **kwargs)


def test_erm_and_schedule(tmp_path):
    assert not mixup_args(tmp_path, mixup_alpha=0.0).mixing_enabled
    assert mixup_args(tmp_path, mixup_alpha=0.0, cutmix_alpha=1.0).mixing_enabled
    args = mixup_args(tmp_path, mixup_warmup_epochs=2, mixup_off_epoch=5)
    assert [args.mixing_active_at(e) for e in (0, 1.9, 2.0, 4.99, 5.0, 7)] == [False, False, True, True, False, False]
