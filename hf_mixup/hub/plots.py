"""Training curves of ERM vs mixup runs (the shape of the paper's Figure 3b), from each run's
`trainer_state.json` (the Trainer's log history), and their reliability diagrams (confidence vs accuracy), from
each run's `test_calibration.json` (written by `hf-mixup train` at its final evaluation)."""

from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np

# The reliability diagram's bins of a run's final evaluation (`hf_mixup.metrics.calibration_of`).
CALIBRATION_FILE = "test_calibration.json"
RELIABILITY_FILE = "reliability.png"


def curves(run_dir: str) -> tuple[dict[float, float], dict[float, float]]:
    """(epoch -> test error %, epoch -> training loss) of one run."""
    path = os.path.join(run_dir, "trainer_state.json")
    if not os.path.isfile(path):
        raise ValueError(f"{run_dir} has no trainer_state.json: is it a finished run of scripts/train.py?")
    with open(path) as f:
        history = json.load(f)["log_history"]
    error = {round(h["epoch"], 3): 100.0 * (1.0 - h["eval_accuracy"]) for h in history if "eval_accuracy" in h}
    loss = {round(h["epoch"], 3): h["loss"] for h in history if "loss" in h}
    if not error:
        raise ValueError(f"{run_dir} has no per-epoch evaluation accuracy: the curves are for classifiers "
                         "trained with --eval_strategy epoch")
    return error, loss


def aggregate(runs: list[dict[float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    by_epoch = defaultdict(list)
    for run in runs:
        for epoch, value in run.items():
            by_epoch[epoch].append(value)
    epochs = np.array(sorted(e for e, v in by_epoch.items() if len(v) == len(runs)))
    values = [np.array(by_epoch[e]) for e in epochs]
    return epochs, np.array([v.mean() for v in values]), np.array([v.std(ddof=1) if len(v) > 1 else 0 for v in values])


def pyplot():
    """`matplotlib.pyplot` on the Agg backend (files only), or a ValueError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError("plotting needs matplotlib: pip install matplotlib (or hf_mixup[plots])") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, output: str, title: str | None) -> str:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output


def plot_runs(erm: list[str], mixup: list[str], output: str, title: str | None = None) -> str:
    """Test error per epoch and training loss of ERM vs mixup runs (mean over runs, a band of +- one
    standard deviation), saved as a PNG at ``output``. Needs matplotlib (``pip install hf_mixup[plots]``)."""
    plt = pyplot()

    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for label, dirs, color in (("ERM", erm, "tab:blue"), ("mixup", mixup, "tab:red")):
        runs = [curves(d) for d in sorted(dirs)]
        count = f"{len(runs)} seeds" if len(runs) > 1 else "1 run"
        for ax, index in ((ax_err, 0), (ax_loss, 1)):
            epochs, mean, std = aggregate([r[index] for r in runs])
            ax.plot(epochs, mean, color=color, label=f"{label} ({count})")
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)
    ax_err.set(xlabel="epoch", ylabel="test error (%)", title="Test error (clean inputs)")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="Training loss (mixed batches for mixup)")
    for ax in (ax_err, ax_loss):  # log scale where every value is positive (an error of 0 is not)
        values = [v for line in ax.get_lines() for v in line.get_ydata()]
        if values and min(values) > 0:
            ax.set_yscale("log")
    for ax in (ax_err, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(plt, fig, output, title)


def read_calibration(run_dir: str) -> dict[str, list]:
    """The bins of a run's final evaluation (`CALIBRATION_FILE`)."""
    path = os.path.join(run_dir, CALIBRATION_FILE)
    if not os.path.isfile(path):
        raise ValueError(
            f"{run_dir} has no {CALIBRATION_FILE}: it is written by the final evaluation of `hf-mixup train` "
            "(single-label classifiers); train the run again with this version of hf_mixup"
        )
    with open(path) as f:
        return json.load(f)


def pool_bins(runs: list[dict[str, list]]) -> dict[str, list]:
    """The bins of several runs (seeds) added up: the diagram of all their test predictions together."""
    if len({run["n_bins"] for run in runs}) != 1:
        raise ValueError(f"the runs have different numbers of bins: {sorted({run['n_bins'] for run in runs})}")
    return {"n_bins": runs[0]["n_bins"], **{key: np.sum([run[key] for run in runs], axis=0).tolist()
                                            for key in ("count", "confidence_sum", "correct_sum")}}


def plot_reliability(groups: dict[str, list[dict[str, list]]], output: str, title: str | None = None) -> str:
    """Reliability diagrams, one panel per method (``{"ERM": [bins, ...], "mixup": [...]}``, the bins of each
    run, pooled over runs): accuracy per confidence bin as bars, the gap to the bin's mean confidence hatched,
    the diagonal of perfect calibration, and the ECE of the pooled predictions in the legend. Saved as a PNG at
    ``output``. Needs matplotlib."""
    from ..metrics.functional import ece_of_bins

    plt = pyplot()
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 4.2), squeeze=False)
    for ax, (method, runs) in zip(axes[0], groups.items()):
        bins = pool_bins(runs)
        n_bins = bins["n_bins"]
        count = np.array(bins["count"], dtype=float)
        filled = count > 0
        centres = (np.arange(n_bins) + 0.5) / n_bins
        accuracy = np.divide(bins["correct_sum"], count, out=np.zeros(n_bins), where=filled)
        confidence = np.divide(bins["confidence_sum"], count, out=centres.copy(), where=filled)
        runs_note = f"{len(runs)} runs" if len(runs) > 1 else "1 run"
        ax.bar(centres[filled], accuracy[filled], width=1 / n_bins, color="tab:blue", edgecolor="black",
               linewidth=0.5, label=f"accuracy ({runs_note}, {int(count.sum())} predictions)")
        low, gap = np.minimum(accuracy, confidence), np.abs(confidence - accuracy)
        ax.bar(centres[filled], gap[filled], bottom=low[filled], width=1 / n_bins,
               color="tab:red", alpha=0.3, hatch="//", edgecolor="tab:red", linewidth=0.5,
               label=f"gap to confidence: ECE {100 * ece_of_bins(bins):.2f}%")
        ax.plot([0, 1], [0, 1], "k--", linewidth=1)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top-1 probability)", ylabel="accuracy", title=method)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    return _save(plt, fig, output, title)


def plot_run_reliability(groups: dict[str, list[str]], output: str, title: str | None = None) -> str:
    """`plot_reliability` from run folders (``{"ERM": [run_dir, ...], "mixup": [...]}``), each with its
    `CALIBRATION_FILE`."""
    return plot_reliability({method: [read_calibration(d) for d in sorted(dirs)] for method, dirs in groups.items()},
                            output, title)
