#!/usr/bin/env python
"""ERM vs mixup (alpha 0.1 and 0.2) with LeNet and VGG-11 on the synthetic keyword set: the paper's
Section 3.3 (Figure 4) at the size this CPU can train.

    python scripts/reproduce_speech.py                       # 2 models x 3 methods x 3 seeds
    python scripts/reproduce_speech.py --models lenet --seeds 3 --epochs 12

Each run is `scripts/train.py recipes/speech_commands_<model>.yaml` (the paper's recipe: spectrograms
mixed before the network, Adam lr 3e-3 divided by 10 at 1/3 and 2/3 of training, ERM warm-up for the
first 1/6 of the epochs, the 30 words) with the schedule shortened to --epochs and batches of
--batch_size, on a synthetic set (espeak-ng voices; built once with --train_speakers etc. if missing).
The final model of every run is scored on the validation and the test split (speaker-disjoint).
Writes results/speech_<model>_erm_vs_mixup.{md,json} for each model (--output). Each finished run is
recorded in <runs_dir>/grid.json; running the command again skips the runs already there.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch

from hf_mixup.experiments import command_line, file_digest, run_grid, write_results

ROOT = Path(__file__).resolve().parents[1]

# The paper's test errors (%) on Google commands (Zhang et al., 2018, Section 3.3): ERM, and its best mixup.
PAPER = {"lenet": (10.3, 10.8), "vgg11": (4.6, 3.4)}


def error_on(run_dir: str, split) -> float:
    """Test error (%) of the saved model on a split of (audio, label) rows, with its own extractor."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from hf_mixup.data.audio import decode_audio

    model = AutoModelForAudioClassification.from_pretrained(run_dir).eval()
    extractor = AutoFeatureExtractor.from_pretrained(run_dir)
    wrong = 0
    for start in range(0, len(split), 64):
        rows = split[start : start + 64]
        clips = [decode_audio(a)[0] for a in rows["audio"]]
        features = extractor(clips, sampling_rate=extractor.sampling_rate, return_tensors="pt")["input_features"]
        with torch.no_grad():
            predicted = model(input_features=features).logits.argmax(-1)
        wrong += int((predicted != torch.tensor(rows["label"])).sum())
    return 100.0 * wrong / len(split)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/speech_commands_small")
    parser.add_argument("--train_speakers", type=int, default=10)
    parser.add_argument("--eval_speakers", type=int, default=6, help="speakers in validation and in test each")
    parser.add_argument("--models", nargs="+", default=["lenet", "vgg11"], choices=["lenet", "vgg11"])
    parser.add_argument("--alphas", nargs="+", type=float, default=[0.0, 0.1, 0.2])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=3e-3, help="Adam's learning rate (the paper: 3e-3)")
    parser.add_argument("--runs_dir", default="runs/speech")
    parser.add_argument("--output", default="results/speech_{model}_erm_vs_mixup",
                        help="results file, without extension: {model} becomes each model's name (one file per "
                             "model); without {model}, one file for all the models")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        raise ValueError("--seeds must be at least 2 to report a spread")
    if args.epochs < 3:
        raise ValueError("--epochs must be at least 3 (the learning rate drops at 1/3 and 2/3 of them)")
    import transformers

    from hf_mixup.cli import train
    from hf_mixup.data import load_any_dataset, save_dataset
    from hf_mixup.data.speech_commands import build_speech_commands, select_keyword_classes

    transformers.utils.logging.set_verbosity_error()
    if not os.path.isdir(args.data):
        save_dataset(lambda: build_speech_commands(args.train_speakers, args.eval_speakers, args.eval_speakers, 1),
                     args.data)
    data = select_keyword_classes(load_any_dataset(args.data), "words")
    milestones = [str(round(args.epochs / 3)), str(round(2 * args.epochs / 3))]
    warmup = str(max(1, round(args.epochs / 6)))
    methods = {"ERM" if alpha == 0 else f"mixup alpha {alpha:g}": alpha for alpha in args.alphas}

    def run_cell(cell: str, seed: int) -> dict[str, float]:
        model, method = cell.split("/")
        alpha = methods[method]
        out = os.path.join(args.runs_dir, f"{model}-{'erm' if alpha == 0 else f'mixup{alpha:g}'}-seed{seed}")
        metrics = train.main([
            str(ROOT / "recipes" / f"speech_commands_{model}.yaml"), "--dataset_name", args.data,
            "--mixup_alpha", str(alpha), "--seed", str(seed),
            "--num_train_epochs", str(args.epochs), "--lr_milestones", *milestones, "--mixup_warmup_epochs", warmup,
            "--per_device_train_batch_size", str(args.batch_size), "--learning_rate", str(args.learning_rate),
            "--eval_strategy", "no", "--save_strategy", "no",
            "--output_dir", out, "--report_to", "none", "--disable_tqdm", "true", "--logging_strategy", "no",
        ])
        # The recipe's evaluation split is the validation split; the test split is scored here.
        return {"validation": 100.0 * metrics["test_error"], "test": error_on(out, data["test"])}

    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    seconds: dict[str, float] = {}
    seeds = range(1, args.seeds + 1)
    for model in args.models:  # one model after the other, each a seeds x methods grid
        outcome = run_grid(
            run_cell, [f"{model}/{method}" for method in methods], seeds,
            state_file=os.path.join(args.runs_dir, "grid.json"), desc=f"speech runs, {model}",
            config={"data": args.data, "epochs": args.epochs, "batch_size": args.batch_size,
                    "learning_rate": args.learning_rate,
                    "recipe_sha1": file_digest(str(ROOT / "recipes" / f"speech_commands_{model}.yaml"))},
        )
        seconds[model] = outcome.seconds
        results[model] = {
            method: {split: [outcome.results[f"{model}/{method}"][s][split] for s in seeds]
                     for split in ("validation", "test")}
            for method in methods
        }

    def cell(values: list[float]) -> str:
        return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"

    def rows_of(model: str) -> list[str]:
        rows = []
        for method, scores in results[model].items():
            paper = PAPER[model][0 if method == "ERM" else 1]
            paper_cell = f"{paper}" if method == "ERM" else f"{paper} (its best mixup)"
            rows.append(f"| {model} | {method} | {cell(scores['validation'])} | {cell(scores['test'])} | {paper_cell} |")
        return rows

    command = command_line(argv, __file__)
    sizes = ", ".join(f"{k} {v.num_rows}" for k, v in data.items())

    def report(models: list[str], output: str) -> None:
        minutes = sum(seconds[m] for m in models) / 60
        text = "\n".join([
            f"# ERM vs mixup on the synthetic keyword set (30 words; {sizes} clips), {args.seeds} seeds",
            "",
            f"`{command}` ({minutes:.0f} min of runs on this machine). Final model of each run; error in %, mean ± "
            f"standard deviation over seeds. Schedule: {args.epochs} epochs, batches of {args.batch_size}, Adam lr {args.learning_rate:g} "
            f"/ 10 at epochs {' and '.join(milestones)}, ERM for the first {warmup} epoch(s); the paper: 30 epochs, "
            "batches of 100, / 10 every 10 epochs, 5 ERM epochs, on the real Google Speech Commands.",
            "",
            "| model | method | validation error | test error | paper, test error |",
            "|---|---|---|---|---|",
            *[row for model in models for row in rows_of(model)],
            "",
        ])
        write_results(output, text, {"results": {m: results[m] for m in models}, "epochs": args.epochs},
                      argv=argv, script=__file__)

    if "{model}" in args.output:
        for model in args.models:
            report([model], args.output.replace("{model}", model))
    else:
        report(list(args.models), args.output)
    return results


if __name__ == "__main__":
    main()
