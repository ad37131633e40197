"""`hf-mixup train`: train an image, audio, tabular or text model with mixup (or ERM) through `MixupTrainer`.

    hf-mixup train                                  # mixup (alpha 1) on the bundled digits
    hf-mixup train --mixup_alpha 0                  # the ERM baseline
    hf-mixup train recipe.yaml --seed 3             # a config file, then command-line overrides
    hf-mixup train --label_noise 0.5                # Table 2: half of the training labels re-drawn
    hf-mixup train --dataset_name rotten_tomatoes --mixup_alpha 0   # text: small_bert, offline
    accelerate launch scripts/train.py ...          # the same command line, under accelerate
    accelerate launch --multi_gpu --num_processes 2 scripts/train.py --use_cpu   # two gloo ranks on a CPU

With no arguments it trains a timm ResNet-18 on scikit-learn's handwritten digits (no download) and
writes a safetensors checkpoint, `all_results.json` and a model card (`README.md`) to `output_dir`.
`--dataset_name` takes Hub ids (`uoft-cs/cifar10`), saved datasets, image or audio folders,
csv/parquet/json files, or an offline name (`digits`, `fashion_mnist`, the UCI tables `iris`, `wine`,
`breast_cancer`, `phishing`, `abalone`, `diabetes`); `--model_name` any timm architecture, `lenet`/`vgg11`
for speech, `mlp` for tables (the default for a dataset without an image or audio column), `small_bert` for
text (the default for a dataset with a `text` column or `--text_column`: `rotten_tomatoes`, `imdb`, a
csv/jsonl, `stanfordnlp/imdb`), or a checkpoint path / Hub id. An existing `output_dir` with checkpoints is resumed from its last checkpoint.
With `--label_noise` (images only) the results and the card add the training errors on real and on
corrupted labels and the best and last test errors (`report_label_noise`).

`main(argv)` runs in-process and raises; `run(argv)` is the command: a mistake in what was asked for
(flags, dataset, model name) ends with a one-line message and exit status 2.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import datasets
import torch
import transformers
import yaml
from transformers import HfArgumentParser, set_seed
from transformers.trainer_utils import get_last_checkpoint

from ..arguments import MixupArguments
from ..data import OFFLINE_DATASETS
from ..hub.plots import CALIBRATION_FILE
from ..trainer import MixupTrainer
from .audio import AudioDataArguments, build_audio_trainer, select_classes
from .common import DataArguments as CommonDataArguments
from .common import end_processes, load_raw, load_splits
from .errors import UsageError
from .output_dir import check_output_dir, finish_run, start_run
from .images import ImageDataArguments, ImageModelArguments, build_image_trainer
from .tables import TableDataArguments, build_table_trainer, is_tabular
from .text import TextDataArguments, TextModelArguments, build_text_trainer, is_text

logger = logging.getLogger("hf_mixup.train")


@dataclass
class DataArguments(TextDataArguments, TableDataArguments, AudioDataArguments, ImageDataArguments, CommonDataArguments):
    """The dataset flags: those every modality shares, then the image, audio, table and text ones."""


@dataclass
class ModelArguments(TextModelArguments, ImageModelArguments):
    model_name: str | None = field(
        default=None,
        metadata={"help": "A timm architecture (default resnet18; resnext50_32x4d, preact_resnet18, "
                          "preact_resnet18_dropout (p 0.5; _dropout70/80/90), ...), small_vit (images: transformers' ViT from a "
                          "small config, random weights), lenet or vgg11 (speech, default "
                          "vgg11), mlp (tables, the default), small_bert (text, the default: a tokenizer trained "
                          "on the training split and a small BERT from scratch), or a checkpoint path / Hub id "
                          "(text: config and tokenizer, with or without weights)."},
    )
    model_kwargs: str | None = field(
        default=None,
        metadata={"help": 'JSON keyword arguments for timm.create_model (\'{"drop_rate": 0.1}\'; the PreAct '
                          'ResNets\' in-block dropout: \'{"block_drop_rate": 0.7}\') or the table MLP '
                          '(\'{"hidden_sizes": [128, 128], "dropout": 0.1, "activation": "relu"}\') or small_vit '
                          '(\'{"patch_size": 7, "num_hidden_layers": 4}\').'},
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


def _config_file_to_argv(path) -> list[str]:
    """The flags of a YAML/JSON config file: a path, or a shipped recipe (`hf_mixup.cli.recipes.resolve_config`)."""
    name = str(path)
    is_yaml = name.endswith((".yaml", ".yml"))
    try:
        if isinstance(path, (str, os.PathLike)):
            with open(path) as f:
                text = f.read()
        else:
            text = path.read_text()
        config = yaml.safe_load(text) if is_yaml else json.loads(text)
    except OSError as error:
        raise UsageError(f"could not read the config file {name}: {error.strerror or error}") from error
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        reason = " ".join(str(error).split())
        raise UsageError(f"the config file {name} is not valid {'YAML' if is_yaml else 'JSON'}: {reason}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{name} must hold a mapping of argument names to values, got {type(config).__name__}")
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
    """Command line, optionally led by a config file whose values the command line overrides: a YAML/JSON path,
    or the name of a shipped recipe (``uci_mlp``; `hf-mixup recipes` lists them)."""
    from .recipes import resolve_config

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):
        argv = _config_file_to_argv(resolve_config(argv[0])) + argv[1:]
    parser = HfArgumentParser((ModelArguments, DataArguments, MixupArguments))
    parser.set_defaults(**SCRIPT_DEFAULTS)
    model_args, data_args, training_args, extra = parser.parse_args_into_dataclasses(
        args=argv, return_remaining_strings=True
    )
    if extra:
        raise UsageError(f"unknown arguments {extra}; `hf-mixup train --help` lists the flags")
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


def build_trainer(model_args, data_args, training_args) -> tuple[MixupTrainer, Any, str]:
    """The trainer, the evaluation dataset and its split's name: everything built, nothing trained."""
    set_seed(training_args.seed)
    check_label_noise_flags(data_args)
    raw = load_raw(data_args)
    for detect, build_other, kind in ((is_text, build_text_trainer, "text"), (is_tabular, build_table_trainer, "a table")):
        if detect(data_args, raw[data_args.train_split]):
            if data_args.label_noise is not None:
                raise UsageError(f"--label_noise applies to image datasets only; this dataset is {kind}: leave it out")
            trainer, evaluation, eval_split = build_other(model_args, data_args, training_args, raw)
            trainer.check_inputs()
            return trainer, evaluation, eval_split
    raw = select_classes(raw, data_args)
    train, evaluation, eval_split, input_col, label_col, labels = load_splits(data_args, training_args.seed, raw)
    audio = isinstance(train.features[input_col], datasets.Audio)
    if data_args.label_noise is not None:
        if audio:
            raise UsageError("--label_noise applies to image datasets only; this dataset is audio: leave it out")
        train = corrupt_training_labels(train, label_col, data_args)
    build = build_audio_trainer if audio else build_image_trainer
    trainer = build(model_args, data_args, training_args, train, evaluation, input_col, label_col, labels)
    trainer.check_inputs()
    # The evaluation split as the trainer holds it (with --in_memory, a tensor of its own).
    return trainer, trainer.eval_dataset, eval_split


def check_label_noise_flags(data_args) -> None:
    if data_args.label_noise is not None and not 0.0 <= data_args.label_noise <= 1.0:
        raise UsageError(
            f"--label_noise {data_args.label_noise} is not a probability: give the share of training labels to "
            "re-draw, between 0 and 1 (0.5 for half)"
        )
    if data_args.memorisation_every_epoch and data_args.label_noise is None:
        raise UsageError("--memorisation_every_epoch needs --label_noise (the errors on real and on corrupted labels)")


def corrupt_training_labels(train, label_col: str, data_args):
    """The training split with `--label_noise` applied (`corrupt_labels`; the original labels in
    ``clean_label``)."""
    from ..robustness.labels import corrupt_labels

    feature = train.features[label_col]
    if not isinstance(feature, datasets.ClassLabel):
        raise UsageError(
            f"--label_noise needs class ids in a ClassLabel label column; {label_col!r} is {feature}: cast it "
            f"with dataset.class_encode_column({label_col!r}) and save the dataset, or leave --label_noise out"
        )
    return corrupt_labels(train, data_args.label_noise, seed=data_args.label_noise_seed, label_column=label_col)


def run_training(trainer: MixupTrainer, training_args: MixupArguments) -> dict[str, float]:
    checkpoint = training_args.resume_from_checkpoint
    if checkpoint is None and os.path.isdir(training_args.output_dir) and not training_args.overwrite_output_dir:
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
    """The final evaluation, saved as ``test_results.json``; for a single-label classifier also the reliability
    diagram's bins of the same predictions, ``test_calibration.json`` (`hf_mixup.metrics.calibration_of`; drawn
    by `scripts/compare.py --reliability` and in the cards of a published ERM/mixup pair)."""
    from ..metrics import calibration_of

    calibration = {}
    compute_metrics = trainer.compute_metrics
    if trainer.problem_type == "single_label_classification" and compute_metrics is not None:
        def metrics_and_bins(eval_pred):
            calibration.update(calibration_of(eval_pred))
            return compute_metrics(eval_pred)

        trainer.compute_metrics = metrics_and_bins
    try:
        metrics = trainer.evaluate(evaluation, metric_key_prefix="test")
    finally:
        trainer.compute_metrics = compute_metrics
    if "test_accuracy" in metrics:
        metrics["test_error"] = 1.0 - metrics["test_accuracy"]
    trainer.log_metrics("test", metrics)
    trainer.save_metrics("test", metrics)
    if calibration and trainer.is_world_process_zero():
        with open(os.path.join(trainer.args.output_dir, CALIBRATION_FILE), "w") as f:
            json.dump(calibration, f, indent=1)
            f.write("\n")
    return metrics


def report_label_noise(trainer: MixupTrainer, data_args) -> dict[str, float]:
    """With `--label_noise`, Table 2's figures (fractions in [0, 1]): ``train_error_real`` and
    ``train_error_corrupted`` (the `MemorisationCallback` of `build_image_trainer`, at the end of training),
    ``train_corrupted_fraction``, ``test_error`` (the last evaluation) and ``best_test_error`` (the lowest
    over the evaluations in the log history); logged and saved (`label_noise_results.json`,
    `all_results.json`). An error over no examples (no label changed) is left out. Without it: {}."""
    if data_args.label_noise is None:
        return {}
    from ..robustness.labels import MemorisationCallback, best_and_last_test_error

    callback = next((c for c in trainer.callback_handler.callbacks if isinstance(c, MemorisationCallback)), None)
    results = dict(callback.final) if callback is not None else {}
    results.update(best_and_last_test_error(trainer.state.log_history))
    results = {k: v for k, v in results.items() if not math.isnan(v)}
    trainer.log_metrics("label_noise", results)
    trainer.save_metrics("label_noise", results)
    return results


def modality_of(model) -> str:
    from ..models import TabularMLPForPrediction

    if isinstance(model, TabularMLPForPrediction):
        return "tabular"
    if model.main_input_name == "input_ids":
        return "text"
    return "audio" if model.main_input_name in ("input_features", "input_values") else "image"


# Figures of a --label_noise run -> their names in the model card (hf_mixup.hub.card.CARD_METRICS).
LABEL_NOISE_CARD_METRICS = {
    "best_test_error": "best_error",
    "train_error_real": "train_error_real",
    "train_error_corrupted": "train_error_corrupted",
    "train_corrupted_fraction": "train_corrupted_fraction",
}


def card_metrics_of(metrics: dict[str, float]) -> dict[str, float]:
    """The figures a model card reports: the ``test_*`` ones without the prefix, plus those of `--label_noise`."""
    card = {k[len("test_"):]: v for k, v in metrics.items() if k.startswith("test_")}
    card.update({name: metrics[key] for key, name in LABEL_NOISE_CARD_METRICS.items() if key in metrics})
    return card


def write_model_card(trainer: MixupTrainer, data_args: DataArguments, eval_split: str, metrics: dict[str, float]) -> None:
    offline = data_args.dataset_name in OFFLINE_DATASETS
    trainer.create_model_card(
        dataset_name=data_args.dataset_name,
        dataset_id=None if offline or os.path.exists(data_args.dataset_name) else data_args.dataset_name,
        metrics=card_metrics_of(metrics),
        eval_split=eval_split,
        modality=modality_of(trainer.model),
        run_settings=run_settings_of(trainer, data_args),
    )


def run_settings_of(trainer: MixupTrainer, data_args: DataArguments) -> dict[str, str]:
    """What else the card's recipe table needs to describe the run: a training subset, the label noise of
    `--label_noise`, and the architecture's arguments (`--model_kwargs`, e.g. a dropout rate)."""
    settings = {}
    if data_args.max_train_samples is not None:
        settings["training examples"] = f"{data_args.max_train_samples} (a subset drawn with the seed)"
    if getattr(data_args, "label_noise", None) is not None:
        settings["label noise"] = (
            f"{data_args.label_noise:g}: each training label re-drawn uniformly over the classes with this "
            f"probability (corruption seed {data_args.label_noise_seed}); evaluation labels intact"
        )
    model_args = getattr(getattr(trainer.model, "config", None), "model_args", None)
    if model_args:
        settings["model arguments"] = json.dumps(model_args)
    return settings


def push_when_asked(trainer: MixupTrainer, repo_id: str | None) -> None:
    """`--push_to_hub`: upload the finished run (weights, preprocessing, card) once, at the end. A failed
    push is logged with its cause; the local output is complete either way."""
    if repo_id is None or not trainer.is_world_process_zero():
        return
    from ..hub import PublishError, load_run, push_run, render_card

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
    """Parse ``argv``, build, train, evaluate, write the model card (and push when asked); the metrics. A used
    ``--output_dir`` is resumed when its settings match (`hf_mixup.cli.output_dir`); a finished run of the same
    settings is left as it is and its metrics returned."""
    prepared = prepare(argv)
    return prepared.finished if prepared.finished is not None else prepared.train()


class Prepared:
    """Everything `hf-mixup train` checks and builds before it trains (a `ValueError` here is the user's to fix)."""

    def __init__(self, argv):
        self.model_args, self.data_args, self.training_args = parse_args(argv)
        setup_logging(self.training_args)
        self.repo_id = hub_repo_for(self.training_args)
        self.finished = check_output_dir(self.model_args, self.data_args, self.training_args)
        if self.finished is None:
            self.trainer, self.evaluation, self.eval_split = build_trainer(
                self.model_args, self.data_args, self.training_args
            )

    def train(self) -> dict[str, float]:
        start_run(self.trainer, self.model_args, self.data_args, self.training_args)
        metrics = train_and_report(self.trainer, self.evaluation, self.eval_split, self.data_args, self.training_args,
                                   self.repo_id)
        finish_run(self.trainer)
        return metrics


def prepare(argv: list[str] | None = None) -> Prepared:
    return Prepared(argv)


def train_and_report(trainer, evaluation, eval_split, data_args, training_args, repo_id) -> dict[str, float]:
    metrics = dict(run_training(trainer, training_args))
    metrics.update(run_evaluation(trainer, evaluation))
    metrics.update(report_label_noise(trainer, data_args))
    write_model_card(trainer, data_args, eval_split, metrics)
    push_when_asked(trainer, repo_id)
    return metrics


def run(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The command: like `main`, but a mistake in what was asked for (a `ValueError` while parsing the
    flags, checking the output folder or building the data and model) prints one line and returns 2; errors
    in training propagate."""
    prog = prog or os.path.basename(sys.argv[0]) or "hf-mixup train"
    try:
        prepared = prepare(argv)
    except ValueError as error:  # UsageError, and the argument checks of MixupArguments / TrainingArguments
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        end_processes(finished=False)
        return 2
    if prepared.finished is None:
        prepared.train()
    end_processes()
    return 0


if __name__ == "__main__":
    sys.exit(run())
