"""The paper's toy data for GANs (Section 3.7, Figure 5) and the mode-coverage metrics.

The authors' released code (``gan/example_gan.py`` in hongyi-zhang/mixup) draws 2-D points from a mixture of
Gaussians with a small standard deviation (0.01):

- ``ring``: 8 means evenly spaced on the unit circle, starting at (0, 1);
- ``grid``: 25 means at ``{-2, -1, 0, 1, 2}^2 / 2``.

:func:`mode_coverage` scores generated samples the way VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et al.,
2018) do: a sample is *high quality* when it lies within 3 standard deviations of its nearest mode, and a mode is
*covered* when at least one high-quality sample lies nearest to it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

TOY_DATA = ("ring", "grid")
DEFAULT_STD = 0.01


def _check_name(name: str) -> None:
    if name not in TOY_DATA:
        raise ValueError(f"unknown toy data set {name!r}: choose one of {', '.join(TOY_DATA)}")


def toy_means(name: str) -> torch.Tensor:
    """``[K, 2]`` float32: the modes of ``ring`` (K = 8) or ``grid`` (K = 25), in the released code's order."""
    _check_name(name)
    if name == "ring":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([torch.sin(angles), torch.cos(angles)], dim=1).float()
    side = torch.arange(-2, 3, dtype=torch.float32)
    return torch.cartesian_prod(side, side) / 2


def toy_data(
    name: str,
    n: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    std: float = DEFAULT_STD,
) -> torch.Tensor:
    """``[n, 2]`` float32 samples of the toy mixture ``name``: a uniformly chosen mode plus Gaussian noise of
    standard deviation ``std``. Draws from ``generator`` when given, else from a generator seeded with ``seed``
    (the global RNG is never used; ``seed=None`` means 0)."""
    _check_name(name)
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not (isinstance(std, (int, float)) and std >= 0 and math.isfinite(std)):
        raise ValueError(f"std must be a finite number >= 0, got {std!r}")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    means = toy_means(name)
    modes = torch.randint(len(means), (n,), generator=generator)
    return torch.randn(n, 2, generator=generator) * std + means[modes]


@dataclass(frozen=True)
class ModeCoverage:
    """What :func:`mode_coverage` measures on a set of samples."""

    modes_covered: int
    num_modes: int
    high_quality: float  # share of the samples within 3 std of their nearest mode, in [0, 1]

    @property
    def covers_all(self) -> bool:
        return self.modes_covered == self.num_modes

    def to_dict(self) -> dict:
        return {**asdict(self), "covers_all": self.covers_all}


def mode_coverage(samples: torch.Tensor, name: str, *, std: float | None = None) -> ModeCoverage:
    """Modes covered and the high-quality share of ``samples`` (``[N, 2]``) against the modes of ``name``.

    A sample is high quality when its distance to the nearest mode is at most ``3 * std`` (``std``: the data's
    standard deviation, 0.01 by default); a mode is covered when it is the nearest mode of at least one
    high-quality sample. Non-finite samples count as low quality.
    """
    means = toy_means(name)
    std = DEFAULT_STD if std is None else std
    if not (isinstance(std, (int, float)) and std > 0 and math.isfinite(std)):
        raise ValueError(f"std must be a positive finite number, got {std!r}")
    samples = torch.as_tensor(samples)
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"samples must have shape [N, 2] (2-D points), got {tuple(samples.shape)}")
    if samples.shape[0] == 0:
        raise ValueError("mode_coverage needs at least one sample")
    samples = samples.detach().to("cpu", torch.float64)
    distances = torch.cdist(samples, means.double())
    nearest_distance, nearest = distances.min(dim=1)
    good = torch.isfinite(nearest_distance) & (nearest_distance <= 3 * std)
    covered = torch.unique(nearest[good]).numel()
    return ModeCoverage(modes_covered=int(covered), num_modes=len(means), high_quality=float(good.double().mean()))
