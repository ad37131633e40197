#!/usr/bin/env python
"""Turn the Fashion-MNIST files of the Debian package `dataset-fashion-mnist` into a local dataset with
the schema of the Hub dataset `zalando-datasets/fashion_mnist` (`image`, `label` with its class names).

    apt-get install dataset-fashion-mnist
    python scripts/prepare_fashion_mnist.py --output data/fashion_mnist
    accelerate launch scripts/train.py --dataset_name data/fashion_mnist ...

    # a smaller copy to carry to another machine: 10,000 training images drawn with seed 0, the full test split
    python scripts/prepare_fashion_mnist.py --output data/fashion_mnist_10k --train_subset 10000 --subset_seed 0
"""

from __future__ import annotations

import argparse

from hf_mixup.data import FASHION_MNIST_DIR, load_fashion_mnist, save_dataset


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=FASHION_MNIST_DIR, help="folder of the four IDX .gz files")
    parser.add_argument("--output", default="data/fashion_mnist", help="where to save the DatasetDict")
    parser.add_argument("--limit", type=int, default=None, help="keep only the first N images of each split")
    parser.add_argument("--train_subset", type=int, default=None,
                        help="keep N training images drawn at random (with --subset_seed); the test split stays whole")
    parser.add_argument("--subset_seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.train_subset is not None and args.train_subset < 1:
        parser.error(f"--train_subset {args.train_subset}: give a number of training images >= 1")

    def load():
        data = load_fashion_mnist(args.source, limit=args.limit)
        if args.train_subset is not None:
            train = data["train"]
            keep = min(args.train_subset, len(train))
            data["train"] = train.shuffle(seed=args.subset_seed).select(range(keep)).flatten_indices()
        return data

    return save_dataset(load, args.output)


if __name__ == "__main__":
    main()
