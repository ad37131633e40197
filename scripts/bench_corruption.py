#!/usr/bin/env python
"""Seconds to corrupt the labels of the 60,000 Fashion-MNIST training images with `corrupt_labels`.

    python scripts/bench_corruption.py                # writes results/bench_corruption.{json,md}

The training split as the training command loads it (images and a `ClassLabel` column, from
--dataset_name, prepared from the Debian package if missing), corrupted at --fraction with a new seed each
round; the median over --rounds after --warmup rounds. The result is checked too: the share of labels that
changed must be about 0.9 x fraction.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from hf_mixup.experiments import command_line, describe_machine, write_results
from hf_mixup.robustness import corrupt_labels

TARGET = "Target: 60,000 labels corrupted in under a second."


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_name", default="data/fashion_mnist")
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--output", default="results/bench_corruption")
    args = parser.parse_args(argv)
    from datasets import load_from_disk

    from hf_mixup.data import prepared_fashion_mnist

    prepared_fashion_mnist(args.dataset_name)
    train = load_from_disk(args.dataset_name)["train"]
    times, changed = [], []
    for round_ in range(args.warmup + args.rounds):
        start = time.perf_counter()
        noisy = corrupt_labels(train, args.fraction, seed=round_)
        elapsed = time.perf_counter() - start
        if round_ >= args.warmup:
            times.append(elapsed)
            columns = noisy.with_format("numpy", columns=["label", "clean_label"])[:]
            changed.append(float(np.mean(columns["label"] != columns["clean_label"])))
    median = statistics.median(times)
    text = "\n".join([
        f"# Label corruption of {len(train):,} labels",
        "",
        f"`{command_line(argv, __file__)}` ({describe_machine()}).",
        "",
        f"`corrupt_labels(train, {args.fraction:g}, seed=k)` on the training split of {args.dataset_name} "
        f"({len(train):,} images): median {median:.3f} s over {args.rounds} rounds (min {min(times):.3f} s, max "
        f"{max(times):.3f} s); labels changed: {100 * statistics.fmean(changed):.1f}% on average "
        f"(expected about {90 * args.fraction:.0f}%).",
        "",
        TARGET,
        "",
    ])
    payload = {"rows": len(train), "fraction": args.fraction, "seconds": times, "median_seconds": median,
               "changed": changed, "target": TARGET}
    write_results(args.output, text, payload, argv=argv, script=__file__)
    return payload


if __name__ == "__main__":
    main()
