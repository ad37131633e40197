#!/usr/bin/env python
"""Print (and optionally write) an ERM vs mixup table from the `all_results.json` of training runs.

    python scripts/compare.py --erm runs/digits-erm-seed* --mixup runs/digits-mixup-seed* --output table.md

Each method's figures are the mean and standard deviation over its runs (one run per seed) of the
final test error, negative log-likelihood and expected calibration error.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics


def read_results(run_dir: str) -> dict:
    path = os.path.join(run_dir, "all_results.json")
    if not os.path.isfile(path):
        raise ValueError(f"{run_dir} has no all_results.json: is it a finished training run of scripts/train.py?")
    with open(path) as f:
        return json.load(f)


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def table(groups: dict[str, list[str]]) -> str:
    lines = [
        "| method | runs | test error (%) | test NLL | test ECE |",
        "|---|---|---|---|---|",
    ]
    for method, dirs in groups.items():
        results = [read_results(d) for d in dirs]
        error = [100.0 * r["test_error"] for r in results]
        nll = [r["test_nll"] for r in results]
        ece = [r["test_ece"] for r in results]
        err_mean = statistics.mean(error)
        err_std = statistics.stdev(error) if len(error) > 1 else 0.0
        lines.append(
            f"| {method} | {len(results)} | {err_mean:.2f} ± {err_std:.2f} | {mean_std(nll)} | {mean_std(ece)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--erm", nargs="+", required=True, help="output_dir of each ERM run")
    parser.add_argument("--mixup", nargs="+", required=True, help="output_dir of each mixup run")
    parser.add_argument("--output", help="also write the table (markdown) to this file")
    args = parser.parse_args(argv)
    text = table({"ERM": sorted(args.erm), "mixup": sorted(args.mixup)})
    text += "\n\nmean ± standard deviation over runs (seeds); final model after the last epoch.\n"
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    return text


if __name__ == "__main__":
    main()
