#!/usr/bin/env python
"""ERM against mixup in between training examples (the paper's Figure 2): miss rate and gradient norm.

    python scripts/analyze.py --erm model_cards/reference/preact-resnet18-fashion-mnist-erm \
        --mixup model_cards/reference/preact-resnet18-fashion-mnist-mixup \
        --dataset_name data/fashion_mnist --num_pairs 1000 --output results/between_examples_fashion_mnist

--erm and --mixup are image-classification checkpoints (folders or Hub ids, loaded with
`AutoModelForImageClassification`) trained on the dataset. `--num_pairs` random pairs of images of
different classes are drawn from the split (its first `--max_samples` images when given) with `--seed`;
both models are evaluated on the same pairs, each image preprocessed with the checkpoint's own eval
transform, at x = lam * x_i + (1 - lam) * x_j for every lam of `--lambdas`
(`hf_mixup.analysis.between_examples`):

- miss rate: the share of pairs predicted as neither y_i nor y_j;
- gradient norm: the mean L2 norm of the gradient, with respect to the (normalised) input x, of the
  mixed-target loss lam * CE(y_i) + (1 - lam) * CE(y_j).

The table goes to `<output>.md`, the curves (with the command line and the machine) to `<output>.json`
and the two-panel figure to `<output>.png`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch

from hf_mixup.cli.errors import UsageError
from hf_mixup.cli.evaluation import ImageCheckpoint, OneLineParser, load_split, run_script

MODELS = ("erm", "mixup")
NAMES = {"erm": "ERM", "mixup": "mixup"}


def parse_lambda(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"lambda {text} is outside [0, 1]; give mixing weights such as 0 0.5 1")
    return value


def parse_args(argv: list[str] | None):
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rendering = "--render_only" in (sys.argv[1:] if argv is None else argv)  # the models are not needed
    parser.add_argument("--erm", required=not rendering, help="the checkpoint trained without mixup (a folder or Hub id)")
    parser.add_argument("--mixup", required=not rendering, help="the checkpoint trained with mixup (a folder or Hub id)")
    parser.add_argument("--dataset_name", default="data/fashion_mnist",
                        help="an offline name (digits, fashion_mnist), a saved dataset folder or a Hub id")
    parser.add_argument("--dataset_config_name", default=None)
    parser.add_argument("--split", default="train", help="the split the pairs come from (the training examples)")
    parser.add_argument("--image_column_name", default=None)
    parser.add_argument("--label_column_name", default=None)
    parser.add_argument("--max_samples", type=int, default=None,
                        help="draw the pairs from the first N images of the split")
    parser.add_argument("--num_pairs", type=int, default=1000)
    parser.add_argument("--lambdas", type=parse_lambda, nargs="+", default=[i / 10 for i in range(11)],
                        help="the mixing weights of the first example (default 0 0.1 ... 1)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of the pair drawing")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--device", default=None, help="cuda when available, else cpu")
    parser.add_argument("--output", default=None,
                        help="results/between_examples_<dataset> by default (.md, .json, .png)")
    parser.add_argument("--render_only", action="store_true",
                        help="write <output>.md again from <output>.json, loading no model (no --erm / --mixup needed)")
    args = parser.parse_args(argv)
    if args.num_pairs < 1:
        raise UsageError(f"--num_pairs {args.num_pairs}: give a number of pairs >= 1")
    if args.batch_size < 1:
        raise UsageError(f"--batch_size {args.batch_size}: give a batch size >= 1")
    if args.max_samples is not None and args.max_samples < 2:
        raise UsageError(f"--max_samples {args.max_samples}: pairs need at least 2 images")
    args.lambdas = sorted(set(args.lambdas))
    if args.output is None:
        name = os.path.basename(os.path.normpath(args.dataset_name)) or "dataset"
        args.output = os.path.join("results", f"between_examples_{name}")
    return args


# --------------------------------------------------------------------------------------------- models and data


def prepare(argv: list[str] | None):
    """Everything a mistake on the command line can break: flags, data, checkpoints and their classes;
    then the pairs (drawn once, for both models)."""
    from hf_mixup.analysis import draw_pairs

    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    split, image_col, label_col, names = load_split(args)
    checkpoints = {key: ImageCheckpoint(getattr(args, key), device, f"--{key}") for key in MODELS}
    for checkpoint in checkpoints.values():
        checkpoint.check_labels(names)
    labels = torch.tensor(split[label_col], dtype=torch.long)
    try:
        first, second = draw_pairs(labels, args.num_pairs, seed=args.seed)
    except ValueError as error:
        raise UsageError(f"{args.dataset_name} ({args.split}, {len(split)} images): {error}") from error
    return args, checkpoints, split, image_col, labels, (first, second)


# --------------------------------------------------------------------------------------------- report


def render(record: dict) -> str:
    """<output>.md from what <output>.json records: the curves, and the paper's Figure 2 findings checked on them."""
    from hf_mixup import paper
    from hf_mixup.experiments import describe_machine

    lines = [
        f"# In between training examples on {record['dataset']} ({record['split']})",
        "",
        f"{record['num_pairs']} random pairs (x_i, x_j) of {record['split']} images of different classes (drawn from "
        f"{record['samples']} images, seed {record['seed']}), the same pairs for both models, evaluated at "
        "x = lam * x_i + (1 - lam) * x_j. Miss: the prediction is neither y_i nor y_j. Gradient norm: the mean "
        "L2 norm of d loss / d x, loss = lam * CE(y_i) + (1 - lam) * CE(y_j), x the normalised input.",
        "",
        f"- ERM: `{record['erm']['checkpoint']}`",
        f"- mixup: `{record['mixup']['checkpoint']}`",
        "",
        "| lam | ERM miss (%) | mixup miss (%) | ERM gradient norm | mixup gradient norm |",
        "|---|---|---|---|---|",
    ]
    erm, mixup = record["erm"], record["mixup"]
    for k, lam in enumerate(record["lambdas"]):
        lines.append(
            f"| {lam:g} | {100 * erm['miss_rate'][k]:.1f} | {100 * mixup['miss_rate'][k]:.1f} | "
            f"{erm['grad_norm'][k]:.4f} | {mixup['grad_norm'][k]:.4f} |"
        )
    lines += ["", f"{describe_machine(record['machine'])}; {record['seconds']:.0f} s.", "", f"`{record['command']}`", ""]
    if any(0 < lam < 1 for lam in record["lambdas"]):
        checks = paper.between_examples_checks(record["lambdas"], erm["miss_rate"], mixup["miss_rate"], erm["grad_norm"],
                                               mixup["grad_norm"])
        lines += [f"The paper's Figure 2, another experiment: {paper.FIGURE2['setting']}. It draws the curves, with no "
                  f"figures to quote; in its words: \"{paper.FIGURE2['words']}\".", "",
                  *paper.findings_section(paper.against_words(checks), "the paper by its words, ours at every lam in (0, 1)")]
    return "\n".join(lines)


def plot(args, curves: dict, path: str) -> bool:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (miss_ax, grad_ax) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    for key, style in (("erm", dict(color="tab:gray", marker="o")), ("mixup", dict(color="tab:blue", marker="s"))):
        miss_ax.plot(args.lambdas, [100 * m for m in curves[key].miss_rate], label=NAMES[key], **style)
        grad_ax.plot(args.lambdas, curves[key].grad_norm, label=NAMES[key], **style)
    miss_ax.set_ylabel("miss rate (%)")
    miss_ax.set_title("(a) prediction in neither {y_i, y_j}")
    grad_ax.set_ylabel("|| d loss / d x ||")
    grad_ax.set_title("(b) gradient norm w.r.t. the input")
    for ax in (miss_ax, grad_ax):
        ax.set_xlabel("lam  (x = lam x_i + (1 - lam) x_j)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
    name = os.path.basename(os.path.normpath(args.dataset_name))
    fig.suptitle(f"{name}: {args.num_pairs} pairs of {args.split} images")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------------------------- main


def execute(args, checkpoints, split, image_col, labels, pairs, argv=None) -> dict:
    from hf_mixup.analysis import between_examples
    from hf_mixup.experiments import write_results

    start = time.perf_counter()
    first, second = pairs
    # Only the images of the pairs are preprocessed: their indices into the split, renumbered.
    used, inverse = torch.unique(torch.cat([first, second]), return_inverse=True)
    images = split.select(used.tolist())[image_col]
    local = (inverse[: first.numel()], inverse[first.numel():])
    curves = {}
    for key, checkpoint in checkpoints.items():
        inputs = checkpoint.inputs(images)
        curves[key] = between_examples(
            checkpoint.model, inputs, labels[used], lambdas=args.lambdas, num_pairs=None, pairs=local,
            batch_size=args.batch_size,
        )
    seconds = time.perf_counter() - start
    payload = {
        "dataset": args.dataset_name, "split": args.split, "samples": len(split), "num_pairs": args.num_pairs,
        "seed": args.seed, "lambdas": args.lambdas,
        "loss": "lam * CE(y_i) + (1 - lam) * CE(y_j), gradient w.r.t. the normalised input",
        "pairs": {"first": first.tolist(), "second": second.tolist()},
        "seconds": seconds,
    }
    for key in MODELS:
        payload[key] = {"checkpoint": getattr(args, key), "miss_rate": curves[key].miss_rate,
                        "grad_norm": curves[key].grad_norm}
    if plot(args, curves, args.output + ".png"):
        payload["plot"] = args.output + ".png"
    write_results(args.output, None, payload, argv=argv, script=__file__, render=render)
    return payload


def render_only(argv: list[str] | None) -> dict | None:
    """With --render_only: write ``<output>.md`` again from ``<output>.json``; the json's record. Else None."""
    if "--render_only" not in (sys.argv[1:] if argv is None else argv):
        return None
    import json

    from hf_mixup.experiments import render_results

    args = parse_args(argv)
    render_results(args.output, render)
    with open(args.output + ".json") as f:
        return json.load(f)


def main(argv: list[str] | None = None) -> dict:
    """Parse ``argv``, evaluate both checkpoints, write ``<output>.md`` / ``.json`` / ``.png``; the json's payload."""
    return render_only(argv) or execute(*prepare(argv), argv=argv)


def run(argv: list[str] | None = None) -> int:
    """`main`, with a mistake in what was asked for (a bad flag value, a missing checkpoint, split or column,
    models that do not fit the data) as one line on stderr and exit status 2."""
    if render_only(argv) is not None:
        return 0
    return run_script(prepare, execute, argv, "analyze.py")


if __name__ == "__main__":
    sys.exit(run())
