"""Tables in the training command: preprocessing fitted on the training rows (kept with the checkpoint),
tensors encoded once, and the paper's MLP (or a `TabularMLPConfig` checkpoint)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import datasets

from ..data import TABULAR_DATASETS
from ..data.tabular import MISSING, TASKS
from ..trainer import MixupTrainer
from .common import eval_split_of, held_out_name, label_columns_of
from .errors import UsageError


@dataclass
class TableDataArguments:
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
            "choices": list(TASKS),
        },
    )
    missing_values: str = field(
        default="error",
        metadata={
            "help": "Tables: missing numeric values are an error naming the column, or replaced by the training mean.",
            "choices": list(MISSING),
        },
    )


def is_tabular(data_args, train) -> bool:
    """A table: an offline UCI table, explicit feature columns, or no image or audio column at all."""
    if data_args.dataset_name in TABULAR_DATASETS or data_args.feature_columns:
        return True
    if data_args.image_column_name is not None:
        return False
    return not any(isinstance(f, (datasets.Image, datasets.Audio)) for f in train.features.values())


def _class_ids_as_names(frame, column: str, names: list[str] | None):
    """ClassLabel ids replaced by their names, so predictions come back as names."""
    if names is not None:
        ids = frame[column].tolist()
        if any(i < 0 or i >= len(names) for i in ids):
            raise UsageError(f"label column {column!r} has ids outside 0..{len(names) - 1} (-1 marks an unlabelled "
                             "row): drop those rows or pick another --eval_split")
        frame[column] = [names[i] for i in ids]
    return frame


def build_table_trainer(model_args, data_args, training_args, raw) -> tuple[MixupTrainer, object, str]:
    """(trainer, evaluation table, evaluation split name) for a table."""
    from transformers import AutoModel

    from ..data.tabular import CLASSIFICATION, REGRESSION, TabularPreprocessor, TensorTable, regression_metrics_in_units
    from ..data.in_memory import collate_batches
    from ..data.tabular import split_table
    from ..models import TabularMLPConfig, TabularMLPForPrediction
    from .images import load_pretrained

    train_ds = raw[data_args.train_split]
    if len(train_ds) == 0:
        raise UsageError(f"the {data_args.train_split!r} split of {data_args.dataset_name!r} has no rows")
    labels = label_columns_of(data_args, train_ds.column_names, ("label", "labels", "target"))
    label_feature = train_ds.features[labels[0]]
    label_names = label_feature.names if len(labels) == 1 and isinstance(label_feature, datasets.ClassLabel) else None

    frame = _class_ids_as_names(train_ds.to_pandas(), labels[0], label_names)
    eval_split = eval_split_of(data_args, raw)
    task = data_args.task
    if task == "auto":
        task = TABULAR_DATASETS.get(data_args.dataset_name, "auto")
    if eval_split is not None:
        test_frame = _class_ids_as_names(raw[eval_split].to_pandas(), labels[0], label_names)
    else:
        stratify = len(labels) == 1 and task != REGRESSION and TabularPreprocessor._guess_task(frame, labels) == CLASSIFICATION
        frame, test_frame = split_table(
            frame, labels[0], data_args.validation_split_percentage / 100.0, data_args.split_seed, stratify=stratify
        )
        eval_split = held_out_name(data_args, stratify)
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
        model = load_pretrained(AutoModel, name)
        if not isinstance(model, TabularMLPForPrediction) or model.config.num_features != preprocessor.num_features \
                or model.config.num_labels != preprocessor.num_labels:
            raise UsageError(f"--model_name {name!r} is not a table MLP for these {preprocessor.num_features} features "
                             f"and {preprocessor.num_labels} outputs; use --model_name mlp")
        fresh = TabularMLPConfig.from_preprocessor(preprocessor)
        for key in ("id2label", "label2id", "problem_type", "preprocessing"):  # this table's labels, task, preprocessing
            setattr(model.config, key, getattr(fresh, key))
    train_table = TensorTable.from_rows(preprocessor, frame)
    test_table = TensorTable.from_rows(preprocessor, test_frame)
    trainer = MixupTrainer(
        model=model, args=training_args, train_dataset=train_table, eval_dataset=test_table,
        data_collator=collate_batches,  # a TensorTable serves whole batches (one gather, no per-row stacking)
        processing_class=preprocessor,
        compute_metrics=regression_metrics_in_units(preprocessor) if preprocessor.task == REGRESSION else None,
    )
    return trainer, test_table, eval_split
