#!/usr/bin/env python
"""Print (and optionally write) an ERM vs mixup table from training runs of scripts/train.py.

    python scripts/compare.py --erm runs/digits-erm-seed* --mixup runs/digits-mixup-seed* --output table.md
    python scripts/compare.py --erm runs/digits-erm-seed* --mixup runs/digits-mixup-seed* --reliability rel.png

Each method's figures are the mean and standard deviation over its runs (one run per seed) of the
final test error, negative log-likelihood and expected calibration error (`all_results.json`), and of
the best test error over the per-epoch evaluations (`trainer_state.json`, when the run evaluated
every epoch on the test split). `--reliability` draws the reliability diagrams of the two methods (accuracy
against confidence, every run's test predictions pooled, ECE in the legend) from each run's
`test_calibration.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys


def read_results(run_dir: str) -> dict:
    path = os.path.join(run_dir, "all_results.json")
    if not os.path.isfile(path):
        raise ValueError(f"{run_dir} has no all_results.json: is it a finished training run of scripts/train.py?")
    with open(path) as f:
        return json.load(f)


def best_error(run_dir: str) -> float | None:
    """Lowest per-epoch evaluation error (%) in the run's log history, or None without evaluations."""
    path = os.path.join(run_dir, "trainer_state.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        history = json.load(f)["log_history"]
    errors = [100.0 * (1.0 - h["eval_accuracy"]) for h in history if "eval_accuracy" in h]
    return min(errors) if errors else None


def mean_std(values: list[float], digits: int = 4) -> str:
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def table(groups: dict[str, list[str]]) -> str:
    lines = [
        "| method | runs | final test error (%) | best test error (%) | test NLL | test ECE |",
        "|---|---|---|---|---|---|",
    ]
    for method, dirs in groups.items():
        results = [read_results(d) for d in dirs]
        error = [100.0 * r["test_error"] for r in results]
        best = [b for b in (best_error(d) for d in dirs) if b is not None]
        nll = [r["test_nll"] for r in results]
        ece = [r["test_ece"] for r in results]
        lines.append(
            f"| {method} | {len(results)} | {mean_std(error, 2)} | {mean_std(best, 2) if len(best) == len(dirs) else '-'} "
            f"| {mean_std(nll)} | {mean_std(ece)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--erm", nargs="+", required=True, help="output_dir of each ERM run")
    parser.add_argument("--mixup", nargs="+", required=True, help="output_dir of each mixup run")
    parser.add_argument("--output", help="also write the table (markdown) to this file")
    parser.add_argument("--reliability", help="draw the reliability diagrams of ERM and mixup to this PNG")
    args = parser.parse_args(argv)
    text = table({"ERM": sorted(args.erm), "mixup": sorted(args.mixup)})
    text += (
        "\n\nmean ± standard deviation over runs (seeds); final: the model after the last epoch; best: the lowest "
        "error of the per-epoch evaluations on the same test split.\n"
    )
    print(text)
    if args.output:
        os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
        with open(args.output, "w") as f:
            f.write(text)
    if args.reliability:
        from hf_mixup.hub.plots import plot_run_reliability

        plot_run_reliability({"ERM": args.erm, "mixup": args.mixup}, args.reliability,
                             title="Reliability on the test split")
        print(f"reliability diagrams: {args.reliability}")
    return text


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:  # a folder that is not a finished run, or lacks what was asked for
        sys.exit(f"compare.py: error: {error}")
