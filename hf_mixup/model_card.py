"""Offline model cards for trained checkpoints, built with `huggingface_hub.ModelCard`.

`transformers.modelcard` (behind `Trainer.create_model_card`) and `RepoCard.validate()` reach the
network; these cards are rendered from a template shipped in the package and carry the run's own
evaluation results as `model-index` metadata (parsed back by `ModelCard.load(...).data.eval_results`).
"""

from __future__ import annotations

import importlib.metadata
import os
from importlib import resources
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TASKS = {
    "image": ("image-classification", "Image Classification", "image classifier", '"path/to/image.png"'),
    "audio": ("audio-classification", "Audio Classification", "audio classifier", '"path/to/clip.wav"'),
    "tabular": ("tabular-classification", "Tabular Classification", "tabular model", "rows"),
}
# metric name in our results -> (model-index metric type, human name)
CARD_METRICS = {
    "accuracy": ("accuracy", "Accuracy"),
    "error": ("error", "Test error"),
    "top5_accuracy": ("top_5_accuracy", "Top-5 accuracy"),
    "nll": ("nll", "Negative log-likelihood"),
    "ece": ("ece", "Expected calibration error (15 bins)"),
}


def _versions() -> dict[str, str]:
    out = {}
    for name in ("hf_mixup", "transformers", "torch", "timm", "accelerate", "datasets", "huggingface_hub"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _latest_metrics(trainer, prefix: str) -> dict[str, float]:
    for entry in reversed(trainer.state.log_history):
        if any(k.startswith(prefix + "_") for k in entry):
            return {k[len(prefix) + 1 :]: v for k, v in entry.items() if k.startswith(prefix + "_")}
    return {}


def build_model_card(
    trainer,
    model_name: str | None = None,
    dataset_name: str | None = None,
    dataset_id: str | None = None,
    metrics: dict[str, float] | None = None,
    eval_split: str = "test",
    modality: str = "image",
    license: str = "apache-2.0",
    repo_id: str | None = None,
    **_: Any,
) -> ModelCard:
    """A model card for ``trainer``'s model: tags, recipe, and the results in ``metrics`` (default:
    the latest ``eval_*`` figures in the trainer's log history)."""
    args = trainer.args
    if modality not in TASKS:
        raise ValueError(f"modality must be one of {sorted(TASKS)}, got {modality!r}")
    pipeline_tag, task_name, task_words, example = TASKS[modality]
    mixing = bool(args.mixing_enabled)
    model_name = model_name or os.path.basename(os.path.normpath(args.output_dir))
    dataset_name = dataset_name or dataset_id or "a local dataset"
    if metrics is None:
        metrics = _latest_metrics(trainer, "eval")
    metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    if "accuracy" in metrics and "error" not in metrics:
        metrics["error"] = 1.0 - metrics["accuracy"]

    eval_results = [
        EvalResult(
            task_type=pipeline_tag,
            task_name=task_name,
            dataset_type=dataset_id or dataset_name,
            dataset_name=dataset_name,
            dataset_split=eval_split,
            metric_type=CARD_METRICS[name][0],
            metric_name=CARD_METRICS[name][1],
            metric_value=round(float(metrics[name]), 6),
        )
        for name in CARD_METRICS
        if name in metrics
    ]
    config = getattr(trainer.model, "config", None)
    tags = ["hf_mixup", "mixup" if mixing else "erm", modality]
    tags += [t for t in (getattr(trainer.model, "model_tags", None) or []) if t not in tags]
    card_data = ModelCardData(
        library_name="transformers",
        license=license,
        tags=tags,
        pipeline_tag=pipeline_tag,
        datasets=[dataset_id] if dataset_id else None,
        model_name=model_name,
        eval_results=eval_results or None,
    )
    recipe = {
        "mixup_alpha": args.mixup_alpha,
        "cutmix_alpha": args.cutmix_alpha,
        "mixup_mode": args.mixup_mode,
        "mixup_prob": args.mixup_prob,
        "mixup_warmup_epochs": args.mixup_warmup_epochs,
        "mixup_off_epoch": args.mixup_off_epoch,
        "label_smoothing_factor": args.label_smoothing_factor,
        "epochs": args.num_train_epochs,
        "batch size (per device x devices x accumulation)": f"{args.per_device_train_batch_size} x {args.world_size} x {args.gradient_accumulation_steps}",
        "optimizer": args.optim.value if hasattr(args.optim, "value") else args.optim,
        "learning rate": args.learning_rate,
        "weight decay": args.weight_decay,
        "lr schedule": args.lr_scheduler_type.value if hasattr(args.lr_scheduler_type, "value") else args.lr_scheduler_type,
        "seed": args.seed,
    }
    template = resources.files("hf_mixup").joinpath("templates/model_card.md").read_text()
    return ModelCard.from_template(
        card_data,
        template_str=template,
        model_name=model_name,
        architecture=getattr(config, "architecture", None) or type(trainer.model).__name__,
        task_words=task_words,
        mixing=mixing,
        dataset_name=dataset_name,
        eval_split=eval_split,
        metrics={CARD_METRICS[k][1]: f"{metrics[k]:.4f}" for k in CARD_METRICS if k in metrics},
        recipe=recipe,
        pipeline_tag=pipeline_tag,
        repo_id=repo_id or model_name,
        example_input=example,
        versions=_versions(),
    )
