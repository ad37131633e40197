#!/usr/bin/env python
"""Speech benchmarks, on the machine that runs them:

1. feature extraction, clips per second: hf_mixup's SpectrogramFeatureExtractor against transformers'
   ASTFeatureExtractor and WhisperFeatureExtractor on the same one-second 16 kHz clips;
2. VGG-11 training-step time with mixup against ERM (the same MixupTrainer, model object, data and
   batch; alternating rounds; ratio of medians).

    python scripts/bench_speech.py          # writes results/bench_speech.{md,json}
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from transformers import ASTFeatureExtractor, WhisperFeatureExtractor

from hf_mixup import MixupArguments, MixupTrainer
from hf_mixup.experiments import StepTimer, command_line, describe_machine, time_interleaved, write_results
from hf_mixup.models import SpectrogramFeatureExtractor, SpeechCNNConfig, SpeechCNNForAudioClassification

# The ratio hf_mixup aims for here, and why.
TARGET = ("Target (hf_mixup's): mixup's step at most 1.02x ERM's, so that turning mixup on costs next to nothing "
          "beside the forward and backward pass (the mix is one pass over the batch of spectrograms).")


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
    extractors = {
        "hf_mixup SpectrogramFeatureExtractor": lambda _: ours(clips, sampling_rate=16000, return_tensors="pt"),
        "ASTFeatureExtractor": lambda _: ast(clips, sampling_rate=16000, return_tensors="pt"),
        "WhisperFeatureExtractor": lambda _: whisper(clips, sampling_rate=16000, return_tensors="pt"),
    }
    extraction = {name: len(clips) / t.median for name, t in time_interleaved(extractors, 5).items()}

    from datasets import Dataset

    features = ours(clips[: args.batch_size * 4], sampling_rate=16000, return_tensors="np")["input_features"]
    data = Dataset.from_dict({"input_features": features, "labels": rng.integers(0, 30, len(features))}).with_format("torch")
    torch.manual_seed(0)
    model = SpeechCNNForAudioClassification(SpeechCNNConfig(architecture="vgg11", num_labels=30))
    timer = StepTimer()  # one timer: the trainers run one at a time
    trainers = {}
    for kind, alpha in (("erm", 0.0), ("mixup", 0.2)):
        targs = MixupArguments(output_dir=f"/tmp/bench_speech/{kind}", mixup_alpha=alpha, max_steps=args.steps,
                               per_device_train_batch_size=args.batch_size, report_to="none", save_strategy="no",
                               eval_strategy="no", disable_tqdm=True, logging_steps=100, seed=0)
        trainers[kind] = MixupTrainer(model=model, args=targs, train_dataset=data, callbacks=[timer])

    def steps_of(kind):
        trainers[kind].train()
        return timer.steady(1)  # the steps after the first two

    timings = time_interleaved({k: (lambda _, k=k: steps_of(k)) for k in trainers}, args.rounds, order="alternate",
                               keep_results=True)
    steps = {k: [s for run in t.results for s in run] for k, t in timings.items()}
    medians = {k: statistics.median(v) * 1e3 for k, v in steps.items()}
    ratio = medians["mixup"] / medians["erm"]
    device = describe_machine()
    lines = [
        f"# Speech benchmarks ({device})",
        "",
        f"Feature extraction, {args.clips} one-second 16 kHz clips in one call, median of 5 interleaved rounds:",
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
        f"| mixup (alpha 0.2) | {medians['mixup']:.1f} | {ratio:.3f} (hf_mixup's target <= 1.02) |",
        "",
        TARGET,
        "",
        f"`{command_line(argv, __file__)}`",
        "",
    ]
    text = "\n".join(lines)
    result = {"device": device, "extraction_clips_per_second": extraction, "vgg11_step_ms": medians, "ratio": ratio}
    write_results(args.output, text, result, argv=argv, script=__file__)
    return result


if __name__ == "__main__":
    main()
