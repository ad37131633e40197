#!/usr/bin/env python
"""Images per second of MixupTrainer + the data pipeline against a plain PyTorch loop doing the same work,
through the `set_transform` path and through the in-memory fast path (`--in_memory`).

    python scripts/bench_pipeline.py                 # writes results/bench_pipeline.{json,md}

Same model (PreAct ResNet-18 at a quarter width on 28x28 Fashion-MNIST images, the reproduction's
model), same data (the first --examples training images, decoded lazily from the dataset's PNGs), same
batch (128) and transforms (pad 4 + random crop, flip, normalise, via `set_transform`), SGD with
momentum. The plain loop has the shape of the official mixup-cifar10 `train.py`: `mixup_data`
(numpy Beta lam, `torch.randperm` partners), `mixup_criterion`, and per-step `.item()` bookkeeping.
Both run in this process with the same number of DataLoader workers, interleaved over --rounds (each
round runs each once, the order rotating); throughput counts the steps after the first --warmup of each
run, timed by the same step timer.

The in-memory rows hold the same images as one uint8 tensor (`InMemoryImages`), take each batch by index and
crop and flip it as a batch (`CifarCrop`) before mixing; the plain loop there does the same with a
`torch.randperm` order. Ratios: the fast path's speed-up over the set_transform path (MixupTrainer both), and
MixupTrainer against the plain loop on the same in-memory data.
"""

from __future__ import annotations

import argparse
import os
import statistics

import numpy as np
import torch
from transformers import TimmWrapperImageProcessor

from hf_mixup import MixupArguments, MixupTrainer
from hf_mixup.data import load_any_dataset
from hf_mixup.data.images import train_transform
from hf_mixup.experiments import StepTimer, command_line, describe_machine, time_interleaved, write_results
from hf_mixup.models import create_timm_classifier

# The ratio hf_mixup aims for here, and why.
TARGET = ("Target (hf_mixup's): MixupTrainer at >= 0.95 of the plain loop's throughput on the same data path, so "
          "that what the Trainer adds (callbacks, logging, accelerate) costs at most 5% against writing the loop by "
          "hand.")


def mixup_data(x, y, alpha=1.0):
    # facebookresearch/mixup-cifar10 train.py (without .cuda())
    lam = np.random.beta(alpha, alpha) if alpha > 0 else 1
    index = torch.randperm(x.size()[0])
    mixed_x = lam * x + (1 - lam) * x[index, :]
    return mixed_x, y, y[index], lam


def mixup_criterion(criterion, pred, y_a, y_b, lam):
    return lam * criterion(pred, y_a) + (1 - lam) * criterion(pred, y_b)


def images_per_second(timer: StepTimer, batch: int, warmup: int) -> float:
    """Throughput over the steps after the first `warmup`: from the end of step `warmup` to the last."""
    steady = timer.steady(max(warmup - 1, 0))
    return len(steady) * batch / sum(steady)


def build(examples: int):
    data = load_any_dataset(os.environ.get("FASHION_MNIST", "fashion_mnist"))["train"].select(range(examples))
    model = create_timm_classifier(
        "preact_resnet18", data.features["label"].names, image_size=28, model_args={"channels": [16, 32, 64, 128]}
    )
    cfg = model.config.pretrained_cfg
    evaluate = TimmWrapperImageProcessor(pretrained_cfg=cfg).val_transforms
    transform = train_transform("cifar", 28, cfg["mean"], cfg["std"], evaluate)

    def apply(batch):
        return {"pixel_values": [transform(im.convert("RGB")) for im in batch["image"]], "labels": batch["label"]}

    data.set_transform(apply)
    return data, model


def in_memory(examples: int, model):
    from hf_mixup.data.in_memory import InMemoryImages

    cfg = model.config.pretrained_cfg
    raw = load_any_dataset(os.environ.get("FASHION_MNIST", "fashion_mnist"))["train"].select(range(examples))
    return InMemoryImages.from_dataset(raw, mean=cfg["mean"], std=cfg["std"], mode="RGB", size=28)


def run_trainer(data, model, batch: int, workers: int, warmup: int, scratch: str, fast: bool = False) -> float:
    from hf_mixup.data.in_memory import CifarCrop, collate_batches

    timer = StepTimer()
    cfg = model.config.pretrained_cfg
    options = {"data_collator": collate_batches, "batch_transform": CifarCrop(cfg["mean"], cfg["std"])} if fast else {}
    args = MixupArguments(
        output_dir=scratch, mixup_alpha=1.0, per_device_train_batch_size=batch, num_train_epochs=1, optim="sgd",
        optim_args="momentum=0.9", learning_rate=0.1, weight_decay=1e-4, lr_scheduler_type="constant",
        logging_steps=50, save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
        remove_unused_columns=False, dataloader_num_workers=workers, dataloader_drop_last=True, max_grad_norm=0.0,
        dataloader_pin_memory=False, seed=0,
    )
    MixupTrainer(model=model, args=args, train_dataset=data, callbacks=[timer], **options).train()
    return images_per_second(timer, batch, warmup)


def run_loop_in_memory(data, model, batch: int, warmup: int) -> float:
    """The plain loop on the in-memory data: batches by index from a `torch.randperm` order, crop and flip as a
    batch, then the official loop's mixup and bookkeeping."""
    from hf_mixup.data.in_memory import CifarCrop

    cfg = model.config.pretrained_cfg
    crop = CifarCrop(cfg["mean"], cfg["std"], seed=0)
    order = torch.randperm(len(data))

    def batches():
        for start in range(0, len(data) - batch + 1, batch):
            examples = data.__getitems__(order[start:start + batch])
            yield crop(examples["pixel_values"]), examples["labels"]

    return official_loop(model, batches(), batch, warmup)


def run_in_memory_data_only(data, batch: int, warmup: int) -> float:
    """The in-memory input pipeline alone: gather, normalise, crop and flip a batch, no model."""
    from hf_mixup.data.in_memory import CifarCrop

    crop = CifarCrop(data.mean.flatten().tolist(), data.std.flatten().tolist(), seed=0)
    order = torch.randperm(len(data))
    timer = StepTimer()
    for start in range(0, len(data) - batch + 1, batch):
        crop(data.__getitems__(order[start:start + batch])["pixel_values"])
        timer.tick()
    return images_per_second(timer, batch, warmup)


def run_loop(data, model, batch: int, workers: int, warmup: int) -> float:
    loader = torch.utils.data.DataLoader(
        data, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
        collate_fn=lambda rows: (torch.stack([r["pixel_values"] for r in rows]), torch.tensor([r["labels"] for r in rows])),
    )
    return official_loop(model, loader, batch, warmup)


def official_loop(model, batches, batch: int, warmup: int) -> float:
    """The official mixup-cifar10 training loop over ``(inputs, targets)`` batches: images per second."""
    net = model.timm_model
    net.train()
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    train_loss, correct, total = 0.0, 0, 0
    timer = StepTimer()
    for inputs, targets in batches:
        inputs, targets_a, targets_b, lam = mixup_data(inputs, targets, 1.0)
        outputs = net(inputs)
        loss = mixup_criterion(criterion, outputs, targets_a, targets_b, lam)
        train_loss += loss.item()
        _, predicted = torch.max(outputs.data, 1)
        total += targets.size(0)
        correct += (lam * predicted.eq(targets_a.data).cpu().sum().float()
                    + (1 - lam) * predicted.eq(targets_b.data).cpu().sum().float()).item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        timer.tick()
    return images_per_second(timer, batch, warmup)


def run_data_only(data, batch: int, workers: int, warmup: int) -> float:
    """The input pipeline alone: decode, augment and collate, no model."""
    loader = torch.utils.data.DataLoader(
        data, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
        collate_fn=lambda rows: (torch.stack([r["pixel_values"] for r in rows]), torch.tensor([r["labels"] for r in rows])),
    )
    timer = StepTimer()
    for _ in loader:
        timer.tick()
    return images_per_second(timer, batch, warmup)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=8960, help="training images per run (70 steps of 128)")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--output", default="results/bench_pipeline")
    args = parser.parse_args(argv)
    data, model = build(args.examples)
    fast = in_memory(args.examples, model)
    scratch = "/tmp/hf_mixup_bench_pipeline"
    candidates = {
        "input pipeline alone": lambda _: run_data_only(data, args.batch_size, args.workers, args.warmup),
        "plain loop": lambda _: run_loop(data, model, args.batch_size, args.workers, args.warmup),
        "MixupTrainer": lambda _: run_trainer(data, model, args.batch_size, args.workers, args.warmup, scratch),
        "in-memory pipeline alone": lambda _: run_in_memory_data_only(fast, args.batch_size, args.warmup),
        "plain loop, in memory": lambda _: run_loop_in_memory(fast, model, args.batch_size, args.warmup),
        "MixupTrainer, in memory": lambda _: run_trainer(fast, model, args.batch_size, 0, args.warmup, scratch,
                                                          fast=True),
    }

    def report(r, timings):
        print(f"round {r + 1}: " + ", ".join(f"{k} {t.results[-1]:.0f} img/s" for k, t in timings.items()), flush=True)

    # Each run measures its own throughput (steps after the first --warmup); the rounds interleave them.
    timings = time_interleaved(candidates, args.rounds, keep_results=True, on_round=report)
    rates = {name: timings[name].results for name in candidates}
    median = {k: statistics.median(v) for k, v in rates.items()}
    ratio = median["MixupTrainer"] / median["plain loop"]
    fast_ratio = median["MixupTrainer, in memory"] / median["plain loop, in memory"]
    speedup = median["MixupTrainer, in memory"] / median["MixupTrainer"]
    device = describe_machine()
    text = (
        f"# MixupTrainer + data pipeline vs a plain PyTorch loop ({device})\n\n"
        f"PreAct ResNet-18 (1/4 width), Fashion-MNIST 28x28, batch {args.batch_size}, {args.workers} workers, "
        f"{args.examples} images per run, median of {args.rounds} interleaved rounds.\n\n"
        "| loop | images / s | ratio |\n|---|---|---|\n"
        f"| plain PyTorch (official mixup-cifar10 shape) | {median['plain loop']:.0f} | 1.000 |\n"
        f"| MixupTrainer | {median['MixupTrainer']:.0f} | {ratio:.3f} (hf_mixup's target >= 0.95) |\n"
        f"| input pipeline alone (decode, augment, collate; no model) | {median['input pipeline alone']:.0f} | "
        f"{median['input pipeline alone'] / median['plain loop']:.1f}x the loop |\n"
        f"\nThe in-memory fast path (`--in_memory`): the same images as one uint8 tensor, batches by index, crop and "
        f"flip on the batch.\n\n"
        "| loop | images / s | ratio |\n|---|---|---|\n"
        f"| plain PyTorch, in memory | {median['plain loop, in memory']:.0f} | 1.000 |\n"
        f"| MixupTrainer, in memory | {median['MixupTrainer, in memory']:.0f} | {fast_ratio:.3f} (hf_mixup's target "
        ">= 0.95) |\n"
        f"| in-memory pipeline alone (gather, normalise, crop, flip; no model) | "
        f"{median['in-memory pipeline alone']:.0f} | {median['in-memory pipeline alone'] / median['plain loop, in memory']:.1f}x "
        "the loop |\n\n"
        f"Fast path against the set_transform path, MixupTrainer both: **{speedup:.2f}x** the images per second "
        f"(the input pipeline alone: {median['in-memory pipeline alone'] / median['input pipeline alone']:.1f}x); "
        "on a CPU the model's step dominates, so the whole step gains less than the pipeline.\n"
        f"\n{TARGET}\n\n`{command_line(argv, __file__)}`\n"
    )
    write_results(args.output, text, {"device": device, "images_per_second": rates, "ratio": ratio,
                                      "in_memory_ratio": fast_ratio, "in_memory_speedup": speedup, "args": vars(args)},
                  argv=argv, script=__file__)
    return {"ratio": ratio, "in_memory_ratio": fast_ratio, "in_memory_speedup": speedup, **median}


if __name__ == "__main__":
    main()
