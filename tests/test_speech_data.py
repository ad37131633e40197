"""The synthetic keyword dataset: Hub schema, one-second 16 kHz clips, speaker-disjoint, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Audio, ClassLabel

from hf_mixup.data import load_any_dataset
from hf_mixup.data.speech_commands import SPEECH_COMMANDS_LABELS, build_speech_commands
from hf_mixup.models import SpectrogramFeatureExtractor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(synthetic_keywords):
    return load_any_dataset(synthetic_keywords)


def samples(row) -> np.ndarray:
    decoded = row["audio"].get_all_samples()
    assert decoded.sample_rate == 16000
    return decoded.data.numpy()


def test_schema_of_the_hub_dataset(tiny):
    assert set(tiny) == {"train", "validation", "test"}
    features = tiny["train"].features
    assert isinstance(features["audio"], Audio) and features["audio"].sampling_rate == 16000
    assert isinstance(features["label"], ClassLabel) and features["label"].names == SPEECH_COMMANDS_LABELS
    assert len(SPEECH_COMMANDS_LABELS) == 31 and SPEECH_COMMANDS_LABELS[-1] == "_silence_"
    assert set(tiny["train"].column_names) == {"file", "audio", "label", "is_unknown", "speaker_id", "utterance_id"}
    assert [len(tiny[s]) for s in ("train", "validation", "test")] == [62, 31, 31]
    assert sorted(set(tiny["test"]["label"])) == list(range(31))


def test_one_second_clips_with_speech_louder_than_silence(tiny):
    rows = tiny["train"]
    arrays = [samples(rows[i]) for i in range(31)]
    assert all(a.shape == (1, 16000) for a in arrays)
    loudness = np.array([np.abs(a).max() for a in arrays])
    assert loudness[:30].min() > loudness[30]  # every word louder than the _silence_ clip


def test_speaker_disjoint_and_deterministic(tiny):
    speakers = {s: set(tiny[s]["speaker_id"]) for s in tiny}
    assert not (speakers["train"] & speakers["validation"]) and not (speakers["train"] & speakers["test"])
    assert not (speakers["validation"] & speakers["test"])
    again = build_speech_commands(2, 1, 1, 1, seed=0, progress=False)
    assert np.array_equal(samples(again["test"][3]), samples(tiny["test"][3]))
    other = build_speech_commands(1, 0, 0, 1, seed=1, progress=False)
    assert other["train"]["speaker_id"][0] not in speakers["train"] or not np.array_equal(
        samples(other["train"][3]), samples(tiny["train"][3])
    )


def test_feature_extractor_on_the_synthetic_clips(tiny):
    fe = SpectrogramFeatureExtractor()
    clips = [samples(tiny["validation"][i])[0] for i in range(4)]
    features = fe(clips, sampling_rate=16000, return_tensors="pt")["input_features"]
    assert features.shape == (4, 1, 160, 101)


def test_missing_tools_get_a_clear_error(monkeypatch):
    import hf_mixup.data.speech_commands as speech_data

    monkeypatch.setattr(speech_data.shutil, "which", lambda tool: None)
    with pytest.raises(ValueError, match="apt-get install espeak-ng sox"):
        build_speech_commands(1, 0, 0, 1)
