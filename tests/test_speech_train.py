"""scripts/train.py on speech: the synthetic keyword set, both mixing levels, and the saved model
through pipeline("audio-classification") on a WAV file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import train  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("level", ["spectrogram", "waveform"])
def test_train_speech_and_classify_a_wav_file(synthetic_keywords, tmp_path, level):
    keywords = synthetic_keywords
    from scipy.io import wavfile
    from transformers import pipeline

    from hf_mixup.audio import decode_audio
    from hf_mixup.data import load_any_dataset

    out = tmp_path / level
    metrics = train.main([
        "--dataset_name", keywords, "--model_name", "lenet", "--mixing_level", level, "--mixup_alpha", "0.2",
        "--max_steps", "2", "--per_device_train_batch_size", "16", "--eval_strategy", "no", "--save_strategy", "no",
        "--report_to", "none", "--disable_tqdm", "true", "--output_dir", str(out), "--logging_steps", "1",
    ])
    assert "test_accuracy" in metrics and np.isfinite(metrics["train_loss"])
    assert (out / "preprocessor_config.json").is_file()
    assert json.loads((out / "config.json").read_text())["architecture"] == "lenet"
    state = json.loads((out / "trainer_state.json").read_text())
    assert all("mixup_lambda" in h for h in state["log_history"] if "loss" in h)

    wave, rate = decode_audio(load_any_dataset(keywords)["test"][0]["audio"])
    wav_path = tmp_path / "yes.wav"
    wavfile.write(wav_path, rate, (wave * 32767).astype(np.int16))
    scores = pipeline("audio-classification", model=str(out))(str(wav_path), top_k=31)
    assert len(scores) == 31 and abs(sum(s["score"] for s in scores) - 1) < 1e-4
