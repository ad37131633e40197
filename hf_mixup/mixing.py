"""The mixing engine: mixup and CutMix on any batch, in pure torch.

Everything random here is drawn from a ``torch.Generator`` owned by a :class:`Mixer`, never from the
global torch / numpy / python RNGs, so that a training run's mixing draws can be saved in a checkpoint
and replayed exactly.

A mixing step has two halves:

1. :meth:`Mixer.draw` samples a :class:`MixDraw`: for every example ``i`` of the batch a partner
   ``index[i]`` and a weight ``lam[i]`` (the share of example ``i`` itself in the mix), plus CutMix
   boxes where CutMix was chosen.
2. :func:`mix_inputs` and :func:`mix_targets` apply one draw to any number of tensors, so the inputs
   and their targets are always mixed with the same draw.

Shapes: the first axis of every tensor is the batch axis. mixup works on any shape (images
``[B, C, H, W]``, spectrograms, waveforms ``[B, T]``, tables ``[B, F]``, hidden states); CutMix cuts
boxes out of the last two axes and needs at least ``[B, C, H, W]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

MIXUP_MODES = ("batch", "pair", "elem")
MIXUP_PARTNERS = ("random", "same_class")  # partners a Mixer draws within the batch
ALL_PARTNERS = (*MIXUP_PARTNERS, "knn")  # and from the dataset (hf_mixup.neighbours)
MIXUP_TARGETS = ("mixed", "input_only")
# The mixing settings, named as in `MixupArguments` and `DataCollatorForMixup`.
MIXING_FIELDS = (
    "mixup_alpha", "cutmix_alpha", "cutmix_minmax", "mixup_prob", "mixup_switch_prob", "mixup_mode", "mixup_partner",
    "mixup_targets",
)

_MASK64 = (1 << 64) - 1


def derive_seed(*values: int) -> int:
    """Combine integers (a base seed, a process rank, a worker seed, ...) into one 63-bit seed.

    A splitmix64 chain: seeds that differ in any input give unrelated streams, which adding ranks to
    a base seed (``seed + rank``) does not guarantee.
    """
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state ^ (int(value) & _MASK64)) & _MASK64
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        state = z ^ (z >> 31)
    return state & ((1 << 63) - 1)


def _log_gamma_sample(concentration: float, size: int, generator: torch.Generator) -> torch.Tensor:
    """Log of ``size`` Gamma(concentration, 1) samples, float64, drawn from ``generator``.

    Marsaglia & Tsang (2000) for shape >= 1; for shape < 1 the boost ``G(a) = G(a + 1) * U ** (1 / a)``
    is applied in log space, so that small alphas (0.1, 0.2) never underflow to zero.
    """
    a = concentration if concentration >= 1.0 else concentration + 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(size, dtype=torch.float64)
    todo = torch.arange(size)
    while todo.numel():
        n = todo.numel()
        x = torch.randn(n, dtype=torch.float64, generator=generator)
        u = torch.rand(n, dtype=torch.float64, generator=generator)
        v = (1.0 + c * x) ** 3
        ok = v > 0
        log_v = torch.log(torch.where(ok, v, torch.ones_like(v)))
        ok &= torch.log(u) < 0.5 * x * x + d - d * v + d * log_v
        out[todo[ok]] = math.log(d) + log_v[ok]
        todo = todo[~ok]
    if concentration < 1.0:
        u = torch.rand(size, dtype=torch.float64, generator=generator)
        out = out + torch.log(u) / concentration
    return out


def _log_gamma_scalar(concentration: float, generator: torch.Generator) -> float:
    """One draw of `_log_gamma_sample` in Python floats: the same Marsaglia & Tsang method, each attempt
    taking its four uniforms from ``generator`` in one call (the normal by Box-Muller). For the one lam of
    a batch-wide draw, a handful of scalar operations instead of a dozen tensor operations."""
    a = concentration if concentration >= 1.0 else concentration + 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        u1, u2, u3, u4 = torch.rand(4, dtype=torch.float64, generator=generator).tolist()
        x = math.sqrt(-2.0 * math.log1p(-u1)) * math.cos(2.0 * math.pi * u2)  # 1 - u1 in (0, 1]
        v = (1.0 + c * x) ** 3
        if v <= 0 or u3 <= 0.0:
            continue
        log_v = math.log(v)
        if math.log(u3) < 0.5 * x * x + d - d * v + d * log_v:
            out = math.log(d) + log_v
            if concentration < 1.0:
                if u4 <= 0.0:
                    continue
                out += math.log(u4) / concentration
            return out


# Up to this many draws, Beta samples are computed in Python floats (`_log_gamma_scalar`).
_SCALAR_DRAWS = 4


def sample_beta(
    alpha: float, size: int, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``size`` samples of Beta(alpha, alpha) in [0, 1], drawn from ``generator``, as ``dtype``.

    Beta(a, a) = X / (X + Y) with X, Y ~ Gamma(a), computed in float64 as ``sigmoid(log X - log Y)``.
    For small alphas much of the mass lies within 1e-7 of 0 and 1: in float32, such draws near 1
    round to exactly 1.0 (the example is left unmixed), those near 0 stay representable. A few samples
    (the one lam of a batch) are drawn in Python floats, many at once with tensor operations.
    """
    if not alpha > 0 or not math.isfinite(alpha):
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
    if size <= _SCALAR_DRAWS:
        differences = [
            _log_gamma_scalar(alpha, generator) - _log_gamma_scalar(alpha, generator) for _ in range(size)
        ]
        return torch.sigmoid(torch.tensor(differences, dtype=torch.float64)).to(dtype)
    log_x = _log_gamma_sample(alpha, size, generator)
    log_y = _log_gamma_sample(alpha, size, generator)
    return torch.sigmoid(log_x - log_y).to(dtype)


@dataclass(frozen=True)
class MixDraw:
    """One mixing decision for a batch of ``B`` examples.

    Attributes:
        lam: ``[B]`` float32, the weight of example ``i`` itself; the partner gets ``1 - lam[i]``.
            For CutMix examples it is the area share left to example ``i`` (after clipping the box).
        index: ``[B]`` int64, the partner of example ``i``.
        use_cutmix: ``[B]`` bool, which examples are mixed by CutMix (``None``: none).
        boxes: ``[B, 4]`` int64 ``(y0, y1, x0, x1)`` CutMix boxes on the last two axes, the region
            taken from the partner (rows of non-CutMix examples are ignored; ``None``: no CutMix).
    """

    lam: torch.Tensor
    index: torch.Tensor
    use_cutmix: torch.Tensor | None = None
    boxes: torch.Tensor | None = None
    batch_wide: bool = False

    @property
    def batch_size(self) -> int:
        return self.lam.shape[0]

    @property
    def is_identity(self) -> bool:
        """True when the draw leaves every example as it is (lam 1, or its own partner)."""
        return bool(torch.all((self.lam == 1.0) | (self.index == torch.arange(self.batch_size, device=self.index.device))))

    @classmethod
    def identity(cls, batch_size: int) -> MixDraw:
        return cls(lam=torch.ones(batch_size), index=torch.arange(batch_size))

    def to(self, device: torch.device | str) -> MixDraw:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return MixDraw(move(self.lam), move(self.index), move(self.use_cutmix), move(self.boxes), self.batch_wide)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_mixing_settings(
    *,
    mixup_alpha: float = 1.0,
    cutmix_alpha: float = 0.0,
    cutmix_minmax: Sequence[float] | None = None,
    mixup_prob: float = 1.0,
    mixup_switch_prob: float = 0.5,
    mixup_mode: str = "batch",
    mixup_partner: str = "random",
    mixup_targets: str = "mixed",
) -> tuple[float, float] | None:
    """Check the mixing settings, named as in `MixupArguments`: the one check that `Mixer`, `MixupArguments` and
    `DataCollatorForMixup` all call, so a bad value gets the same message whichever of them it is given to.

    Returns ``cutmix_minmax`` as a ``(min, max)`` tuple of floats (None when unset).

    Raises:
        ValueError: naming the setting, the value given and what it must be.
    """
    for name, value in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
        if not is_number(value) or math.isnan(value) or math.isinf(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0 (0 turns it off), got {value!r}")
    for name, value in (("mixup_prob", mixup_prob), ("mixup_switch_prob", mixup_switch_prob)):
        if not is_number(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    if mixup_mode not in MIXUP_MODES:
        raise ValueError(f"mixup_mode must be one of {', '.join(MIXUP_MODES)}; got {mixup_mode!r}")
    if mixup_partner not in ALL_PARTNERS:
        raise ValueError(f"mixup_partner must be one of {', '.join(ALL_PARTNERS)}; got {mixup_partner!r}")
    if mixup_partner != "random" and mixup_mode == "pair":
        raise ValueError(
            f"mixup_partner={mixup_partner!r} chooses each example's partner itself: use mixup_mode batch or elem, "
            "not pair"
        )
    if mixup_targets not in MIXUP_TARGETS:
        raise ValueError(f"mixup_targets must be one of {', '.join(MIXUP_TARGETS)}; got {mixup_targets!r}")
    if cutmix_minmax is None:
        return None
    minmax = tuple(cutmix_minmax) if isinstance(cutmix_minmax, (list, tuple)) else (cutmix_minmax,)
    if len(minmax) != 2 or not all(is_number(v) for v in minmax) or not 0.0 < minmax[0] <= minmax[1] <= 1.0:
        raise ValueError(
            f"cutmix_minmax must be two box side ratios (min, max) with 0 < min <= max <= 1, got {cutmix_minmax!r}"
        )
    return float(minmax[0]), float(minmax[1])


class Mixer:
    """Draws mixup / CutMix decisions from its own seeded ``torch.Generator``.

    Args:
        mixup_alpha: lam ~ Beta(mixup_alpha, mixup_alpha) for mixup; 0 turns mixup off.
        cutmix_alpha: lam ~ Beta(cutmix_alpha, cutmix_alpha) for CutMix; 0 turns CutMix off.
        cutmix_minmax: ``(min, max)`` box side ratios; when set, CutMix boxes are drawn from this range
            instead of from lam, and CutMix is on even when ``cutmix_alpha`` is 0.
        prob: probability of mixing a batch (mode ``batch``) or an example (``pair``/``elem``).
        switch_prob: when both mixup and CutMix are on, the probability of CutMix.
        mode: ``batch`` (one lam for the batch), ``pair`` (one lam per pair of partners, who swap
            with the same weight), ``elem`` (one lam per example).
        seed: seed of the generator (ignored when ``generator`` is given).
        generator: an existing CPU generator to draw from.
        partner: ``random`` (any other example of the batch) or ``same_class`` (another example of the same
            class in the batch, the paper's "SC" ablation: :meth:`draw` then needs the batch's class ids; an
            example alone in its class in the batch stays unmixed). Modes ``batch`` and ``elem``.

    With both alphas 0 and no ``cutmix_minmax`` the mixer is off: every draw is the identity.
    Partners (modes batch and elem) are the batch rolled by a random shift in ``[1, B - 1]``, so no
    example is its own partner and any batch size works; a batch of one is returned unchanged. This
    relies on the batch being shuffled, as the Trainer's loader does; mode pair draws a random matching.
    """

    def __init__(
        self,
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 0.0,
        cutmix_minmax: Sequence[float] | None = None,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = "batch",
        seed: int = 0,
        generator: torch.Generator | None = None,
        partner: str = "random",
    ):
        cutmix_minmax = check_mixing_settings(
            mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, cutmix_minmax=cutmix_minmax, mixup_prob=prob,
            mixup_switch_prob=switch_prob, mixup_mode=mode, mixup_partner=partner,
        )
        if partner not in MIXUP_PARTNERS:
            raise ValueError(
                f"mixup_partner={partner!r} takes partners from the dataset, not from the batch: a Mixer draws "
                f"{' or '.join(MIXUP_PARTNERS)} partners (MixupTrainer with mixup_partner={partner!r} draws only "
                "the weights from it)"
            )
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)
        self.cutmix_minmax = cutmix_minmax
        self.prob = float(prob)
        self.switch_prob = float(switch_prob)
        self.mode = mode
        self.partner = partner
        if generator is None:
            generator = torch.Generator().manual_seed(int(seed))
        self.generator = generator

    @classmethod
    def from_settings(cls, settings: Any, seed: int = 0) -> Mixer:
        """A mixer from an object with the :data:`MIXING_FIELDS` attributes (`MixupArguments`, a collator)."""
        return cls(
            mixup_alpha=settings.mixup_alpha,
            cutmix_alpha=settings.cutmix_alpha,
            cutmix_minmax=settings.cutmix_minmax,
            prob=settings.mixup_prob,
            switch_prob=settings.mixup_switch_prob,
            mode=settings.mixup_mode,
            seed=seed,
            # knn partners come from the dataset (hf_mixup.neighbours): the mixer draws their weights only.
            partner="random" if getattr(settings, "mixup_partner", "random") == "knn" else getattr(settings, "mixup_partner", "random"),
        )

    @property
    def mixup_enabled(self) -> bool:
        return self.mixup_alpha > 0

    @property
    def cutmix_enabled(self) -> bool:
        return self.cutmix_alpha > 0 or self.cutmix_minmax is not None

    @property
    def enabled(self) -> bool:
        return (self.mixup_enabled or self.cutmix_enabled) and self.prob > 0

    # -- state, for checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    # -- drawing ----------------------------------------------------------------------------------
    def _rand(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.generator)

    def _lam(self, alpha: float, n: int) -> torch.Tensor:
        return sample_beta(alpha, n, self.generator)

    def draw(
        self, batch_size: int, spatial_size: Sequence[int] | None = None, labels: torch.Tensor | None = None
    ) -> MixDraw:
        """Draw partners and weights for a batch of ``batch_size`` examples.

        ``spatial_size`` is ``(H, W)`` of the inputs; it is needed only when CutMix is on. ``labels`` are
        the batch's class ids ``[B]``, needed only with ``partner="same_class"``.
        """
        if self.partner == "same_class":
            _check_class_ids(labels, batch_size)
        if batch_size < 2 or not self.enabled:
            return MixDraw.identity(batch_size)
        if self.cutmix_enabled and spatial_size is None:
            raise ValueError(
                "CutMix needs inputs with two spatial axes, [batch, channels, height, width]; "
                "pass spatial_size=(height, width), or set cutmix_alpha=0 and cutmix_minmax=None for plain mixup"
            )
        n = 1 if self.mode == "batch" else batch_size
        apply = self._rand(n) < self.prob
        if self.mixup_enabled and self.cutmix_enabled:
            use_cutmix = self._rand(n) < self.switch_prob
        else:
            use_cutmix = torch.full((n,), self.cutmix_enabled)
        lam = torch.ones(n)
        if self.mixup_enabled:
            lam = torch.where(~use_cutmix, self._lam(self.mixup_alpha, n), lam)
        boxes = None
        if self.cutmix_enabled:
            if self.cutmix_alpha > 0:
                cut_lam = self._lam(self.cutmix_alpha, n)
            else:
                cut_lam = torch.ones(n)
            boxes, corrected = self._boxes(cut_lam, spatial_size)
            lam = torch.where(use_cutmix, corrected, lam)
        lam = torch.where(apply, lam, torch.ones(n))
        use_cutmix = use_cutmix & apply

        if self.mode == "batch":
            index = self._partners(batch_size, labels)
            expand = lambda t: None if t is None else t.expand(batch_size, *t.shape[1:])  # noqa: E731
            return MixDraw(expand(lam), index, expand(use_cutmix) if self.cutmix_enabled else None, expand(boxes), True)
        if self.mode == "elem":
            index = self._partners(batch_size, labels)
            return MixDraw(lam, index, use_cutmix if self.cutmix_enabled else None, boxes)
        # pair: a random perfect matching; both members of a pair share lam (and the CutMix box).
        order = torch.randperm(batch_size, generator=self.generator)
        first, second = order[0 : batch_size - 1 : 2], order[1:batch_size:2]
        index = torch.arange(batch_size)
        index[first], index[second] = second, first
        k = first.numel()
        pair_of = torch.arange(batch_size)  # which pair's draw each example uses
        pair_of[first], pair_of[second] = torch.arange(k), torch.arange(k)
        paired = torch.zeros(batch_size, dtype=torch.bool)
        paired[first], paired[second] = True, True
        lam = torch.where(paired, lam[pair_of], torch.ones(batch_size))
        use_cutmix = use_cutmix[pair_of] & paired
        if boxes is not None:
            boxes = boxes[pair_of]
        return MixDraw(lam, index, use_cutmix if self.cutmix_enabled else None, boxes)

    def _partners(self, batch_size: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.partner == "same_class":
            return same_class_partners(labels, self.generator)
        return self._random_partners(batch_size)

    def _random_partners(self, batch_size: int) -> torch.Tensor:
        """Partners without fixed points: the batch rolled by a random shift ``s`` in ``[1, B - 1]``,
        so no example is its own partner (a plain ``randperm`` leaves each one unmixed with probability
        1 / B). The data loader has already shuffled the batch, so which example meets which is as random
        as with a random permutation (timm pairs a shuffled batch with its reverse for the same reason),
        and a roll lets :func:`mix_inputs` mix in two contiguous passes without gathering a copy."""
        shift = int(torch.randint(1, batch_size, (1,), generator=self.generator))
        return (torch.arange(batch_size) + shift) % batch_size

    def _boxes(self, lam: torch.Tensor, spatial_size: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """CutMix boxes ``[n, 4]`` (y0, y1, x0, x1) and the lam left after clipping them to the image."""
        height, width = int(spatial_size[0]), int(spatial_size[1])
        n = lam.shape[0]
        if self.cutmix_minmax is not None:
            lo, hi = self.cutmix_minmax
            cut_h = torch.randint(int(height * lo), int(height * hi) + 1, (n,), generator=self.generator)
            cut_w = torch.randint(int(width * lo), int(width * hi) + 1, (n,), generator=self.generator)
            cut_h, cut_w = cut_h.clamp(max=height), cut_w.clamp(max=width)
            y0 = (torch.rand(n, generator=self.generator) * (height - cut_h + 1)).floor().long()
            x0 = (torch.rand(n, generator=self.generator) * (width - cut_w + 1)).floor().long()
            y1, x1 = y0 + cut_h, x0 + cut_w
        else:
            ratio = torch.sqrt(1.0 - lam.double())
            cut_h, cut_w = (height * ratio).long(), (width * ratio).long()
            cy = torch.randint(0, height, (n,), generator=self.generator)
            cx = torch.randint(0, width, (n,), generator=self.generator)
            y0, y1 = (cy - cut_h // 2).clamp(0, height), (cy + cut_h // 2).clamp(0, height)
            x0, x1 = (cx - cut_w // 2).clamp(0, width), (cx + cut_w // 2).clamp(0, width)
        boxes = torch.stack([y0, y1, x0, x1], dim=1)
        corrected = 1.0 - ((y1 - y0) * (x1 - x0)).to(torch.float64) / float(height * width)
        return boxes, corrected.to(torch.float32)


def _check_class_ids(labels: torch.Tensor | None, batch_size: int) -> None:
    if labels is None:
        raise ValueError("mixup_partner='same_class' needs the batch's class ids: pass labels=[batch] class ids to draw()")
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or torch.is_floating_point(labels) or labels.shape[0] != batch_size:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(
            f"mixup_partner='same_class' needs integer class ids of shape [{batch_size}], got {shape}: it applies to "
            "single-label classification (use mixup_partner='random' for soft, multi-label or regression targets)"
        )


def same_class_partners(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``index[i]``: another example of ``i``'s class in the batch, from a random cyclic order of each class
    (so no example is its own partner when its class has two or more members in the batch); an example
    alone in its class is its own partner, and a mix with itself leaves it unmixed."""
    labels = labels.detach().to("cpu", torch.int64)
    size = labels.shape[0]
    shuffled = torch.randperm(size, generator=generator)
    order = shuffled[torch.argsort(labels[shuffled], stable=True)]  # grouped by class, random within a class
    grouped = labels[order]
    starts = torch.ones(size, dtype=torch.bool)
    starts[1:] = grouped[1:] != grouped[:-1]
    group = torch.cumsum(starts.long(), 0) - 1
    first = torch.nonzero(starts).squeeze(1)
    counts = torch.diff(torch.cat([first, torch.tensor([size])]))
    position = torch.arange(size) - first[group]
    following = first[group] + (position + 1) % counts[group]
    index = torch.empty(size, dtype=torch.int64)
    index[order] = order[following]
    return index


def dominant_targets(
    targets: torch.Tensor, draw: MixDraw, num_classes: int | None = None, label_smoothing: float = 0.0
) -> torch.Tensor:
    """The paper's "mix inputs only": each mixed example keeps the target of the example with the larger
    weight (its own when ``lam >= 0.5``, else its partner's), unmixed. Class ids ``[B]`` stay class ids
    unless ``num_classes`` is given (then one-hot, smoothed by ``label_smoothing``, as :func:`mix_targets`
    returns); other targets (soft, multi-label, regression) are picked row by row."""
    _check_batch("targets", targets, draw)
    index = draw.index.to(targets.device)
    keep = (draw.lam.to(targets.device) >= 0.5).view(-1, *([1] * (targets.ndim - 1)))
    picked = torch.where(keep, targets, targets.index_select(0, index))
    if num_classes is not None and not torch.is_floating_point(picked) and picked.ndim == 1:
        return one_hot(picked, num_classes, label_smoothing)
    if label_smoothing and torch.is_floating_point(picked) and picked.ndim == 2:
        return picked * (1.0 - label_smoothing) + label_smoothing / picked.shape[1]
    return picked


def _check_batch(name: str, tensor: torch.Tensor, draw: MixDraw) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.ndim == 0 or tensor.shape[0] != draw.batch_size:
        raise ValueError(
            f"{name} has shape {tuple(tensor.shape)} but the draw is for a batch of {draw.batch_size}: "
            "the first axis of every tensor must be the batch axis"
        )


def _weights(lam: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return lam.to(like.device, like.dtype).view(-1, *([1] * (like.ndim - 1)))


def box_mask(draw: MixDraw, height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """``[B, 1, H, W]`` bool: True inside each example's CutMix box (False for non-CutMix examples)."""
    if draw.boxes is None:
        return torch.zeros(draw.batch_size, 1, height, width, dtype=torch.bool, device=device)
    boxes = draw.boxes.to(device)
    ys = torch.arange(height, device=device).view(1, height, 1)
    xs = torch.arange(width, device=device).view(1, 1, width)
    y0, y1, x0, x1 = (boxes[:, k].view(-1, 1, 1) for k in range(4))
    inside = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
    inside &= draw.use_cutmix.to(device).view(-1, 1, 1)
    return inside.unsqueeze(1)


# Above this many elements per example, a loop of per-example lerps (one pass over memory, no gathered
# copy of the batch) beats gathering the partners first; below it the loop's per-call overhead wins.
_PER_EXAMPLE_LOOP_NUMEL = 1 << 15


def mix_inputs(inputs: torch.Tensor, draw: MixDraw, out: torch.Tensor | None = None) -> torch.Tensor:
    """Mix a batch of inputs with ``draw``; returns a new tensor of the same shape and dtype.

    mixup: ``out[i] = lam[i] * x[i] + (1 - lam[i]) * x[index[i]]``; CutMix: ``out[i]`` is ``x[i]``
    with the box taken from ``x[index[i]]``. The caller's tensor is never changed; an identity draw
    returns it as it is. Integer inputs (token ids, raw uint8 pixels) are refused: convert them to
    floats (or mix embeddings) first.

    ``out``: a tensor of the same shape, dtype and device to write into (a workspace reused across
    steps saves allocating, and on the CPU first-touching, a batch-sized tensor every step); ignored
    for inputs that require grad (hidden features), which are mixed out of place for autograd.
    """
    _check_batch("inputs", inputs, draw)
    if not torch.is_floating_point(inputs):
        raise ValueError(
            f"cannot mix inputs of dtype {inputs.dtype}: mixup averages inputs, so they must be floating point. "
            "Convert images or audio to float (e.g. with the model's image processor or feature extractor); "
            "token ids cannot be mixed, mix their embeddings instead"
        )
    if draw.is_identity:
        return inputs
    if inputs.requires_grad:
        out = None
    elif out is not None and (out.shape != inputs.shape or out.dtype != inputs.dtype or out.device != inputs.device):
        raise ValueError(
            f"out must match the inputs: shape {tuple(inputs.shape)}, {inputs.dtype} on {inputs.device}; "
            f"got {tuple(out.shape)}, {out.dtype} on {out.device}"
        )
    elif out is not None and out.data_ptr() == inputs.data_ptr():
        raise ValueError("out must not be the inputs themselves: mixing reads every example while writing")
    device = inputs.device
    index = draw.index.to(device)
    cutmix = draw.use_cutmix is not None and bool(draw.use_cutmix.any())
    if cutmix and inputs.ndim < 4:
        raise ValueError(
            f"CutMix cuts boxes out of the last two axes and needs inputs of shape [batch, channels, height, width], "
            f"got shape {tuple(inputs.shape)}; use plain mixup (cutmix_alpha=0, cutmix_minmax=None) for this input"
        )
    if cutmix and draw.batch_wide:
        # One box for the whole batch: copy the batch and paste the partners' box region.
        y0, y1, x0, x1 = (int(v) for v in draw.boxes[0])
        result = out.copy_(inputs) if out is not None else inputs.clone()
        result[..., y0:y1, x0:x1] = inputs[..., y0:y1, x0:x1].index_select(0, index)
        return result
    shift = _roll_shift(draw.index)
    if not cutmix and shift is not None and (draw.batch_wide or inputs.dtype not in (torch.float16, torch.bfloat16)):
        # Partners are the batch rolled by ``shift``: two contiguous lerps, one pass over memory.
        weight = float(draw.lam[0]) if draw.batch_wide else _weights(draw.lam.to(device), inputs)
        head = lambda w: w if isinstance(w, float) else w[: -shift]  # noqa: E731
        tail = lambda w: w if isinstance(w, float) else w[-shift:]  # noqa: E731
        if out is None and not inputs.requires_grad:
            out = torch.empty_like(inputs)
        if out is None:  # hidden features: out-of-place, for autograd
            return torch.cat([torch.lerp(inputs[shift:], inputs[:-shift], head(weight)),
                              torch.lerp(inputs[:shift], inputs[-shift:], tail(weight))])
        torch.lerp(inputs[shift:], inputs[:-shift], head(weight), out=out[:-shift])
        torch.lerp(inputs[:shift], inputs[-shift:], tail(weight), out=out[-shift:])
        return out
    if not cutmix and not inputs.requires_grad and inputs[0].numel() >= _PER_EXAMPLE_LOOP_NUMEL:
        result = out if out is not None else torch.empty_like(inputs)
        for i, (j, lam) in enumerate(zip(draw.index.tolist(), draw.lam.tolist())):
            torch.lerp(inputs[j], inputs[i], lam, out=result[i])
        return result
    if out is not None and not cutmix and (draw.batch_wide or inputs.dtype not in (torch.float16, torch.bfloat16)):
        torch.index_select(inputs, 0, index, out=out)
        weight = float(draw.lam[0]) if draw.batch_wide else _weights(draw.lam, inputs)
        return out.lerp_(inputs, weight)
    partner = inputs.index_select(0, index)
    if not cutmix:
        if draw.batch_wide:
            return _into(out, partner.lerp_(inputs, float(draw.lam[0])))
        if inputs.dtype in (torch.float16, torch.bfloat16):
            # Per-example weights rounded to 8 bits would disagree with the targets' weights: mix in float32.
            mixed = partner.float().lerp_(inputs.float(), _weights(draw.lam, partner.float()))
            return _into(out, mixed.to(inputs.dtype))
        return _into(out, partner.lerp_(inputs, _weights(draw.lam, inputs)))
    # Some examples by CutMix, others by mixup (mode pair/elem with switch_prob).
    use_cutmix = draw.use_cutmix.to(device)
    lam = draw.lam.to(device)
    weight = torch.where(use_cutmix, torch.ones_like(lam), lam)
    mixed = torch.lerp(partner.float(), inputs.float(), _weights(weight, partner.float())).to(inputs.dtype)
    mask = box_mask(draw, inputs.shape[-2], inputs.shape[-1], device)
    mask = mask.view(mask.shape[0], *([1] * (inputs.ndim - 3)), *mask.shape[-2:])
    cut_rows = use_cutmix.nonzero().squeeze(1)
    mixed[cut_rows] = torch.where(mask[cut_rows], partner[cut_rows], inputs[cut_rows])
    return _into(out, mixed)


def _roll_shift(index: torch.Tensor) -> int | None:
    """``s`` when ``index[i] == (i + s) % B`` for every ``i`` (with ``0 < s < B``), else ``None``."""
    size = index.shape[0]
    shift = int(index[0])
    if not 0 < shift < size:
        return None
    return shift if torch.equal(index.cpu(), (torch.arange(size) + shift) % size) else None


def _into(out: torch.Tensor | None, result: torch.Tensor) -> torch.Tensor:
    return result if out is None else out.copy_(result)


def one_hot(class_ids: torch.Tensor, num_classes: int, label_smoothing: float = 0.0) -> torch.Tensor:
    """``[B]`` class ids to ``[B, num_classes]`` float32 targets, smoothed as in ``F.cross_entropy``."""
    _check_class_id_range(class_ids, num_classes)
    targets = torch.nn.functional.one_hot(class_ids.long(), num_classes).to(torch.float32)
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
    return targets


def _check_class_id_range(class_ids: torch.Tensor, num_classes: int) -> None:
    if class_ids.ndim != 1:
        raise ValueError(f"class ids must have shape [batch], got {tuple(class_ids.shape)}")
    if class_ids.numel() and (int(class_ids.min()) < 0 or int(class_ids.max()) >= num_classes):
        raise ValueError(
            f"class ids must lie in [0, {num_classes - 1}] to build {num_classes}-class targets, "
            f"got values from {int(class_ids.min())} to {int(class_ids.max())}; check num_labels and the label column"
        )


def _mixed_one_hot(class_ids: torch.Tensor, draw: MixDraw, num_classes: int) -> torch.Tensor:
    """``lam * onehot(y) + (1 - lam) * onehot(y[index])`` written straight into one zeroed ``[B, C]`` tensor by two
    scatters (no one-hot matrices): the same values as the lerp of one-hots, and where an example and its partner
    share the class, ``(1 - lam) + lam``, which is exactly 1 in float32."""
    _check_class_id_range(class_ids, num_classes)
    ids = class_ids.long().view(-1, 1)
    lam = draw.lam.to(class_ids.device, torch.float32).view(-1, 1)
    out = torch.zeros(ids.shape[0], num_classes, device=class_ids.device)
    out.scatter_add_(1, ids.index_select(0, draw.index.to(class_ids.device)), 1.0 - lam)
    return out.scatter_add_(1, ids, lam)


def mix_targets(
    targets: torch.Tensor, draw: MixDraw, num_classes: int | None = None, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mix targets with the same draw as their inputs: ``lam * y[i] + (1 - lam) * y[index[i]]``.

    - class ids ``[B]`` (integer): turned into ``[B, num_classes]`` one-hot targets first (smoothed by
      ``label_smoothing``), so the result sums to 1 over classes;
    - soft / one-hot ``[B, C]``, multi-label ``[B, C]`` and regression ``[B]`` or ``[B, K]`` targets
      (floating point): mixed linearly as they are (``label_smoothing`` applies to ``[B, C]`` class
      distributions only, and only when given).

    For CutMix examples lam is the area share, as in the official CutMix code.
    """
    _check_batch("targets", targets, draw)
    if not torch.is_floating_point(targets) and targets.ndim == 1:
        if num_classes is None:
            raise ValueError("num_classes is needed to turn class ids into mixed soft targets")
        if not label_smoothing and not draw.is_identity:
            return _mixed_one_hot(targets, draw, num_classes)
        targets = one_hot(targets, num_classes, label_smoothing)
    elif not torch.is_floating_point(targets):
        targets = targets.float()  # integer multi-hot labels
    elif label_smoothing and targets.ndim == 2:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / targets.shape[1]
    if draw.is_identity:
        return targets
    index = draw.index.to(targets.device)
    return targets.index_select(0, index).lerp(targets, _weights(draw.lam, targets))


def mix_batch(
    batch: Mapping[str, Any],
    draw: MixDraw,
    label_key: str = "labels",
    input_keys: Sequence[str] | None = None,
    num_classes: int | None = None,
    label_smoothing: float = 0.0,
    targets: str = "mixed",
) -> dict[str, Any]:
    """Mix a collated batch (a dict of tensors): its inputs with :func:`mix_inputs`, its
    ``label_key`` with :func:`mix_targets` (``targets="mixed"``) or :func:`dominant_targets`
    (``"input_only"``). Returns a new dict; the caller's is left as it is.

    ``input_keys`` names the tensors to mix; by default every floating-point tensor with the batch
    on its first axis except the labels (integer side inputs such as ``attention_mask`` stay as they
    are). A batch with no floating-point input is refused.
    """
    out = dict(batch)
    for key in select_input_keys(batch, draw.batch_size, label_key, input_keys):
        out[key] = mix_inputs(batch[key], draw)
    if targets not in MIXUP_TARGETS:
        raise ValueError(f"mixup_targets must be one of {', '.join(MIXUP_TARGETS)}; got {targets!r}")
    if label_key in batch and batch[label_key] is not None:
        combine = mix_targets if targets == "mixed" else dominant_targets
        out[label_key] = combine(batch[label_key], draw, num_classes, label_smoothing)
    return out


def select_input_keys(
    batch: Mapping[str, Any], batch_size: int, label_key: str = "labels", input_keys: Sequence[str] | None = None
) -> list[str]:
    """The keys of ``batch`` that hold inputs to mix (see :func:`mix_batch`)."""
    if input_keys is not None:
        missing = [k for k in input_keys if k not in batch]
        if missing:
            raise ValueError(f"input_keys {missing} are not in the batch, which has {sorted(batch)}")
        return list(input_keys)
    keys, integer_keys = [], []
    for key, value in batch.items():
        if key == label_key or not isinstance(value, torch.Tensor) or value.ndim == 0 or value.shape[0] != batch_size:
            continue
        (keys if torch.is_floating_point(value) else integer_keys).append(key)
    if not keys:
        raise ValueError(
            f"found no floating-point input to mix in the batch (keys {sorted(batch)}; integer tensors {integer_keys}). "
            "mixup averages inputs: feed float features (pixel_values, input_values, input_features, ...); "
            "token ids cannot be mixed: mix their embeddings on the device instead (MixupTrainer with "
            'mixup_layer="embeddings", or 0, and no DataCollatorForMixup)'
        )
    return keys


def spatial_size_of(inputs: torch.Tensor) -> tuple[int, int] | None:
    """``(H, W)`` of a ``[B, C, H, W, ...]``-like batch (its last two axes), or None below 4 axes."""
    return (int(inputs.shape[-2]), int(inputs.shape[-1])) if inputs.ndim >= 4 else None
