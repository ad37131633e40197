#!/usr/bin/env python
"""ERM against mixup on a two-class toy problem in the plane (the paper's Figure 1b): p(y = 1 | x).

    python scripts/toy_decision.py --output results/toy_decision

Two interleaved half moons (scikit-learn's `make_moons`, `--num_samples` points with Gaussian noise
`--noise`) train the table MLP (`TabularMLPForPrediction`, two hidden layers of `--hidden_sizes` ReLU
units) through `MixupTrainer`, once with mixup_alpha 0 (ERM) and once with mixup_alpha `--alpha`, on the
same data, initial weights and batches. The probability of class 1 over the plane is drawn for both side by
side (`<output>.png`); `<output>.md` / `<output>.json` hold the training accuracy and how much of the
plotted plane each model leaves uncertain (0.1 < p < 0.9), with the command line and the machine.
ERM draws a sharp boundary close to the points; mixup's probability changes linearly between the classes.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch

from hf_mixup.cli.errors import UsageError

METHODS = ("erm", "mixup")


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad flag reported in one line (no usage block) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def parse_args(argv: list[str] | None):
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_samples", type=int, default=200, help="points in the toy set (both classes)")
    parser.add_argument("--noise", type=float, default=0.1, help="the std of the Gaussian noise on the moons")
    parser.add_argument("--alpha", type=float, default=1.0, help="mixup_alpha of the mixup model")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=0.01)
    parser.add_argument("--hidden_sizes", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--grid", type=int, default=200, help="points per side of the plotted plane")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join("results", "toy_decision"), help="<output>.png, .md and .json")
    args = parser.parse_args(argv)
    if args.num_samples < 4:
        raise UsageError(f"--num_samples {args.num_samples}: give at least 4 points (2 per class)")
    if args.epochs < 1 or args.batch_size < 1 or args.grid < 2:
        raise UsageError("--epochs and --batch_size must be >= 1 and --grid >= 2")
    if not math.isfinite(args.alpha) or args.alpha <= 0:
        raise UsageError(f"--alpha {args.alpha}: the mixup model needs mixup_alpha > 0")
    if args.noise < 0 or any(h < 1 for h in args.hidden_sizes):
        raise UsageError("--noise must be >= 0 and every --hidden_sizes value >= 1")
    return args


def toy_set(num_samples: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half moons: float32 points ``[N, 2]`` and int64 labels ``[N]`` (0 and 1)."""
    from sklearn.datasets import make_moons

    points, labels = make_moons(n_samples=num_samples, noise=noise, random_state=seed)
    return points.astype(np.float32), labels.astype(np.int64)


def train(args, points: np.ndarray, labels: np.ndarray, mixup_alpha: float, output_dir: str):
    """The table MLP trained on the toy set through `MixupTrainer` (ERM when ``mixup_alpha`` is 0)."""
    from hf_mixup import MixupArguments, MixupTrainer
    from hf_mixup.data.tabular import TensorTable
    from hf_mixup.models import TabularMLPConfig, TabularMLPForPrediction

    torch.manual_seed(args.seed)  # the same initial weights for both methods
    config = TabularMLPConfig(num_features=2, hidden_sizes=args.hidden_sizes, num_labels=2,
                              id2label={0: "class 0", 1: "class 1"}, label2id={"class 0": 0, "class 1": 1})
    model = TabularMLPForPrediction(config)
    training_args = MixupArguments(
        output_dir=output_dir,
        mixup_alpha=mixup_alpha,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        seed=args.seed,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
    )
    trainer = MixupTrainer(model=model, args=training_args, train_dataset=TensorTable(points, labels))
    trainer.train()
    return model.eval()


@torch.no_grad()
def class_one_probability(model, points: np.ndarray) -> np.ndarray:
    """p(y = 1 | x) for float points ``[N, 2]``."""
    logits = model(torch.as_tensor(points, dtype=torch.float32)).logits
    return torch.softmax(logits, dim=-1)[:, 1].numpy()


def plane(points: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``grid x grid`` mesh over the points' bounding box, widened by half a unit on each side."""
    low, high = points.min(axis=0) - 0.5, points.max(axis=0) + 0.5
    return np.meshgrid(np.linspace(low[0], high[0], grid), np.linspace(low[1], high[1], grid))


def plot(args, points, labels, xx, yy, surfaces: dict, path: str) -> bool:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.2), sharey=True)
    titles = {"erm": "ERM", "mixup": f"mixup (alpha = {args.alpha:g})"}
    for ax, method in zip(axes, METHODS):
        shading = ax.contourf(xx, yy, surfaces[method], levels=np.linspace(0, 1, 11), cmap="Blues", vmin=0, vmax=1)
        ax.scatter(*points[labels == 0].T, s=12, c="tab:green", edgecolors="k", linewidths=0.3, label="class 0")
        ax.scatter(*points[labels == 1].T, s=12, c="tab:orange", edgecolors="k", linewidths=0.3, label="class 1")
        ax.set_title(titles[method])
        ax.set_xlabel("x1")
    axes[0].set_ylabel("x2")
    axes[0].legend(loc="lower left", fontsize="small")
    fig.colorbar(shading, ax=axes, label="p(y = 1 | x)")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> dict:
    """Train both models, plot, write ``<output>.md`` / ``.json`` / ``.png``; the json's payload."""
    from hf_mixup.experiments import command_line, describe_machine, write_results

    args = parse_args(argv)
    start = time.perf_counter()
    points, labels = toy_set(args.num_samples, args.noise, args.seed)
    xx, yy = plane(points, args.grid)
    mesh = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)
    surfaces, figures = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for method in METHODS:
            alpha = 0.0 if method == "erm" else args.alpha
            model = train(args, points, labels, alpha, os.path.join(scratch, method))
            p_mesh = class_one_probability(model, mesh)
            p_points = class_one_probability(model, points)
            surfaces[method] = p_mesh.reshape(xx.shape)
            figures[method] = {
                "mixup_alpha": alpha,
                "train_accuracy": float(((p_points > 0.5).astype(np.int64) == labels).mean()),
                "uncertain_share": float(((p_mesh > 0.1) & (p_mesh < 0.9)).mean()),
                "mean_confidence": float(np.maximum(p_mesh, 1 - p_mesh).mean()),
            }
    seconds = time.perf_counter() - start
    lines = [
        "# ERM against mixup on a toy problem (Figure 1b)",
        "",
        f"Two half moons ({args.num_samples} points, noise {args.noise:g}, seed {args.seed}); the table MLP "
        f"({' x '.join(map(str, args.hidden_sizes))} ReLU units) trained through MixupTrainer for {args.epochs} epochs "
        f"(batch {args.batch_size}, AdamW at {args.learning_rate:g}). Over a {args.grid} x {args.grid} grid of the "
        "plotted plane: the share where 0.1 < p(y = 1 | x) < 0.9 (uncertain) and the mean of max(p, 1 - p).",
        "",
        "| model | train accuracy (%) | uncertain share of the plane (%) | mean confidence |",
        "|---|---|---|---|",
    ]
    for method in METHODS:
        f = figures[method]
        name = "ERM" if method == "erm" else f"mixup (alpha = {args.alpha:g})"
        lines.append(f"| {name} | {100 * f['train_accuracy']:.1f} | {100 * f['uncertain_share']:.1f} | "
                     f"{f['mean_confidence']:.3f} |")
    lines += ["", f"{describe_machine()}; {seconds:.0f} s.", "", f"`{command_line(argv, __file__)}`", ""]
    payload = {
        "data": {"name": "make_moons", "num_samples": args.num_samples, "noise": args.noise, "seed": args.seed},
        "model": {"hidden_sizes": args.hidden_sizes, "epochs": args.epochs, "batch_size": args.batch_size,
                  "learning_rate": args.learning_rate},
        "grid": args.grid, "seconds": seconds, **figures,
    }
    if plot(args, points, labels, xx, yy, surfaces, args.output + ".png"):
        payload["plot"] = args.output + ".png"
    write_results(args.output, "\n".join(lines), payload, argv=argv, script=__file__)
    return payload


def run(argv: list[str] | None = None) -> int:
    prog = os.path.basename(sys.argv[0]) or "toy_decision.py"
    try:
        main(argv)
    except UsageError as error:
        print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())
