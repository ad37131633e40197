"""Images in the training command: a timm architecture (or an image-classification checkpoint), lazy
transforms, and the trainer (with `--label_noise`, a `MemorisationCallback` on the training images)."""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..data.images import AUGMENTATIONS, EVAL_CROP_PCT, train_transform
from ..models.vit import SMALL_VIT, small_vit_classifier
from ..trainer import MixupTrainer
from .errors import UsageError


@dataclass
class ImageDataArguments:
    augmentation: str = field(
        default="none",
        metadata={
            "help": "Training augmentation: none; cifar (pad 4 + random crop, flip); imagenet (random resized crop, "
            "flip; centre crop at evaluation).",
            "choices": list(AUGMENTATIONS),
        },
    )
    in_memory: bool = field(
        default=False,
        metadata={
            "help": "Hold every image as one uint8 tensor (on the GPU when there is one) and serve whole batches by "
            "index, with --augmentation cifar run on the batch on the device: for sets that fit in memory (28x28, "
            "32x32) and are already the model's size. Off by default."
        },
    )


@dataclass
class ImageModelArguments:
    image_size: int = field(default=32, metadata={"help": "Side of the square model input, in pixels."})
    image_mean: list[float] | None = field(
        default=None, metadata={"help": "Normalisation mean (default: the timm architecture's)."}
    )
    image_std: list[float] | None = field(
        default=None, metadata={"help": "Normalisation std (default: the timm architecture's)."}
    )


def is_checkpoint_name(name: str) -> bool:
    """A local checkpoint folder or a Hub id (``namespace/name``), as opposed to a timm architecture."""
    return os.path.isdir(name) or "/" in name


def check_timm_architecture(name: str) -> None:
    """A clear error, with the closest names of timm's registry, for an architecture timm does not have."""
    import timm

    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UsageError(
        f"--model_name {name!r} is not a timm architecture nor a checkpoint folder: {hint}"
        "(timm.list_models('*resnet*') lists the architectures; a Hub checkpoint is namespace/name)"
    )


def load_pretrained(auto_class, name: str, **kwargs):
    """``auto_class.from_pretrained(name)`` with a one-line error when the checkpoint cannot be found or reached."""
    try:
        return auto_class.from_pretrained(name, **kwargs)
    except OSError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"could not load the checkpoint --model_name {name!r}: {reason}") from error


def build_model(model_args, labels: list[str], crop_pct: float = 1.0):
    """A timm architecture wrapped as `TimmWrapperForImageClassification` with timm's own init (its
    `config.json` carries the preprocessing, so `pipeline("image-classification")` works on the
    checkpoint), or an existing checkpoint (path or Hub id) with a new head for ``labels``."""
    from transformers import AutoModelForImageClassification

    from ..models import create_timm_classifier

    id2label = dict(enumerate(labels))
    label2id = {name: i for i, name in id2label.items()}
    name = model_args.model_name or "resnet18"
    if name == SMALL_VIT:
        kwargs = json.loads(model_args.model_kwargs) if model_args.model_kwargs else {}
        try:
            model, model.image_processor = small_vit_classifier(labels, image_size=model_args.image_size, **kwargs)
        except (TypeError, ValueError) as error:
            raise UsageError(f"--model_name small_vit --model_kwargs {model_args.model_kwargs!r}: {error}") from error
        return model
    if is_checkpoint_name(name):
        return load_pretrained(
            AutoModelForImageClassification, name, num_labels=len(labels), id2label=id2label, label2id=label2id,
            ignore_mismatched_sizes=True,
        )
    check_timm_architecture(name)
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
    if hasattr(model.config, "pretrained_cfg"):
        from transformers import TimmWrapperImageProcessor

        cfg = model.config.pretrained_cfg
        evaluate = TimmWrapperImageProcessor(pretrained_cfg=cfg).val_transforms
        size = int(cfg["input_size"][-1])
        train = train_transform(augmentation, size, cfg["mean"], cfg["std"], evaluate, cfg.get("interpolation", "bilinear"))
        return train, evaluate
    if augmentation != "none":
        raise UsageError("--augmentation needs a timm architecture (--model_name resnet18, preact_resnet18, ...)")
    processor = image_processor_of(model)

    def evaluate(image):
        return processor(image, return_tensors="pt")["pixel_values"][0]

    return evaluate, evaluate


def image_processor_of(model):
    """The image processor a transformers image model (not a timm one) is evaluated and saved with: the one it
    was built with (`small_vit`), else its checkpoint's."""
    from transformers import AutoImageProcessor

    built = getattr(model, "image_processor", None)
    return built if built is not None else AutoImageProcessor.from_pretrained(model.name_or_path)


def attach_transforms(dataset, transform, image_col: str, label_col: str, mode: str = "RGB"):
    """Decode and transform images lazily, on access (`set_transform`); ``mode`` "L" for 1-channel models."""

    def apply(batch):
        return {
            "pixel_values": [transform(image.convert(mode)) for image in batch[image_col]],
            "labels": batch[label_col],
        }

    dataset.set_transform(apply)
    return dataset


def in_memory_splits(data_args, training_args, train, evaluation, image_col, label_col, mode, timm_cfg, processor,
                     size) -> tuple[Any, Any, dict[str, Any]]:
    """``--in_memory``: both splits as `InMemoryImages` (normalised with the checkpoint's mean and std) on the
    training device, and the trainer's options: the batch collator and, with ``--augmentation cifar``, the crop
    and flip on the device (`CifarCrop`, its generator seeded from ``--seed`` and kept in checkpoints)."""
    from ..data.in_memory import CifarCrop, InMemoryImages, collate_batches

    if data_args.augmentation == "imagenet":
        raise UsageError("--in_memory runs --augmentation cifar (or none) on the device; the imagenet augmentation "
                         "(random resized crops) needs the set_transform path: drop --in_memory")
    if getattr(data_args, "label_noise", None) is not None:
        raise UsageError("--label_noise reports the memorisation of the training images through the set_transform "
                         "path: drop --in_memory")
    mean, std = (timm_cfg["mean"], timm_cfg["std"]) if timm_cfg else (processor.image_mean, processor.image_std)
    device = training_args.device if training_args.device.type != "mps" else "cpu"
    try:
        train, evaluation = (InMemoryImages.from_dataset(split, image_col, label_col, mean=mean, std=std, mode=mode,
                                                         size=size, device=device) for split in (train, evaluation))
    except ValueError as error:
        raise UsageError(f"--in_memory: {error}") from error
    options: dict[str, Any] = {"data_collator": collate_batches}
    if data_args.augmentation == "cifar":
        options["batch_transform"] = CifarCrop(mean, std)  # seeded by the trainer, from --seed and the rank
    return train, evaluation, options


def build_image_trainer(model_args, data_args, training_args, train, evaluation, image_col, label_col, labels) -> MixupTrainer:
    model = build_model(model_args, labels, crop_pct=EVAL_CROP_PCT[data_args.augmentation])
    train_tf, eval_tf = image_transforms(model, data_args.augmentation)
    timm_cfg = getattr(model.config, "pretrained_cfg", None)
    channels = timm_cfg.get("input_size", [3])[0] if timm_cfg else getattr(model.config, "num_channels", 3)
    mode = "L" if channels == 1 else "RGB"
    # With --label_noise, the training images as evaluation sees them (no augmentation), for the errors
    # on real and on corrupted labels; a view of the same rows (made before `train` gets its transform).
    memorisation = train.with_format(None) if getattr(data_args, "label_noise", None) is not None else None
    # A transformers image model's processor is saved with every checkpoint (timm's preprocessing is in its config).
    processor = None if timm_cfg else image_processor_of(model)
    if data_args.in_memory:
        train, evaluation, batch_options = in_memory_splits(
            data_args, training_args, train, evaluation, image_col, label_col, mode, timm_cfg, processor, model_args.image_size)
    else:
        attach_transforms(train, train_tf, image_col, label_col, mode)
        attach_transforms(evaluation, eval_tf, image_col, label_col, mode)
        batch_options = {}
    trainer = MixupTrainer(model=model, args=training_args, train_dataset=train, eval_dataset=evaluation,
                           processing_class=processor, **batch_options)
    if memorisation is not None:
        from ..robustness.labels import MemorisationCallback

        attach_transforms(memorisation, eval_tf, image_col, label_col, mode)
        trainer.add_callback(
            MemorisationCallback(
                trainer, memorisation, every_epoch=data_args.memorisation_every_epoch, label_column=label_col
            )
        )
    return trainer
