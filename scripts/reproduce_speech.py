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
Writes results/speech_<model>_erm_vs_mixup.{md,json} for each model (--output): validation and test error
as mean ± standard deviation over seeds, next to the paper's Figure 4 (both errors, ERM and both alphas,
with its setting) and its findings. Each finished run is recorded in <runs_dir>/grid.json; running the
command again skips the runs already there; `--render_only` writes the .md again from the .json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch

from hf_mixup import paper
from hf_mixup.experiments import file_digest, render_results, run_grid, write_results

ROOT = Path(__file__).resolve().parents[1]


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


def method_name(alpha: float) -> str:
    return "ERM" if alpha == 0 else f"mixup alpha {alpha:g}"


def summarise(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def render(record: dict) -> str:
    """results/speech_<model>_erm_vs_mixup.md from what its .json records: our errors with the paper's Figure 4
    beside them (validation and test, ERM and each alpha), Figure 4 in full with its setting, and the paper's
    findings checked on our means."""
    results = record["results"]
    seeds = len(next(iter(next(iter(results.values())).values()))["test"])
    sizes = ", ".join(f"{split} {rows}" for split, rows in record["split_sizes"].items())
    names = " and ".join(paper.FIGURE4_MODELS[model] for model in results)
    warmup = record["mixup_warmup_epochs"]
    milestones = " and ".join(str(epoch) for epoch in record["lr_milestones"])
    theirs = {(model, method_name(alpha)): errors for (model, alpha), errors in paper.FIGURE4.items()}
    rows = []
    for model, methods in results.items():
        for method, scores in methods.items():
            quoted = [f"{e:.1f}" for e in theirs[(model, method)]] if (model, method) in theirs else ["–", "–"]
            rows.append(f"| {model} | {method} | {summarise(scores['validation'])} | {summarise(scores['test'])} "
                        f"| {' | '.join(quoted)} |")
    figure4 = [f"| {paper.FIGURE4_MODELS[model]} | {method_name(alpha)} | {validation:.1f} | {test:.1f} |"
               for (model, alpha), (validation, test) in paper.FIGURE4.items()]
    lines = [
        f"# ERM vs mixup with {names} on the synthetic keyword set (30 words; {sizes} clips), {seeds} seeds",
        "",
        f"`{record['command']}` ({record['seconds'] / 60:.0f} min of runs on this machine). Final model of each run; "
        "error in %, mean ± standard deviation over seeds. Ours: the synthetic keyword set (the 30 words of Google "
        "Speech Commands spoken by espeak-ng voices, no speaker in two splits), the same 160 x 101 normalised "
        f"spectrograms mixed before the network, {record['epochs']} epochs of batches of {record['batch_size']}, "
        f"Adam lr {record['learning_rate']:g} divided by 10 at epochs {milestones}, "
        f"mixup after {warmup} ERM epoch{'' if warmup == 1 else 's'}. The paper's columns are its Figure 4, another "
        "experiment (below).",
        "",
        "| model | method | validation error | test error | paper, validation error | paper, test error |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"The paper's Figure 4, another experiment: {paper.FIGURE4_SETTING}; error in %:",
        "",
        "| the paper's model | method | validation error | test error |",
        "|---|---|---|---|",
        *figure4,
        "",
    ]
    ours = {}
    for model, methods in results.items():
        for their_model, alpha in paper.FIGURE4:
            if their_model == model and method_name(alpha) in methods:
                scores = methods[method_name(alpha)]
                ours[(model, alpha)] = (statistics.mean(scores["validation"]), statistics.mean(scores["test"]))
    findings = [finding for finding in paper.compare(paper.speech_checks, paper.FIGURE4, ours) if finding.items]
    if findings:
        basis = f"its Figure 4 and ours on the mean over seeds, per model and alpha, for {names}"
        if len(results) == 1:
            basis += ("; its finding that mixup helps VGG-11 more than LeNet is checked where one results file holds "
                      "both models, `--output` without `{model}`")
        lines += paper.findings_section(findings, basis)
    return "\n".join(lines)


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
    parser.add_argument("--render_only", action="store_true",
                        help="write each results .md again from its .json, running nothing")
    args = parser.parse_args(argv)
    outputs = ([args.output.replace("{model}", model) for model in args.models] if "{model}" in args.output
               else [args.output])
    if args.render_only:
        for output in outputs:
            render_results(output, render)
        return {model: scores for output in outputs
                for model, scores in json.loads(Path(f"{output}.json").read_text())["results"].items()}
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
    methods = {method_name(alpha): alpha for alpha in args.alphas}

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

    def report(models: list[str], output: str) -> None:
        write_results(output, None, {
            "results": {m: results[m] for m in models}, "epochs": args.epochs, "batch_size": args.batch_size,
            "learning_rate": args.learning_rate, "lr_milestones": [int(m) for m in milestones],
            "mixup_warmup_epochs": int(warmup), "split_sizes": {k: v.num_rows for k, v in data.items()},
            "seconds": sum(seconds[m] for m in models),
        }, argv=argv, script=__file__, render=render)

    if "{model}" in args.output:
        for model, output in zip(args.models, outputs):
            report([model], output)
    else:
        report(list(args.models), args.output)
    return results


if __name__ == "__main__":
    main()
