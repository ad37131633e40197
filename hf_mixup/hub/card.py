"""Offline model cards for trained checkpoints, built with `huggingface_hub.ModelCard`.

`transformers.modelcard` (behind `Trainer.create_model_card`) and `RepoCard.validate()` reach the
network; these cards are rendered from the template in `model_cards/template.md` (shipped in the wheel
as `hf_mixup.model_cards`) and carry the run's own evaluation results as `model-index` metadata (parsed
back by `ModelCard.load(...).data.eval_results`). A card holds only figures of the run it describes,
plus, when published as an ERM/mixup pair, the sibling run's figures in a table that links it.
"""

from __future__ import annotations

import importlib.metadata
import os
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

# modality -> (pipeline tag, task name, words, example input, how to load in three lines)
TASKS = {
    "image": ("image-classification", "Image Classification", "image classifier"),
    "audio": ("audio-classification", "Audio Classification", "audio classifier"),
    "tabular": ("tabular-classification", "Tabular Classification", "tabular model"),
    "text": ("text-classification", "Text Classification", "text classifier"),
}
# metric name in our results -> (model-index metric type, human name)
CARD_METRICS = {
    "accuracy": ("accuracy", "Accuracy"),
    "error": ("error", "Test error"),
    "top5_accuracy": ("top_5_accuracy", "Top-5 accuracy"),
    "nll": ("nll", "Negative log-likelihood"),
    "ece": ("ece", "Expected calibration error (15 bins)"),
    "rmse": ("rmse", "RMSE"),
    "mae": ("mae", "MAE"),
    "r2": ("r2", "R2"),
    "micro_f1": ("f1", "Micro F1"),
    "exact_match": ("exact_match", "Exact match"),
    # Runs on corrupted training labels (`--label_noise`, the paper's Table 2); the last three are about
    # the training split, the errors against the labels trained on.
    "best_error": ("best_error", "Best test error (lowest over the evaluations)"),
    "train_error_real": ("train_error_real", "Training error on real labels (training split)"),
    "train_error_corrupted": ("train_error_corrupted", "Training error on corrupted labels (training split)"),
    "train_corrupted_fraction": ("corrupted_fraction", "Share of training labels corrupted (training split)"),
}
TRAINING_SPLIT_METRICS = ("train_error_real", "train_error_corrupted", "train_corrupted_fraction")  # on "train"
CARD_SETTINGS_FILE = "hf_mixup_card.json"  # what the card was built from, for publishing later


def framework_versions() -> dict[str, str]:
    out = {}
    for name in ("hf_mixup", "transformers", "torch", "timm", "accelerate", "datasets", "huggingface_hub"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _latest_metrics(log_history: list[dict], prefix: str) -> dict[str, float]:
    for entry in reversed(log_history):
        if any(k.startswith(prefix + "_") for k in entry):
            return {k[len(prefix) + 1 :]: v for k, v in entry.items() if k.startswith(prefix + "_")}
    return {}


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def lr_schedule_of(args) -> str:
    """The learning-rate schedule in words: the step decay of `lr_milestones` when set (it replaces
    `lr_scheduler_type`), else the scheduler's name."""
    milestones = getattr(args, "lr_milestones", None)
    if milestones:
        at = ", ".join(f"{m:g}" for m in milestones)
        return f"step: x {getattr(args, 'lr_gamma', 0.1):g} at epochs {at}"
    return str(_plain(args.lr_scheduler_type))


def recipe_of(args) -> dict[str, Any]:
    """The training settings a card reports, from `MixupArguments` (the ablation settings `mixup_partner`,
    `mixup_targets` and `input_noise_std` only when they are not the defaults)."""
    ablations = {
        name: getattr(args, name)
        for name, default in (("mixup_partner", "random"), ("mixup_targets", "mixed"), ("input_noise_std", 0.0))
        if getattr(args, name, default) != default
    }
    if ablations.get("mixup_partner") == "knn":
        ablations.update(mixup_knn_k=args.mixup_knn_k, mixup_knn_scope=args.mixup_knn_scope)
    return {**_recipe_rows(args), **ablations}


def _recipe_rows(args) -> dict[str, Any]:
    return {
        "mixup_alpha": args.mixup_alpha,
        "cutmix_alpha": args.cutmix_alpha,
        "mixup_mode": args.mixup_mode,
        "mixup_prob": args.mixup_prob,
        "mixup_warmup_epochs": args.mixup_warmup_epochs,
        "mixup_off_epoch": args.mixup_off_epoch,
        "label_smoothing_factor": args.label_smoothing_factor,
        "epochs": args.num_train_epochs,
        "batch size (per device x devices x accumulation)": f"{args.per_device_train_batch_size} x {args.world_size} x {args.gradient_accumulation_steps}",
        "optimizer": _plain(args.optim),
        "learning rate": args.learning_rate,
        "weight decay": args.weight_decay,
        "lr schedule": lr_schedule_of(args),
        "seed": args.seed,
    }


def usage_snippet(modality: str, repo_id: str, needs_hf_mixup: bool, regression: bool = False) -> str:
    """Three lines (plus `import hf_mixup` where the architecture is ours) that load and run the model."""
    head = "import hf_mixup  # registers the architecture with transformers\n" if needs_hf_mixup else ""
    if modality == "tabular":
        example = "model.predict(rows)  # rows: a dict, a list of dicts or a pandas DataFrame with the training columns"
        return head + f'from transformers import AutoModel\nmodel = AutoModel.from_pretrained("{repo_id}")\n{example}'
    tag, _, _ = TASKS[modality]
    example = {"image": '"path/to/image.png"', "text": '"A gripping, beautifully acted film."'}.get(
        modality, '"path/to/clip.wav"')
    return head + f'from transformers import pipeline\nclassifier = pipeline("{tag}", model="{repo_id}")\nclassifier({example})'


def card_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    out = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if "accuracy" in out and "error" not in out:
        out["error"] = 1.0 - out["accuracy"]
    return out


def card_template() -> str:
    """The card template: shipped as ``hf_mixup.model_cards`` when installed; in a source checkout used
    without installing (``PYTHONPATH=.``) it is ``model_cards/template.md`` beside the package."""
    try:
        return resources.files("hf_mixup.model_cards").joinpath("template.md").read_text()
    except ModuleNotFoundError:
        source = Path(__file__).resolve().parents[2] / "model_cards" / "template.md"
        if not source.is_file():
            raise
        return source.read_text()


def build_card(
    args,
    architecture: str,
    metrics: dict[str, Any],
    model_name: str,
    dataset_name: str | None = None,
    dataset_id: str | None = None,
    eval_split: str = "test",
    modality: str = "image",
    license: str = "apache-2.0",
    repo_id: str | None = None,
    needs_hf_mixup: bool = False,
    regression: bool = False,
    extra_tags: list[str] | None = None,
    sibling: dict[str, Any] | None = None,
    curves: str | None = None,
    reliability: str | None = None,
    run_settings: dict[str, Any] | None = None,
) -> ModelCard:
    """A model card from a run's settings (`MixupArguments`) and its evaluation ``metrics``.

    ``sibling``: ``{"repo_id", "method", "metrics"}`` of the other run of an ERM/mixup pair, shown in a
    comparison table that links it. ``curves``: file name of the training-curve plot in the repository;
    ``reliability``: that of the pair's reliability diagrams.
    """
    if modality not in TASKS:
        raise ValueError(f"modality must be one of {sorted(TASKS)}, got {modality!r}")
    pipeline_tag, task_name, task_words = TASKS[modality]
    if regression:
        pipeline_tag, task_name, task_words = "tabular-regression", "Tabular Regression", "tabular regression model"
    mixing = bool(args.mixing_enabled)
    method = "mixup" if mixing else "erm"
    dataset_name = dataset_name or dataset_id or "a local dataset"
    values = card_metrics(metrics)
    eval_results = [
        EvalResult(
            task_type=pipeline_tag,
            task_name=task_name,
            dataset_type=dataset_id or dataset_name,
            dataset_name=dataset_name,
            dataset_split="train" if name in TRAINING_SPLIT_METRICS else eval_split,
            metric_type=CARD_METRICS[name][0],
            metric_name=CARD_METRICS[name][1],
            metric_value=round(values[name], 6),
        )
        for name in CARD_METRICS
        if name in values
    ]
    tags = ["hf_mixup", method, modality]
    tags += [t for t in (extra_tags or []) if t not in tags]
    card_data = ModelCardData(
        library_name="transformers",
        license=license,
        tags=tags,
        pipeline_tag=pipeline_tag,
        datasets=[dataset_id] if dataset_id else None,
        model_name=model_name,
        eval_results=eval_results or None,
    )
    comparison = None
    if sibling is not None:
        other = card_metrics(sibling.get("metrics", {}))
        rows = [
            (CARD_METRICS[k][1], f"{values[k]:.4f}", f"{other[k]:.4f}")
            for k in CARD_METRICS
            if k in values and k in other
        ]
        comparison = {
            "this": "mixup" if mixing else "ERM",
            "other": "mixup" if sibling["method"] == "mixup" else "ERM",
            "other_repo": sibling["repo_id"],
            "rows": rows,
        }
    repo_id = repo_id or model_name
    template = card_template()
    return ModelCard.from_template(
        card_data,
        template_str=template,
        model_name=model_name,
        architecture=architecture,
        task_words=task_words,
        mixing=mixing,
        dataset_name=dataset_name,
        eval_split=eval_split,
        metrics={CARD_METRICS[k][1]: f"{values[k]:.4f}" for k in CARD_METRICS if k in values},
        recipe={**recipe_of(args), **(run_settings or {})},
        usage=usage_snippet(modality, repo_id, needs_hf_mixup, regression),
        comparison=comparison,
        curves=curves,
        reliability=reliability,
        versions=framework_versions(),
    )


def architecture_of(model) -> str:
    config = getattr(model, "config", None)
    return getattr(config, "architecture", None) or type(model).__name__


def needs_hf_mixup(model) -> bool:
    """Whether loading the checkpoint needs `import hf_mixup` (our transformers classes, or a timm
    architecture that hf_mixup registers, such as the CIFAR family)."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", "").startswith("hf_mixup"):
        return True
    architecture = getattr(config, "architecture", None)
    if architecture:
        from ..models import cifar

        return architecture in cifar.MODEL_NAMES
    return False


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
    run_settings: dict[str, Any] | None = None,
    **_: Any,
) -> ModelCard:
    """A model card for ``trainer``'s model: tags, recipe, and the results in ``metrics`` (default:
    the latest ``eval_*`` figures in the trainer's log history)."""
    args = trainer.args
    model_name = model_name or os.path.basename(os.path.normpath(args.output_dir))
    if metrics is None:
        metrics = _latest_metrics(trainer.state.log_history, "eval")
    config = getattr(trainer.model, "config", None)
    return build_card(
        args,
        architecture=architecture_of(trainer.model),
        metrics=metrics,
        model_name=model_name,
        dataset_name=dataset_name,
        dataset_id=dataset_id,
        eval_split=eval_split,
        modality=modality,
        license=license,
        repo_id=repo_id,
        needs_hf_mixup=needs_hf_mixup(trainer.model),
        regression=getattr(config, "problem_type", None) == "regression" and modality == "tabular",
        extra_tags=list(getattr(trainer.model, "model_tags", None) or []),
        run_settings=run_settings,
    )


CARD_SETTINGS_KEYS = ("dataset_name", "dataset_id", "eval_split", "modality", "license", "metrics", "run_settings")


def write_model_card(trainer, **kwargs: Any) -> None:
    """`MixupTrainer.create_model_card`: `README.md` in the trainer's ``output_dir`` (`build_model_card`), and
    what the card was built from (`CARD_SETTINGS_FILE`), so that `hf-mixup publish` can rebuild it (with the
    sibling run's comparison) without the trainer. A later call (push_to_hub makes one with its own arguments)
    keeps what an earlier one said."""
    import json

    trainer._model_card_kwargs = {**getattr(trainer, "_model_card_kwargs", {}),
                                  **{k: v for k, v in kwargs.items() if v is not None}}
    card = build_model_card(trainer, **trainer._model_card_kwargs)
    os.makedirs(trainer.args.output_dir, exist_ok=True)
    card.save(os.path.join(trainer.args.output_dir, "README.md"))
    settings = {k: v for k, v in trainer._model_card_kwargs.items() if k in CARD_SETTINGS_KEYS}
    with open(os.path.join(trainer.args.output_dir, CARD_SETTINGS_FILE), "w") as f:
        json.dump(settings, f, indent=2)


GAN_USAGE = """import hf_mixup.gan as gan

generator = gan.GanGenerator.from_pretrained("{repo_id}")  # this folder, or its Hub id once uploaded
points = generator.sample({n}, seed={seed})  # [{n}, 2]: the very points scored below
print(gan.mode_coverage(points, "{data}", std={std:g}))  # modes covered, high-quality share"""


def build_gan_card(args, metrics: dict[str, Any], repo_id: str, license: str = "apache-2.0",
                   model_name: str | None = None) -> ModelCard:
    """The card of a toy GAN generator (`hf_mixup.gan`): its final mode coverage, the snapshots, and the
    recipe (`GanArguments`), from the same template as the classifiers' cards."""
    final = metrics["final"]
    method = metrics["method"]
    mixup = args.mixing != "none"
    card_data = ModelCardData(library_name="hf_mixup", license=license,
                              tags=["hf_mixup", "gan", "mixup" if mixup else "plain-gan", f"toy-{args.data}"],
                              model_name=model_name or repo_id)
    names = {"ring": "8 Gaussians on the unit circle", "grid": "25 Gaussians on a 5 x 5 grid"}
    description = (
        f"{model_name or repo_id} is the generator of a toy GAN ({method}) trained with `hf_mixup.gan` on `{args.data}` "
        f"({names[args.data]}, std {args.data_std:g}), as in Section 3.7 of mixup (Zhang et al., 2018): latent "
        f"noise of dimension {args.latent_dim} to 2-D points."
    )
    results_intro = (
        f"Scored on {args.eval_samples} generated points at iteration {final['iteration']}: a point is high quality "
        f"within 3 std ({3 * args.data_std:g}) of its nearest mode, a mode is covered when a high-quality point lies "
        "nearest to it (the VEEGAN / PacGAN definitions)."
    )
    values = {
        "Modes covered": f"{final['modes_covered']} / {final['num_modes']}",
        "High-quality share": f"{100 * final['high_quality']:.1f}%",
    }
    for entry in metrics["snapshots"]:
        if entry is not final and entry["iteration"] != final["iteration"]:
            values[f"Modes covered at iteration {entry['iteration']}"] = f"{entry['modes_covered']} / {entry['num_modes']}"
    recipe = {
        "discriminator mixing": {"none": "none (plain GAN)", "uniform": f"lam ~ Uniform(0, {args.mixup_max:g}) per example",
                                 "beta": f"lam ~ Beta({args.mixup_alpha:g}, {args.mixup_alpha:g}) per example"}[args.mixing],
        "networks": f"MLPs, {args.num_layers} hidden layers of {args.hidden_size} ReLU units",
        "latent noise": f"Gaussian, dimension {args.latent_dim}",
        "optimiser": f"Adam (lr {args.learning_rate:g}, default betas), both networks",
        "batch": f"{args.batch_size} real + {args.batch_size} generated points",
        "discriminator steps per generator step": args.d_steps,
        "generator iterations": metrics["iterations"],
        "seed": args.seed,
        "processes": metrics.get("processes", 1),
        "mixed precision": metrics.get("mixed_precision", "no"),
    }
    usage = GAN_USAGE.format(repo_id=repo_id, data=args.data, std=args.data_std, n=args.eval_samples,
                             seed=metrics["eval_seed"])
    return ModelCard.from_template(
        card_data,
        template_str=card_template(),
        model_name=model_name or repo_id,
        description=description,
        results_intro=results_intro,
        metrics=values,
        recipe=recipe,
        usage=usage,
        comparison=None,
        curves=None,
        versions=framework_versions(),
    )
