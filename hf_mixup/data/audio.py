"""`SpectrogramFeatureExtractor`: 16 kHz mono waveforms to the paper's normalised log spectrograms.

Section 3.3 of the paper (Google Speech Commands): 20 ms windows with a 10 ms hop over one-second clips
give 101 frames; the spectrograms are normalised and zero-padded to 160 x 101. Here: clips are padded
or cropped to exactly one second, a Hann-windowed STFT (n_fft = 320 samples) gives 161 frequency bins
of which the first 160 are kept (the Nyquist bin is dropped), log power is taken, and every spectrogram
is normalised to zero mean and unit variance. The output `input_features` is ``[batch, 1, 160, 101]``
float32, computed for the whole batch at once with `torch.stft`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from transformers import BatchFeature, SequenceFeatureExtractor

from .._extras import require


class SpectrogramFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Normalised log spectrograms of one-second 16 kHz clips, as in the mixup paper's speech experiments.

    Args:
        feature_size (`int`, defaults to 160): frequency bins kept (at most ``n_fft // 2 + 1``).
        sampling_rate (`int`, defaults to 16000): the sampling rate the extractor expects.
        window_ms (`float`, defaults to 20): STFT window length in milliseconds.
        hop_ms (`float`, defaults to 10): STFT hop in milliseconds.
        clip_seconds (`float`, defaults to 1.0): clips are zero-padded or cropped (centred) to this length.
        eps (`float`, defaults to 1e-10): added to the power before the log.
    """

    model_input_names = ["input_features"]

    def __init__(
        self,
        feature_size: int = 160,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        window_ms: float = 20.0,
        hop_ms: float = 10.0,
        clip_seconds: float = 1.0,
        eps: float = 1e-10,
        **kwargs,
    ):
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.window_ms = window_ms
        self.hop_ms = hop_ms
        self.clip_seconds = clip_seconds
        self.eps = eps
        if feature_size > self.n_fft // 2 + 1:
            raise ValueError(f"feature_size {feature_size} exceeds the {self.n_fft // 2 + 1} bins of a {window_ms} ms window")

    @property
    def n_fft(self) -> int:
        return int(round(self.sampling_rate * self.window_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sampling_rate * self.hop_ms / 1000))

    @property
    def num_samples(self) -> int:
        return int(round(self.sampling_rate * self.clip_seconds))

    @property
    def num_frames(self) -> int:
        return 1 + self.num_samples // self.hop_length

    def to_clips(self, raw_speech, sampling_rate: int | None = None, resample: bool = False) -> np.ndarray:
        """Mono waveforms as a ``[batch, num_samples]`` float32 array: checked, resampled if asked, padded or cropped."""
        if isinstance(raw_speech, torch.Tensor):
            raw_speech = raw_speech.numpy()
        if isinstance(raw_speech, np.ndarray) and raw_speech.ndim == 2:
            clips = list(raw_speech)
        elif isinstance(raw_speech, np.ndarray) or (
            isinstance(raw_speech, Sequence) and raw_speech and np.isscalar(raw_speech[0])
        ):
            clips = [np.asarray(raw_speech)]
        else:
            clips = [np.asarray(c) for c in raw_speech]
        for i, clip in enumerate(clips):
            if clip.ndim != 1:
                raise ValueError(
                    f"clip {i} has shape {clip.shape}: the extractor takes mono waveforms (1-D arrays); "
                    "average the channels first, e.g. clip.mean(axis=0)"
                )
        rate = self.sampling_rate if sampling_rate is None else int(sampling_rate)
        if rate != self.sampling_rate:
            if not resample:
                raise ValueError(
                    f"the audio is sampled at {rate} Hz but this extractor expects {self.sampling_rate} Hz: resample it "
                    "(datasets: .cast_column('audio', Audio(sampling_rate=16000))) or pass resample=True"
                )
            resample_poly = require("scipy.signal", "audio", "resampling audio").resample_poly

            g = math.gcd(rate, self.sampling_rate)
            clips = [resample_poly(c.astype(np.float64), self.sampling_rate // g, rate // g) for c in clips]
        out = np.full((len(clips), self.num_samples), self.padding_value, dtype=np.float32)
        for i, clip in enumerate(clips):
            if len(clip) >= self.num_samples:
                start = (len(clip) - self.num_samples) // 2
                out[i] = clip[start : start + self.num_samples]
            else:
                out[i, : len(clip)] = clip
        return out

    def __call__(
        self,
        raw_speech,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        resample: bool = False,
        **kwargs,
    ) -> BatchFeature:
        """Spectrograms of one clip (1-D) or a batch (a list of 1-D arrays, or a 2-D array).

        ``sampling_rate`` should be given; a different rate is refused unless ``resample=True``.
        """
        waves = torch.from_numpy(self.to_clips(raw_speech, sampling_rate, resample))
        window = torch.hann_window(self.n_fft, dtype=torch.float32)
        spec = torch.stft(waves, n_fft=self.n_fft, hop_length=self.hop_length, window=window, center=True,
                          return_complex=True)
        power = spec.real**2 + spec.imag**2
        log_power = torch.log(power[:, : self.feature_size] + self.eps)
        mean = log_power.mean(dim=(1, 2), keepdim=True)
        std = log_power.std(dim=(1, 2), keepdim=True)
        features = ((log_power - mean) / (std + 1e-5)).unsqueeze(1)
        if return_tensors in ("pt", None):
            data = {"input_features": features if return_tensors == "pt" else list(features.numpy())}
        elif return_tensors == "np":
            data = {"input_features": features.numpy()}
        else:
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        return BatchFeature(data, tensor_type=return_tensors)


def spectrogram_post_mix(
    feature_extractor: SpectrogramFeatureExtractor, input_key: str = "input_values", output_key: str = "input_features"
):
    """A ``post_mix`` for `DataCollatorForMixup`: the (mixed) waveforms under ``input_key``, ``[batch,
    samples]`` at the extractor's sampling rate, become spectrograms under ``output_key``."""

    def to_spectrograms(batch: dict) -> dict:
        waves = batch.pop(input_key)
        if isinstance(waves, torch.Tensor):
            waves = waves.float().numpy()
        features = feature_extractor(waves, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt")
        batch[output_key] = features["input_features"]
        return batch

    return to_spectrograms


def decode_audio(value) -> tuple[np.ndarray, int]:
    """(mono float32 waveform, sampling rate) from a `datasets` Audio value: a torchcodec decoder
    (datasets 4+) or a dict with ``array`` and ``sampling_rate``. Channels are averaged."""
    if hasattr(value, "get_all_samples"):
        samples = value.get_all_samples()
        return samples.data.float().mean(dim=0).numpy(), int(samples.sample_rate)
    if isinstance(value, dict) and "array" in value:
        array = np.asarray(value["array"], dtype=np.float32)
        return (array.mean(axis=0) if array.ndim == 2 else array), int(value["sampling_rate"])
    raise ValueError(f"cannot read audio from a {type(value).__name__}: expected a datasets Audio value")
