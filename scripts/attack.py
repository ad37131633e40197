#!/usr/bin/env python
"""Top-1 and top-5 test error of saved image classifiers under FGSM and I-FGSM (the paper's Table 3).

    python scripts/attack.py --model runs/digits-erm-seed1 --model runs/digits-mixup-seed1 \
        --source runs/digits-erm-seed2 --dataset_name digits --epsilon 4/255 --output results/attack_digits
    python scripts/attack.py --model runs/fmnist-mixup --dataset_name fashion_mnist --max_samples 1000 \
        --epsilons 1/255 2/255 4/255 8/255 16/255 --output results/attack_fashion_mnist

Each --model is a checkpoint (a folder or a Hub id, loaded with `AutoModelForImageClassification`) and
preprocesses the images with its own image processor, as evaluation in training does. White box: each
model is attacked itself. Black box (with --source): the adversarial images are crafted on the source
model and every other --model is evaluated on them (the source and targets must turn an image into the
same pixels before normalisation: same size and crop). Epsilon is in pixel units out of 255 written as a
fraction (4/255, the paper's epsilon = 4) or as a number in [0, 1]; I-FGSM takes --steps steps of
epsilon / steps. Top-5 error is reported for more than 5 classes. The tables go to `<output>.md`, the
figures (with the command line and the machine) to `<output>.json`, and with several epsilons the top-1
error over epsilon is plotted to `<output>.png`.
"""

from __future__ import annotations

import argparse
import os
import sys
from fractions import Fraction

import torch

from hf_mixup.cli.errors import UsageError
from hf_mixup.cli.evaluation import ImageCheckpoint, OneLineParser, load_split, run_script

ATTACKS = {"fgsm": "FGSM", "ifgsm": "I-FGSM"}


def parse_epsilon(text: str) -> float:
    """``"4/255"`` -> 4/255, ``"0.1"`` -> 0.1: an epsilon in [0, 1] pixel units."""
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or a fraction such as 4/255") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"epsilon {text} is negative; give a size >= 0, such as 4/255")
    if value > 1:
        raise argparse.ArgumentTypeError(
            f"epsilon {text} is more than the whole pixel range [0, 1]; epsilon is in [0, 1] pixel units: "
            f"write {text}/255 for {text} out of 255"
        )
    return value


def epsilon_label(value: float) -> str:
    """4/255 for an epsilon that is a whole number of 255ths, the number otherwise."""
    in_255ths = value * 255
    if abs(in_255ths - round(in_255ths)) < 1e-6:
        return "0" if round(in_255ths) == 0 else f"{round(in_255ths)}/255"
    return f"{value:g}"


def parse_args(argv: list[str] | None):
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a checkpoint folder or Hub id; repeat for several")
    parser.add_argument("--source", default=None, help="the checkpoint black-box attacks are crafted on")
    parser.add_argument("--dataset_name", default="digits", help="an offline name (digits, fashion_mnist), a path or a Hub id")
    parser.add_argument("--dataset_config_name", default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--image_column_name", default=None)
    parser.add_argument("--label_column_name", default=None)
    parser.add_argument("--max_samples", type=int, default=None, help="the first N images of the split")
    parser.add_argument("--epsilon", type=parse_epsilon, default=4 / 255, help="the epsilon of the main table (default 4/255)")
    parser.add_argument("--epsilons", type=parse_epsilon, nargs="+", default=None,
                        help="more epsilons for the error-over-epsilon table and plot, e.g. 1/255 2/255 4/255 8/255")
    parser.add_argument("--attacks", nargs="+", choices=list(ATTACKS), default=list(ATTACKS))
    parser.add_argument("--steps", type=int, default=10, help="I-FGSM steps (each of epsilon / steps)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--device", default=None, help="cuda when available, else cpu")
    parser.add_argument("--output", default=None, help="results/attack_<dataset> by default (.md, .json, .png)")
    parser.add_argument("--disable_tqdm", action="store_true")
    args = parser.parse_args(argv)
    if args.steps < 1:
        raise UsageError(f"--steps {args.steps}: I-FGSM needs at least 1 step")
    if args.batch_size < 1:
        raise UsageError(f"--batch_size {args.batch_size}: give a batch size >= 1")
    if args.max_samples is not None and args.max_samples < 1:
        raise UsageError(f"--max_samples {args.max_samples}: give a number of images >= 1")
    if len(set(args.model)) != len(args.model):
        raise UsageError(f"--model names a checkpoint twice: {args.model}")
    args.attacks = list(dict.fromkeys(args.attacks))
    args.epsilons_all = sorted({args.epsilon, *(args.epsilons or [])})
    if args.output is None:
        name = os.path.basename(os.path.normpath(args.dataset_name)) or "dataset"
        args.output = os.path.join("results", f"attack_{name}")
    return args


# --------------------------------------------------------------------------------------------- models and data


class Classifier(ImageCheckpoint):
    """A loaded checkpoint (`ImageCheckpoint`: the model, its eval transform and colour mode) with its
    input normalisation, to go between model inputs and raw [0, 1] pixels."""

    def __init__(self, name: str, device: torch.device, flag: str = "--model"):
        from hf_mixup.robustness.attacks import input_normalization

        super().__init__(name, device, flag)
        self.mean, self.std = input_normalization(self.model)

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)
        return mean, std

    def pixels(self, inputs: torch.Tensor) -> torch.Tensor:
        """Model inputs back to raw [0, 1] pixels."""
        if self.mean is None:
            return inputs
        mean, std = self._stats(inputs)
        return inputs * std + mean

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return pixels
        mean, std = self._stats(pixels)
        return (pixels - mean) / std

    @torch.no_grad()
    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=inputs).logits


# --------------------------------------------------------------------------------------------- errors


class ErrorCounter:
    """Top-1 and top-5 mistakes per (setting, target, attack, epsilon)."""

    def __init__(self, num_classes: int):
        self.top5 = num_classes > 5
        self.counts: dict[tuple, list[int]] = {}

    def add(self, key: tuple, logits: torch.Tensor, labels: torch.Tensor) -> None:
        labels = labels.to(logits.device)
        wrong1 = int((logits.argmax(dim=-1) != labels).sum())
        wrong5 = int((logits.topk(5, dim=-1).indices != labels[:, None]).all(dim=-1).sum()) if self.top5 else 0
        count = self.counts.setdefault(key, [0, 0, 0])
        count[0] += wrong1
        count[1] += wrong5
        count[2] += labels.shape[0]

    def rates(self, key: tuple) -> dict[str, float | None]:
        wrong1, wrong5, total = self.counts[key]
        return {"top1_error": wrong1 / total, "top5_error": wrong5 / total if self.top5 else None}


def craft(attack: str, classifier: Classifier, inputs, labels, epsilon: float, steps: int) -> torch.Tensor:
    from hf_mixup.robustness.attacks import fgsm, iterative_fgsm

    kwargs = {"mean": classifier.mean, "std": classifier.std}
    if attack == "fgsm":
        return fgsm(classifier.model, inputs, labels, epsilon, **kwargs)
    return iterative_fgsm(classifier.model, inputs, labels, epsilon, steps=steps, **kwargs)


def evaluate(args, classifiers: dict[str, Classifier], source: Classifier | None, split, image_col, label_col, counter):
    from tqdm.auto import tqdm

    device = next(iter(classifiers.values())).model.device
    targets = [c for c in classifiers.values() if source is None or c.name != source.name]
    batches = range(0, len(split), args.batch_size)
    for start in tqdm(batches, desc="attacking", unit="batch", disable=args.disable_tqdm):
        rows = split[start:start + args.batch_size]
        labels = torch.tensor(rows[label_col], dtype=torch.long, device=device)
        inputs = {name: c.inputs(rows[image_col]).to(device) for name, c in classifiers.items()}
        for name, classifier in classifiers.items():  # white box
            x = inputs[name]
            counter.add(("white box", name, name, "clean", 0.0), classifier.logits(x), labels)
            for attack in args.attacks:
                for epsilon in args.epsilons_all:
                    adversarial = craft(attack, classifier, x, labels, epsilon, args.steps)
                    counter.add(("white box", name, name, attack, epsilon), classifier.logits(adversarial), labels)
        if source is None or not targets:
            continue
        x_source = inputs[source.name] if source.name in inputs else source.inputs(rows[image_col]).to(device)
        for target in targets:
            counter.add(("black box", source.name, target.name, "clean", 0.0), target.logits(inputs[target.name]), labels)
        for attack in args.attacks:
            for epsilon in args.epsilons_all:
                adversarial = source.pixels(craft(attack, source, x_source, labels, epsilon, args.steps)).clamp(0, 1)
                for target in targets:
                    logits = target.logits(target.normalise(adversarial).to(inputs[target.name].dtype))
                    counter.add(("black box", source.name, target.name, attack, epsilon), logits, labels)


# --------------------------------------------------------------------------------------------- report


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def tables(args, records: list[dict], top5: bool, samples: int) -> str:
    from hf_mixup.experiments import command_line, describe_machine

    def find(setting, source, target, attack, epsilon):
        for r in records:
            if (r["setting"], r["source"], r["target"], r["attack"]) == (setting, source, target, attack) and (
                attack == "clean" or r["epsilon"] == epsilon
            ):
                return r
        return None

    pairs = list(dict.fromkeys((r["setting"], r["source"], r["target"]) for r in records))
    lines = [
        f"# Adversarial error on {args.dataset_name} ({args.split}, {samples} images)",
        "",
        f"Top-1{' / top-5' if top5 else ''} error (%) at epsilon = {epsilon_label(args.epsilon)} (raw [0, 1] pixel "
        f"units); I-FGSM: {args.steps} steps of epsilon / {args.steps}. White box: each model attacked itself; "
        "black box: crafted on the source, evaluated on the target.",
        "",
    ]
    columns = ["clean"] + args.attacks
    header = "| setting | source | target | " + " | ".join(
        (f"{ATTACKS.get(c, c)} top-1 | {ATTACKS.get(c, c)} top-5" if top5 else f"{ATTACKS.get(c, c)} top-1") for c in columns
    ) + " |"
    lines += [header, "|" + "---|" * (3 + len(columns) * (2 if top5 else 1))]
    for setting, source, target in pairs:
        cells = []
        for attack in columns:
            r = find(setting, source, target, attack, args.epsilon)
            cells.append(percent(r["top1_error"]))
            if top5:
                cells.append(percent(r["top5_error"]))
        lines.append(f"| {setting} | {source} | {target} | " + " | ".join(cells) + " |")
    if len(args.epsilons_all) > 1:
        lines += ["", "Top-1 error (%) over epsilon:", ""]
        labels = [epsilon_label(e) for e in args.epsilons_all]
        lines += ["| setting | source | target | attack | clean | " + " | ".join(labels) + " |",
                  "|" + "---|" * (5 + len(labels))]
        for setting, source, target in pairs:
            clean = find(setting, source, target, "clean", 0.0)
            for attack in args.attacks:
                cells = [percent(find(setting, source, target, attack, e)["top1_error"]) for e in args.epsilons_all]
                lines.append(f"| {setting} | {source} | {target} | {ATTACKS[attack]} | {percent(clean['top1_error'])} | "
                             + " | ".join(cells) + " |")
    lines += ["", f"{describe_machine()}", "", f"`{command_line(None, __file__)}`", ""]
    return "\n".join(lines)


def plot(args, records: list[dict], path: str) -> None:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    pairs = list(dict.fromkeys((r["setting"], r["source"], r["target"]) for r in records))
    xs = [0.0] + [e * 255 for e in args.epsilons_all]
    for setting, source, target in pairs:
        clean = next(r for r in records if (r["setting"], r["source"], r["target"], r["attack"]) == (setting, source, target, "clean"))
        for attack in args.attacks:
            ys = [clean["top1_error"]] + [
                next(r for r in records if (r["setting"], r["source"], r["target"], r["attack"]) == (setting, source, target, attack)
                     and r["epsilon"] == e)["top1_error"]
                for e in args.epsilons_all
            ]
            name = os.path.basename(os.path.normpath(target))
            where = "white box" if setting == "white box" else f"black box from {os.path.basename(os.path.normpath(source))}"
            ax.plot(xs, [100 * y for y in ys], marker="o", linestyle="-" if setting == "white box" else "--",
                    label=f"{name}, {ATTACKS[attack]}, {where}")
    ax.set_xlabel("epsilon (out of 255)")
    ax.set_ylabel("top-1 error (%)")
    ax.set_title(f"{args.dataset_name} ({args.split}): error under attack")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------- main


def prepare(argv: list[str] | None):
    """Everything a mistake on the command line can break: flags, data, checkpoints, their classes and,
    for the black box, that the source and targets see the same pixels (checked on the first batch)."""
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    split, image_col, label_col, names = load_split(args)
    classifiers = {name: Classifier(name, device) for name in args.model}
    source = None
    if args.source is not None:
        source = classifiers.get(args.source) or Classifier(args.source, device, "--source")
        if all(name == source.name for name in classifiers):
            raise UsageError("--source is the only --model: name other models to evaluate the black-box attack on")
    for classifier in [*classifiers.values(), *([source] if source is not None else [])]:
        classifier.check_labels(names)
    if source is not None:
        images = split[: args.batch_size][image_col]
        clean = source.pixels(source.inputs(images))
        for target in classifiers.values():
            pixels = target.pixels(target.inputs(images))
            if pixels.shape != clean.shape or not torch.allclose(pixels, clean, atol=1e-3):
                raise UsageError(
                    f"--source {source.name} and --model {target.name} preprocess images differently (pixels of "
                    f"shape {tuple(clean.shape[1:])} vs {tuple(pixels.shape[1:])}, or another resize or crop): the "
                    "black-box transfer needs the same image size and crop"
                )
    return args, classifiers, source, split, image_col, label_col, names


def main(argv: list[str] | None = None) -> dict:
    """Parse ``argv``, attack, write ``<output>.md`` / ``.json`` (and ``.png``); the json's payload."""
    return execute(*prepare(argv), argv=argv)


def execute(args, classifiers, source, split, image_col, label_col, names, argv=None) -> dict:
    from hf_mixup.experiments import write_results

    counter = ErrorCounter(len(names))
    evaluate(args, classifiers, source, split, image_col, label_col, counter)
    records = []
    for key in counter.counts:
        setting, source_name, target, attack, epsilon = key
        records.append({
            "setting": setting, "source": source_name, "target": target, "attack": attack,
            "epsilon": epsilon, "epsilon_label": epsilon_label(epsilon) if attack != "clean" else "0",
            **counter.rates(key),
        })
    text = tables(args, records, counter.top5, len(split))
    payload = {
        "dataset": args.dataset_name, "split": args.split, "samples": len(split), "num_classes": len(names),
        "models": args.model, "source": args.source, "attacks": args.attacks, "steps": args.steps,
        "epsilon": args.epsilon, "epsilons": args.epsilons_all, "top5": counter.top5, "results": records,
    }
    if len(args.epsilons_all) > 1:
        plot(args, records, args.output + ".png")
        payload["plot"] = args.output + ".png"
    write_results(args.output, text, payload, argv=argv, script=__file__)
    return payload


def run(argv: list[str] | None = None) -> int:
    """`main`, with a mistake in what was asked for (a bad flag value, a missing checkpoint, split or column,
    models that do not fit the data) as one line on stderr and exit status 2; errors while attacking propagate."""
    return run_script(prepare, execute, argv, "attack.py")


if __name__ == "__main__":
    sys.exit(run())
