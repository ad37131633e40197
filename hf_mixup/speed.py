"""Speed measures of `MixupTrainer` that have nothing to do with mixing, kept where a benchmark in `results/` shows
they pay (results/bench_tabular.md: the table MLP, where a step is about a millisecond and the Trainer's own
per-step work is a large share of it)."""

from __future__ import annotations

import functools
import hashlib
import inspect
import textwrap

import torch
from accelerate.optimizer import AcceleratedOptimizer
from accelerate.utils import DistributedType, is_lomo_available


def skip_gc_in_free_memory(accelerator) -> None:
    """Replace `free_memory` on this one accelerator instance (`MixupTrainer(skip_gc_at_train_start=True)`):
    it resets what `Accelerator.free_memory` resets (the prepared objects and the step counter) without
    `release_memory`'s full `gc.collect()`; on the CPU there is no device cache to release. Other
    accelerators in the process keep accelerate's own method."""

    def free_memory(*objects):
        accelerator._schedulers = []
        accelerator._optimizers = []
        accelerator._models = []
        accelerator._dataloaders = []
        accelerator.step = 0
        return [None] * len(objects)

    accelerator.free_memory = free_memory


def unclipped_grad_norm(accelerator, model: torch.nn.Module) -> torch.Tensor | None:
    """The total L2 norm of ``model``'s gradients: the number `Trainer._get_grad_norm` logs when nothing is clipped
    (``max_grad_norm=0``), which transformers gets from ``accelerator.clip_grad_norm_(parameters, inf)`` every step.
    That call also multiplies every gradient by exactly 1.0 and parses torch's version twice (about 0.15 ms a
    step of a small MLP here); the norm itself is the same `torch.nn.utils.get_total_norm`. None where this
    shortcut does not hold (several processes, FSDP, DeepSpeed, XLA, or a gradient scaler whose unscaling
    accelerate does first): the caller then takes transformers' own path."""
    if accelerator.distributed_type != DistributedType.NO or accelerator.scaler is not None:
        return None
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return None
    return torch.nn.utils.get_total_norm(grads, 2.0)


class LeanAcceleratedOptimizer(AcceleratedOptimizer):
    """accelerate's `AcceleratedOptimizer` whose `step` leaves out the two `is_lomo_available()` lookups that
    accelerate's makes every call: each searches the import path for the package (about 0.15 ms here, so 0.3 ms of the
    table MLP's 1 ms step). What is left is what accelerate's `step` does without a gradient scaler, off XLA and
    for an optimizer that is not LOMO (`lean_optimizer_step` checks all three once): step the wrapped optimizer
    when the gradients are synchronised."""

    def step(self, closure=None):
        if self.gradient_state.sync_gradients:
            self.optimizer.step(closure)


# The source of `AcceleratedOptimizer.step` that `LeanAcceleratedOptimizer.step` was checked against (accelerate
# 1.15): another version's step may do more, and then accelerate's class is kept.
CHECKED_STEP_SHA1 = "9f86c6e5959c972ba844b73380b48b8c7f32d921"


@functools.cache
def _source_sha1(function) -> str | None:
    try:
        return hashlib.sha1(textwrap.dedent(inspect.getsource(function)).encode()).hexdigest()
    except (OSError, TypeError):
        return None


def lean_optimizer_step(optimizer) -> bool:
    """Make this one prepared optimizer a `LeanAcceleratedOptimizer` where its step is the same (no scaler, not XLA,
    not LOMO, and accelerate's `step` the one it was checked against); returns whether it did. Other optimizers in
    the process keep accelerate's class."""
    if type(optimizer) is not AcceleratedOptimizer or optimizer.scaler is not None:
        return False
    if optimizer.accelerator_state.distributed_type == DistributedType.XLA:
        return False
    if is_lomo_available():
        from lomo_optim import AdaLomo, Lomo

        if isinstance(optimizer.optimizer, (Lomo, AdaLomo)):
            return False
    if _source_sha1(AcceleratedOptimizer.step) != CHECKED_STEP_SHA1:
        return False
    optimizer.__class__ = LeanAcceleratedOptimizer
    return True
