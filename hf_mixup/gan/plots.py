"""Pictures of toy GAN runs: one run's snapshots (``samples.png``) and the paper's Figure 5 grid.

Drawn on ``matplotlib.figure.Figure`` objects (no pyplot), so the caller's plotting backend is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from .data import toy_means


def _load_snapshots(run_dir: str) -> list[tuple[int, object, object]]:
    from safetensors.torch import load_file

    found = []
    for path in sorted((Path(run_dir) / "samples").glob("iteration_*.safetensors")):
        tensors = load_file(str(path))
        found.append((int(path.stem.split("_")[1]), tensors["real"].numpy(), tensors["generated"].numpy()))
    if not found:
        raise ValueError(f"{run_dir} has no samples/iteration_*.safetensors: is it the output_dir of a GAN run?")
    return found


def _history(run_dir: str) -> list[dict]:
    path = Path(run_dir) / "metrics.json"
    return json.loads(path.read_text())["snapshots"] if path.exists() else []


def _draw(axis, real, generated, data: str, title: str | None) -> None:
    means = toy_means(data).numpy()
    limit = abs(means).max() + 0.5
    axis.plot(real[:, 0], real[:, 1], ".", color="tab:blue", markersize=2, label="real")
    axis.plot(generated[:, 0], generated[:, 1], ".", color="tab:orange", alpha=0.25, markersize=2, label="generated")
    axis.set_xlim(-limit, limit)
    axis.set_ylim(-limit, limit)
    axis.set_aspect("equal")
    axis.set_xticks([])
    axis.set_yticks([])
    if title:
        axis.set_title(title, fontsize=9)


def plot_run(run_dir: str, output: str, iterations: Sequence[int] | None = None) -> str:
    """One row of panels, real (blue) and generated (orange) points at each recorded snapshot of a run."""
    config = json.loads((Path(run_dir) / "gan_config.json").read_text())
    metrics = {entry["iteration"]: entry for entry in _history(run_dir)}
    snapshots = [s for s in _load_snapshots(run_dir) if iterations is None or s[0] in iterations]
    figure = Figure(figsize=(2.2 * len(snapshots), 2.6), layout="constrained")
    axes = figure.subplots(1, len(snapshots), squeeze=False)
    for axis, (iteration, real, generated) in zip(axes[0], snapshots):
        entry = metrics.get(iteration)
        note = f"\n{entry['modes_covered']}/{entry['num_modes']} modes, {100 * entry['high_quality']:.0f}% HQ" if entry else ""
        _draw(axis, real, generated, config["data"], f"iteration {iteration}{note}")
    figure.savefig(output, dpi=110)
    return output


def plot_grid(rows: Sequence[tuple[str, str]], output: str, iterations: Sequence[int], title: str | None = None) -> str:
    """Figure 5: one row per ``(label, run_dir)``, one column per iteration in ``iterations`` (every run must
    have recorded those snapshots)."""
    figure = Figure(figsize=(2.0 * len(iterations), 2.2 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), len(iterations), squeeze=False)
    for r, (label, run_dir) in enumerate(rows):
        config = json.loads((Path(run_dir) / "gan_config.json").read_text())
        snapshots = {iteration: (real, generated) for iteration, real, generated in _load_snapshots(run_dir)}
        metrics = {entry["iteration"]: entry for entry in _history(run_dir)}
        for c, iteration in enumerate(iterations):
            if iteration not in snapshots:
                raise ValueError(f"{run_dir} has no snapshot at iteration {iteration} (it has {sorted(snapshots)})")
            entry = metrics.get(iteration)
            note = f"{entry['modes_covered']}/{entry['num_modes']} modes" if entry else ""
            _draw(axes[r][c], *snapshots[iteration], config["data"], f"iteration {iteration}\n{note}" if r == 0 else note)
        axes[r][0].set_ylabel(label, fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.savefig(output, dpi=110)
    return output
