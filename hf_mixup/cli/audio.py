"""Audio in the training command: the paper's spectrogram CNNs (LeNet, VGG-11) or a transformers audio
checkpoint, with mixing of the spectrograms (on the device) or of the waveforms (in the collator)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..data.speech_commands import KEYWORD_CLASSES
from ..trainer import MixupTrainer

SPEECH_MODELS = ("lenet", "vgg11")


@dataclass
class AudioDataArguments:
    keyword_classes: str = field(
        default="all",
        metadata={
            "help": "Speech commands only: all labels; words (the paper's 30 words, _silence_ left out); kws12 "
            "(10 commands, _silence_, _unknown_ for the other words).",
            "choices": list(KEYWORD_CLASSES),
        },
    )
    mixing_level: str = field(
        default="spectrogram",
        metadata={
            "help": "Audio only: mix the spectrograms (the paper's default) or the waveforms before the spectrograms.",
            "choices": ["spectrogram", "waveform"],
        },
    )


def select_classes(raw, data_args):
    """`--keyword_classes`: the speech-commands class set to train on."""
    if data_args.keyword_classes == "all":
        return raw
    from ..data.speech_commands import select_keyword_classes

    return select_keyword_classes(raw, data_args.keyword_classes, (data_args.label_column_name or ["label"])[0])


def build_audio_trainer(model_args, data_args, training_args, train, evaluation, audio_col, label_col, labels) -> MixupTrainer:
    """Speech: the paper's spectrograms, mixed as spectrograms (on the device) or as waveforms (in the
    collator, before the spectrograms are computed)."""
    from transformers import AutoModelForAudioClassification

    from ..collator import DataCollatorForMixup
    from ..data.audio import SpectrogramFeatureExtractor, decode_audio, spectrogram_post_mix
    from ..models import SpeechCNNConfig, SpeechCNNForAudioClassification
    from .images import load_pretrained

    id2label = dict(enumerate(labels))
    label2id = {n: i for i, n in id2label.items()}
    name = model_args.model_name or "vgg11"
    if name in SPEECH_MODELS:
        config = SpeechCNNConfig(architecture=name, num_labels=len(labels), id2label=id2label, label2id=label2id)
        model = SpeechCNNForAudioClassification(config)
    else:
        model = load_pretrained(
            AutoModelForAudioClassification, name, num_labels=len(labels), id2label=id2label, label2id=label2id,
            ignore_mismatched_sizes=True,
        )
    extractor = SpectrogramFeatureExtractor()
    waveform_level = data_args.mixing_level == "waveform"

    def apply(batch):
        decoded = [decode_audio(value) for value in batch[audio_col]]
        clips = [extractor.to_clips(wave, rate, resample=True)[0] for wave, rate in decoded]
        if waveform_level:
            return {"input_values": [torch.from_numpy(c) for c in clips], "labels": batch[label_col]}
        features = extractor(clips, sampling_rate=extractor.sampling_rate, return_tensors="pt")["input_features"]
        return {"input_features": list(features), "labels": batch[label_col]}

    train.set_transform(apply)
    evaluation.set_transform(apply)
    collator = None
    if waveform_level:
        collator = DataCollatorForMixup.from_args(training_args, post_mix=spectrogram_post_mix(extractor))
    return MixupTrainer(model=model, args=training_args, train_dataset=train, eval_dataset=evaluation,
                        data_collator=collator, processing_class=extractor)
