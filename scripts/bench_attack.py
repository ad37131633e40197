#!/usr/bin/env python
"""Images per second of hf_mixup's I-FGSM against torchattacks' BIM (the same attack) on one model and batch.

    python scripts/bench_attack.py                   # writes results/bench_attack.{json,md}

Same model (a PreAct ResNet-18 at --width of the full width, random weights, eval mode, called as a plain
module returning logits, as torchattacks needs), same batch (the first --batch_size test images of
--dataset_name at --image_size, raw [0, 1] pixels), same attack (epsilon --epsilon, --steps steps of
epsilon / steps). The two are timed in this process, interleaved over --rounds (each round runs each once,
the order rotating) after --warmup rounds; throughput is the batch size over the median time. Their
adversarial images are compared too.
"""

from __future__ import annotations

import argparse
import statistics
from fractions import Fraction

import torch

from hf_mixup.data import load_any_dataset
from hf_mixup.experiments import command_line, describe_machine, time_interleaved, write_results
from hf_mixup.models import create_timm_classifier
from hf_mixup.robustness.attacks import iterative_fgsm

TARGET = ("Target (hf_mixup's): I-FGSM at >= 0.95 of torchattacks' throughput, so that its input checks and its "
          "handling of the model's mode cost at most 5%.")


def batch(dataset_name: str, size: int, image_size: int):
    from torchvision.transforms import v2

    split = load_any_dataset(dataset_name)["test"].select(range(size))
    transform = v2.Compose([v2.PILToTensor(), v2.Resize(image_size, antialias=True), v2.ToDtype(torch.float32, scale=True)])
    pixels = torch.stack([transform(image.convert("RGB")) for image in split["image"]])
    return pixels, torch.tensor(split["label"], dtype=torch.long), split.features["label"].names


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_name", default="digits")
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25, help="fraction of PreAct ResNet-18's channels")
    parser.add_argument("--epsilon", type=lambda t: float(Fraction(t)), default=8 / 255)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--output", default="results/bench_attack")
    args = parser.parse_args(argv)
    import torchattacks

    torch.manual_seed(0)
    pixels, labels, names = batch(args.dataset_name, args.batch_size, args.image_size)
    channels = [max(1, round(c * args.width)) for c in (64, 128, 256, 512)]
    wrapper = create_timm_classifier("preact_resnet18", names, image_size=args.image_size, model_args={"channels": channels})
    model = wrapper.timm_model.eval()
    reference = torchattacks.BIM(model, eps=args.epsilon, alpha=args.epsilon / args.steps, steps=args.steps)
    candidates = {
        "hf_mixup iterative_fgsm": lambda _: iterative_fgsm(model, pixels, labels, args.epsilon, steps=args.steps),
        "torchattacks BIM": lambda _: reference(pixels, labels),
    }
    timings = time_interleaved(candidates, args.rounds, warmup_rounds=args.warmup, progress="rounds")
    rate = {name: args.batch_size / t.median for name, t in timings.items()}
    ratio = rate["hf_mixup iterative_fgsm"] / rate["torchattacks BIM"]
    difference = (iterative_fgsm(model, pixels, labels, args.epsilon, steps=args.steps) - reference(pixels, labels)).abs().max().item()
    device = describe_machine()
    text = (
        f"# I-FGSM: hf_mixup vs torchattacks BIM ({device})\n\n"
        f"PreAct ResNet-18 (channels {channels}), {args.dataset_name} at {args.image_size}x{args.image_size}, "
        f"batch {args.batch_size}, epsilon {args.epsilon:.5f}, {args.steps} steps; median of {args.rounds} interleaved "
        f"rounds after {args.warmup} warm-up.\n\n"
        "| attack | images / s | ratio |\n|---|---|---|\n"
        f"| torchattacks BIM | {rate['torchattacks BIM']:.1f} | 1.000 |\n"
        f"| hf_mixup iterative_fgsm | {rate['hf_mixup iterative_fgsm']:.1f} | {ratio:.3f} |\n\n"
        f"Largest difference between their adversarial pixels: {difference:.2e}.\n\n{TARGET}\n\n"
        f"`{command_line(argv, __file__)}`\n"
    )
    payload = {
        "device": device, "images_per_second": rate, "ratio": ratio, "max_abs_difference": difference,
        "seconds": {name: t.seconds for name, t in timings.items()}, "args": vars(args), "channels": channels,
    }
    write_results(args.output, text, payload, argv=argv, script=__file__)
    return payload


if __name__ == "__main__":
    main()
