"""Image sets that fit in memory, held as one tensor and served a batch at a time (the fast path).

`InMemoryImages` keeps every image of a split as one ``uint8`` tensor ``[N, C, H, W]`` (on the GPU when there
is one) and its labels as one tensor. The `DataLoader` asks it for a whole batch by index
(``__getitems__``): one gather and one normalisation, no per-example Python or PIL work. `collate_batches`
passes that batch on as it is.

`CifarCrop` is the paper's CIFAR augmentation (pad 4, random crop, horizontal flip) on a training batch,
on its device, drawn from a generator of its own whose state `MixupTrainer` keeps in every checkpoint, so a
resumed run draws the same crops. It runs on the normalised batch and pads with the normalised value of a
black pixel, so it equals cropping the padded ``uint8`` image and normalising afterwards.

Example:

```python
>>> from hf_mixup.data.in_memory import CifarCrop, InMemoryImages, collate_batches
>>> train = InMemoryImages.from_dataset(dataset["train"], mean=[0.5], std=[0.5], mode="L")
>>> trainer = MixupTrainer(model, args, train_dataset=train, data_collator=collate_batches,
...                        batch_transform=CifarCrop(train.mean, train.std))
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

INPUT_KEY = "pixel_values"
LABEL_KEY = "labels"


def collate_batches(features: Any) -> dict[str, Any]:
    """The collator for datasets that serve whole batches (`InMemoryImages`): a batch passes as it is; a list
    of examples (a dataset read one example at a time) is stacked by `default_data_collator`."""
    if isinstance(features, Mapping):
        return dict(features)
    from transformers import default_data_collator

    return default_data_collator(features)


def remove_columns_of_batches(collator: Any) -> Any:
    """A transformers `RemoveColumnsCollator` (what the Trainer wraps its collator in when
    ``remove_unused_columns=True`` and the dataset is not a `datasets.Dataset`) that also takes a whole batch
    from a dataset serving batches: the batch loses the columns an example would. Any other collator is
    returned as it is."""
    from transformers.trainer_utils import RemoveColumnsCollator

    if not isinstance(collator, RemoveColumnsCollator):
        return collator

    def collate(features: Any) -> dict[str, Any]:
        if isinstance(features, Mapping):
            kept = {key: value for key, value in features.items() if key in collator.signature_columns}
            return collator.data_collator(kept)
        return collator(features)

    return collate


def _channel_tensor(values: Sequence[float], channels: int, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(list(values), dtype=torch.float32)
    if tensor.ndim != 1 or len(tensor) not in (1, channels):
        raise ValueError(f"{name} has {len(tensor)} values for {channels}-channel images: give one per channel")
    if name == "std" and bool((tensor == 0).any()):
        raise ValueError("std has a zero: every channel needs a positive standard deviation")
    return tensor.expand(channels).reshape(channels, 1, 1).clone()


class InMemoryImages(torch.utils.data.Dataset):
    """A split of images as one ``uint8`` tensor ``[N, C, H, W]`` and its class ids ``[N]``, served normalised:
    ``(x / 255 - mean) / std``, the arithmetic of the image processors' ``ToTensor`` then ``Normalize``, so a
    batch equals what the `set_transform` path gives for the same images.

    ``dataset[i]`` is one example; ``dataset.__getitems__(indices)`` (what a `DataLoader` calls) is the whole
    batch ``{"pixel_values": [B, C, H, W] float32, "labels": [B]}`` on the tensor's device.
    """

    labels_in_one_tensor = True  # `checks.label_values` reads ``self.labels`` before training

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float], std: Sequence[float]):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 tensor [N, C, H, W], got {images.dtype} of shape {tuple(images.shape)}")
        labels = torch.as_tensor(labels)
        if labels.shape[:1] != images.shape[:1]:
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.to(images.device)
        channels = images.shape[1]
        self.mean = _channel_tensor(mean, channels, "mean").to(images.device)
        self.std = _channel_tensor(std, channels, "std").to(images.device)

    @classmethod
    def from_dataset(cls, dataset, image_column: str = "image", label_column: str = "label", *,
                     mean: Sequence[float], std: Sequence[float], mode: str = "RGB", size: int | None = None,
                     device: torch.device | str | None = None) -> InMemoryImages:
        """Decode every image of a `datasets.Dataset` once (``PIL.Image.convert(mode)``: "RGB" or "L") into one
        tensor on ``device``. ``size``: the side the model takes; images of another size are refused (resize
        them first, or train through the `set_transform` path)."""
        plain = dataset.with_format(None)
        if image_column not in plain.column_names or label_column not in plain.column_names:
            raise ValueError(f"the dataset has columns {plain.column_names}; name the image and label columns "
                             f"(image_column={image_column!r}, label_column={label_column!r} now)")
        pixels = np.stack([np.asarray(image.convert(mode)) for image in plain[image_column]])
        if pixels.ndim == 3:  # grey: [N, H, W]
            pixels = pixels[:, None]
        else:
            pixels = pixels.transpose(0, 3, 1, 2)
        if size is not None and pixels.shape[-2:] != (size, size):
            raise ValueError(f"the images are {pixels.shape[-2]}x{pixels.shape[-1]} but the model takes {size}x{size}: "
                             "the in-memory path does not resize; resize the dataset or train without --in_memory")
        images = torch.from_numpy(np.ascontiguousarray(pixels))
        labels = torch.as_tensor(np.asarray(plain[label_column]), dtype=torch.long)
        if device is not None:
            images = images.to(device)
        return cls(images, labels, mean, std)

    def __len__(self) -> int:
        return len(self.images)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(torch.float32).div(255).sub_(self.mean).div_(self.std)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {INPUT_KEY: self._normalise(self.images[i]), LABEL_KEY: self.labels[i]}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long, device=self.images.device)
        return {INPUT_KEY: self._normalise(self.images.index_select(0, index)), LABEL_KEY: self.labels.index_select(0, index)}


class CifarCrop:
    """The paper's CIFAR augmentation on a normalised batch ``[B, C, H, W]``: pad ``padding`` pixels of black on
    every side, crop back to ``H x W`` at an offset drawn uniformly in ``0..2*padding`` per example and axis, flip
    left-right with probability 1/2 (``flip``). Black is ``-mean / std`` after normalisation, so the result
    equals augmenting the ``uint8`` image and normalising it. The draws come from a CPU generator seeded by
    ``seed`` (`state_dict` / `load_state_dict` for checkpoints); the gather runs on the batch's device. With
    ``seed=None``, `MixupTrainer` seeds it from ``args.seed`` and the process rank."""

    def __init__(self, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor, padding: int = 4,
                 flip: bool = True, seed: int | None = None):
        if padding < 0:
            raise ValueError(f"padding must be 0 or more pixels, got {padding}")
        self.black = -(torch.as_tensor(mean, dtype=torch.float32).flatten() /
                       torch.as_tensor(std, dtype=torch.float32).flatten())
        self.padding = int(padding)
        self.flip = bool(flip)
        self.seed = seed
        self.generator = torch.Generator().manual_seed(0 if seed is None else int(seed))

    def reseed(self, seed: int) -> None:
        self.seed = int(seed)
        self.generator.manual_seed(self.seed)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def draw(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(top, left, flipped)`` of each example: offsets into the padded image, and whether it is flipped."""
        offsets = torch.randint(0, 2 * self.padding + 1, (2, batch_size), generator=self.generator)
        flipped = torch.rand(batch_size, generator=self.generator) < 0.5 if self.flip else torch.zeros(batch_size, dtype=torch.bool)
        return offsets[0], offsets[1], flipped

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"CifarCrop takes a batch of images [B, C, H, W], got shape {tuple(images.shape)}")
        batch, channels, height, width = images.shape
        top, left, flipped = (t.to(images.device) for t in self.draw(batch))
        pad = self.padding
        black = self.black.to(images.device, images.dtype).expand(channels).view(1, channels, 1, 1)
        padded = black.expand(batch, channels, height + 2 * pad, width + 2 * pad).clone()
        padded[:, :, pad:pad + height, pad:pad + width] = images
        rows = top[:, None] + torch.arange(height, device=images.device)  # [B, H]
        cols = left[:, None] + torch.arange(width, device=images.device)  # [B, W]
        cols = torch.where(flipped[:, None], cols.flip(-1), cols)
        examples = torch.arange(batch, device=images.device)[:, None, None, None]
        channel = torch.arange(channels, device=images.device)[None, :, None, None]
        return padded[examples, channel, rows[:, None, :, None], cols[:, None, None, :]]
