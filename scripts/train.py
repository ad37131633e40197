#!/usr/bin/env python
"""Train an image, audio or tabular model with mixup (or ERM) through `MixupTrainer`.

    accelerate launch scripts/train.py                      # mixup (alpha 1) on the bundled digits
    accelerate launch scripts/train.py --mixup_alpha 0      # the ERM baseline
    accelerate launch scripts/train.py recipe.yaml --seed 3 # a config file, then command-line overrides
    accelerate launch --multi_gpu --num_processes 2 scripts/train.py --use_cpu   # two gloo ranks on a CPU

With no arguments it trains a timm ResNet-18 on scikit-learn's handwritten digits (no download) and
writes a safetensors checkpoint, `all_results.json` and a model card (`README.md`) to `output_dir`.
`--dataset_name` takes Hub ids (`uoft-cs/cifar10`), saved datasets, image folders, csv/parquet/json
files, or an offline name (`digits`, `fashion_mnist`, the UCI tables `iris`, `wine`, `breast_cancer`,
`phishing`, `abalone`, `diabetes`); `--model_name` any timm architecture, `lenet`/`vgg11` for speech,
`mlp` for tables (the default for a dataset without an image or audio column), or a checkpoint path / Hub id.
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
from hf_mixup.data import OFFLINE_DATASETS, TABULAR_DATASETS, class_names, find_column, load_any_dataset
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
        default=10.0,
        metadata={"help": "Held-out share of the train split (%) when the dataset has no eval split (stratified "
                          "by class)."},
    )
    image_column_name: str | None = field(
        default=None, metadata={"help": "Image or audio column (default: image, img or audio)."}
    )
    keyword_classes: str = field(
        default="all",
        metadata={
            "help": "Speech commands only: all labels; words (the paper's 30 words, _silence_ left out); kws12 "
            "(10 commands, _silence_, _unknown_ for the other words).",
            "choices": ["all", "words", "kws12"],
        },
    )
    mixing_level: str = field(
        default="spectrogram",
        metadata={
            "help": "Audio only: mix the spectrograms (the paper's default) or the waveforms before the spectrograms.",
            "choices": ["spectrogram", "waveform"],
        },
    )
    label_column_name: list[str] | None = field(
        default=None,
        metadata={
            "help": "Label column (default: label, labels, fine_label or target); for a multi-label table, "
            "several 0/1 columns.",
            "aliases": ["--label_column"],
        },
    )
    feature_columns: list[str] | None = field(
        default=None, metadata={"help": "Tables: the feature columns (default: every column but the labels)."}
    )
    categorical_columns: list[str] | None = field(
        default=None, metadata={"help": "Tables: numeric columns to treat as categories (e.g. integer codes)."}
    )
    task: str = field(
        default="auto",
        metadata={
            "help": "Tables: the task (auto: several label columns are multi-label; a float column with "
            "non-integer values or more than 50 distinct values is regression; anything else, integer columns "
            "included, classification).",
            "choices": ["auto", "single_label_classification", "regression", "multi_label_classification"],
        },
    )
    missing_values: str = field(
        default="error",
        metadata={
            "help": "Tables: missing numeric values are an error naming the column, or replaced by the training mean.",
            "choices": ["error", "mean"],
        },
    )
    split_seed: int = field(
        default=0,
        metadata={"help": "Seed of the held-out split for datasets without one (fixed apart from --seed, so "
                          "every training seed is scored on the same rows)."},
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
    model_name: str | None = field(
        default=None,
        metadata={"help": "A timm architecture (default resnet18; resnext50_32x4d, preact_resnet18, ...), lenet or "
                          "vgg11 (speech, default vgg11), mlp (tables, the default), or a checkpoint path / Hub id."},
    )
    model_kwargs: str | None = field(
        default=None,
        metadata={"help": 'JSON keyword arguments for timm.create_model (\'{"drop_rate": 0.1}\') or the table MLP '
                          '(\'{"hidden_sizes": [128, 128], "dropout": 0.1, "activation": "relu"}\').'},
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


def is_tabular(data_args: DataArguments, train) -> bool:
    """A table: an offline UCI table, explicit feature columns, or no image or audio column at all."""
    if data_args.dataset_name in TABULAR_DATASETS or data_args.feature_columns:
        return True
    if data_args.image_column_name is not None:
        return False
    return not any(isinstance(f, (datasets.Image, datasets.Audio)) for f in train.features.values())


def load_raw(data_args: DataArguments):
    raw = load_any_dataset(data_args.dataset_name, data_args.dataset_config_name)
    if data_args.train_split not in raw:
        raise ValueError(f"--train_split {data_args.train_split!r} not in the dataset's splits {list(raw)}")
    if data_args.keyword_classes != "all":
        from hf_mixup.speech_data import select_keyword_classes

        raw = select_keyword_classes(raw, data_args.keyword_classes, (data_args.label_column_name or ["label"])[0])
    return raw


def load_splits(data_args: DataArguments, seed: int, raw=None):
    """(train, eval, eval split name, image column, label column, class names) from `--dataset_name`.
    ``seed`` orders the `--max_train_samples` subset; a held-out eval split is fixed by `--split_seed`."""
    raw = load_raw(data_args) if raw is None else raw
    train = raw[data_args.train_split]
    image_col = find_column(train, data_args.image_column_name, ("image", "img", "audio"), "image")
    labels_given = data_args.label_column_name or []
    if len(labels_given) > 1:
        raise ValueError("several --label_column values make a multi-label table; images and audio take one label column")
    label_col = find_column(train, labels_given[0] if labels_given else None, ("label", "labels", "fine_label"), "label")
    eval_split = data_args.eval_split or next((s for s in ("test", "validation") if s in raw), None)
    if eval_split is not None:
        if eval_split not in raw:
            raise ValueError(f"--eval_split {eval_split!r} not in the dataset's splits {list(raw)}")
        evaluation = raw[eval_split]
    else:
        stratify = label_col if isinstance(train.features[label_col], datasets.ClassLabel) else None
        parts = train.train_test_split(
            test_size=data_args.validation_split_percentage / 100.0, seed=data_args.split_seed,
            stratify_by_column=stratify,
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
    name = model_args.model_name or "resnet18"
    if os.path.isdir(name) or "/" in name:
        return AutoModelForImageClassification.from_pretrained(
            name, num_labels=len(labels), id2label=id2label, label2id=label2id,
            ignore_mismatched_sizes=True,
        )
    return create_timm_classifier(
        name,
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
    name = model_args.model_name or "vgg11"
    if name in SPEECH_MODELS:
        config = SpeechCNNConfig(architecture=name, num_labels=len(labels), id2label=id2label,
                                 label2id={n: i for i, n in id2label.items()})
        model = SpeechCNNForAudioClassification(config)
    else:
        model = AutoModelForAudioClassification.from_pretrained(
            name, num_labels=len(labels), id2label=id2label,
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


def build_tabular_trainer(model_args, data_args, training_args, raw) -> tuple[MixupTrainer, Any, str]:
    """Tables: fit the preprocessing on the training rows (kept in the checkpoint), encode every split
    to tensors once, and train the paper's MLP (or a `TabularMLPConfig` checkpoint)."""
    from transformers import AutoModel

    from hf_mixup.models import TabularMLPConfig, TabularMLPForPrediction
    from hf_mixup.tabular import CLASSIFICATION, REGRESSION, TabularPreprocessor, TensorTable, regression_metrics_in_units
    from hf_mixup.tabular import split_table

    train_ds = raw[data_args.train_split]
    labels = data_args.label_column_name or [
        next((c for c in ("label", "labels", "target") if c in train_ds.column_names), None)
    ]
    if labels[0] is None:
        raise ValueError(f"could not find the label column among {train_ds.column_names}; name it with --label_column")
    absent = [c for c in labels if c not in train_ds.column_names]
    if absent:
        raise ValueError(f"--label_column {absent} not among the table's columns {train_ds.column_names}")
    label_feature = train_ds.features[labels[0]]
    single = len(labels) == 1
    label_names = label_feature.names if single and isinstance(label_feature, datasets.ClassLabel) else None

    def names_for_ids(rows):  # keep ClassLabel ids as their names, so predictions come back as names
        if label_names is not None:
            ids = rows[labels[0]].tolist()
            if any(i < 0 or i >= len(label_names) for i in ids):
                raise ValueError(f"label column {labels[0]!r} has ids outside 0..{len(label_names) - 1} (-1 marks an "
                                 "unlabelled row): drop those rows or pick another --eval_split")
            rows[labels[0]] = [label_names[i] for i in ids]
        return rows

    frame = names_for_ids(train_ds.to_pandas())
    eval_split = data_args.eval_split or next((s for s in ("test", "validation") if s in raw), None)
    task = data_args.task
    if task == "auto":
        task = TABULAR_DATASETS.get(data_args.dataset_name, "auto")
    if eval_split is not None:
        if eval_split not in raw:
            raise ValueError(f"--eval_split {eval_split!r} not in the dataset's splits {list(raw)}")
        test_frame = names_for_ids(raw[eval_split].to_pandas())
    else:
        stratify = len(labels) == 1 and task != REGRESSION and TabularPreprocessor._guess_task(frame, labels) == CLASSIFICATION
        frame, test_frame = split_table(
            frame, labels[0], data_args.validation_split_percentage / 100.0, data_args.split_seed, stratify=stratify
        )
        eval_split = f"{data_args.validation_split_percentage:g}% held out of {data_args.train_split} (stratified)" if stratify \
            else f"{data_args.validation_split_percentage:g}% held out of {data_args.train_split}"
    if data_args.max_train_samples is not None:
        frame = frame.sample(n=min(data_args.max_train_samples, len(frame)), random_state=training_args.seed)
    if data_args.max_eval_samples is not None:
        test_frame = test_frame.iloc[: data_args.max_eval_samples]
    preprocessor = TabularPreprocessor.fit(
        frame, labels, feature_columns=data_args.feature_columns, task=task, missing=data_args.missing_values,
        label_names=label_names, categorical_columns=data_args.categorical_columns,
    )
    name = model_args.model_name or "mlp"
    if name == "mlp":
        kwargs = json.loads(model_args.model_kwargs) if model_args.model_kwargs else {}
        model = TabularMLPForPrediction(TabularMLPConfig.from_preprocessor(preprocessor, **kwargs))
    else:
        model = AutoModel.from_pretrained(name)
        if not isinstance(model, TabularMLPForPrediction) or model.config.num_features != preprocessor.num_features \
                or model.config.num_labels != preprocessor.num_labels:
            raise ValueError(f"--model_name {name!r} is not a table MLP for these {preprocessor.num_features} features "
                             f"and {preprocessor.num_labels} outputs; use --model_name mlp")
        fresh = TabularMLPConfig.from_preprocessor(preprocessor)
        for key in ("id2label", "label2id", "problem_type", "preprocessing"):  # this table's labels, task, preprocessing
            setattr(model.config, key, getattr(fresh, key))
    train_table = TensorTable.from_rows(preprocessor, frame)
    test_table = TensorTable.from_rows(preprocessor, test_frame)
    trainer = MixupTrainer(
        model=model, args=training_args, train_dataset=train_table, eval_dataset=test_table,
        processing_class=preprocessor,
        compute_metrics=regression_metrics_in_units(preprocessor) if preprocessor.task == REGRESSION else None,
    )
    return trainer, test_table, eval_split


def build_trainer(model_args, data_args, training_args) -> tuple[MixupTrainer, Any, str]:
    """The trainer, the evaluation dataset and its split's name: everything built, nothing trained."""
    set_seed(training_args.seed)
    raw = load_raw(data_args)
    if is_tabular(data_args, raw[data_args.train_split]):
        return build_tabular_trainer(model_args, data_args, training_args, raw)
    train, evaluation, eval_split, image_col, label_col, labels = load_splits(data_args, training_args.seed, raw)
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


def modality_of(model) -> str:
    from hf_mixup.models import TabularMLPForPrediction

    if isinstance(model, TabularMLPForPrediction):
        return "tabular"
    return "audio" if model.main_input_name in ("input_features", "input_values") else "image"


def write_model_card(trainer: MixupTrainer, data_args: DataArguments, eval_split: str, metrics: dict[str, float]) -> None:
    offline = data_args.dataset_name in OFFLINE_DATASETS
    trainer.create_model_card(
        dataset_name=data_args.dataset_name,
        dataset_id=None if offline or os.path.exists(data_args.dataset_name) else data_args.dataset_name,
        metrics={k[len("test_"):]: v for k, v in metrics.items() if k.startswith("test_")},
        eval_split=eval_split,
        modality=modality_of(trainer.model),
    )


def push_when_asked(trainer: MixupTrainer, repo_id: str | None) -> None:
    """`--push_to_hub`: upload the finished run (weights, preprocessing, card) once, at the end. A failed
    push is logged with its cause; the local output is complete either way."""
    if repo_id is None or not trainer.is_world_process_zero():
        return
    from hf_mixup.hub import PublishError, load_run, push_run, render_card

    run = load_run(trainer.args.output_dir)
    render_card(run, repo_id).save(os.path.join(run.path, "README.md"))  # the card names its repository
    try:
        url = push_run(run, repo_id, token=trainer.args.hub_token, private=trainer.args.hub_private_repo)
        logger.info("pushed %s: %s", repo_id, url)
    except PublishError as error:
        logger.error("%s", error)


def hub_repo_for(training_args: MixupArguments) -> str | None:
    """The repository of `--push_to_hub`, checked before training starts; the Trainer's own push (which
    creates the repository when the trainer is built, so a network failure would stop training before
    it starts) is switched off: the script pushes the finished run itself."""
    if not training_args.push_to_hub:
        return None
    repo_id = training_args.hub_model_id
    if not repo_id or repo_id.count("/") != 1:
        raise ValueError(
            "--push_to_hub needs --hub_model_id <namespace>/<name>, e.g. my-org/preact-resnet18-fashion-mnist-mixup "
            "(scripts/publish.py pushes an ERM/mixup pair with that naming)"
        )
    training_args.push_to_hub = False
    return repo_id


def main(argv: list[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args = parse_args(argv)
    setup_logging(training_args)
    repo_id = hub_repo_for(training_args)
    trainer, evaluation, eval_split = build_trainer(model_args, data_args, training_args)
    metrics = dict(run_training(trainer, training_args))
    metrics.update(run_evaluation(trainer, evaluation))
    write_model_card(trainer, data_args, eval_split, metrics)
    push_when_asked(trainer, repo_id)
    return metrics


if __name__ == "__main__":
    main()
