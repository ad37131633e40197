"""Speed measures of `MixupTrainer` that have nothing to do with mixing, kept where a benchmark in `results/` shows
they pay (`MixupTrainer(skip_gc_at_train_start=True)`: results/bench_tabular.md)."""

from __future__ import annotations


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
