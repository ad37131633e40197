"""Text in the training command: a tokenizer and a `*ForSequenceClassification` model (the offline
``small_bert``, or any checkpoint folder / Hub id with its tokenizer, with or without weights), tokenization
in the data pipeline and dynamic padding (`DataCollatorWithPadding`).

    hf-mixup train --dataset_name rotten_tomatoes --mixup_alpha 0              # small_bert, offline, from nothing
    hf-mixup train --dataset_name stanfordnlp/imdb --model_name google-bert/bert-base-uncased
    hf-mixup train --dataset_name pairs.csv --text_column premise --text_pair_column hypothesis

The class names come from the data (a `ClassLabel`, or the sorted values of a string / integer label column),
so the run's ``config.json`` carries them as ``id2label``; the tokenizer is saved with the weights, and
``pipeline("text-classification", model=output_dir)`` returns those names.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

import datasets

from ..trainer import MixupTrainer
from .common import label_columns_of, split_and_subset
from .errors import UsageError

logger = logging.getLogger("hf_mixup.train")

TEXT_COLUMNS = ("text", "sentence")  # found without --text_column
TEXT_MODELS = ("small_bert",)  # built here, no checkpoint
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass
class TextDataArguments:
    text_column: str | None = field(
        default=None, metadata={"help": "Text: the text column (default: text or sentence); naming it makes the dataset text."}
    )
    text_pair_column: str | None = field(
        default=None,
        metadata={"help": "Text: the second text of sentence pairs (NLI-style premise / hypothesis), encoded with the "
                          "first as one sequence (token_type_ids 0 then 1 where the model has them)."},
    )
    max_seq_length: int = field(
        default=128, metadata={"help": "Text: tokens per example (longer texts are truncated; batches are padded to "
                                       "their longest example)."}
    )


@dataclass
class TextModelArguments:
    tokenizer_name: str | None = field(
        default=None,
        metadata={"help": "Text: a tokenizer folder or Hub id (default: the --model_name checkpoint's own tokenizer)."},
    )
    vocab_size: int = field(
        default=8000,
        metadata={"help": "Text, --model_name small_bert: size of the WordPiece vocabulary trained on the training split."},
    )


def is_text(data_args, train) -> bool:
    """Text: `--text_column` / `--text_pair_column` given, or a string column named text or sentence in a dataset
    with no image or audio column (an offline table, `--feature_columns` or `--image_column_name` say otherwise)."""
    from ..data import TABULAR_DATASETS

    if data_args.dataset_name in TABULAR_DATASETS or data_args.feature_columns or data_args.image_column_name:
        return False
    if data_args.text_column or data_args.text_pair_column:
        return True
    if any(isinstance(f, (datasets.Image, datasets.Audio)) for f in train.features.values()):
        return False
    return any(_is_string(train.features.get(name)) for name in TEXT_COLUMNS)


def _is_string(feature) -> bool:
    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")


def text_columns_of(data_args, columns: list[str]) -> tuple[str, str | None]:
    """(text column, pair column or None), checked against the dataset's ``columns``."""
    for flag, name in (("--text_column", data_args.text_column), ("--text_pair_column", data_args.text_pair_column)):
        if name is not None and name not in columns:
            raise UsageError(f"{flag} {name!r} is not a column of the dataset; its columns are {columns}")
    text = data_args.text_column or next((c for c in TEXT_COLUMNS if c in columns), None)
    if text is None:
        raise UsageError(f"could not find the text column among {columns}; name it with --text_column")
    if text == data_args.text_pair_column:
        raise UsageError(f"--text_pair_column {text!r} is also the text column: name the first text with --text_column")
    return text, data_args.text_pair_column


def encode_labels(raw, label_col: str, train_split: str):
    """``raw`` with ``label_col`` a `ClassLabel` in every split, and its names: a ClassLabel stays; strings become
    classes named by their sorted values in the training split; integers 0..N-1 classes named "0".."N-1"."""
    feature = raw[train_split].features[label_col]
    if isinstance(feature, datasets.ClassLabel):
        return raw, list(feature.names)
    if len(raw[train_split]) == 0:
        raise UsageError(f"the {train_split!r} split of the dataset has no rows")
    values = raw[train_split].unique(label_col)
    if any(v is None for v in values):
        raise UsageError(f"the label column {label_col!r} has empty values: drop those rows or fill them in")
    if _is_string(feature):
        names = sorted(values)
    elif isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint")):
        if sorted(values) != list(range(len(values))):
            raise UsageError(f"the label column {label_col!r} holds integers that are not 0..N-1 ({sorted(values)[:10]}); "
                             "give class names as strings, or a ClassLabel column")
        names = [str(v) for v in sorted(values)]
    else:
        raise UsageError(f"the label column {label_col!r} is {feature}: text classification takes class names "
                         "(strings), class ids 0..N-1 or a ClassLabel")
    try:
        return raw.cast_column(label_col, datasets.ClassLabel(names=names)), names
    except ValueError as error:  # a value of another split that the training split lacks
        raise UsageError(f"the label column {label_col!r} has values outside the training split's classes {names}: "
                         f"{' '.join(str(error).split())}") from error


def _load(auto_class, name: str, what: str, **kwargs):
    try:
        return auto_class.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"could not load the {what} of --model_name {name!r}: {reason}") from error


def has_weights(name: str) -> bool | None:
    """Whether a local checkpoint folder holds weights; None for a Hub id (found out by loading)."""
    if os.path.isdir(name):
        return any(os.path.isfile(os.path.join(name, f)) for f in WEIGHT_FILES)
    return None


def build_text_model(model_args, names: list[str], train_texts):
    """(tokenizer, model) for the class ``names``: ``small_bert`` (a WordPiece tokenizer trained on
    ``train_texts()``, a `BertForSequenceClassification` from `small_bert_config`, `--model_kwargs` going to the
    config), or a checkpoint folder / Hub id: its tokenizer (or `--tokenizer_name`) and config, its weights
    with a new head when it has them (`from_pretrained(..., ignore_mismatched_sizes=True)`), else a model built
    from the config (`from_config`)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from .images import is_checkpoint_name

    id2label = dict(enumerate(names))
    label2id = {n: i for i, n in id2label.items()}
    name = model_args.model_name or "small_bert"
    kwargs = json.loads(model_args.model_kwargs) if model_args.model_kwargs else {}
    if name == "small_bert":
        from transformers import BertForSequenceClassification

        from ..data.text import small_bert_config, train_tokenizer

        if model_args.tokenizer_name:
            tokenizer = _load(AutoTokenizer, model_args.tokenizer_name, "tokenizer")
        else:
            tokenizer = train_tokenizer(train_texts(), vocab_size=model_args.vocab_size)
        config = small_bert_config(len(tokenizer), id2label=names, pad_token_id=tokenizer.pad_token_id or 0, **kwargs)
        tokenizer.model_max_length = min(tokenizer.model_max_length, config.max_position_embeddings)  # for pipelines
        return tokenizer, BertForSequenceClassification(config)
    if not is_checkpoint_name(name):
        raise UsageError(
            f"--model_name {name!r} is not a text model: text trains small_bert (the default, built here) or a "
            "checkpoint folder / Hub id with a tokenizer (google-bert/bert-base-uncased)"
        )
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    config = _load(AutoConfig, name, "config", id2label=id2label, label2id=label2id, **kwargs)  # num_labels follows
    if type(config) not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING:
        raise UsageError(
            f"--model_name {name!r} is a {config.model_type} model, not a text model: text trains small_bert (the "
            "default) or a checkpoint with a *ForSequenceClassification head (google-bert/bert-base-uncased)"
        )
    source = model_args.tokenizer_name or name
    tokenizer = _load(AutoTokenizer, source, "tokenizer")
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):  # transformers 5 builds an empty one for a folder without
        raise UsageError(
            f"{source!r} holds no tokenizer (only its special tokens came back): save one there with "
            "tokenizer.save_pretrained, or name one with --tokenizer_name"
        )
    if tokenizer.pad_token is None:  # GPT-style tokenizers: pad with the end-of-text token
        tokenizer.pad_token = tokenizer.eos_token
    if config.pad_token_id is None and tokenizer.pad_token_id is not None:
        config.pad_token_id = tokenizer.pad_token_id
    weights = has_weights(name)
    try:
        if weights is False:
            logger.warning("%s holds no weights: the model is built from its config (random initialisation)", name)
            model = AutoModelForSequenceClassification.from_config(config)
        else:
            try:
                model = AutoModelForSequenceClassification.from_pretrained(name, config=config,
                                                                           ignore_mismatched_sizes=True)
            except OSError as error:
                if "does not appear to have" not in str(error):
                    raise
                logger.warning("%s holds no weights: the model is built from its config (random initialisation)", name)
                model = AutoModelForSequenceClassification.from_config(config)
    except OSError as error:
        raise UsageError(f"could not load the weights of --model_name {name!r}: {str(error).strip().splitlines()[0]}") from error
    return tokenizer, model


def build_text_trainer(model_args, data_args, training_args, raw) -> tuple[MixupTrainer, object, str]:
    """(trainer, tokenized evaluation split, its name) for a text dataset."""
    from transformers import DataCollatorWithPadding

    train = raw[data_args.train_split]
    if len(data_args.label_column_name or []) > 1:
        raise UsageError("several --label_column values make a multi-label table; text takes one label column")
    (label_col,) = label_columns_of(data_args, train.column_names, ("label", "labels"))
    text_col, pair_col = text_columns_of(data_args, train.column_names)
    if data_args.max_seq_length < 2:
        raise UsageError(f"--max_seq_length {data_args.max_seq_length} leaves no room for a token: give 2 or more")
    raw, names = encode_labels(raw, label_col, data_args.train_split)
    train, evaluation, eval_split = split_and_subset(data_args, training_args.seed, raw, label_col)

    def train_texts():
        yield from (t or "" for t in train[text_col])
        if pair_col is not None:
            yield from (t or "" for t in train[pair_col])

    tokenizer, model = build_text_model(model_args, names, train_texts)
    if data_args.max_seq_length > tokenizer.model_max_length:
        raise UsageError(f"--max_seq_length {data_args.max_seq_length} is more than the {tokenizer.model_max_length} "
                         "tokens the model takes: give at most that")

    def tokenize(batch):
        texts = [t or "" for t in batch[text_col]]
        pairs = None if pair_col is None else [t or "" for t in batch[pair_col]]
        encoded = tokenizer(texts, pairs, truncation=True, max_length=data_args.max_seq_length)
        encoded["labels"] = batch[label_col]
        return encoded

    def prepare(dataset, what):
        return dataset.map(tokenize, batched=True, remove_columns=dataset.column_names, keep_in_memory=True,
                           desc=f"Tokenizing the {what} texts")

    train, evaluation = prepare(train, "training"), prepare(evaluation, "evaluation")
    multiple = 8 if training_args.fp16 or training_args.bf16 else None
    trainer = MixupTrainer(
        model=model, args=training_args, train_dataset=train, eval_dataset=evaluation,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple), processing_class=tokenizer,
    )
    return trainer, evaluation, eval_split
