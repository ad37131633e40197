"""Training curves of ERM vs mixup runs (the shape of the paper's Figure 3b), from each run's
`trainer_state.json` (the Trainer's log history)."""

from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np


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


def plot_runs(erm: list[str], mixup: list[str], output: str, title: str | None = None) -> str:
    """Test error per epoch and training loss of ERM vs mixup runs (mean over runs, a band of +- one
    standard deviation), saved as a PNG at ``output``. Needs matplotlib (``pip install hf_mixup[plots]``)."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError("plotting needs matplotlib: pip install matplotlib (or hf_mixup[plots])") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output
