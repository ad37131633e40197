#!/usr/bin/env bash
# ERM vs mixup (alpha 1) on Fashion-MNIST, one run of each per seed, then the table and the curves.
#   bash scripts/reproduce_fashion_mnist.sh [seeds...]      (default seeds: 1 2 3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LAUNCH=${LAUNCH:-.venv/bin/accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no --num_cpu_threads_per_process $(nproc)}
SEEDS=${*:-1 2 3}
[ -d data/fashion_mnist ] || $PY scripts/prepare_fashion_mnist.py --output data/fashion_mnist
for seed in $SEEDS; do
  for method in erm mixup; do
    alpha=$([ $method = erm ] && echo 0 || echo 1)
    $LAUNCH scripts/train.py recipes/fashion_mnist_cpu.yaml --mixup_alpha $alpha --seed $seed \
      --output_dir runs/fashion_mnist-$method-seed$seed --disable_tqdm true
  done
done
$PY scripts/compare.py --erm runs/fashion_mnist-erm-seed* --mixup runs/fashion_mnist-mixup-seed* \
  --output results/fashion_mnist_erm_vs_mixup.md
$PY scripts/plot_curves.py --erm runs/fashion_mnist-erm-seed* --mixup runs/fashion_mnist-mixup-seed* \
  --output results/fashion_mnist_curves.png
