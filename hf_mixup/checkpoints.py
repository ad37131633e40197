"""Loading a `Trainer` checkpoint's weights back into a live model, exactly.

`save_pretrained` writes some models' weights under their checkpoint names, not their module names
(`ViTForImageClassification` keeps `vit.encoder.layer.0.attention.attention.query.weight` on disk for
the module `vit.layers.0.attention.q_proj`), and `from_pretrained` converts them back on load. A plain
`load_state_dict` of such a checkpoint matches none of the converted keys. `load_checkpoint_weights`
loads through the conversion of `from_pretrained` when the names differ (or when the model's
registered conversions change tensors, not only names), then copies every tensor into the live model
with a strict `load_state_dict`, and raises a `ValueError` naming the keys that still do not match.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_INDEX_NAME, WEIGHTS_NAME
from transformers.utils import logging

logger = logging.get_logger(__name__)

WEIGHT_FILES = (SAFE_WEIGHTS_NAME, WEIGHTS_NAME)
INDEX_FILES = (SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_INDEX_NAME)
_SHOWN_KEYS = 8


def has_full_weights(directory: str | None) -> bool:
    """Whether ``directory`` holds the model's full weights (``model.safetensors``, ``pytorch_model.bin``
    or a sharded index of either), as `Trainer.save_model` writes them; adapter-only (PEFT) checkpoints
    and FSDP / DeepSpeed shards do not count."""
    if not directory or not os.path.isdir(directory):
        return False
    return any(os.path.isfile(os.path.join(directory, name)) for name in WEIGHT_FILES + INDEX_FILES)


def read_state_dict(directory: str) -> dict[str, torch.Tensor]:
    """The tensors stored in a checkpoint folder, on the CPU, under their names on disk (single file or
    shards listed in the ``*.index.json``; safetensors first)."""
    for weights, index in zip(WEIGHT_FILES, INDEX_FILES):
        path = os.path.join(directory, weights)
        if os.path.isfile(path):
            return _read_file(path)
        index_path = os.path.join(directory, index)
        if os.path.isfile(index_path):
            with open(index_path) as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                state.update(_read_file(os.path.join(directory, shard)))
            return state
    raise ValueError(
        f"no model weights in {directory} (looked for {', '.join(WEIGHT_FILES + INDEX_FILES)}): pass a checkpoint "
        "folder written by Trainer (output_dir/checkpoint-<step>)"
    )


def _read_file(path: str) -> dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        import safetensors.torch

        return safetensors.torch.load_file(path, device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)


def has_tensor_conversions(model: nn.Module) -> bool:
    """Whether `from_pretrained` would change tensors of this model on load (split, merge, transpose...),
    not only rename them: then a checkpoint whose names match the model can still hold other values."""
    from transformers import PreTrainedModel

    if not isinstance(model, PreTrainedModel):
        return False
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightRenaming
    except ImportError:  # no registry of conversions: assume the worst, load through from_pretrained
        return True
    return any(not isinstance(conversion, WeightRenaming) for conversion in get_model_conversion_mapping(model) or ())


def load_checkpoint_weights(model: nn.Module, directory: str) -> str:
    """Load the weights saved in ``directory`` into ``model``, in place, every tensor bit for bit.

    When the names on disk are the model's own names (and no registered conversion changes tensor
    values), the tensors go straight into a strict `load_state_dict`. Otherwise they are read through
    ``type(model).from_pretrained(directory, config=model.config)``, which applies the renaming and
    conversions that `save_pretrained` reverted, and the converted tensors are loaded strictly. Keys
    tied to another parameter (`tie_word_embeddings`) and `_keys_to_ignore_on_save` may be absent.

    Returns ``"direct"`` or ``"converted"``: the route taken.

    Raises:
        ValueError: the checkpoint has no weights, or its keys (after conversion) or shapes do not match
            the model; the message lists the missing and unexpected keys.
    """
    state = read_state_dict(directory)
    missing, unexpected = _key_differences(model, state.keys())
    if not missing and not unexpected and not has_tensor_conversions(model):
        _load_strict(model, state, directory)
        return "direct"

    from transformers import PreTrainedModel

    if not isinstance(model, PreTrainedModel):
        raise _mismatch_error(model, directory, missing, unexpected, converted=False)
    converted, loading_info = _converted_state_dict(model, directory)
    missing, unexpected = _key_differences(model, converted.keys())
    missing |= set(loading_info.get("missing_keys", ()))
    unexpected |= set(loading_info.get("unexpected_keys", ()))
    mismatched = [_describe_mismatch(entry) for entry in loading_info.get("mismatched_keys", ())]
    if missing or unexpected or mismatched:
        raise _mismatch_error(model, directory, missing, unexpected, converted=True, mismatched=mismatched)
    _load_strict(model, converted, directory)
    return "converted"


def _converted_state_dict(model, directory: str) -> tuple[dict[str, torch.Tensor], dict]:
    """The checkpoint's tensors under the model's names, as `from_pretrained` converts them."""
    try:
        loaded, loading_info = type(model).from_pretrained(
            directory, config=model.config, output_loading_info=True, ignore_mismatched_sizes=True
        )
    except (OSError, RuntimeError, ValueError) as error:
        raise ValueError(
            f"could not load the weights in {directory} into a {type(model).__name__}: {error}; resume from a "
            "checkpoint written for this model class and config"
        ) from error
    state = {key: tensor.detach() for key, tensor in loaded.state_dict().items()}
    return state, loading_info


def _tied_aliases(model: nn.Module) -> dict[str, set[str]]:
    """For each state-dict key, the other keys naming the very same tensor (tied weights)."""
    names_by_tensor: dict[int, list[str]] = {}
    for name, tensor in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
        names_by_tensor.setdefault(id(tensor), []).append(name)
    return {name: set(names) - {name} for names in names_by_tensor.values() if len(names) > 1 for name in names}


def _key_differences(model: nn.Module, keys: Iterable[str]) -> tuple[set[str], set[str]]:
    """(missing, unexpected): model keys absent from ``keys`` (tied aliases of a present key and
    `_keys_to_ignore_on_save` excepted), and keys the model does not have."""
    keys = set(keys)
    expected = set(model.state_dict().keys())
    aliases = _tied_aliases(model)
    ignored = set(getattr(model, "_keys_to_ignore_on_save", None) or ())
    missing = {k for k in expected - keys if k not in ignored and not (aliases.get(k, set()) & keys)}
    return missing, keys - expected


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], directory: str) -> None:
    state = dict(state)
    keys = set(state)
    for key, others in _tied_aliases(model).items():
        if key not in state and others & keys:
            state[key] = state[sorted(others & keys)[0]]
    current = model.state_dict()
    for key in getattr(model, "_keys_to_ignore_on_save", None) or ():
        if key in current and key not in state:
            state[key] = current[key]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"the weights in {directory} do not fit this {type(model).__name__}: {error}; resume from a checkpoint "
            "written for this model class and config"
        ) from error


def _describe_mismatch(entry) -> str:
    if isinstance(entry, (tuple, list)) and len(entry) == 3:
        key, on_disk, in_model = entry
        return f"{key} (checkpoint {tuple(on_disk)}, model {tuple(in_model)})"
    return str(entry)


def _shown(keys) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
    return ", ".join(keys[:_SHOWN_KEYS]) + more


def _mismatch_error(model, directory, missing, unexpected, converted: bool, mismatched=()) -> ValueError:
    parts = []
    if missing:
        parts.append(f"missing from the checkpoint ({len(missing)}): {_shown(missing)}")
    if unexpected:
        parts.append(f"unexpected in the checkpoint ({len(unexpected)}): {_shown(unexpected)}")
    if mismatched:
        parts.append(f"of another shape ({len(mismatched)}): {_shown(mismatched)}")
    how = "after the weight-name conversion of from_pretrained" if converted else "by name"
    return ValueError(
        f"the weights in {directory} do not match this {type(model).__name__} {how}: " + "; ".join(parts)
        + ". Resume (or load the best model) only from a checkpoint written for this model class and config, "
        "or fix the checkpoint's keys; training does not go on from partly loaded weights"
    )


# -- checkpoints that appear whole ------------------------------------------------------------------------
# A checkpoint is written into `.partial-checkpoint-<step>/checkpoint-<step>` and renamed into place only
# once every file is in it; checkpoints rotated out are renamed to `.deleting-...` before they are removed.
# A process killed at any moment therefore leaves only whole `checkpoint-<step>` folders, and hidden
# leftovers that `remove_partial_checkpoints` clears at the next start.
PARTIAL_PREFIX = ".partial-"
DELETING_PREFIX = ".deleting-"
PREVIOUS_PREFIX = ".previous-"
LEFTOVER_PREFIXES = (PARTIAL_PREFIX, DELETING_PREFIX, PREVIOUS_PREFIX)


def staging_parent(run_dir: str, name: str) -> str:
    """The hidden folder a checkpoint called ``name`` is written into before it is renamed into ``run_dir``."""
    return os.path.join(run_dir, f"{PARTIAL_PREFIX}{name}")


def remove_partial_checkpoints(run_dir: str) -> list[str]:
    """Remove what an interrupted save or rotation left in ``run_dir`` (hidden ``.partial-*``, ``.deleting-*``
    and ``.previous-*`` folders and files); the names removed."""
    import shutil

    if not os.path.isdir(run_dir):
        return []
    removed = sorted(name for name in os.listdir(run_dir) if name.startswith(LEFTOVER_PREFIXES))
    for name in removed:
        path = os.path.join(run_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    return removed


def publish_checkpoint(staged: str, final: str) -> None:
    """Rename the complete checkpoint folder ``staged`` to ``final``; a folder already at ``final`` (the same step
    saved again) is kept under another name until the new one is in place, then removed."""
    import shutil

    parent, name = os.path.split(final)
    previous = os.path.join(parent, f"{PREVIOUS_PREFIX}{name}")
    if os.path.isdir(previous):
        shutil.rmtree(previous)
    if os.path.exists(final):
        os.replace(final, previous)
    os.replace(staged, final)
    if os.path.isdir(previous):
        shutil.rmtree(previous)


def rotate_checkpoints(run_dir: str, save_total_limit: int | None, best_model_checkpoint: str | None) -> list[str]:
    """Keep at most ``save_total_limit`` checkpoints in ``run_dir``, oldest removed first, never the newest
    nor the best (the rule of transformers' own rotation); each is renamed out of sight before it is deleted,
    so an interrupted rotation leaves no half-deleted checkpoint behind. The folders removed."""
    import shutil

    from transformers.trainer_utils import sort_checkpoints

    if not save_total_limit or save_total_limit <= 0:
        return []
    checkpoints = sort_checkpoints(run_dir, use_mtime=False)
    protected = {checkpoints[-1]} if checkpoints else set()
    if best_model_checkpoint is not None:
        protected.add(os.path.normpath(best_model_checkpoint))
    protected = {os.path.normpath(p) for p in protected}
    remaining, keep, removed = len(checkpoints), max(save_total_limit, len(protected)), []
    for checkpoint in checkpoints:
        if remaining <= keep:
            break
        if os.path.normpath(checkpoint) in protected:
            continue
        doomed = os.path.join(run_dir, f"{DELETING_PREFIX}{os.path.basename(checkpoint)}")
        os.replace(checkpoint, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(checkpoint)
        remaining -= 1
    return removed


def clear_partial_checkpoints(run_dir: str) -> None:
    """`remove_partial_checkpoints`, with one warning line naming what an interrupted save left."""
    removed = remove_partial_checkpoints(run_dir)
    if removed:
        logger.warning(
            f"Removed {len(removed)} partial folder(s) that an interrupted save left in {run_dir}: {', '.join(removed)}"
        )


def save_staged_checkpoint(trainer, model: nn.Module, trial, save: Callable[[nn.Module, Any], None]) -> None:
    """`MixupTrainer._save_checkpoint`: the Trainer's checkpoint (``save``, the Trainer's own method), plus the run's
    mixing state, written whole into a hidden staging folder and only then renamed to ``checkpoint-<step>``: a
    process killed at any moment leaves either the complete checkpoint or none (the leftovers are removed at the
    next start). Old checkpoints are rotated out the same way (renamed, then deleted). While ``save`` runs,
    ``trainer._staging_dir`` names the staging folder (`MixupTrainer._get_output_dir` returns it)."""
    import shutil

    from transformers.trainer import TRAINER_STATE_NAME
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    args, state = trainer.args, trainer.state
    run_dir = trainer._get_output_dir(trial)
    name = f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
    parent = staging_parent(run_dir, name)
    staged, final = os.path.join(parent, name), os.path.join(run_dir, name)
    if args.should_save and os.path.isdir(parent):  # left by a save of this step that was interrupted
        shutil.rmtree(parent)
    trainer.accelerator.wait_for_everyone()
    trainer._staging_dir = parent
    try:
        save(model, trial)
    finally:
        trainer._staging_dir = None
    if not args.save_only_model:  # no RNG or optimizer state either: such checkpoints do not resume
        trainer.save_mixup_state(staged)
    best = state.best_model_checkpoint
    if best is not None and os.path.normpath(best) == os.path.normpath(staged):
        state.best_model_checkpoint = final
        if args.should_save:
            state.save_to_json(os.path.join(staged, TRAINER_STATE_NAME))
    trainer.accelerator.wait_for_everyone()
    if args.should_save:
        publish_checkpoint(staged, final)
        shutil.rmtree(parent, ignore_errors=True)
        rotate_checkpoints(run_dir, args.save_total_limit, state.best_model_checkpoint)
    trainer.accelerator.wait_for_everyone()


def load_full_weights(trainer, model: nn.Module, checkpoint: str | None, what: str) -> bool:
    """Load ``checkpoint``'s full weights into ``model`` with `load_checkpoint_weights` (the weight-name conversion of
    `from_pretrained`; the Trainer's own loading is a plain ``load_state_dict(strict=False)``, under which models
    whose saved names differ from their module names keep their random initialisation). False where the Trainer
    must load them itself: DeepSpeed, FSDP and SageMaker model parallelism (their own sharded formats), and
    checkpoints without full weights (adapters)."""
    from transformers.utils import is_sagemaker_mp_enabled

    if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled or is_sagemaker_mp_enabled():
        return False
    if not has_full_weights(checkpoint):
        return False
    route = load_checkpoint_weights(model, checkpoint)
    logger.info(f"Loaded {what} from {checkpoint} ({route})")
    return True


# -- the mixing state of a checkpoint ---------------------------------------------------------------------
MIXUP_STATE_NAME = "mixup_state.pth"


def mixup_state_file(directory: str, world_size: int, rank: int) -> str:
    """Where process ``rank`` keeps its mixing state in checkpoint folder ``directory`` (one file per rank)."""
    if world_size <= 1:
        return os.path.join(directory, MIXUP_STATE_NAME)
    stem, ext = os.path.splitext(MIXUP_STATE_NAME)
    return os.path.join(directory, f"{stem}_{rank}{ext}")


def save_mixing_state(directory: str, state: dict[str, Any], world_size: int, rank: int) -> None:
    """Write this process's mixing state (generator states: tensors and plain values) into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    torch.save(state, mixup_state_file(directory, world_size, rank))


def load_mixing_state(directory: str, world_size: int, rank: int) -> dict[str, Any] | None:
    """The mixing state saved in ``directory`` (read with ``weights_only=True``); None, with a warning, when there
    is none for this world size and rank."""
    path = mixup_state_file(directory, world_size, rank)
    if not os.path.isfile(path):
        logger.warning(
            f"No mixing state at {path}: the resumed run draws new mixing decisions and will not match an "
            "uninterrupted one (the checkpoint was written by another trainer or world size)"
        )
        return None
    return torch.load(path, weights_only=True)
