#!/usr/bin/env python
"""Synthesise a keyword dataset with the schema and the 30 words (+ _silence_) of google/speech_commands
v0.01, spoken by espeak-ng voices and resampled to 16 kHz by sox, speaker-disjoint between splits.

    apt-get install espeak-ng sox ffmpeg        # ffmpeg: datasets' Audio feature decodes through torchcodec
    python scripts/make_speech_commands.py --output data/speech_commands_synth \\
        --train_speakers 40 --validation_speakers 8 --test_speakers 8 --utterances 2 --seed 0

Clips: 31 x (train + validation + test speakers) x utterances.
"""

from __future__ import annotations

import argparse

from hf_mixup.data import save_dataset
from hf_mixup.data.speech_commands import build_speech_commands


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="data/speech_commands_synth")
    parser.add_argument("--train_speakers", type=int, default=40)
    parser.add_argument("--validation_speakers", type=int, default=8)
    parser.add_argument("--test_speakers", type=int, default=8)
    parser.add_argument("--utterances", type=int, default=2, help="utterances of each word per speaker")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return save_dataset(
        lambda: build_speech_commands(
            args.train_speakers, args.validation_speakers, args.test_speakers, args.utterances, args.seed
        ),
        args.output,
    )


if __name__ == "__main__":
    main()
