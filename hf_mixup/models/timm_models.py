"""timm models as `TimmWrapperForImageClassification`, with timm's own weight initialisation.

Built from a config (not `from_pretrained`), transformers 5's `TimmWrapperForImageClassification`
runs `PreTrainedModel._init_weights` over the timm model: every convolution becomes N(0, 0.02) and
every norm weight 1, replacing timm's Kaiming init and zero-init of the last norm of each residual
block. Deep networks (WRN-28-10, DenseNet-BC-190) then train worse or not at all.
`create_timm_classifier` builds the wrapper and copies a freshly initialised timm model into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import timm
import torch
from transformers import TimmWrapperConfig, TimmWrapperForImageClassification


def restore_timm_init(model: TimmWrapperForImageClassification) -> TimmWrapperForImageClassification:
    """Re-initialise ``model.timm_model`` as ``timm.create_model`` initialises it (in place)."""
    config = model.config
    fresh = timm.create_model(config.architecture, pretrained=False, num_classes=config.num_labels, **(config.model_args or {}))
    model.timm_model.load_state_dict(fresh.state_dict())
    return model


def _per_channel(values: Sequence[float], channels: int, name: str) -> list[float]:
    """Normalisation values for ``channels`` channels: as given, or the mean of the defaults repeated."""
    values = [float(v) for v in values]
    if len(values) == channels:
        return values
    if len(values) == 1:
        return values * channels
    if len(values) == 3 and channels != 3:
        return [sum(values) / 3] * channels
    raise ValueError(f"image {name} has {len(values)} values for {channels} input channels; give one per channel")


def create_timm_classifier(
    architecture: str,
    labels: Sequence[str] | int,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    model_args: dict[str, Any] | None = None,
    interpolation: str = "bilinear",
    crop_pct: float = 1.0,
    **config_kwargs,
) -> TimmWrapperForImageClassification:
    """A timm ``architecture`` as a transformers image classifier, initialised as timm does.

    ``labels`` are class names (or their number). The preprocessing (input size, mean, std,
    interpolation, crop) goes into ``config.pretrained_cfg``, which `TimmWrapperImageProcessor`
    reads from the checkpoint's `config.json`, so `pipeline("image-classification", model=path)`
    preprocesses as training did. Unset values come from the architecture's timm default config.
    """
    names = [str(i) for i in range(labels)] if isinstance(labels, int) else [str(x) for x in labels]
    default = timm.models.get_pretrained_cfg(architecture)
    default = default.to_dict() if default is not None else {}
    in_chans = (model_args or {}).get("in_chans", default.get("input_size", (3,))[0])
    size = image_size or default.get("input_size", (3, 224, 224))[-1]
    pretrained_cfg = {
        "input_size": [in_chans, size, size],
        "mean": _per_channel(mean or default.get("mean", (0.485, 0.456, 0.406)), in_chans, "mean"),
        "std": _per_channel(std or default.get("std", (0.229, 0.224, 0.225)), in_chans, "std"),
        "interpolation": interpolation,
        "crop_pct": crop_pct,
        "crop_mode": "center",
    }
    config = TimmWrapperConfig(
        architecture=architecture,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
        model_args=model_args,
        pretrained_cfg=pretrained_cfg,
        **config_kwargs,
    )
    with torch.random.fork_rng(devices=[]):
        model = TimmWrapperForImageClassification(config)
    return restore_timm_init(model)
