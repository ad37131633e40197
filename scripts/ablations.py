#!/usr/bin/env python
"""The paper's ablation study (Table 5) on Fashion-MNIST: what in mixup matters, at weight decay 1e-4 and
5e-4, for each seed.

    python scripts/ablations.py                                  # every row, seeds 1 2
    python scripts/ablations.py --rows erm mixup_ac_rp --seeds 3 # some rows, another seed

Rows (`--rows`, the paper's names in brackets; alpha 1 wherever inputs are mixed):

- ``erm`` (ERM);
- ``mixup_ac_rp``, ``mixup_ac_knn`` (mixup, all classes, random pairs / k-nearest-neighbour pairs);
- ``layer1`` .. ``layer5`` (mix labels and latent representations entering stage k; 5: before pooling);
- ``inputs_sc_knn`` (SMOTE-like), ``inputs_ac_knn``, ``inputs_sc_rp``, ``inputs_ac_rp`` (mix inputs only:
  the target is the label of the example with the larger weight);
- ``smoothing_0.05`` .. ``smoothing_0.2`` (label smoothing, ERM);
- ``inputs_smoothing_0.05`` .. ``inputs_smoothing_0.4`` (mix inputs only + label smoothing);
- ``noise_0.05`` .. ``noise_0.2`` (Gaussian noise of this standard deviation on the normalised inputs).

Each cell is one `scripts/train.py` run (a process of its own) of PreAct ResNet-18 at --width of its width
on --train_samples training images drawn by the seed, no augmentation (the nearest-neighbour rows compare
unaugmented inputs), SGD (lr 0.1, momentum 0.9, batch 128) for --epochs epochs, the learning rate divided
by 10 at half and three quarters of them (the paper: 200 epochs, divided at 100 and 150). The test error is
evaluated after every one of the last --last epochs on the 10,000 test images, and the cell's figure is
their median, as the paper reports. Each finished cell is recorded in <runs_dir>/ablations_grid.json and
skipped when the command is run again. The table, with the paper's Table 5 beside it, goes to
results/ablations.{md,json}; `--render_only` writes the .md again from the .json.
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

ROWS: dict[str, tuple[str, str, list[str]]] = {
    "erm": ("ERM", "", ["--mixup_alpha", "0"]),
    "mixup_ac_rp": ("mixup", "AC + RP", ["--mixup_alpha", "1"]),
    "mixup_ac_knn": ("mixup", "AC + KNN", ["--mixup_alpha", "1", "--mixup_partner", "knn"]),
    **{f"layer{k}": ("mix labels and latent representations (AC + RP)", f"layer {k}", ["--mixup_alpha", "1", "--mixup_layer", str(k)])
       for k in range(1, 6)},
    "inputs_sc_knn": ("mix inputs only", "SC + KNN", ["--mixup_alpha", "1", "--mixup_targets", "input_only",
                                                       "--mixup_partner", "knn", "--mixup_knn_scope", "same_class"]),
    "inputs_ac_knn": ("mix inputs only", "AC + KNN", ["--mixup_alpha", "1", "--mixup_targets", "input_only", "--mixup_partner", "knn"]),
    "inputs_sc_rp": ("mix inputs only", "SC + RP", ["--mixup_alpha", "1", "--mixup_targets", "input_only",
                                                     "--mixup_partner", "same_class"]),
    "inputs_ac_rp": ("mix inputs only", "AC + RP", ["--mixup_alpha", "1", "--mixup_targets", "input_only"]),
    **{f"smoothing_{e:g}": ("label smoothing", f"eps = {e:g}", ["--mixup_alpha", "0", "--label_smoothing_factor", f"{e:g}"])
       for e in (0.05, 0.1, 0.2)},
    **{f"inputs_smoothing_{e:g}": ("mix inputs + label smoothing (AC + RP)", f"eps = {e:g}",
                                   ["--mixup_alpha", "1", "--mixup_targets", "input_only", "--label_smoothing_factor", f"{e:g}"])
       for e in (0.05, 0.1, 0.2, 0.4)},
    **{f"noise_{s:g}": ("add Gaussian noise to inputs", f"sigma = {s:g}", ["--mixup_alpha", "0", "--input_noise_std", f"{s:g}"])
       for s in (0.05, 0.1, 0.2)},
}
WEIGHT_DECAYS = paper.TABLE5_WEIGHT_DECAYS
# The paper's conclusions from its Table 5 (Section 3.8), quoted.
PAPER_CONCLUSIONS = (
    "First, mixup is the best data augmentation method we test, and is significantly better than the second best "
    "method (mix input + label smoothing). Second, the effect of regularization can be seen by comparing the test "
    "error with a small weight decay (10-4) with a large one (5 x 10-4). For example, for ERM a large weight decay "
    "works better, whereas for mixup a small weight decay is preferred, confirming its regularization effects. We "
    "also see an increasing advantage of large weight decay when interpolating in higher layers of latent "
    "representations, indicating decreasing strength of regularization. Among all the input interpolation methods, "
    "mixing random pairs from all classes (AC + RP) has the strongest regularization effect. Label smoothing and "
    "adding Gaussian noise have a relatively small regularization effect. Finally, we note that the SMOTE algorithm "
    "(Chawla et al., 2002) does not lead to a noticeable gain in performance."
)


def cell_name(row: str, weight_decay: float) -> str:
    return f"{row}@wd{weight_decay:g}"


def median_of_last(log_history: list[dict], last: int) -> tuple[float, list[float]]:
    """The median test error (%) of the last ``last`` evaluations in a trainer's log history."""
    errors = [100 * (1 - entry["eval_accuracy"]) for entry in log_history if "eval_accuracy" in entry]
    if not errors:
        raise ValueError("the run logged no evaluation")
    tail = errors[-last:]
    return statistics.median(tail), tail


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--weight_decays", type=float, nargs="+", default=list(WEIGHT_DECAYS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--train_samples", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--last", type=int, default=3, help="the median is over the evaluations of the last N epochs")
    parser.add_argument("--width", choices=["full", "quarter"], default="quarter", help="PreAct ResNet-18's width")
    parser.add_argument("--knn_k", type=int, default=200, help="mixup_knn_k of the KNN rows (the paper's k)")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--data", default="data/fashion_mnist", help="a saved Fashion-MNIST, prepared if missing")
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--output", default="results/ablations")
    parser.add_argument("--render_only", action="store_true",
                        help="write <output>.md again from <output>.json, running nothing")
    parser.add_argument("--jobs", type=int, default=1, help="cells run at once (each a process)")
    parser.add_argument("--launch", default=os.environ.get("LAUNCH") or f"{sys.executable} {ROOT / 'scripts' / 'train.py'}",
                        help="the command that runs scripts/train.py (default: this Python)")
    parser.add_argument("--extra", default="", help="more scripts/train.py flags for every run, e.g. '--tf32 true'")
    args = parser.parse_args(argv)
    if args.last < 1 or args.last > args.epochs:
        parser.error(f"--last {args.last}: give a number of final epochs between 1 and --epochs ({args.epochs})")
    os.chdir(ROOT)
    if args.render_only:
        render_results(args.output, render)
        return json.loads(Path(f"{args.output}.json").read_text())["cells"]
    from hf_mixup.data import prepared_fashion_mnist

    prepared_fashion_mnist(args.data)
    by_cell = {cell_name(row, wd): (row, wd) for row in args.rows for wd in args.weight_decays}
    steps_per_epoch = math.ceil(args.train_samples / args.batch_size)

    def run_dir(cell: str, seed: int) -> str:
        return os.path.join(args.runs_dir, f"ablation-{cell.replace('@', '-')}-seed{seed}")

    def run_cell(cell: str, seed: int) -> dict:
        row, weight_decay = by_cell[cell]
        output = run_dir(cell, seed)
        model_kwargs = {"channels": [16, 32, 64, 128]} if args.width == "quarter" else None
        command = [
            *shlex.split(args.launch), "--dataset_name", args.data, "--model_name", "preact_resnet18", "--image_size", "28",
            "--augmentation", "none", "--max_train_samples", str(args.train_samples), "--seed", str(seed),
            "--num_train_epochs", str(args.epochs), "--per_device_train_batch_size", str(args.batch_size),
            "--per_device_eval_batch_size", "1000", "--optim", "sgd", "--optim_args", "momentum=0.9",
            "--learning_rate", "0.1", "--weight_decay", f"{weight_decay:g}", "--warmup_steps", "0",
            "--lr_milestones", f"{args.epochs / 2:g}", f"{args.epochs * 3 / 4:g}", "--lr_gamma", "0.1",
            # Evaluated after each of the last epochs only; no checkpoints, so a re-run cell starts afresh.
            "--eval_strategy", "epoch", "--eval_delay", str(args.epochs - args.last + 1), "--save_strategy", "no",
            "--logging_steps", str(steps_per_epoch), "--mixup_knn_k", str(args.knn_k),
            "--output_dir", output, "--disable_tqdm", "true", "--report_to", "none",
            *ROWS[row][2], *shlex.split(args.extra),
        ]
        if model_kwargs:
            command += ["--model_kwargs", json.dumps(model_kwargs)]
        with open(f"{output}.log", "w") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
        with open(os.path.join(output, "trainer_state.json")) as f:
            median, tail = median_of_last(json.load(f)["log_history"], args.last)
        return {"median_test_error": median, "last_test_errors": tail, "machine": describe_machine()}

    os.makedirs(args.runs_dir, exist_ok=True)
    config = {key: getattr(args, key) for key in ("train_samples", "epochs", "last", "width", "knn_k", "batch_size", "data", "extra")}
    outcome = run_grid(run_cell, list(by_cell), args.seeds, state_file=os.path.join(args.runs_dir, "ablations_grid.json"),
                       config=config, desc="Table 5", jobs=args.jobs)
    payload = summarise(outcome.results, args)
    machines = sorted({r.get("machine", "not recorded") for cell in outcome.results.values() for r in cell.values()})
    write_results(args.output, None, {"cells": payload, "settings": config, "seconds": outcome.seconds, "rows": args.rows,
                                    "weight_decays": args.weight_decays, "seeds": args.seeds, "machines": machines},
                  argv=argv, script=__file__, render=render)
    return payload


def summarise(results: dict, args) -> dict:
    """Per cell, the mean ± std over seeds of the runs' medians."""
    payload: dict = {}
    for row in args.rows:
        for wd in args.weight_decays:
            values = [results[cell_name(row, wd)][s]["median_test_error"] for s in args.seeds]
            payload[cell_name(row, wd)] = {"mean": statistics.fmean(values),
                                           "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values}
    return payload


def render(record: dict) -> str:
    """results/ablations.md from what results/ablations.json records: our table with the paper's Table 5 beside
    it, and the paper's findings checked on both."""
    rows, weight_decays, seeds, settings = record["rows"], record["weight_decays"], record["seeds"], record["settings"]
    cells = record["cells"]
    epochs = settings["epochs"]
    header = " | ".join(f"test error, weight decay {wd:g}" for wd in weight_decays)
    lines = [
        "# Ablations (Table 5) on Fashion-MNIST",
        "",
        f"`{record['command']}` ({record['seconds'] / 60:.0f} min of runs, summed over the cells; the runs' machine: "
        f"{'; '.join(record['machines'])}).",
        "",
        f"PreAct ResNet-18 ({settings['width']} width), {settings['train_samples']} training images drawn by the seed, no "
        f"augmentation, {epochs} epochs of SGD at lr 0.1 divided by 10 at epochs {epochs / 2:g} and {epochs * 3 / 4:g}; "
        f"k = {settings['knn_k']} for the KNN rows. Each figure: the median test error (%) of the last {settings['last']} "
        f"epochs, then the mean ± std of that median over seeds {', '.join(map(str, seeds))}.",
        "",
        f"The last columns are the paper's Table 5, another experiment: {paper.TABLE5_SETTING}.",
        "",
        f"| method | specification | {header} | "
        + " | ".join(f"paper, weight decay {wd:g}" for wd in weight_decays) + " |",
        "|---|---|" + "---|" * (2 * len(weight_decays)),
    ]
    lowest = {wd: min(rows, key=lambda row: cells[cell_name(row, wd)]["mean"]) for wd in weight_decays}
    for row in rows:
        method, spec, _ = ROWS[row]
        ours = []
        for wd in weight_decays:
            figure = cells[cell_name(row, wd)]
            text = f"{figure['mean']:.2f} ± {figure['std']:.2f}"
            ours.append(f"**{text}**" if lowest[wd] == row else text)
        theirs = [f"{paper.TABLE5[row][paper.TABLE5_WEIGHT_DECAYS.index(wd)]:.2f}"
                  if row in paper.TABLE5 and wd in paper.TABLE5_WEIGHT_DECAYS else "" for wd in weight_decays]
        lines.append(f"| {method} | {spec} | " + " | ".join(ours + theirs) + " |")
    lines += ["", "Lowest mean error (bold): " + "; ".join(
        f"{' '.join(filter(None, ROWS[lowest[wd]][:2]))} at weight decay {wd:g}" for wd in weight_decays) + ".", ""]
    if set(paper.TABLE5) <= set(rows) and tuple(weight_decays) == paper.TABLE5_WEIGHT_DECAYS:
        ours_table = {row: tuple(cells[cell_name(row, wd)]["mean"] for wd in weight_decays) for row in paper.TABLE5}
        lines += paper.findings_section(paper.compare(paper.ablation_checks, paper.TABLE5, ours_table),
                                        "its Table 5 and ours, ours on the mean over seeds")
    lines += ["The paper's conclusions from its Table 5, in its words:", "", f"> {PAPER_CONCLUSIONS}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
