"""Mixing sites of any Hugging Face model, found from its structure (no forked modelling code, forward hooks only).

A site is where a forward pass mixes the batch with one `MixDraw`:

- ``"embeddings"``: the output of ``model.get_input_embeddings()``, the token embeddings before position
  embeddings and normalisation (wordMixup / EmbedMix). The mixed example attends to the union of the two
  attention masks: `EmbeddingsSite.prepare` rewrites ``attention_mask`` before the model builds its masks.
- ``k >= 1``: the hidden states entering block ``k`` (1-based) of the model's stack of blocks: the
  `nn.ModuleList` of ``config.num_hidden_layers`` modules (BERT's ``bert.encoder.layer``, ViT's
  ``vit.layers``, ModernBERT's ``model.layers``, wav2vec2's transformer layers...), or of ``len(config.depths)``
  stages for the CNNs (HF ResNet, ConvNeXt). Blocks before ``k`` see each sequence with its own mask; blocks
  ``k`` and after see the union of the two masks (``mask="union"``, the default) or the first sequence's mask
  (``mask="first"``, as TMix does). ``k = 1`` is the embedding module's output.
- ``"pooled"``: the features entering the model's final linear layer, the one with ``config.num_labels``
  outputs (senMixup; for a CNN, the pooled features before the classifier).

Sequence lengths never change, and a per-example draw (``mixup_mode="elem"``) works at every site: each example
is mixed with its own weight, and where its weight is 1 it keeps its own mask too.

``0`` is the floating-point inputs themselves (`InputsSite`, CutMix included), and for the timm ResNets and
the CIFAR family ``k`` keeps the paper's numbering of residual stages (`StageSite`, see `hf_mixup.hidden`).
Two more sources of a mixed batch stand beside the sites: `DatasetPartners` (``mixup_partner="knn"``, the
partners fetched from the dataset) and `Premixed` (a batch that `DataCollatorForMixup` mixed already).

Each of them mixes a training batch in :meth:`Site.mix` and hands back one `Mixed`: the model inputs, the draw
the forward pass runs under, and the `~hf_mixup.losses.Targets` of the one loss that `MixupTrainer` computes
for every site (`hf_mixup.losses.per_example_loss`).

Example:

```python
>>> from hf_mixup.sites import site_for
>>> site = site_for(model, 3)                    # the hidden states entering block 3
>>> inputs = site.prepare(inputs, draw)          # the attention mask, where the site changes it
>>> with site.mixing(draw):
...     logits = model(**inputs).logits
```
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .hidden import mixing_at, mixing_points
from .losses import Targets
from .mixing import MixDraw, Mixer, mix_inputs, select_input_keys, spatial_size_of

MASK_MODES = ("union", "first")


def _config(model: nn.Module):
    return getattr(model, "config", None)


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList] | None:
    """``(name, blocks)``: the model's stack of blocks, the `nn.ModuleList` of ``config.num_hidden_layers``
    modules (or of ``len(config.depths)`` stages), the outermost one when several qualify; None when none does."""
    config = _config(model)
    sizes = [getattr(config, "num_hidden_layers", None)]
    depths = getattr(config, "depths", None)
    if isinstance(depths, (list, tuple)):
        sizes.append(len(depths))
    for size in sizes:
        if not isinstance(size, int) or size < 1:
            continue
        found = [(name, module) for name, module in model.named_modules()
                 if isinstance(module, nn.ModuleList) and len(module) == size and name]
        if found:  # named_modules lists parents before children: the first is the outermost
            return min(found, key=lambda item: item[0].count("."))
    return None


def find_head(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """``(name, layer)``: the last `nn.Linear` with ``config.num_labels`` outputs (the classifier's output layer)."""
    config = _config(model)
    num_labels = getattr(config, "num_labels", None)
    found = [(name, module) for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and module.out_features == num_labels]
    return found[-1] if found else None


def available_sites(model: nn.Module) -> list[str]:
    """The sites of ``model``, in words (for error messages)."""
    sites = ["0 (the inputs)"]
    if isinstance(_input_embeddings(model), nn.Module):
        sites.append('"embeddings"')
    blocks = find_blocks(model)
    if blocks is not None:
        sites.append(f"1..{len(blocks[1])} (entering a block of {blocks[0]})")
    if find_head(model) is not None:
        sites.append('"pooled"')
    return sites


def _input_embeddings(model: nn.Module) -> nn.Module | None:
    try:
        return model.get_input_embeddings()
    except (AttributeError, NotImplementedError):  # transformers' default for models without input embeddings
        return None


def _union(mask: torch.Tensor, draw: MixDraw, first_only: torch.Tensor) -> torch.Tensor:
    """Each example's mask joined with its partner's: a position is attended where either attends (bool: True
    attends; float: additive, 0 attends, so the maximum; integer 0/1: the maximum). Examples in ``first_only``
    (not mixed) keep their own."""
    if mask.shape[0] != draw.batch_size:  # one mask broadcast over the batch: the same for every example
        return mask
    partner = mask.index_select(0, draw.index.to(mask.device))
    joined = mask | partner if mask.dtype == torch.bool else torch.maximum(mask, partner)
    keep = first_only.to(mask.device).view(-1, *([1] * (mask.ndim - 1)))
    return torch.where(keep, mask, joined)


def _unmixed(draw: MixDraw) -> torch.Tensor:
    """``[B]`` bool: examples the draw leaves as they are (weight 1, or their own partner)."""
    return (draw.lam == 1.0) | (draw.index == torch.arange(draw.batch_size, device=draw.index.device))


@dataclass
class Mixed:
    """A training batch as a site hands it back: the model's ``inputs``, the ``targets`` of the loss, and the
    ``draw`` that the forward pass runs under (``site.mixing(draw)``; None: the batch needs no hooks)."""

    inputs: dict[str, Any]
    targets: Targets
    site: Site | None = None
    draw: MixDraw | None = None

    def forward_hooks(self) -> contextlib.AbstractContextManager:
        """The context a forward pass of this batch runs in: the site's hooks, when it mixes inside the model."""
        return self.site.mixing(self.draw) if self.site is not None and self.draw is not None else contextlib.nullcontext()


def unmixed(inputs: Mapping[str, Any], labels: torch.Tensor) -> Mixed:
    """A batch left as it is (ERM, evaluation, the warm-up and off epochs)."""
    return Mixed(dict(inputs), Targets(labels))


class Site:
    """A place in a model's forward pass where a draw mixes the batch."""

    name = "site"

    def prepare(self, inputs: dict[str, Any], draw: MixDraw) -> dict[str, Any]:
        """The model inputs for a mixed pass (a new dict; the caller's tensors are not changed)."""
        return dict(inputs)

    @contextlib.contextmanager
    def mixing(self, draw: MixDraw) -> Iterator[None]:
        yield

    def spatial_size(self, inputs: Mapping[str, Any], mixer: Mixer) -> tuple[int, int] | None:
        """``(H, W)`` for the mixer's CutMix boxes; None where the site mixes no images."""
        return None

    def mix(self, inputs: Mapping[str, Any], labels: torch.Tensor, mixer: Mixer, *, input_only: bool = False) -> Mixed:
        """Draw partners within the batch and weights from ``mixer`` (class ids passed for ``same_class``
        partners), and hand back the batch prepared for a pass mixed here, with the draw's targets."""
        batch_size = labels.shape[0]
        by_class = {"labels": labels} if getattr(mixer, "partner", "random") == "same_class" else {}
        draw = mixer.draw(batch_size, self.spatial_size(inputs, mixer), **by_class)
        targets = Targets.of_partners(labels, draw.index, draw.lam, input_only)
        return Mixed(self.prepare(dict(inputs), draw), targets, self, draw)


class InputsSite(Site):
    """``mixup_layer=0``: the floating-point inputs, mixed before the model (token ids cannot be; see
    `holds_token_ids`), by mixup or CutMix. On the CPU each input is mixed into a workspace reused from step to
    step, where every fresh batch-sized tensor costs its page faults (results/bench_mixing.md times a new output
    against a reused one); the previous step's mixed batch is no longer needed once its backward pass is done."""

    name = "inputs"

    def __init__(self):
        self._workspaces: dict[str, torch.Tensor] = {}

    def spatial_size(self, inputs: Mapping[str, Any], mixer: Mixer) -> tuple[int, int] | None:
        if not mixer.cutmix_enabled:
            return None
        keys = select_input_keys(inputs, _batch_size(inputs))
        return spatial_size_of(inputs[keys[0]])

    def prepare(self, inputs: dict[str, Any], draw: MixDraw) -> dict[str, Any]:
        inputs = dict(inputs)
        for key in select_input_keys(inputs, draw.batch_size):
            inputs[key] = mix_inputs(inputs[key], draw, out=self._workspace(key, inputs[key]))
        return inputs

    def _workspace(self, key: str, like: torch.Tensor) -> torch.Tensor | None:
        if like.device.type != "cpu" or like.requires_grad:  # GPUs cache their allocations
            return None
        buffer = self._workspaces.get(key)
        if buffer is None or buffer.shape != like.shape or buffer.dtype != like.dtype:
            buffer = self._workspaces[key] = torch.empty_like(like)
        return buffer


def _batch_size(inputs: Mapping[str, Any]) -> int:
    return next(value.shape[0] for value in inputs.values() if isinstance(value, torch.Tensor) and value.ndim > 0)


def holds_token_ids(inputs: Mapping[str, Any]) -> bool:
    """Whether a batch's inputs are token ids (``input_ids``, and no floating-point input to mix)."""
    has_float = any(isinstance(value, torch.Tensor) and torch.is_floating_point(value) and value.ndim > 0
                    for value in inputs.values())
    return not has_float and "input_ids" in inputs


class DatasetPartners(Site):
    """``mixup_partner="knn"``: each example mixed with the partner the dataset fetched for it (the
    ``partner_<key>`` fields of `hf_mixup.neighbours.PartnerDataset`, given here without the prefix), with
    weights from the mixer: ``x = lam x + (1 - lam) x_partner``, targets ``y`` and ``y_partner``. One per batch."""

    name = "dataset partners"

    def __init__(self, partner: Mapping[str, Any], label_key: str = "labels"):
        self.partner = partner
        self.label_key = label_key

    def mix(self, inputs: Mapping[str, Any], labels: torch.Tensor, mixer: Mixer, *, input_only: bool = False) -> Mixed:
        partner_labels = self.partner.get(self.label_key, self.partner.get("label"))
        if partner_labels is None:
            raise ValueError(
                f"mixup_partner='knn' needs the partner's label ({'partner_' + self.label_key!r}) in the batch: keep "
                "the partner_ columns of hf_mixup.neighbours.PartnerDataset"
            )
        batch_size = labels.shape[0]
        lam = mixer.draw(batch_size).lam  # its weights; the partners are the dataset's
        inputs = dict(inputs)
        for key in select_input_keys(inputs, batch_size):
            x = inputs[key]
            weight = lam.to(x.device, x.dtype).view(-1, *([1] * (x.ndim - 1)))
            inputs[key] = self.partner[key].to(x.dtype).lerp(x, weight)
        return Mixed(inputs, Targets(labels, partner_labels.to(labels.device), lam, input_only))


class Premixed(Site):
    """A batch that `DataCollatorForMixup` mixed already: soft ``labels`` and its weights ``lam`` (for the log)."""

    name = "collator"

    def __init__(self, lam: torch.Tensor):
        self.lam = lam

    def mix(self, inputs: Mapping[str, Any], labels: torch.Tensor, mixer: Mixer | None = None, *,
            input_only: bool = False) -> Mixed:
        return Mixed(dict(inputs), Targets(labels, lam=self.lam, premixed=True))


class StageSite(Site):
    """The features entering residual stage ``k`` of a timm ResNet or a CIFAR model, or the final pooling
    (``k`` = stages + 1): the paper's numbering, see `hf_mixup.hidden`."""

    def __init__(self, model: nn.Module, k: int):
        stages = len(mixing_points(model)) - 1
        if not 1 <= k <= stages + 1:
            raise ValueError(
                f"mixup_layer={k} but this model has {stages} stages: "
                f"use 1..{stages} (entering a stage) or {stages + 1} (before the final pooling)"
            )
        self.model, self.k = model, k
        self.name = f"stage {k}"

    @contextlib.contextmanager
    def mixing(self, draw: MixDraw) -> Iterator[None]:
        with mixing_at(self.model, self.k, draw):
            yield


class EmbeddingsSite(Site):
    """The output of ``get_input_embeddings()``; the attention mask of each mixed example is the union of both."""

    name = "embeddings"

    def __init__(self, model: nn.Module):
        module = _input_embeddings(model)
        if not isinstance(module, nn.Module):
            raise ValueError(
                f'mixup_layer="embeddings" needs a model with input embeddings (get_input_embeddings()); '
                f"{type(model).__name__} has none. Its sites: {', '.join(available_sites(model))}"
            )
        self.module = module

    def prepare(self, inputs: dict[str, Any], draw: MixDraw) -> dict[str, Any]:
        inputs = dict(inputs)
        mask = inputs.get("attention_mask")
        if isinstance(mask, torch.Tensor):
            inputs["attention_mask"] = _union(mask, draw, _unmixed(draw))
        return inputs

    @contextlib.contextmanager
    def mixing(self, draw: MixDraw) -> Iterator[None]:
        handle = self.module.register_forward_hook(lambda module, args, output: mix_inputs(output, draw))
        try:
            yield
        finally:
            handle.remove()


class BlockSite(Site):
    """The hidden states entering block ``k`` (1-based); blocks ``k`` and after attend with the joined mask."""

    def __init__(self, model: nn.Module, k: int, mask: str = "union"):
        found = find_blocks(model)
        if found is None:
            raise ValueError(
                f"mixup_layer={k} needs a stack of blocks: an nn.ModuleList of config.num_hidden_layers modules (or "
                f"of len(config.depths) stages); {type(model).__name__} has none. Its sites: "
                f"{', '.join(available_sites(model))}"
            )
        self.blocks_name, self.blocks = found
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(self.blocks):
            raise ValueError(
                f"mixup_layer={k!r}: this {type(model).__name__} has {len(self.blocks)} blocks ({self.blocks_name}): "
                f"use 1..{len(self.blocks)}, or one of {', '.join(available_sites(model))}"
            )
        if mask not in MASK_MODES:
            raise ValueError(f"mask must be one of {', '.join(MASK_MODES)}; got {mask!r}")
        self.k, self.mask = k, mask
        self.name = f"block {k}"

    @contextlib.contextmanager
    def mixing(self, draw: MixDraw) -> Iterator[None]:
        first_only = _unmixed(draw)

        def mix(module, args, kwargs):
            if args:
                return (mix_inputs(args[0], draw), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": mix_inputs(kwargs["hidden_states"], draw)}

        def join_masks(module, args, kwargs):
            if isinstance(kwargs.get("attention_mask"), torch.Tensor):
                return args, {**kwargs, "attention_mask": _union(kwargs["attention_mask"], draw, first_only)}
            if len(args) > 1 and isinstance(args[1], torch.Tensor):
                return (args[0], _union(args[1], draw, first_only), *args[2:]), kwargs
            return None

        handles = [self.blocks[self.k - 1].register_forward_pre_hook(mix, with_kwargs=True)]
        if self.mask == "union" and not bool(first_only.all()):
            handles += [block.register_forward_pre_hook(join_masks, with_kwargs=True)
                        for block in list(self.blocks)[self.k - 1:]]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()


class PooledSite(Site):
    """The features entering the final linear layer (``config.num_labels`` outputs)."""

    name = "pooled"

    def __init__(self, model: nn.Module):
        found = find_head(model)
        if found is None:
            raise ValueError(
                f'mixup_layer="pooled" needs a final nn.Linear with config.num_labels outputs; {type(model).__name__} '
                f"has none. Its sites: {', '.join(available_sites(model))}"
            )
        self.head_name, self.head = found

    @contextlib.contextmanager
    def mixing(self, draw: MixDraw) -> Iterator[None]:
        handle = self.head.register_forward_pre_hook(lambda module, args: (mix_inputs(args[0], draw), *args[1:]))
        try:
            yield
        finally:
            handle.remove()


def site_for(model: nn.Module, layer: int | str, mask: str = "union") -> Site:
    """The site of ``mixup_layer`` ``layer`` in ``model``: ``0``, ``"embeddings"``, ``k >= 1`` (residual stage ``k``
    of a timm ResNet or CIFAR model, else block ``k``) or ``"pooled"``.

    Raises:
        ValueError: the model has no such site; the message names what was looked for and the sites it has.
    """
    if isinstance(layer, str) and layer.isdigit():
        layer = int(layer)
    if layer == 0:
        return InputsSite()
    if layer == "embeddings":
        return EmbeddingsSite(model)
    if layer == "pooled":
        return PooledSite(model)
    if isinstance(layer, int) and not isinstance(layer, bool):
        try:
            mixing_points(model)
        except ValueError:  # no residual stages: a stack of blocks
            return BlockSite(model, layer, mask=mask)
        return StageSite(model, layer)
    raise ValueError(
        f'mixup_layer must be 0 (the inputs), "embeddings", a block k >= 1 or "pooled"; got {layer!r}'
    )
