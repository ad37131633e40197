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

from hf_mixup.hub.plots import plot_runs


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--erm", nargs="+", required=True)
    parser.add_argument("--mixup", nargs="+", required=True)
    parser.add_argument("--output", required=True, help="PNG file")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    plot_runs(args.erm, args.mixup, args.output, args.title)
    print(f"wrote {args.output}")
    return args.output


if __name__ == "__main__":
    main()
