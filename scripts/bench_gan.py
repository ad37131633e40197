#!/usr/bin/env python
"""Generator iterations per second of `hf_mixup.gan` against plain PyTorch loops of the released code's shape.

    python scripts/bench_gan.py                   # writes results/bench_gan.{json,md}

Three candidates train the same networks (3 x 512 ReLU MLPs, latent dim 2, batches of 128 real + 128
generated points, 5 discriminator steps per generator step, Adam, mixup m = --mixup_max), timed in
interleaved rounds of --iterations generator iterations each:

- `hf_mixup`: `GanTrainer.train_iteration` (accelerate, the mixing engine, the run's own seeded generator);
- `released loop`: the authors' `gan/example_gan.py` loop as written (generated points not detached in the
  discriminator steps, the discriminator's weight gradients computed in the generator step), in current PyTorch;
- `lean loop`: the same plain loop without those two thrown-away computations, as `hf_mixup` does, so
  `hf_mixup / lean loop` is the cost of the library itself.

Ratios are of the median seconds per round (higher = hf_mixup faster). Target: hf_mixup >= 0.95x the
released loop.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch
import torch.nn.functional as F

from hf_mixup.experiments import command_line, describe_machine, time_interleaved, write_results
from hf_mixup.gan import GanArguments, GanTrainer, toy_means
from hf_mixup.gan.models import perceptron

TARGET = "Target: hf_mixup's generator iterations per second >= 0.95x the released loop's."


def plain_loop(args: GanArguments, device: torch.device, lean: bool):
    """A closure running ``n`` iterations of the released code's loop (``lean``: minus its thrown-away work)."""
    torch.manual_seed(args.seed)
    netG = perceptron([args.latent_dim] + [args.hidden_size] * args.num_layers + [2]).to(device)
    netD = perceptron([2] + [args.hidden_size] * args.num_layers + [1]).to(device)
    optG, optD = torch.optim.Adam(netG.parameters()), torch.optim.Adam(netD.parameters())
    means = toy_means(args.data)
    bs, m = args.batch_size, args.mixup_max

    def sample_real(n):
        i = torch.zeros(n).random_(means.size(0)).long()
        return (torch.randn(n, 2) * args.data_std + means[i]).to(device)

    def one_batch():
        real = sample_real(bs)
        noise = torch.randn(bs, args.latent_dim).to(device)
        if lean:
            with torch.no_grad():
                fake = netG(noise)
        else:
            fake = netG(noise)
        data = torch.cat((real, fake))
        labels = torch.cat((torch.ones(bs, 1), torch.zeros(bs, 1))).to(device)
        perm = torch.randperm(data.size(0)).to(device)
        return data[perm], labels[perm]

    def mixup_batch(mixup):
        d1, l1 = one_batch()
        if mixup == 0:
            return d1, l1
        d2, l2 = one_batch()
        alpha = torch.randn(d1.size(0), 1).uniform_(0, mixup).to(device)
        return alpha * d1 + (1.0 - alpha) * d2, alpha * l1 + (1.0 - alpha) * l2

    def run(n):
        for _ in range(n):
            for _ in range(args.d_steps):
                data, labels = mixup_batch(m)
                optD.zero_grad()
                F.binary_cross_entropy_with_logits(netD(data), labels).backward()
                optD.step()
            data, labels = mixup_batch(0) if not lean else _generator_batch()
            optG.zero_grad()
            if lean:
                netD.requires_grad_(False)
            (-F.binary_cross_entropy_with_logits(netD(data), labels)).backward()
            if lean:
                netD.requires_grad_(True)
            optG.step()

    def _generator_batch():
        real = sample_real(bs)
        fake = netG(torch.randn(bs, args.latent_dim).to(device))
        return torch.cat((real, fake)), torch.cat((torch.ones(bs, 1), torch.zeros(bs, 1))).to(device)

    return run


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20, help="generator iterations per timed round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--mixup_max", type=float, default=0.2)
    parser.add_argument("--data", default="ring")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--cpu", action="store_true", help="on the CPU even when a GPU is there")
    parser.add_argument("--output", default="results/bench_gan")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        settings = GanArguments(output_dir=folder, data=args.data, mixup_max=args.mixup_max, use_cpu=args.cpu,
                                disable_tqdm=True, mixed_precision="no")  # float32, as the plain loops
        trainer = GanTrainer(settings)
        device = trainer.accelerator.device
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

        def ours(_):
            for _ in range(args.iterations):
                trainer.train_iteration()
            sync()

        loops = {name: plain_loop(settings, device, lean) for name, lean in (("released loop", False), ("lean loop", True))}

        def timed(run):
            def call(_):
                run(args.iterations)
                sync()
            return call

        timings = time_interleaved({"hf_mixup": ours, **{name: timed(run) for name, run in loops.items()}},
                                   args.rounds, warmup_rounds=args.warmup, progress="bench_gan")
    rate = {name: args.iterations / t.median for name, t in timings.items()}
    ratio_released = timings["released loop"].median / timings["hf_mixup"].median
    ratio_lean = timings["lean loop"].median / timings["hf_mixup"].median
    text = "\n".join([
        "# Toy GAN training speed: hf_mixup.gan vs plain PyTorch loops",
        "",
        f"`{command_line(argv, __file__)}` ({describe_machine()}, device {device}).",
        "",
        f"{args.data}, mixup m = {args.mixup_max:g}, 3 x 512 MLPs, latent dim 2, batch 128 + 128, 5 discriminator steps "
        f"per generator iteration; median of {args.rounds} interleaved rounds of {args.iterations} generator iterations.",
        "",
        "| candidate | generator iterations / s | hf_mixup's speed relative to it |",
        "|---|---|---|",
        f"| hf_mixup (`GanTrainer.train_iteration`) | {rate['hf_mixup']:.2f} | 1.000x |",
        f"| released loop (as written) | {rate['released loop']:.2f} | {ratio_released:.3f}x |",
        f"| lean loop (same work as hf_mixup) | {rate['lean loop']:.2f} | {ratio_lean:.3f}x |",
        "",
        TARGET,
        "",
    ])
    payload = {"seconds": {name: t.seconds for name, t in timings.items()},
               "iterations_per_second": rate, "hf_mixup_vs_released": ratio_released, "hf_mixup_vs_lean": ratio_lean,
               "device": str(device), "target": TARGET, "spread": {name: statistics.pstdev(t.seconds) for name, t in timings.items()}}
    write_results(args.output, text, payload, argv=argv, script=__file__)
    return payload


if __name__ == "__main__":
    main()
