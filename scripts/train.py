#!/usr/bin/env python
"""Train an image classifier with mixup (or ERM) through `MixupTrainer`.

    accelerate launch scripts/train.py                      # mixup (alpha 1) on the bundled digits
    accelerate launch scripts/train.py --mixup_alpha 0      # the ERM baseline
    accelerate launch scripts/train.py recipe.yaml --seed 3 # a config file, then command-line overrides
    accelerate launch --multi_gpu --num_processes 2 scripts/train.py --use_cpu   # two gloo ranks on a CPU

With no arguments it trains a timm ResNet-18 on scikit-learn's handwritten digits (no download) and
writes a safetensors checkpoint, `all_results.json` and a model card (`README.md`) to `output_dir`.
`--dataset_name` takes Hub ids (`uoft-cs/cifar10`), saved datasets, image folders, or an offline
name (`digits`); `--model_name` any timm architecture, or a checkpoint path / Hub id.
An existing `output_dir` with checkpoints is resumed from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import datasets
import torch
import transformers
import yaml
from transformers import AutoModelForImageClassification, HfArgumentParser, set_seed
from transformers.trainer_utils import get_last_checkpoint

from hf_mixup import MixupArguments, MixupTrainer
from hf_mixup.data import OFFLINE_DATASETS, class_names, find_column, load_any_dataset
from hf_mixup.images import AUGMENTATIONS, EVAL_CROP_PCT, train_transform
from hf_mixup.models import create_timm_classifier

logger = logging.getLogger("hf_mixup.train")


@dataclass
class DataArguments:
    dataset_name: str = field(
        default="digits",
        metadata={
            "help": f"Hub id (uoft-cs/cifar10), local path (saved dataset, image folder) or offline name "
            f"({', '.join(sorted(OFFLINE_DATASETS))})."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of the Hub dataset."})
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: str | None = field(
        default=None, metadata={"help": "Split to evaluate on (default: test, else validation, else held out of train)."}
    )
    validation_split_percentage: float = field(
        default=10.0, metadata={"help": "Held-out share of the train split (%) when the dataset has no eval split."}
    )
    image_column_name: str | None = field(
        default=None, metadata={"help": "Image or audio column (default: image, img or audio)."}
    )
    mixing_level: str = field(
        default="spectrogram",
        metadata={
            "help": "Audio only: mix the spectrograms (the paper's default) or the waveforms before the spectrograms.",
            "choices": ["spectrogram", "waveform"],
        },
    )
    label_column_name: str | None = field(
        default=None, metadata={"help": "Label column (default: label, labels or fine_label)."}
    )
    augmentation: str = field(
        default="none",
        metadata={
            "help": "Training augmentation: none; cifar (pad 4 + random crop, flip); imagenet (random resized crop, "
            "flip; centre crop at evaluation).",
            "choices": list(AUGMENTATIONS),
        },
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training examples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many evaluation examples."})


@dataclass
class ModelArguments:
    model_name: str = field(
        default="resnet18",
        metadata={"help": "A timm architecture (resnet18, resnext50_32x4d, ...) or a checkpoint path / Hub id."},
    )
    model_kwargs: str | None = field(
        default=None, metadata={"help": 'JSON keyword arguments for timm.create_model, e.g. \'{"drop_rate": 0.1}\'.'}
    )
    image_size: int = field(default=32, metadata={"help": "Side of the square model input, in pixels."})
    image_mean: list[float] | None = field(
        default=None, metadata={"help": "Normalisation mean (default: the timm architecture's)."}
    )
    image_std: list[float] | None = field(
        default=None, metadata={"help": "Normalisation std (default: the timm architecture's)."}
    )


# Defaults of this script that differ from TrainingArguments' (a config file or the command line wins).
SCRIPT_DEFAULTS: dict[str, Any] = {
    "num_train_epochs": 30,
    "per_device_train_batch_size": 64,
    "per_device_eval_batch_size": 256,
    "learning_rate": 2e-3,
    "weight_decay": 5e-4,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "logging_steps": 10,
    "report_to": ["tensorboard"],
    "remove_unused_columns": False,
    "dataloader_pin_memory": torch.cuda.is_available(),
    "seed": 42,
}


def _config_file_to_argv(path: str) -> list[str]:
    with open(path) as f:
        config = yaml.safe_load(f) if path.endswith((".yaml", ".yml")) else json.load(f)
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a mapping of argument names to values, got {type(config).__name__}")
    argv: list[str] = []
    for key, value in config.items():
        if value is None:
            continue
        argv.append(f"--{key}")
        if isinstance(value, (list, tuple)):
            argv.extend(str(v) for v in value)
        elif isinstance(value, dict):
            argv.append(json.dumps(value))
        else:
            argv.append(str(value))
    return argv


def parse_args(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, MixupArguments]:
    """Command line, optionally led by a YAML/JSON config file whose values the command line overrides."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith((".yaml", ".yml", ".json")) and not argv[0].startswith("-"):
        argv = _config_file_to_argv(argv[0]) + argv[1:]
    parser = HfArgumentParser((ModelArguments, DataArguments, MixupArguments))
    parser.set_defaults(**SCRIPT_DEFAULTS)
    model_args, data_args, training_args, extra = parser.parse_args_into_dataclasses(
        args=argv, return_remaining_strings=True
    )
    if extra:
        raise ValueError(f"unknown arguments {extra}; see `python scripts/train.py --help`")
    if not any(a == "--output_dir" or a.startswith("--output_dir=") for a in argv):
        # Default: runs/<dataset>-<mixup|erm>, so the ERM and mixup runs of `make train` sit side by side.
        slug = os.path.basename(os.path.normpath(data_args.dataset_name))
        method = "mixup" if training_args.mixing_enabled else "erm"
        return parse_args(argv + ["--output_dir", os.path.join("runs", f"{slug}-{method}")])
    return model_args, data_args, training_args


def setup_logging(training_args: MixupArguments) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def load_splits(data_args: DataArguments, seed: int):
    """(train, eval, eval split name, image column, label column, class names) from `--dataset_name`."""
    raw = load_any_dataset(data_args.dataset_name, data_args.dataset_config_name)
    if data_args.train_split not in raw:
        raise ValueError(f"--train_split {data_args.train_split!r} not in the dataset's splits {list(raw)}")
    train = raw[data_args.train_split]
    image_col = find_column(train, data_args.image_column_name, ("image", "img", "audio"), "image")
    label_col = find_column(train, data_args.label_column_name, ("label", "labels", "fine_label"), "label")
    eval_split = data_args.eval_split or next((s for s in ("test", "validation") if s in raw), None)
    if eval_split is not None:
        if eval_split not in raw:
            raise ValueError(f"--eval_split {eval_split!r} not in the dataset's splits {list(raw)}")
        evaluation = raw[eval_split]
    else:
        stratify = label_col if isinstance(train.features[label_col], datasets.ClassLabel) else None
        parts = train.train_test_split(
            test_size=data_args.validation_split_percentage / 100.0, seed=seed, stratify_by_column=stratify
        )
        train, evaluation = parts["train"], parts["test"]
        eval_split = f"{data_args.validation_split_percentage:g}% held out of {data_args.train_split}"
    if data_args.max_train_samples is not None:
        train = train.shuffle(seed=seed).select(range(min(data_args.max_train_samples, len(train))))
    if data_args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(data_args.max_eval_samples, len(evaluation))))
    return train, evaluation, eval_split, image_col, label_col, class_names(train, label_col)


def build_model(model_args: ModelArguments, labels: list[str], crop_pct: float = 1.0):
    """A timm architecture wrapped as `TimmWrapperForImageClassification` with timm's own init (its
    `config.json` carries the preprocessing, so `pipeline("image-classification")` works on the
    checkpoint), or an existing checkpoint (path or Hub id)."""
    id2label = dict(enumerate(labels))
    label2id = {name: i for i, name in id2label.items()}
    if os.path.isdir(model_args.model_name) or "/" in model_args.model_name:
        return AutoModelForImageClassification.from_pretrained(
            model_args.model_name, num_labels=len(labels), id2label=id2label, label2id=label2id,
            ignore_mismatched_sizes=True,
        )
    return create_timm_classifier(
        model_args.model_name,
        labels,
        image_size=model_args.image_size,
        mean=model_args.image_mean,
        std=model_args.image_std,
        model_args=json.loads(model_args.model_kwargs) if model_args.model_kwargs else None,
        crop_pct=crop_pct,
    )


def image_transforms(model, augmentation: str) -> tuple[Any, Any]:
    """(train, eval) transforms, PIL image -> normalised float tensor. Evaluation uses the checkpoint's
    own image processor, so `pipeline()` on the saved model preprocesses exactly as evaluation did."""
    from transformers import AutoImageProcessor

    if hasattr(model.config, "pretrained_cfg"):
        from transformers import TimmWrapperImageProcessor

        cfg = model.config.pretrained_cfg
        evaluate = TimmWrapperImageProcessor(pretrained_cfg=cfg).val_transforms
        size = int(cfg["input_size"][-1])
        train = train_transform(augmentation, size, cfg["mean"], cfg["std"], evaluate, cfg.get("interpolation", "bilinear"))
        return train, evaluate
    if augmentation != "none":
        raise ValueError("--augmentation needs a timm architecture (--model_name resnet18, preact_resnet18, ...)")
    processor = AutoImageProcessor.from_pretrained(model.name_or_path)

    def evaluate(image):
        return processor(image, return_tensors="pt")["pixel_values"][0]

    return evaluate, evaluate


def attach_transforms(dataset, transform, image_col: str, label_col: str, mode: str = "RGB"):
    """Decode and transform images lazily, on access (`set_transform`); ``mode`` "L" for 1-channel models."""

    def apply(batch):
        return {
            "pixel_values": [transform(image.convert(mode)) for image in batch[image_col]],
            "labels": batch[label_col],
        }

    dataset.set_transform(apply)
    return dataset


SPEECH_MODELS = ("lenet", "vgg11")


def build_speech_trainer(model_args, data_args, training_args, train, evaluation, audio_col, label_col, labels):
    """Speech: the paper's spectrograms, mixed as spectrograms (on the device) or as waveforms (in the
    collator, before the spectrograms are computed)."""
    from transformers import AutoModelForAudioClassification

    from hf_mixup import DataCollatorForMixup
    from hf_mixup.audio import SpectrogramFeatureExtractor, decode_audio, spectrogram_post_mix
    from hf_mixup.models import SpeechCNNConfig, SpeechCNNForAudioClassification

    id2label = dict(enumerate(labels))
    if model_args.model_name in SPEECH_MODELS:
        config = SpeechCNNConfig(architecture=model_args.model_name, num_labels=len(labels), id2label=id2label,
                                 label2id={n: i for i, n in id2label.items()})
        model = SpeechCNNForAudioClassification(config)
    else:
        model = AutoModelForAudioClassification.from_pretrained(
            model_args.model_name, num_labels=len(labels), id2label=id2label,
            label2id={n: i for i, n in id2label.items()}, ignore_mismatched_sizes=True,
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
    trainer = MixupTrainer(model=model, args=training_args, train_dataset=train, eval_dataset=evaluation,
                           data_collator=collator, processing_class=extractor)
    return trainer


def build_trainer(model_args, data_args, training_args) -> tuple[MixupTrainer, Any, str]:
    """The trainer, the evaluation dataset and its split's name: everything built, nothing trained."""
    set_seed(training_args.seed)
    train, evaluation, eval_split, image_col, label_col, labels = load_splits(data_args, training_args.seed)
    if isinstance(train.features[image_col], datasets.Audio):
        trainer = build_speech_trainer(model_args, data_args, training_args, train, evaluation, image_col, label_col, labels)
        return trainer, evaluation, eval_split
    model = build_model(model_args, labels, crop_pct=EVAL_CROP_PCT[data_args.augmentation])
    train_tf, eval_tf = image_transforms(model, data_args.augmentation)
    channels = (getattr(model.config, "pretrained_cfg", None) or {}).get("input_size", [3])[0]
    mode = "L" if channels == 1 else "RGB"
    attach_transforms(train, train_tf, image_col, label_col, mode)
    attach_transforms(evaluation, eval_tf, image_col, label_col, mode)
    trainer = MixupTrainer(model=model, args=training_args, train_dataset=train, eval_dataset=evaluation)
    return trainer, evaluation, eval_split


def run_training(trainer: MixupTrainer, training_args: MixupArguments) -> dict[str, float]:
    checkpoint = training_args.resume_from_checkpoint
    if checkpoint is None and os.path.isdir(training_args.output_dir):
        checkpoint = get_last_checkpoint(training_args.output_dir)
        if checkpoint is not None:
            logger.info("Resuming from %s", checkpoint)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    return result.metrics


def run_evaluation(trainer: MixupTrainer, evaluation) -> dict[str, float]:
    metrics = trainer.evaluate(evaluation, metric_key_prefix="test")
    if "test_accuracy" in metrics:
        metrics["test_error"] = 1.0 - metrics["test_accuracy"]
    trainer.log_metrics("test", metrics)
    trainer.save_metrics("test", metrics)
    return metrics


def write_model_card(trainer: MixupTrainer, data_args: DataArguments, eval_split: str, metrics: dict[str, float]) -> None:
    offline = data_args.dataset_name in OFFLINE_DATASETS
    trainer.create_model_card(
        dataset_name=data_args.dataset_name,
        dataset_id=None if offline or os.path.isdir(data_args.dataset_name) else data_args.dataset_name,
        metrics={k[len("test_"):]: v for k, v in metrics.items() if k.startswith("test_")},
        eval_split=eval_split,
        modality="audio" if trainer.model.main_input_name in ("input_features", "input_values") else "image",
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args = parse_args(argv)
    setup_logging(training_args)
    trainer, evaluation, eval_split = build_trainer(model_args, data_args, training_args)
    metrics = dict(run_training(trainer, training_args))
    metrics.update(run_evaluation(trainer, evaluation))
    write_model_card(trainer, data_args, eval_split, metrics)
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return metrics


if __name__ == "__main__":
    main()
