"""Pieces shared by the benchmark scripts (run as `python scripts/bench_*.py`)."""

from __future__ import annotations

import time

from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """Wall time from one optimizer step's end to the next (data loading included), per train() call."""

    def __init__(self):
        self.times: list[float] = []
        self._last = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = None

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now


def write_results(output: str, text: str, payload: dict) -> None:
    """Print ``text`` and write it to ``output.md``, with ``payload`` as ``output.json``."""
    import json
    import os

    print(text)
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with open(output + ".md", "w") as f:
        f.write(text)
    with open(output + ".json", "w") as f:
        json.dump(payload, f, indent=2)
