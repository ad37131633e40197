"""A synthetic keyword dataset with the schema and the words of `google/speech_commands` (config v0.01),
spoken by Debian's `espeak-ng` and resampled by `sox`, for machines that cannot reach the Hub.

A speaker is an (accent, voice variant) pair of espeak-ng; every utterance also draws its speed, pitch,
position in the one-second clip, loudness and background noise (white or brown, at a random SNR) from
a seeded numpy generator, so the same arguments give the same dataset. Speakers are split between
train, validation and test, so the evaluation splits are speaker-disjoint. The `_silence_` class is
background noise alone. Columns as on the Hub: `file`, `audio` (16 kHz), `label` (31 classes),
`is_unknown`, `speaker_id`, `utterance_id`.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from .._extras import require

# Label order of google/speech_commands v0.01 on the Hub: the 30 words, then _silence_.
SPEECH_COMMANDS_LABELS = [
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "_silence_",
]
# The 10 core commands; the other 20 words are "auxiliary" (is_unknown on the Hub).
CORE_WORDS = SPEECH_COMMANDS_LABELS[:10]
KEYWORD_CLASSES = ("all", "words", "kws12")

ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp", "en-029", "en-us-nyc"]
VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "adam", "alicia", "andy", "annie",
    "aunty", "belinda", "benjamin", "boris", "david", "ed", "edward", "grandma", "grandpa", "john", "linda",
    "max", "michael", "paul", "quincy", "rob", "robert", "steph", "travis", "victor",
]
SAMPLING_RATE = 16000


def check_tools() -> None:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise ValueError(f"{' and '.join(missing)} not found: install them with `apt-get install espeak-ng sox`")


def speak(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's rendering of ``word``, resampled by sox to 16 kHz mono float32 in [-1, 1]."""
    tts = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
        check=True, capture_output=True,
    )
    pcm = subprocess.run(
        ["sox", "-D", "-t", "wav", "-", "-t", "raw", "-r", str(SAMPLING_RATE), "-c", "1", "-b", "16", "-e", "signed-integer", "-"],
        input=tts.stdout, check=True, capture_output=True,
    )
    return np.frombuffer(pcm.stdout, dtype="<i2").astype(np.float32) / 32768.0


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    white = rng.standard_normal(n)
    if rng.random() < 0.5:
        return white
    brown = np.cumsum(white)
    brown -= np.linspace(brown[0], brown[-1], n)  # remove the drift
    return brown / (np.abs(brown).max() + 1e-9) * 3.0


def make_clip(word: str | None, voice: str, rng: np.random.Generator) -> np.ndarray:
    """One second at 16 kHz: the word (or nothing, for _silence_) at a random place, plus noise."""
    clip = np.zeros(SAMPLING_RATE, dtype=np.float64)
    if word is not None:
        speech = speak(word, voice, int(rng.integers(120, 221)), int(rng.integers(20, 81)))
        nonzero = np.flatnonzero(np.abs(speech) > 1e-3)
        if nonzero.size:
            speech = speech[nonzero[0] : nonzero[-1] + 1]
        speech = speech[:SAMPLING_RATE]
        start = int(rng.integers(0, SAMPLING_RATE - len(speech) + 1))
        clip[start : start + len(speech)] = speech * rng.uniform(0.3, 1.0) / (np.abs(speech).max() + 1e-9)
        signal_power = float(np.mean(speech**2)) + 1e-12
        snr_db = rng.uniform(5.0, 30.0)
        noise = _noise(rng, SAMPLING_RATE)
        noise *= np.sqrt(signal_power / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    else:
        noise = _noise(rng, SAMPLING_RATE) * rng.uniform(0.001, 0.05)
    return np.clip(clip + noise, -1.0, 1.0).astype(np.float32)


def speakers(seed: int) -> list[str]:
    """Every (accent, variant) voice, in an order fixed by ``seed``."""
    voices = [f"{accent}+{variant}" for accent in ACCENTS for variant in VARIANTS]
    order = np.random.default_rng(seed).permutation(len(voices))
    return [voices[i] for i in order]


def build_speech_commands(
    train_speakers: int = 40,
    validation_speakers: int = 8,
    test_speakers: int = 8,
    utterances: int = 2,
    seed: int = 0,
    progress: bool = True,
):
    """The dataset as a `datasets.DatasetDict` (train / validation / test, speaker-disjoint).

    Each speaker says every word ``utterances`` times (new speed, pitch, place and noise each time) and
    contributes as many `_silence_` clips. Clips: 31 x speakers x utterances.
    """
    require("datasets", "train", "the synthetic keyword set")
    from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value
    from tqdm.auto import tqdm

    check_tools()
    pool = speakers(seed)
    needed = train_speakers + validation_speakers + test_speakers
    if needed > len(pool):
        raise ValueError(f"asked for {needed} speakers; espeak-ng gives {len(pool)} here (accents x variants)")
    split_speakers = {
        "train": pool[:train_speakers],
        "validation": pool[train_speakers : train_speakers + validation_speakers],
        "test": pool[train_speakers + validation_speakers : needed],
    }
    features = Features(
        {
            "file": Value("string"),
            "audio": Audio(sampling_rate=SAMPLING_RATE),
            "label": ClassLabel(names=SPEECH_COMMANDS_LABELS),
            "is_unknown": Value("bool"),
            "speaker_id": Value("string"),
            "utterance_id": Value("int8"),
        }
    )
    total = 31 * needed * utterances
    bar = tqdm(total=total, desc="synthesising clips", disable=not progress)
    splits = {}
    for split_index, (split, voices) in enumerate(split_speakers.items()):
        if not voices:
            continue  # a split with no speakers is left out rather than saved empty
        rows = {name: [] for name in features}
        for voice_index, voice in enumerate(voices):
            for label, word in enumerate(SPEECH_COMMANDS_LABELS):
                for utterance in range(utterances):
                    rng = np.random.default_rng([seed, split_index, voice_index, label, utterance])
                    array = make_clip(None if word == "_silence_" else word, voice, rng)
                    speaker_id = voice.replace("+", "_")
                    rows["file"].append(f"{word}/{speaker_id}_nohash_{utterance}.wav")
                    rows["audio"].append({"array": array, "sampling_rate": SAMPLING_RATE})
                    rows["label"].append(label)
                    rows["is_unknown"].append(word not in CORE_WORDS and word != "_silence_")
                    rows["speaker_id"].append(speaker_id)
                    rows["utterance_id"].append(utterance)
                    bar.update()
        splits[split] = Dataset.from_dict(rows, features=features)
    bar.close()
    return DatasetDict(splits)


def select_keyword_classes(dataset, classes: str, label_column: str = "label"):
    """The class set of a speech-commands dataset (Hub or synthetic; a DatasetDict or a Dataset):

    - ``all``: the labels as they are (v0.01: the 30 words and ``_silence_``);
    - ``words``: the paper's 30 classes, the words only (``_silence_`` clips left out);
    - ``kws12``: the usual 12-class keyword-spotting task, the 10 core commands, ``_silence_``, and
      ``_unknown_`` for the 20 auxiliary words.
    """
    from datasets import ClassLabel, DatasetDict

    if classes not in KEYWORD_CLASSES:
        raise ValueError(f"keyword classes must be one of {KEYWORD_CLASSES}, got {classes!r}")
    if classes == "all":
        return dataset
    if isinstance(dataset, DatasetDict):
        return DatasetDict({k: select_keyword_classes(v, classes, label_column) for k, v in dataset.items()})
    feature = dataset.features[label_column]
    if not isinstance(feature, ClassLabel) or "_silence_" not in feature.names:
        raise ValueError(
            f"--keyword_classes {classes} needs the speech_commands labels (a ClassLabel with _silence_) in "
            f"{label_column!r}; this dataset's label is {feature}"
        )
    names = feature.names
    if classes == "words":
        new_names = [n for n in names if n not in ("_silence_", "_unknown_")]
        dataset = dataset.filter(lambda labels: [names[i] in new_names for i in labels], input_columns=label_column,
                                 batched=True)
        mapping = {i: new_names.index(n) for i, n in enumerate(names) if n in new_names}
    else:
        new_names = [*CORE_WORDS, "_silence_", "_unknown_"]
        mapping = {i: new_names.index(n) if n in new_names else len(new_names) - 1 for i, n in enumerate(names)}
    features = dataset.features.copy()
    features[label_column] = ClassLabel(names=new_names)
    return dataset.map(lambda labels: {label_column: [mapping[i] for i in labels]}, input_columns=label_column,
                       batched=True, features=features)
