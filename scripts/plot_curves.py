#!/usr/bin/env python
"""Training curves of ERM vs mixup runs (the shape of the paper's Figure 3b): test error per epoch and
training loss, mean over seeds with a band of +- one standard deviation.

    python scripts/plot_curves.py --erm runs/fashion_mnist-erm-seed* --mixup runs/fashion_mnist-mixup-seed* \
        --output results/fashion_mnist_curves.png

Reads each run's `trainer_state.json` (the Trainer's log history). The training loss of a mixup run is
the loss on mixed batches, so it sits above ERM's by construction; the test error is on clean images.
"""

from __future__ import annotations

import argparse
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
        raise ValueError(f"{run_dir} has no per-epoch evaluation: train with --eval_strategy epoch")
    return error, loss


def aggregate(runs: list[dict[float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    by_epoch = defaultdict(list)
    for run in runs:
        for epoch, value in run.items():
            by_epoch[epoch].append(value)
    epochs = np.array(sorted(e for e, v in by_epoch.items() if len(v) == len(runs)))
    values = [np.array(by_epoch[e]) for e in epochs]
    return epochs, np.array([v.mean() for v in values]), np.array([v.std(ddof=1) if len(v) > 1 else 0 for v in values])


def main(argv: list[str] | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--erm", nargs="+", required=True)
    parser.add_argument("--mixup", nargs="+", required=True)
    parser.add_argument("--output", required=True, help="PNG file")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)

    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for label, dirs, color in (("ERM", args.erm, "tab:blue"), ("mixup", args.mixup, "tab:red")):
        runs = [curves(d) for d in sorted(dirs)]
        for ax, index in ((ax_err, 0), (ax_loss, 1)):
            epochs, mean, std = aggregate([r[index] for r in runs])
            ax.plot(epochs, mean, color=color, label=f"{label} ({len(runs)} seeds)")
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)
    ax_err.set(xlabel="epoch", ylabel="test error (%)", title="Test error (clean images)", yscale="log")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="Training loss (mixed batches for mixup)", yscale="log")
    for ax in (ax_err, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")
    return args.output


if __name__ == "__main__":
    main()
