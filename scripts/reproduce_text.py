#!/usr/bin/env python
"""Which layer to mix for text? ERM vs mixup at the token embeddings, entering blocks 2 and 4, and at the pooled
features, on Rotten Tomatoes with a small BERT trained from scratch (the paper's Table 5 question, for text).

    python scripts/reproduce_text.py                   # seeds 1 2 3, five methods
    python scripts/reproduce_text.py --seeds 1 2 3 4   # a fourth seed: only its runs are new
    python scripts/reproduce_text.py --jobs 2          # two runs at a time (one thread each)

Each run is `hf-mixup train rotten_tomatoes_small_bert --mixup_alpha <0|alpha> --mixup_layer <site> --seed <k>
--num_train_epochs <epochs> --output_dir <runs_dir>/rotten_tomatoes-<method>-seed<k>` (a process of its own):
the recipe's 4-layer, 128-wide BERT (`small_bert`, its WordPiece tokenizer trained on the training split),
batches of 32, AdamW lr 5e-4, weight decay 0.01, 10% warm-up then cosine decay, evaluated on the held-out 10%
(853 sentences; the package ships only the Hub's train split, see docs/text.md). Writes
results/text_layers_rotten_tomatoes.{md,json,png}: the last test error and ECE as mean ± standard deviation over
seeds, and a plot. Each finished run is recorded in <runs_dir>/text_layers_grid.json; running the command again
skips the runs already there, and an interrupted run resumes from its last epoch checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from hf_mixup.experiments import command_line, file_digest, run_grid, write_results

ROOT = Path(__file__).resolve().parents[1]
# method -> --mixup_layer (None: ERM, mixup_alpha 0)
METHODS = {"erm": None, "embeddings": "embeddings", "block2": "2", "block4": "4", "pooled": "pooled"}
NAMES = {"erm": "ERM", "embeddings": "mixup at the token embeddings", "block2": "mixup entering block 2",
         "block4": "mixup entering block 4 (the last)", "pooled": "mixup of the pooled features"}


def mean_std(values: list[float]) -> str:
    """``mean ± std`` in percent (std over seeds; ``±`` omitted for one seed)."""
    mean = 100 * statistics.mean(values)
    return f"{mean:.2f} ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else f"{mean:.2f}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--alpha", type=float, default=1.0, help="mixup_alpha of the mixup runs")
    parser.add_argument("--epochs", type=float, default=5)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (each with one thread when > 1)")
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--output", default="results/text_layers_rotten_tomatoes")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    binary = Path(sys.executable).with_name("hf-mixup")

    def run_dir(method: str, seed: int) -> str:
        return os.path.join(args.runs_dir, f"rotten_tomatoes-{method}-seed{seed}")

    def run_cell(method: str, seed: int) -> dict:
        layer = METHODS[method]
        command = [
            str(binary), "train", "rotten_tomatoes_small_bert", "--seed", str(seed),
            "--mixup_alpha", "0" if layer is None else f"{args.alpha:g}", "--mixup_layer", layer or "0",
            "--num_train_epochs", f"{args.epochs:g}", "--per_device_train_batch_size", str(args.batch_size),
            "--output_dir", run_dir(method, seed), "--report_to", "none", "--disable_tqdm", "true",
        ]
        env = dict(os.environ, OMP_NUM_THREADS="1") if args.jobs > 1 else None
        with open(f"{run_dir(method, seed)}.log", "w") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
        with open(os.path.join(run_dir(method, seed), "all_results.json")) as f:
            return json.load(f)

    os.makedirs(args.runs_dir, exist_ok=True)
    config = {"alpha": args.alpha, "epochs": args.epochs, "batch_size": args.batch_size,
              "recipe_sha1": file_digest(str(ROOT / "recipes" / "rotten_tomatoes_small_bert.yaml"))}
    run_grid(run_cell, args.methods, args.seeds, state_file=os.path.join(args.runs_dir, "text_layers_grid.json"),
             config=config, desc="text runs", jobs=args.jobs,
             still_done=lambda method, seed: os.path.isfile(os.path.join(run_dir(method, seed), "all_results.json")))
    with open(os.path.join(args.runs_dir, "text_layers_grid.json")) as f:
        cells = json.load(f)["cells"].values()
    results: dict[str, list[dict]] = {}
    for cell in cells:
        if cell["config"] == config and cell["method"] in args.methods and cell["seed"] in args.seeds:
            results.setdefault(cell["method"], []).append(cell["result"])
    rows, summary = [], {}
    for method in args.methods:
        runs = results.get(method, [])
        if not runs:
            continue
        errors = [r["test_error"] for r in runs]
        eces = [r["test_ece"] for r in runs]
        summary[method] = {"test_error": errors, "test_ece": eces, "seeds": len(runs)}
        rows.append(f"| {NAMES[method]} | {mean_std(errors)} | {mean_std(eces)} | {len(runs)} |")
    lines = [
        "# Which layer to mix for text: Rotten Tomatoes, small BERT from scratch",
        "",
        f"ERM vs mixup (alpha {args.alpha:g}) at four sites, {args.epochs:g} epochs, batch {args.batch_size}; "
        "the last test error and ECE (15 bins) in %, mean ± std over seeds, on the 853 held-out sentences.",
        "",
        "| method | test error (%) | ECE (%) | seeds |",
        "|---|---|---|---|",
        *rows,
        "",
        f"`{command_line(argv, __file__)}`",
        "",
    ]
    write_results(args.output, "\n".join(lines), summary, argv=argv, script=__file__)
    plot(summary, args.output + ".png")
    return summary


def plot(summary: dict, path: str) -> None:
    from matplotlib.figure import Figure

    methods = list(summary)
    if not methods:
        return
    figure = Figure(figsize=(8, 3.2), constrained_layout=True)
    for axis, key, title in zip(figure.subplots(1, 2), ("test_error", "test_ece"), ("test error (%)", "ECE (%)")):
        means = [100 * statistics.mean(summary[m][key]) for m in methods]
        stds = [100 * statistics.stdev(summary[m][key]) if len(summary[m][key]) > 1 else 0.0 for m in methods]
        axis.bar(range(len(methods)), means, yerr=stds, color=["grey"] + ["tab:blue"] * (len(methods) - 1))
        axis.set_xticks(range(len(methods)), methods, rotation=20)
        axis.set_title(title)
    figure.suptitle("Rotten Tomatoes, small BERT: where to mix")
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
