#!/usr/bin/env python
"""Turn the Fashion-MNIST files of the Debian package `dataset-fashion-mnist` into a local dataset with
the schema of the Hub dataset `zalando-datasets/fashion_mnist` (`image`, `label` with its class names).

    apt-get install dataset-fashion-mnist
    python scripts/prepare_fashion_mnist.py --output data/fashion_mnist
    accelerate launch scripts/train.py --dataset_name data/fashion_mnist ...
"""

from __future__ import annotations

import argparse

from hf_mixup.data import FASHION_MNIST_DIR, load_fashion_mnist, save_dataset


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=FASHION_MNIST_DIR, help="folder of the four IDX .gz files")
    parser.add_argument("--output", default="data/fashion_mnist", help="where to save the DatasetDict")
    parser.add_argument("--limit", type=int, default=None, help="keep only the first N images of each split")
    args = parser.parse_args(argv)
    return save_dataset(lambda: load_fashion_mnist(args.source, limit=args.limit), args.output)


if __name__ == "__main__":
    main()
