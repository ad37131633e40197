#!/usr/bin/env python
"""Speech benchmarks, on this machine:

1. feature extraction, clips per second: hf_mixup's SpectrogramFeatureExtractor against transformers'
   ASTFeatureExtractor and WhisperFeatureExtractor on the same one-second 16 kHz clips;
2. VGG-11 training-step time with mixup against ERM (the same MixupTrainer, model object, data and
   batch; alternating rounds; ratio of medians).

    python scripts/bench_speech.py          # writes results/bench_speech.{md,json}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch
from transformers import ASTFeatureExtractor, WhisperFeatureExtractor

from bench_common import StepTimer

from hf_mixup import MixupArguments, MixupTrainer
from hf_mixup.models import SpectrogramFeatureExtractor, SpeechCNNConfig, SpeechCNNForAudioClassification


def clips_per_second(extract, clips, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        extract(clips)
        times.append(time.perf_counter() - start)
    return len(clips) / statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--output", default="results/bench_speech")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(16000).astype(np.float32) * 0.1 for _ in range(args.clips)]
    ours, ast, whisper = SpectrogramFeatureExtractor(), ASTFeatureExtractor(), WhisperFeatureExtractor()
    extraction = {
        "hf_mixup SpectrogramFeatureExtractor": clips_per_second(lambda c: ours(c, sampling_rate=16000, return_tensors="pt"), clips),
        "ASTFeatureExtractor": clips_per_second(lambda c: ast(c, sampling_rate=16000, return_tensors="pt"), clips),
        "WhisperFeatureExtractor": clips_per_second(lambda c: whisper(c, sampling_rate=16000, return_tensors="pt"), clips),
    }

    from datasets import Dataset

    features = ours(clips[: args.batch_size * 4], sampling_rate=16000, return_tensors="np")["input_features"]
    data = Dataset.from_dict({"input_features": features, "labels": rng.integers(0, 30, len(features))}).with_format("torch")
    torch.manual_seed(0)
    model = SpeechCNNForAudioClassification(SpeechCNNConfig(architecture="vgg11", num_labels=30))
    trainers = {}
    for kind, alpha in (("erm", 0.0), ("mixup", 0.2)):
        timer = StepTimer()
        targs = MixupArguments(output_dir=f"/tmp/bench_speech/{kind}", mixup_alpha=alpha, max_steps=args.steps,
                               per_device_train_batch_size=args.batch_size, report_to="none", save_strategy="no",
                               eval_strategy="no", disable_tqdm=True, logging_steps=100, seed=0)
        trainers[kind] = (MixupTrainer(model=model, args=targs, train_dataset=data, callbacks=[timer]), timer)
    steps = {"erm": [], "mixup": []}
    for r in range(args.rounds):
        for kind in (("erm", "mixup") if r % 2 == 0 else ("mixup", "erm")):
            trainer, timer = trainers[kind]
            timer.times.clear()
            trainer.train()
            steps[kind].extend(timer.times[1:])
    medians = {k: statistics.median(v) * 1e3 for k, v in steps.items()}
    ratio = medians["mixup"] / medians["erm"]
    device = f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"
    lines = [
        f"# Speech benchmarks ({device})",
        "",
        f"Feature extraction, {args.clips} one-second 16 kHz clips in one call, median of 5:",
        "",
        "| extractor | clips / s | vs ours |",
        "|---|---|---|",
        *[f"| {name} | {rate:.0f} | {rate / extraction['hf_mixup SpectrogramFeatureExtractor']:.3f} |" for name, rate in extraction.items()],
        "",
        f"VGG-11 on 160x101 spectrograms, batch {args.batch_size}, {args.rounds} alternating rounds of {args.steps} steps:",
        "",
        "| configuration | median step (ms) | ratio |",
        "|---|---|---|",
        f"| ERM | {medians['erm']:.1f} | 1.000 |",
        f"| mixup (alpha 0.2) | {medians['mixup']:.1f} | {ratio:.3f} (target <= 1.02) |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output + ".md", "w") as f:
        f.write(text)
    result = {"device": device, "extraction_clips_per_second": extraction, "vgg11_step_ms": medians, "ratio": ratio}
    with open(args.output + ".json", "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
