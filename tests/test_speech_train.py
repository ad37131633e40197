"""scripts/train.py on speech: the synthetic keyword set, both mixing levels, and the saved model
through pipeline("audio-classification") on a WAV file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import assert_scores_are_softmax

from hf_mixup.cli import train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("level", ["spectrogram", "waveform"])
def test_train_speech_and_classify_a_wav_file(synthetic_keywords, tmp_path, level):
    keywords = synthetic_keywords
    from scipy.io import wavfile
    from transformers import pipeline

    from hf_mixup.data import load_any_dataset
    from hf_mixup.data.audio import decode_audio

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
    classifier = pipeline("audio-classification", model=str(out))
    scores = classifier(str(wav_path), top_k=31)
    _, samples = wavfile.read(wav_path)  # the pipeline decodes 16-bit samples to floats as x / 32768
    inputs = classifier.feature_extractor(samples.astype(np.float32) / 32768, sampling_rate=rate, return_tensors="pt")
    with torch.no_grad():
        logits = classifier.model(**inputs).logits[0]
    assert len(scores) == 31
    assert_scores_are_softmax(scores, logits, classifier.model.config.id2label)


def test_keyword_class_sets(synthetic_keywords):
    from hf_mixup.data import load_any_dataset
    from hf_mixup.data.speech_commands import CORE_WORDS, SPEECH_COMMANDS_LABELS, select_keyword_classes

    raw = load_any_dataset(synthetic_keywords)["test"]
    names = raw.features["label"].names
    assert names == SPEECH_COMMANDS_LABELS
    assert [bool(u) for u in raw["is_unknown"]] == [names[i] not in CORE_WORDS and names[i] != "_silence_" for i in raw["label"]]
    words = select_keyword_classes(raw, "words")
    assert words.features["label"].names == SPEECH_COMMANDS_LABELS[:30]
    assert words.num_rows == raw.num_rows - raw["label"].count(30)
    assert [words.features["label"].names[i] for i in words["label"]] == [names[i] for i in raw["label"] if i != 30]
    kws = select_keyword_classes(raw, "kws12")
    kws_names = kws.features["label"].names
    assert kws_names == [*CORE_WORDS, "_silence_", "_unknown_"] and kws.num_rows == raw.num_rows
    for before, after, unknown in zip(raw["label"], kws["label"], raw["is_unknown"]):
        assert kws_names[after] == ("_unknown_" if unknown else names[before])
    with pytest.raises(ValueError, match="keyword classes must be one of"):
        select_keyword_classes(raw, "twelve")


def test_train_on_a_local_audio_folder(synthetic_keywords, tmp_path):
    """A folder of WAV files, one subfolder per word under train/ and test/ (audiofolder)."""
    from scipy.io import wavfile

    from hf_mixup.data import load_any_dataset
    from hf_mixup.data.audio import decode_audio

    raw = load_any_dataset(synthetic_keywords)
    names = raw["train"].features["label"].names
    folder = tmp_path / "clips"
    for split in ("train", "test"):
        for i, row in enumerate(raw[split].select(range(min(40, raw[split].num_rows)))):
            wave, rate = decode_audio(row["audio"])
            target = folder / split / names[row["label"]]
            target.mkdir(parents=True, exist_ok=True)
            wavfile.write(target / f"{i}.wav", rate, (wave * 32767).astype(np.int16))
    out = tmp_path / "run"
    metrics = train.main([
        "--dataset_name", str(folder), "--model_name", "lenet", "--max_steps", "2", "--per_device_train_batch_size", "8",
        "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
        "--output_dir", str(out),
    ])
    assert "test_accuracy" in metrics
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "lenet" and set(config["id2label"].values()) <= set(names)


def test_speech_reproduction_runner(synthetic_keywords, tmp_path):
    """scripts/reproduce_speech.py on the small synthetic set: the json records every run's errors and each setting
    its page prints, the page is what `render` makes of the json alone (so --render_only writes it again unchanged),
    with the paper's Figure 4 beside our rows, and a second start reuses every run."""
    import runpy

    from conftest import ROOT

    script = runpy.run_path(str(ROOT / "scripts" / "reproduce_speech.py"), run_name="speech_runner")
    runs, output = tmp_path / "runs", tmp_path / "speech_{model}"
    argv = ["--data", synthetic_keywords, "--models", "lenet", "--alphas", "0", "0.1", "--seeds", "2",
            "--epochs", "3", "--batch_size", "16", "--runs_dir", str(runs), "--output", str(output)]
    results = script["main"](argv)
    record = json.loads((tmp_path / "speech_lenet.json").read_text())
    page = (tmp_path / "speech_lenet.md").read_text()
    grid = json.loads((runs / "grid.json").read_text())["cells"]
    for method in ("ERM", "mixup alpha 0.1"):
        for split in ("validation", "test"):
            recorded = [grid[f"lenet/{method}/seed{seed}"]["result"][split] for seed in (1, 2)]
            assert record["results"]["lenet"][method][split] == results["lenet"][method][split] == recorded
    assert record["epochs"] == 3 and record["batch_size"] == 16 and record["learning_rate"] == 3e-3
    assert record["lr_milestones"] == [1, 2] and record["mixup_warmup_epochs"] == 1 and record["seconds"] > 0
    assert list(record["split_sizes"]) == ["train", "validation", "test"]
    assert page == script["render"](record)
    ours = {line.split(" | ")[1]: line for line in page.splitlines() if line.startswith("| lenet | ")}
    assert list(ours) == ["ERM", "mixup alpha 0.1"]
    assert ours["ERM"].endswith("| 9.8 | 10.3 |") and ours["mixup alpha 0.1"].endswith("| 10.1 | 10.8 |")
    assert "| VGG-11 | mixup alpha 0.2 | 3.9 | 3.4 |" in page and "another experiment:" in page
    assert "- mixup has a lower test error than ERM: " in page
    (tmp_path / "speech_lenet.md").write_text("stale")
    script["main"]([*argv, "--render_only"])
    assert (tmp_path / "speech_lenet.md").read_text() == page
    again = script["main"](argv)  # every run is in grid.json: nothing trains, the same figures
    assert again == results
