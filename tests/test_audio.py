"""Speech (first part of the speech issue): the spectrogram feature extractor and LeNet / VGG-11."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_scores_are_softmax, mixup_args, tone

import hf_mixup  # noqa: F401  (registers the speech models with the Auto classes)
from hf_mixup import MixupTrainer
from hf_mixup.models import SpectrogramFeatureExtractor, SpeechCNNConfig, SpeechCNNForAudioClassification


def test_spectrogram_shape_padding_cropping_and_normalisation():
    fe = SpectrogramFeatureExtractor()
    assert (fe.n_fft, fe.hop_length, fe.num_frames) == (320, 160, 101)
    clips = [tone(440), tone(440, 0.5), tone(440, 1.7)]
    features = fe(clips, sampling_rate=16000, return_tensors="pt")["input_features"]
    assert features.shape == (3, 1, 160, 101) and features.dtype == torch.float32
    torch.testing.assert_close(features.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(features.std(dim=(1, 2, 3)), torch.ones(3), atol=1e-3, rtol=0)
    # a 440 Hz tone peaks in bin 440 / (16000 / 320) = 8.8 -> bin 9
    assert int(features[0, 0, :, 50].argmax()) == 9
    # the half-second clip is zero-padded: its second half is silence (the lowest value)
    assert float(features[1, 0, :, 80].max()) < float(features[1, 0, :, 20].max())
    single = fe(tone(440), sampling_rate=16000, return_tensors="pt")["input_features"]
    torch.testing.assert_close(single[0], features[0])


def test_refuses_wrong_rate_and_stereo_or_resamples():
    fe = SpectrogramFeatureExtractor()
    with pytest.raises(ValueError, match="expects 16000 Hz"):
        fe(tone(440, rate=22050), sampling_rate=22050)
    with pytest.raises(ValueError, match="mono"):
        fe([np.stack([tone(440), tone(440)])], sampling_rate=16000)
    resampled = fe(tone(440, rate=22050, seconds=1.0), sampling_rate=22050, resample=True, return_tensors="pt")
    assert int(resampled["input_features"][0, 0, :, 50].argmax()) == 9


def test_save_load_and_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

    fe = SpectrogramFeatureExtractor()
    labels = ["low", "high"]
    model = SpeechCNNForAudioClassification(
        SpeechCNNConfig(architecture="lenet", num_labels=2, id2label=dict(enumerate(labels)),
                        label2id={n: i for i, n in enumerate(labels)})
    ).eval()
    model.save_pretrained(tmp_path)
    fe.save_pretrained(tmp_path)
    assert isinstance(AutoFeatureExtractor.from_pretrained(tmp_path), SpectrogramFeatureExtractor)
    assert AutoConfig.from_pretrained(tmp_path).architecture == "lenet"
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    x = fe(tone(300), sampling_rate=16000, return_tensors="pt")["input_features"]
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, loaded(x).logits, atol=1e-6, rtol=1e-5)
    wave = tone(300) + 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    scores = pipeline("audio-classification", model=str(tmp_path))({"raw": wave, "sampling_rate": 16000}, top_k=2)
    with torch.no_grad():
        logits = loaded(fe(wave, sampling_rate=16000, return_tensors="pt")["input_features"]).logits[0]
    assert_scores_are_softmax(scores, logits, loaded.config.id2label)


@pytest.mark.parametrize("architecture, params", [("lenet", 20.39e6), ("vgg11", 9.24e6)])
def test_models_take_160x101_spectrograms(architecture, params):
    model = SpeechCNNForAudioClassification(SpeechCNNConfig(architecture=architecture, num_labels=30))
    assert abs(sum(p.numel() for p in model.parameters()) - params) / params < 0.01
    assert model(torch.randn(2, 1, 160, 101)).logits.shape == (2, 30)
    with pytest.raises(ValueError, match="architecture"):
        SpeechCNNConfig(architecture="resnet")


@pytest.mark.slow
def test_mixup_trainer_mixes_spectrograms(tmp_path):
    from datasets import Dataset

    fe = SpectrogramFeatureExtractor()
    rng = np.random.default_rng(0)
    freqs = rng.choice([300.0, 2000.0], size=32)
    waves = [tone(f) + 0.05 * rng.standard_normal(16000).astype(np.float32) for f in freqs]
    features = fe(waves, sampling_rate=16000, return_tensors="np")["input_features"]
    data = Dataset.from_dict({"input_features": features, "labels": (freqs > 1000).astype(int)}).with_format("torch")
    model = SpeechCNNForAudioClassification(SpeechCNNConfig(architecture="lenet", num_labels=2))
    args = mixup_args(tmp_path, mixup_alpha=0.2, max_steps=3, per_device_train_batch_size=8, mixup_mode="elem")
    trainer = MixupTrainer(model=model, args=args, train_dataset=data, eval_dataset=data)
    trainer.train()
    assert all("mixup_lambda" in h for h in trainer.state.log_history if "loss" in h)
    assert {"eval_accuracy", "eval_nll", "eval_ece"} <= trainer.evaluate().keys()


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ast", "wav2vec2"])
def test_transformers_audio_models_train_unchanged(tmp_path, family):
    """Audio-classification models of transformers, built from small configs, under MixupTrainer."""
    from datasets import Dataset
    from transformers import ASTConfig, ASTForAudioClassification, Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    rng = np.random.default_rng(0)
    freqs = rng.choice([300.0, 2000.0], size=16)
    labels = (freqs > 1000).astype(int)
    if family == "ast":
        config = ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                           num_mel_bins=32, max_length=48, num_labels=2)
        model = ASTForAudioClassification(config)
        inputs = rng.standard_normal((16, 48, 32)).astype(np.float32) + labels[:, None, None]
    else:
        config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_feat_extract_layers=2,
                                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, num_labels=2,
                                mask_time_prob=0.0)
        model = Wav2Vec2ForSequenceClassification(config)
        inputs = np.stack([tone(f, 0.25) for f in freqs])
    data = Dataset.from_dict({"input_values": inputs, "labels": labels}).with_format("torch")
    args = mixup_args(tmp_path, max_steps=2, per_device_train_batch_size=8)
    trainer = MixupTrainer(model=model, args=args, train_dataset=data, eval_dataset=data)
    trainer.train()
    assert all("mixup_lambda" in h and np.isfinite(h["loss"]) for h in trainer.state.log_history if "loss" in h)
    assert "eval_accuracy" in trainer.evaluate()
    assert model.config.problem_type is None


def test_waveform_level_and_spectrogram_level_mixing():
    from hf_mixup import DataCollatorForMixup
    from hf_mixup.collator import MIXUP_LAMBDA_KEY
    from hf_mixup.data.audio import spectrogram_post_mix

    fe = SpectrogramFeatureExtractor()
    waves = [tone(300), tone(2000), tone(700), tone(1200)]
    rows = [{"input_values": torch.from_numpy(w), "label": i % 2} for i, w in enumerate(waves)]
    collator = DataCollatorForMixup(num_labels=2, mixup_mode="elem", seed=0, rank=0,
                                    post_mix=spectrogram_post_mix(fe))
    batch = collator(rows)
    lam = batch[MIXUP_LAMBDA_KEY]
    assert batch["input_features"].shape == (4, 1, 160, 101) and "input_values" not in batch
    # the spectrogram of the mixed waveform, not a mix of spectrograms
    stacked = torch.stack([torch.from_numpy(w) for w in waves])
    replay = DataCollatorForMixup(num_labels=2, mixup_mode="elem", seed=0, rank=0)(rows)
    expected = fe(replay["input_values"].numpy(), sampling_rate=16000, return_tensors="pt")["input_features"]
    torch.testing.assert_close(batch["input_features"], expected)
    assert not torch.allclose(replay["input_values"], stacked)  # the waveforms were mixed
    assert bool((lam < 1).all())
    # evaluation: the same transform, no mixing
    clean = collator.unmixed(rows)
    torch.testing.assert_close(clean["input_features"], fe(stacked.numpy(), sampling_rate=16000, return_tensors="pt")["input_features"])


@pytest.mark.slow
def test_trainer_with_waveform_level_mixing(tmp_path):
    from datasets import Dataset

    from hf_mixup import DataCollatorForMixup
    from hf_mixup.data.audio import spectrogram_post_mix

    rng = np.random.default_rng(1)
    freqs = rng.choice([300.0, 2000.0], size=16)
    data = Dataset.from_dict({"input_values": np.stack([tone(f) for f in freqs]), "label": (freqs > 1000).astype(int)})
    model = SpeechCNNForAudioClassification(SpeechCNNConfig(architecture="lenet", num_labels=2))
    # the dataset's column (input_values) is not a forward argument of the model: keep it for the collator
    args = mixup_args(tmp_path, max_steps=2, per_device_train_batch_size=8, remove_unused_columns=False)
    collator = DataCollatorForMixup(post_mix=spectrogram_post_mix(SpectrogramFeatureExtractor()))
    trainer = MixupTrainer(model=model, args=args, train_dataset=data.with_format("torch"),
                           eval_dataset=data.with_format("torch"), data_collator=collator)
    trainer.train()
    assert all("mixup_lambda" in h for h in trainer.state.log_history if "loss" in h)
    assert "eval_accuracy" in trainer.evaluate()
