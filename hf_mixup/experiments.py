"""What the benchmark and reproduction scripts (`scripts/bench_*.py`, `scripts/reproduce_*.py`) share.

- `machine()` / `describe_machine()`: the CPU model, cores, torch and transformers versions and device
  a figure was measured on;
- `StepTimer`: the one step timer, a `TrainerCallback` (`tick()` times a hand-written loop the same way);
- `time_interleaved()`: times candidates round by round, each once per round, so that all of them see the
  same machine state;
- `write_results()`: a results table as `<output>.md` and its figures as `<output>.json`; the json
  always records the command line (`sys.argv`) and the machine; `render_results()` writes the page again
  from the json alone;
- `run_grid()`: runs each (seed, method) cell of an experiment, records every finished cell on disk and
  skips it when the grid is started again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

__all__ = [
    "GridOutcome",
    "StepTimer",
    "Timings",
    "command_line",
    "describe_machine",
    "file_digest",
    "machine",
    "render_results",
    "run_grid",
    "time_interleaved",
    "write_results",
]


# --------------------------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What a measurement ran on: CPU model and cores, torch threads, library versions and the device."""
    import torch
    import transformers

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = "mps"
    else:
        device = "cpu"
    return {
        "cpu": _cpu_model(),
        "architecture": platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
    }


def describe_machine(info: Mapping[str, Any] | None = None) -> str:
    """One line for a table's heading, e.g. ``AMD EPYC (x86_64), 2 CPUs, torch 2.6.0 (2 threads),
    transformers 4.50.0, cpu``."""
    info = machine() if info is None else info
    return (
        f"{info['cpu']} ({info['architecture']}), {info['usable_cpus']} CPUs, torch {info['torch']} "
        f"({info['torch_threads']} threads), transformers {info['transformers']}, {info['device']}"
    )


# --------------------------------------------------------------------------------------------- timing


class StepTimer(TrainerCallback):
    """Wall time between consecutive optimizer steps (data loading included), per `train()` call.

    As a callback it ticks at the end of every optimizer step and restarts at every `train()`; a plain
    PyTorch loop calls `tick()` after each of its steps (and `reset()` before the first). `times[k]`
    is the time from the end of step k+1 to the end of step k+2, so `steady(warmup)` drops the
    intervals that end within the first `warmup + 1` steps.
    """

    def __init__(self):
        self.times: list[float] = []
        self._last: float | None = None

    def reset(self) -> None:
        self.times.clear()
        self._last = None

    def tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now

    def steady(self, warmup: int = 0) -> list[float]:
        """The step times after the first `warmup` intervals."""
        return self.times[warmup:]

    def on_train_begin(self, args, state, control, **kwargs):
        self.reset()

    def on_step_end(self, args, state, control, **kwargs):
        self.tick()


@dataclass
class Timings:
    """One candidate's timed calls: wall seconds and what each call returned, in round order."""

    seconds: list[float] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _round_order(names: list[str], r: int, order: str) -> list[str]:
    if order == "rotate":  # every candidate takes every position in turn
        shift = r % len(names)
        return names[shift:] + names[:shift]
    if order == "alternate":  # forward, then backward
        return names if r % 2 == 0 else names[::-1]
    if order == "fixed":
        return names
    raise ValueError(f"order must be 'rotate', 'alternate' or 'fixed', not {order!r}")


def time_interleaved(
    candidates: Mapping[str, Callable[[Any], Any]],
    rounds: int,
    *,
    warmup_rounds: int = 0,
    order: str = "rotate",
    prepare: Mapping[str, Callable[[int], Any]] | None = None,
    keep_results: bool = False,
    on_round: Callable[[int, dict[str, Timings]], None] | None = None,
    progress: str | None = None,
) -> dict[str, Timings]:
    """Time every candidate once per round, `warmup_rounds + rounds` rounds in all.

    Interleaving (rather than timing each candidate's calls one after the other) means a drift in the
    machine's state (memory bandwidth, frequency, a neighbour's load) hits every candidate alike, so
    the ratio of their medians is what survives it. Each call is ``fn(arg)`` with ``arg`` the value of
    ``prepare[name](round)`` when the candidate has a preparation (made outside the timed region, e.g.
    a fresh copy of an input mixed in place) and the round index otherwise. The first `warmup_rounds`
    rounds are run but not recorded. `order`: ``rotate`` (the default; each round starts one candidate
    later), ``alternate`` (forward, then reversed) or ``fixed``. With `keep_results`, what each call
    returns is kept in `Timings.results`; without, it is dropped inside the timed call (freeing a large
    output is then part of its cost, as is allocating it). `on_round(r, timings)` is called after each
    recorded round; `progress` names a tqdm bar over the rounds.
    """
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    prepare = prepare or {}
    unknown = set(prepare) - set(candidates)
    if unknown:
        raise ValueError(f"prepare names candidates that are not timed: {sorted(unknown)}")
    names = list(candidates)
    timings = {name: Timings() for name in names}
    total = warmup_rounds + rounds
    steps: Iterable[int] = range(total)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=progress, unit="round")
    for r in steps:
        for name in _round_order(names, r, order):
            arg = prepare[name](r) if name in prepare else r
            fn = candidates[name]
            if keep_results:
                start = time.perf_counter()
                result = fn(arg)
                elapsed = time.perf_counter() - start
            else:
                start = time.perf_counter()
                fn(arg)  # the result is freed before the clock stops
                elapsed = time.perf_counter() - start
                result = None
            del arg
            if r >= warmup_rounds:
                timings[name].seconds.append(elapsed)
                if keep_results:
                    timings[name].results.append(result)
        if r >= warmup_rounds and on_round is not None:
            on_round(r - warmup_rounds, timings)
    return timings


# --------------------------------------------------------------------------------------------- results


def command_line(argv: Sequence[str] | None = None, script: str | None = None) -> str:
    """The command that reproduces this run: ``python <script> <arguments>``.

    `script` defaults to ``sys.argv[0]`` (a script passes its ``__file__``, so that calling its
    `main(argv)` from elsewhere still names it), shown relative to the working directory when inside
    it; `argv` defaults to ``sys.argv[1:]``.
    """
    script = script if script is not None else (sys.argv[0] if sys.argv and sys.argv[0] else "-")
    if os.path.isabs(script):
        relative = os.path.relpath(script)
        if not relative.startswith(os.pardir):
            script = relative
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["python", script, *args])


def write_results(
    output: str,
    text: str | None,
    payload: Mapping[str, Any],
    *,
    argv: Sequence[str] | None = None,
    script: str | None = None,
    echo: bool = True,
    render: Callable[[dict[str, Any]], str] | None = None,
) -> dict[str, Any]:
    """Write ``text`` to ``<output>.md`` and ``payload`` to ``<output>.json`` (printing ``text``).

    The json always gets ``command`` (`command_line(argv, script)`), ``argv`` (the full ``sys.argv`` of
    the process) and ``machine`` (`machine()`), next to the payload's own keys. With ``render`` (and ``text``
    None), the page is ``render(record)`` of exactly what the json records, so `render_results` can write it
    again from the json alone. Returns what was written.
    """
    record = dict(payload)
    record["command"] = command_line(argv, script)
    record["argv"] = list(sys.argv)
    record["machine"] = machine()
    if text is None:
        if render is None:
            raise ValueError("write_results needs the page's text or a render function")
        text = render(record)
    if echo:
        print(text)
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with open(output + ".md", "w") as f:
        f.write(text)
    with open(output + ".json", "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    return record


def render_results(output: str, render: Callable[[dict[str, Any]], str]) -> str:
    """Write ``<output>.md`` again from ``<output>.json`` alone (``render(record)``), without running anything:
    the page follows a change of its renderer, its figures stay those the json records. Returns the page."""
    with open(output + ".json") as f:
        record = json.load(f)
    text = render(record)
    with open(output + ".md", "w") as f:
        f.write(text)
    return text


# --------------------------------------------------------------------------------------------- grid


@dataclass
class GridOutcome:
    """A finished grid: ``results[method][seed]``, the seconds its cells took when they ran (those
    reused from an earlier start included) and how many cells were reused."""

    results: dict[str, dict[int, Any]]
    seconds: float
    reused: int


def file_digest(path: str) -> str:
    """SHA-1 of a file (e.g. a recipe), for a grid's `config`: editing the file invalidates its cells."""
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def _cell_key(method: str, seed: int) -> str:
    return f"{method}/seed{seed}"


def _load_state(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        return {"cells": {}}
    with open(path) as f:
        state = json.load(f)
    if not isinstance(state, dict) or not isinstance(state.get("cells"), dict):
        raise ValueError(f"{path} is not a grid state file (no 'cells')")
    return state


def _save_state(path: str, state: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)  # atomic: an interrupted write leaves the previous state


def run_grid(
    run_cell: Callable[[str, int], Any],
    methods: Sequence[str],
    seeds: Iterable[int],
    *,
    state_file: str,
    config: Mapping[str, Any] | None = None,
    still_done: Callable[[str, int], bool] | None = None,
    desc: str = "runs",
    jobs: int = 1,
) -> GridOutcome:
    """Run ``run_cell(method, seed)`` for every seed and method (seed by seed, the methods of a seed
    one after the other), skipping the cells already finished.

    Each finished cell is written to `state_file` (json) with its result (which must be JSON data),
    its duration and `config`, the settings its result depends on. A cell recorded with the same
    `config` (and, if given, for which ``still_done(method, seed)`` holds, e.g. its run folder is
    still there) is not run again: an interrupted grid restarts where it stopped, and a grid extended
    with more seeds runs only the new cells. A cell recorded under another `config` is run again.

    With ``jobs > 1``, up to that many cells run at once (in threads: ``run_cell`` should start a
    process of its own, as the reproduction scripts do, e.g. to share one GPU); each cell is still
    written to `state_file` as soon as it finishes. A failing cell stops the grid after the running
    cells end, and the finished ones stay recorded.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    seeds = list(seeds)
    methods = list(methods)
    if len(set(methods)) != len(methods) or len(set(seeds)) != len(seeds):
        raise ValueError("methods and seeds must not repeat")
    config = json.loads(json.dumps(dict(config or {})))  # compared as stored (tuples -> lists)
    state = _load_state(state_file)
    cells = [(seed, method) for seed in seeds for method in methods]

    def finished(method: str, seed: int) -> dict[str, Any] | None:
        record = state["cells"].get(_cell_key(method, seed))
        if record is None or record.get("config") != config:
            return None
        if still_done is not None and not still_done(method, seed):
            return None
        return record

    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
    from threading import Lock

    from tqdm.auto import tqdm

    lock = Lock()

    def run_and_record(method: str, seed: int) -> dict[str, Any]:
        start = time.perf_counter()
        result = json.loads(json.dumps(run_cell(method, seed)))  # as a restart will read it
        record = {
            "method": method, "seed": seed, "config": config, "result": result,
            "seconds": time.perf_counter() - start,
        }
        with lock:
            latest = _load_state(state_file)  # another grid may share the file: keep its cells
            latest["cells"][_cell_key(method, seed)] = record
            _save_state(state_file, latest)
        return record

    records: dict[tuple[str, int], dict[str, Any]] = {}
    reused = 0
    with tqdm(total=len(cells), desc=desc, unit="run") as bar:
        todo = []
        for seed, method in cells:
            record = finished(method, seed)
            if record is None:
                todo.append((seed, method))
            else:
                records[method, seed] = record
                reused += 1
                bar.update(1)
        if jobs == 1:
            for seed, method in todo:
                bar.set_postfix_str(f"{method}, seed {seed}")
                records[method, seed] = run_and_record(method, seed)
                bar.update(1)
        elif todo:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = {pool.submit(run_and_record, method, seed): (method, seed) for seed, method in todo}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)  # the bar moves as each run ends
                    for future in done:
                        if future.exception() is not None:
                            for other in pending:
                                other.cancel()
                            raise future.exception()
                        records[futures[future]] = future.result()
                        bar.update(1)
    results: dict[str, dict[int, Any]] = {method: {} for method in methods}
    seconds = 0.0
    for seed, method in cells:
        results[method][seed] = records[method, seed]["result"]
        seconds += records[method, seed]["seconds"]
    if reused:
        print(f"{reused} of {len(cells)} cells reused from {state_file}")
    return GridOutcome(results, seconds, reused)
