"""A small `ViTForImageClassification` built from a config, for training from scratch on a CPU.

transformers' own ViT (not a fork), so every mixing site of `hf_mixup.sites` applies to it: the inputs, the
patch embeddings (``"embeddings"``), the hidden states entering block ``k`` and the pooled features
(``"pooled"``). `hf-mixup train --model_name small_vit` builds it with the image processor its checkpoint is
saved with, so ``pipeline("image-classification", model=run_dir)`` preprocesses as evaluation did.
"""

from __future__ import annotations

from collections.abc import Sequence

SMALL_VIT = "small_vit"


def small_vit_classifier(labels: Sequence[str], image_size: int = 28, num_channels: int = 3, patch_size: int = 4,
                         hidden_size: int = 128, num_hidden_layers: int = 4, num_attention_heads: int = 2,
                         intermediate_size: int = 512, **kwargs):
    """``(model, processor)``: a `ViTForImageClassification` with random weights (by default 4 blocks, hidden
    size 128, 2 heads, feed-forward 512, patches of 4x4: 0.8 M parameters; a 28x28 image is 49 patches and
    the class token) for ``labels``, and the `ViTImageProcessor` that resizes to ``image_size`` and scales the
    pixels to [-1, 1]. Three channels by default, grey images included: `pipeline("image-classification")` hands
    every image to the model in RGB. ``kwargs`` go to `ViTConfig` (``hidden_dropout_prob``, ...)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    if image_size % patch_size:
        raise ValueError(f"image_size={image_size} is not a multiple of patch_size={patch_size}: choose sizes "
                         "whose patches tile the image (28 with patch 4 or 7, 32 with patch 4 or 8)")
    id2label = dict(enumerate(str(name) for name in labels))
    config = ViTConfig(
        image_size=image_size, patch_size=patch_size, num_channels=num_channels, hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size, num_labels=len(id2label), id2label=id2label,
        label2id={name: i for i, name in id2label.items()}, **kwargs,
    )
    processor = ViTImageProcessor(
        do_resize=True, size={"height": image_size, "width": image_size}, image_mean=[0.5] * num_channels,
        image_std=[0.5] * num_channels,
    )
    return ViTForImageClassification(config), processor
