#!/usr/bin/env python
"""Seconds to find the 200 nearest neighbours of each of the 60,000 Fashion-MNIST training images, as
`mixup_partner="knn"` does before training.

    python scripts/bench_knn.py                 # writes results/bench_knn.{json,md}

The inputs are the training images as 1x28x28 tensors in [0, 1] (784 values each), all classes
(`scope="all"`) and within each class (`scope="same_class"`); --rounds timings of each, the median reported.
The result is checked on --check rows against a brute-force `torch.cdist` search.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from hf_mixup.experiments import command_line, describe_machine, write_results
from hf_mixup.neighbours import nearest_neighbours

TARGET = "Target: the index of 60,000 Fashion-MNIST images (k = 200, all classes) in under a minute."


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_name", default="data/fashion_mnist")
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check", type=int, default=200, help="rows checked against a brute-force search")
    parser.add_argument("--output", default="results/bench_knn")
    args = parser.parse_args(argv)
    from datasets import load_from_disk

    from hf_mixup.data import prepared_fashion_mnist

    prepared_fashion_mnist(args.dataset_name)
    train = load_from_disk(args.dataset_name)["train"]
    pixels = torch.from_numpy(np.stack([np.asarray(image, dtype=np.float32) / 255.0 for image in train["image"]]))
    labels = torch.tensor(train["label"])
    seconds, found = {}, {}
    for scope in ("all", "same_class"):
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            found[scope] = nearest_neighbours(pixels, args.k, labels=labels, scope=scope)
            times.append(time.perf_counter() - start)
        seconds[scope] = times
    flat = pixels.flatten(1).double()
    rows = torch.arange(min(args.check, len(flat)))
    distances = torch.cdist(flat[rows], flat)
    distances[rows, rows] = float("inf")
    reference = distances.topk(args.k, largest=False).indices
    # The same sets up to ties at the k-th distance.
    agreement = float(np.mean([len(set(a) & set(b)) / args.k for a, b in zip(found["all"][rows].tolist(), reference.tolist())]))
    medians = {scope: statistics.median(t) for scope, t in seconds.items()}
    text = "\n".join([
        f"# Nearest-neighbour index of {len(train):,} Fashion-MNIST images (k = {args.k})",
        "",
        f"`{command_line(argv, __file__)}` ({describe_machine()}).",
        "",
        "| scope | median seconds | rounds |",
        "|---|---|---|",
        *[f"| {scope} | {medians[scope]:.1f} | {', '.join(f'{t:.1f}' for t in seconds[scope])} |" for scope in seconds],
        "",
        f"Agreement with a brute-force `torch.cdist` search on the first {len(rows)} rows: {100 * agreement:.2f}% of "
        "the neighbours" + ("." if agreement == 1.0 else
                            " (distances in float32 against float64: near-ties at the k-th distance can swap)."),
        "",
        TARGET,
        "",
    ])
    payload = {"rows": len(train), "k": args.k, "seconds": seconds, "median_seconds": medians, "agreement": agreement,
               "target": TARGET}
    write_results(args.output, text, payload, argv=argv, script=__file__)
    return payload


if __name__ == "__main__":
    main()
