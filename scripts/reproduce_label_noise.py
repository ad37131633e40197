#!/usr/bin/env python
"""Table 2 of the paper (memorisation of corrupted labels) on Fashion-MNIST: ERM, ERM + dropout, mixup
(alpha 8 and 32) and mixup + dropout, at each label-noise level, for each seed.

    python scripts/reproduce_label_noise.py --model mlp --noise 0.2 0.5 0.8 --seeds 1 2
    python scripts/reproduce_label_noise.py --model preact --noise 0.5 --seeds 1 2 --jobs 10   # on a GPU

Each cell is one `scripts/train.py` run (a process of its own) with `--label_noise <noise>
--label_noise_seed <seed>`: the training labels are re-drawn uniformly over the 10 classes with
probability <noise> (about 0.9 x noise end up wrong), the test labels stay intact. The run reports
Table 2's four figures: the best and the last test error (of the evaluations every --eval_every epochs
and the final one), and the training error on the uncorrupted examples against their labels ("Real") and
on the corrupted examples against their noisy labels ("Corrupted"), from unmixed, unaugmented training
images at the end of training.

Models (`--model`), on a training subset of --train_samples images drawn by the seed, no augmentation,
SGD (momentum 0.9, weight decay 1e-4, batch 128) at learning rate 0.1, divided by 10 at half and at
three quarters of the epochs (the paper: 200 epochs, divided at 100 and 150), so that ERM has time at a
small learning rate, where the paper sees it memorise:
- ``mlp``: `image_mlp` (784-1024-1024-10), dropout after each hidden ReLU;
- ``preact``: the paper's PreAct ResNet-18 (``--width quarter`` for a CPU), dropout between the two
  convolutions of each block.

Each finished cell is recorded in <runs_dir>/label_noise_<model>_grid.json; running the command again
skips the cells already there. The table (with the paper's Table 2 and its findings beside it) goes to
results/label_noise_<model>.md, its figures with the command and the machine to the .json next to it;
`--render_only` writes the .md again from the .json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from hf_mixup import paper
from hf_mixup.experiments import describe_machine, render_results, run_grid, write_results

ROOT = Path(__file__).resolve().parents[1]

# method -> (mixup alpha, which dropout): "erm" dropout p and "mixup" dropout p are flags.
METHODS = {
    "erm": (0.0, None),
    "erm_dropout": (0.0, "erm"),
    "mixup8": (8.0, None),
    "mixup32": (32.0, None),
    "mixup8_dropout": (8.0, "mixup"),
}
METHOD_NAMES = {
    "erm": "ERM",
    "erm_dropout": "ERM + dropout (p = {erm_p:g})",
    "mixup8": "mixup (alpha = 8)",
    "mixup32": "mixup (alpha = 32)",
    "mixup8_dropout": "mixup + dropout (alpha = 8, p = {mixup_p:g})",
}

# Each method's family in the paper's Table 2 (hf_mixup.paper), which reports the best setting of each family.
FAMILIES = {"erm": "erm", "erm_dropout": "erm_dropout", "mixup8": "mixup", "mixup32": "mixup", "mixup8_dropout": "mixup_dropout"}
FIGURES = ("best_test_error", "test_error", "train_error_real", "train_error_corrupted")
# The same four figures as hf_mixup.paper names them (Table 2's columns).
PAPER_FIGURES = dict(zip(FIGURES, ("best", "last", "real", "corrupted")))


def default_launch() -> str:
    return f"{sys.executable} {ROOT / 'scripts' / 'train.py'}"


def model_settings(model: str, width: str, dropout: float | None) -> tuple[str, dict]:
    kwargs: dict = {}
    if model == "mlp":
        name = "image_mlp"
    else:
        name = "preact_resnet18"
        if width == "quarter":
            kwargs["channels"] = [16, 32, 64, 128]
    if dropout:
        kwargs["block_drop_rate"] = dropout
    return name, kwargs


def cell_command(args, method: str, noise: float, seed: int, output_dir: str) -> list[str]:
    alpha, dropout_of = METHODS[method]
    dropout = {"erm": args.erm_dropout, "mixup": args.mixup_dropout, None: None}[dropout_of]
    name, kwargs = model_settings(args.model, args.width, dropout)
    steps_per_epoch = math.ceil(args.train_samples / args.batch_size)
    command = [
        *shlex.split(args.launch), "--dataset_name", args.data, "--model_name", name, "--image_size", "28",
        "--augmentation", "none", "--max_train_samples", str(args.train_samples),
        "--label_noise", f"{noise:g}", "--label_noise_seed", str(seed), "--seed", str(seed),
        "--num_train_epochs", str(args.epochs), "--per_device_train_batch_size", str(args.batch_size),
        "--per_device_eval_batch_size", "1000", "--optim", "sgd", "--optim_args", "momentum=0.9",
        "--learning_rate", "0.1", "--weight_decay", "1e-4", "--warmup_steps", "0",
        "--lr_milestones", f"{args.epochs / 2:g}", f"{args.epochs * 3 / 4:g}", "--lr_gamma", "0.1",
        "--eval_strategy", "steps", "--eval_steps", str(steps_per_epoch * args.eval_every),
        "--save_strategy", "no", "--logging_steps", str(steps_per_epoch * args.eval_every),
        "--mixup_alpha", f"{alpha:g}", "--output_dir", output_dir, "--disable_tqdm", "true", "--report_to", "none",
        *shlex.split(args.extra),
    ]
    if kwargs:
        command += ["--model_kwargs", json.dumps(kwargs)]
    return command


def cell_name(method: str, noise: float) -> str:
    return f"{method}@noise{round(noise * 100):d}"


def summarise(results: dict, args) -> dict:
    """Per cell, each of Table 2's figures in % as mean ± std over seeds."""
    payload = {}
    for noise in args.noise:
        for method in args.methods:
            per_seed = results[cell_name(method, noise)]
            figures = {}
            for key in FIGURES:
                values = [100 * per_seed[s][key] for s in args.seeds]
                figures[key] = {"mean": statistics.fmean(values),
                                "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values}
            payload[cell_name(method, noise)] = figures
    return payload


def by_family(record: dict) -> dict[float, dict[str, dict[str, float]]]:
    """Our table in the shape of `hf_mixup.paper.table2_by_family`, on the means over seeds: per noise level where
    every family ran, each family's method with the lowest best test error (the paper reports each family's best)."""
    table = {}
    for noise in record["noise"]:
        candidates: dict[str, list[dict[str, float]]] = {}
        for method in record["methods"]:
            figures = record["cells"][cell_name(method, noise)]
            candidates.setdefault(FAMILIES[method], []).append(
                {PAPER_FIGURES[key]: figures[key]["mean"] for key in FIGURES})
        if set(candidates) == set(paper.FAMILIES):
            table[noise] = {family: min(rows, key=lambda row: row["best"]) for family, rows in candidates.items()}
    return table


def render(record: dict) -> str:
    """results/label_noise_<model>.md from what its .json records: our table, the paper's Table 2 in full, and the
    paper's findings checked on both."""
    settings, seeds = record["settings"], record["seeds"]
    names = {m: METHOD_NAMES[m].format(erm_p=settings["erm_dropout"], mixup_p=settings["mixup_dropout"])
             for m in record["methods"]}
    rows = []
    for noise in record["noise"]:
        for method in record["methods"]:
            figures = record["cells"][cell_name(method, noise)]
            cells = " | ".join(f"{figures[k]['mean']:.1f} ± {figures[k]['std']:.1f}" for k in FIGURES)
            rows.append(f"| {round(noise * 100)}% | {names[method]} | {cells} |")
    theirs = [f"| {round(row.noise * 100)}% | {row.method} | {row.best} | {row.last} | {row.real:.2f} | {row.corrupted:.2f} |"
              for row in paper.TABLE2]
    model = {"mlp": "MLP 784-1024-1024-10 (`image_mlp`)",
             "preact": f"PreAct ResNet-18 ({'a quarter of its width' if settings['width'] == 'quarter' else 'full width'})"}[
        settings["model"]]
    epochs = settings["epochs"]
    header = "| noise | method | test error, best | test error, last | train error, real | train error, corrupted |"
    lines = [
        f"# Corrupted labels (Table 2) on Fashion-MNIST: {model}",
        "",
        f"`{record['command']}` ({record['seconds'] / 60:.0f} min of runs, summed over the cells; the runs' machine: "
        f"{'; '.join(record['machines'])}).",
        "",
        f"{settings['train_samples']} training images (a subset drawn by the seed), no augmentation, {epochs} epochs of "
        f"SGD at lr 0.1 divided by 10 at epochs {epochs / 2:g} and {epochs * 3 / 4:g}; test error on the "
        f"10,000 intact test images every {settings['eval_every']} epochs. Mean ± std over seeds {', '.join(map(str, seeds))} "
        "(the seed draws the subset, the corruption, the initialisation and the batches), in %.",
        "",
        header,
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"The paper's Table 2, another experiment: {paper.TABLE2_SETTING}; in %:",
        "",
        header,
        "|---|---|---|---|---|---|",
        *theirs,
        "",
    ]
    ours = by_family(record)
    if ours:
        lines += paper.findings_section(
            paper.compare(paper.corrupted_label_checks, paper.table2_by_family(), ours),
            "its Table 2 and ours, ours on the mean over seeds with each family's row of lowest best test error, as the paper "
            "reports each family's best")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["mlp", "preact"], default="mlp")
    parser.add_argument("--width", choices=["full", "quarter"], default="full", help="PreAct ResNet-18's width")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.2, 0.5, 0.8])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--erm_dropout", type=float, default=0.7, help="ERM + dropout's p")
    parser.add_argument("--mixup_dropout", type=float, default=0.3, help="mixup + dropout's p")
    parser.add_argument("--train_samples", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--eval_every", type=int, default=4, help="test evaluation every N epochs")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--data", default="data/fashion_mnist", help="a saved Fashion-MNIST, prepared if missing")
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--output", default=None, help="results/label_noise_<model> by default (.md and .json)")
    parser.add_argument("--jobs", type=int, default=1, help="cells run at once (each a process)")
    parser.add_argument("--launch", default=os.environ.get("LAUNCH") or default_launch(),
                        help="the command that runs scripts/train.py (default: this Python)")
    parser.add_argument("--extra", default="", help="more scripts/train.py flags for every run, e.g. '--tf32 true'")
    parser.add_argument("--render_only", action="store_true",
                        help="write <output>.md again from <output>.json, running nothing")
    args = parser.parse_args(argv)
    for noise in args.noise:
        if not 0.0 <= noise <= 1.0:
            parser.error(f"--noise {noise} is not a share of labels in [0, 1]")
    os.chdir(ROOT)
    output = args.output or f"results/label_noise_{args.model}{'_quarter' if args.model == 'preact' and args.width == 'quarter' else ''}"
    if args.render_only:
        render_results(output, render)
        return json.loads(Path(f"{output}.json").read_text())["cells"]
    from hf_mixup.data import prepared_fashion_mnist

    prepared_fashion_mnist(args.data)

    tag = args.model + ("_quarter" if args.model == "preact" and args.width == "quarter" else "")

    def run_dir(cell: str, seed: int) -> str:
        return os.path.join(args.runs_dir, f"label_noise-{tag}-{cell.replace('@', '-')}-seed{seed}")

    by_cell = {cell_name(m, n): (m, n) for n in args.noise for m in args.methods}

    def run_cell(cell: str, seed: int) -> dict:
        method, noise = by_cell[cell]
        directory = run_dir(cell, seed)
        with open(f"{directory}.log", "w") as log:  # each run's own output, beside its folder
            subprocess.run(cell_command(args, method, noise, seed, directory), check=True, stdout=log, stderr=subprocess.STDOUT)
        with open(os.path.join(directory, "all_results.json")) as f:
            results = json.load(f)
        return {**{key: results[key] for key in (*FIGURES, "train_corrupted_fraction")},
                "train_runtime": results.get("train_runtime"), "machine": describe_machine()}

    os.makedirs(args.runs_dir, exist_ok=True)
    config = {key: getattr(args, key) for key in ("model", "width", "erm_dropout", "mixup_dropout", "train_samples",
                                                   "epochs", "eval_every", "batch_size", "data", "extra")}
    outcome = run_grid(run_cell, list(by_cell), args.seeds, state_file=os.path.join(args.runs_dir, f"label_noise_{tag}_grid.json"),
                       config=config, desc=f"Table 2 ({tag})", jobs=args.jobs)
    payload = summarise(outcome.results, args)
    machines = sorted({outcome.results[c][s].get("machine", "not recorded") for c in outcome.results for s in outcome.results[c]})
    write_results(output, None, {"cells": payload, "settings": config, "seconds": outcome.seconds, "noise": args.noise,
                                 "methods": args.methods, "seeds": args.seeds, "machines": machines},
                  argv=argv, script=__file__, render=render)
    return payload


if __name__ == "__main__":
    main()
