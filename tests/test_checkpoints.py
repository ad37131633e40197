"""Checkpoint weights come back exactly: resume and load_best_model_at_end for models whose saved
weight names differ from their module names (ViT and friends), and loud errors for checkpoints that
do not fit the model."""

from __future__ import annotations

import inspect
import os
import shutil

import pytest
import torch
from conftest import assert_same_weights, tiny_resnet, tiny_vit, weights
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainerCallback

from hf_mixup import MixupArguments, MixupTrainer
from hf_mixup.checkpoints import has_full_weights, load_checkpoint_weights, read_state_dict

pytestmark = pytest.mark.slow


def hf_vit(num_labels: int = 10):
    """transformers' own ViT, 1 block of width 32 on 8x8 images in 4x4 patches (no dropout)."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=8,
        patch_size=4, num_labels=num_labels,
    )
    return ViTForImageClassification(config)


def make_args(tmp_path, name, **kwargs):
    defaults = dict(
        output_dir=str(tmp_path / name), report_to="none", logging_steps=1, save_strategy="steps", save_steps=4,
        eval_strategy="no", max_steps=8, per_device_train_batch_size=16, learning_rate=0.05, optim="sgd",
        lr_scheduler_type="linear", seed=1, disable_tqdm=True,
    )
    defaults.update(kwargs)
    return MixupArguments(**defaults)


class WeightsAtSave(TrainerCallback):
    """The model's weights at every checkpoint, taken from memory (independent of any loading code)."""

    def __init__(self):
        self.saved: dict[int, dict[str, torch.Tensor]] = {}

    def on_save(self, args, state, control, model=None, **kwargs):
        self.saved[state.global_step] = weights(model)


def rename_key(checkpoint, old: str, new: str) -> None:
    path = os.path.join(checkpoint, "model.safetensors")
    state = load_file(path)
    state[new] = state.pop(old)
    save_file(state, path, metadata={"format": "pt"})


# -- resume -----------------------------------------------------------------------------------------


def test_vit_checkpoint_names_differ_from_its_module_names(tmp_path):
    """The premise of the tests below: a plain load_state_dict of this checkpoint matches nothing."""
    model = hf_vit()
    model.save_pretrained(tmp_path)
    on_disk = set(read_state_dict(str(tmp_path)))
    assert "vit.encoder.layer.0.attention.attention.query.weight" in on_disk
    assert "vit.encoder.layer.0.attention.attention.query.weight" not in model.state_dict()
    assert on_disk != set(model.state_dict())


def test_vit_resume_is_bit_identical(tmp_path, digits_dataset):
    def trainer(name):
        return MixupTrainer(model=hf_vit(), args=make_args(tmp_path, name), train_dataset=digits_dataset)

    full = trainer("full")
    full.train()
    resumed = trainer("resumed")
    assert any(not torch.equal(a, b) for a, b in zip(full.model.parameters(), resumed.model.parameters()))
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-4"))
    assert resumed.state.global_step == 8
    assert_same_weights(weights(full.model), weights(resumed.model))


def test_resume_from_a_sharded_checkpoint_is_bit_identical(tmp_path, digits_dataset):
    """A checkpoint with only `model.safetensors.index.json` and its shards (what save_pretrained writes for a
    large model) holds the full weights: resuming loads them through MixupTrainer's exact loading."""
    def trainer(name):
        return MixupTrainer(model=hf_vit(), args=make_args(tmp_path, name), train_dataset=digits_dataset)

    full = trainer("full")
    full.train()
    checkpoint = tmp_path / "full" / "checkpoint-4"
    at_step_4 = hf_vit()
    load_checkpoint_weights(at_step_4, str(checkpoint))
    (checkpoint / "model.safetensors").unlink()
    at_step_4.save_pretrained(checkpoint, max_shard_size="20KB")
    assert not (checkpoint / "model.safetensors").exists()
    assert (checkpoint / "model.safetensors.index.json").is_file()
    assert len(list(checkpoint.glob("model-*.safetensors"))) > 1
    assert has_full_weights(str(checkpoint))

    resumed = trainer("resumed")
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 8
    assert_same_weights(weights(full.model), weights(resumed.model))


def test_resume_from_last_checkpoint_of_the_output_dir(tmp_path, digits_dataset):
    """`resume_from_checkpoint=True`: the last checkpoint of output_dir, mixing state included."""
    full = MixupTrainer(model=hf_vit(), args=make_args(tmp_path, "run"), train_dataset=digits_dataset)
    full.train()
    expected = weights(full.model)
    shutil.rmtree(tmp_path / "run" / "checkpoint-8")  # checkpoint-4 is now the last one
    resumed = MixupTrainer(model=hf_vit(), args=make_args(tmp_path, "run"), train_dataset=digits_dataset)
    resumed.train(resume_from_checkpoint=True)
    assert_same_weights(expected, weights(resumed.model))


def test_load_best_model_at_end_restores_the_best_checkpoint_exactly(tmp_path, digits_dataset):
    scores = iter([1.0, 0.0])  # the first evaluation (step 4) is the best one

    def compute_metrics(prediction):
        return {"score": next(scores)}

    saved = WeightsAtSave()
    args = make_args(
        tmp_path, "best", eval_strategy="steps", eval_steps=4, load_best_model_at_end=True,
        metric_for_best_model="score", greater_is_better=True, per_device_eval_batch_size=64,
    )
    trainer = MixupTrainer(
        model=hf_vit(), args=args, train_dataset=digits_dataset, eval_dataset=digits_dataset.select(range(64)),
        compute_metrics=compute_metrics, callbacks=[saved],
    )
    trainer.train()
    assert trainer.state.best_model_checkpoint == str(tmp_path / "best" / "checkpoint-4")
    assert sorted(saved.saved) == [4, 8]
    assert any(not torch.equal(saved.saved[4][k], saved.saved[8][k]) for k in saved.saved[4])
    assert_same_weights(saved.saved[4], weights(trainer.model))


# -- checkpoints that do not fit --------------------------------------------------------------------


def test_resume_from_a_checkpoint_with_a_renamed_key_raises(tmp_path, digits_dataset):
    full = MixupTrainer(model=hf_vit(), args=make_args(tmp_path, "full", max_steps=4), train_dataset=digits_dataset)
    full.train()
    checkpoint = str(tmp_path / "full" / "checkpoint-4")
    rename_key(checkpoint, "classifier.weight", "classifier.kernel")
    resumed = MixupTrainer(model=hf_vit(), args=make_args(tmp_path, "resumed", max_steps=4), train_dataset=digits_dataset)
    with pytest.raises(ValueError, match=r"missing from the checkpoint \(1\): classifier\.weight") as error:
        resumed.train(resume_from_checkpoint=checkpoint)
    assert "unexpected in the checkpoint (1): classifier.kernel" in str(error.value)
    assert resumed.state.global_step == 0  # not one step trained


def test_a_renamed_converted_key_raises_too(tmp_path):
    """A key that goes through the weight-name conversion, renamed: still missing after conversion."""
    model = hf_vit()
    model.save_pretrained(tmp_path)
    rename_key(str(tmp_path), "vit.encoder.layer.0.attention.attention.query.weight",
               "vit.encoder.layer.0.attention.attention.query_renamed.weight")
    with pytest.raises(ValueError, match=r"vit\.layers\.0\.attention\.q_proj\.weight") as error:
        load_checkpoint_weights(hf_vit(), str(tmp_path))
    assert "query_renamed" in str(error.value)


def test_a_checkpoint_of_another_shape_raises(tmp_path):
    hf_vit(num_labels=10).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"another shape \(2\): classifier\.bias \(checkpoint \(10,\), model \(3,\)\)"):
        load_checkpoint_weights(hf_vit(num_labels=3), str(tmp_path))


def test_a_folder_without_weights_raises(tmp_path):
    with pytest.raises(ValueError, match="no model weights"):
        load_checkpoint_weights(hf_vit(), str(tmp_path))


def test_load_best_model_with_a_renamed_key_raises(tmp_path, digits_dataset):
    trainer = MixupTrainer(model=hf_vit(), args=make_args(tmp_path, "run", max_steps=4), train_dataset=digits_dataset)
    trainer.train()
    checkpoint = str(tmp_path / "run" / "checkpoint-4")
    rename_key(checkpoint, "classifier.bias", "classifier.offset")
    trainer.state.best_model_checkpoint = checkpoint
    with pytest.raises(ValueError, match=r"classifier\.bias.*classifier\.offset"):
        trainer._load_best_model()


# -- the loader on its own --------------------------------------------------------------------------


def _tiny_models():
    import transformers as T

    yield "vit", hf_vit, "converted"
    yield "deit", lambda: T.DeiTForImageClassification(T.DeiTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=8, patch_size=4,
        num_labels=10)), "converted"
    yield "swin", lambda: T.SwinForImageClassification(T.SwinConfig(
        image_size=8, patch_size=2, embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=2, num_labels=10)), "converted"
    yield "ast", lambda: T.ASTForAudioClassification(T.ASTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=16,
        num_mel_bins=16, patch_size=4, frequency_stride=4, time_stride=4, num_labels=10)), "converted"
    yield "beit", lambda: T.BeitForImageClassification(T.BeitConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=8, patch_size=4,
        num_labels=10)), "converted"
    yield "wav2vec2", lambda: T.Wav2Vec2ForSequenceClassification(T.Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
        conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2,
        num_labels=10, classifier_proj_size=8)), "direct"
    yield "timm-resnet", tiny_resnet, "direct"
    yield "timm-vit", tiny_vit, "direct"


@pytest.mark.parametrize("build, route", [m[1:] for m in _tiny_models()], ids=[m[0] for m in _tiny_models()])
def test_saved_weights_load_back_bit_for_bit(tmp_path, build, route):
    model = build()
    model.save_pretrained(tmp_path)
    expected = weights(model)
    torch.manual_seed(123)
    other = build()
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(torch.randn_like(parameter))
    assert load_checkpoint_weights(other, str(tmp_path)) == route
    assert_same_weights(expected, weights(other))


def test_sharded_checkpoints_load(tmp_path):
    model = hf_vit()
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    other = hf_vit()
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.zero_()
    assert load_checkpoint_weights(other, str(tmp_path)) == "converted"
    assert_same_weights(weights(model), weights(other))


def test_matching_names_take_the_plain_load(tmp_path, monkeypatch):
    model = tiny_resnet()
    model.save_pretrained(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("from_pretrained called for a checkpoint whose names match")

    monkeypatch.setattr(type(model), "from_pretrained", refuse)
    other = tiny_resnet()
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    assert load_checkpoint_weights(other, str(tmp_path)) == "direct"
    assert_same_weights(weights(model), weights(other))


class TiedHead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Linear(4, 4, bias=False)
        self.head = torch.nn.Linear(4, 4, bias=False)
        self.head.weight = self.embed.weight


def test_tied_weights_may_be_saved_once(tmp_path):
    torch.manual_seed(0)
    model = TiedHead()
    save_file({"embed.weight": model.embed.weight.detach().clone()}, str(tmp_path / "model.safetensors"))
    other = TiedHead()
    assert load_checkpoint_weights(other, str(tmp_path)) == "direct"
    assert torch.equal(other.head.weight, model.embed.weight) and other.head.weight is other.embed.weight


def test_a_plain_module_with_other_names_raises(tmp_path):
    save_file({"embedding.weight": torch.zeros(4, 4)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"embed\.weight.*embedding\.weight"):
        load_checkpoint_weights(TiedHead(), str(tmp_path))


# -- coupling to transformers' private hooks --------------------------------------------------------

# Private Trainer methods MixupTrainer overrides, with the parameter names of transformers 5.24.
PINNED_PRIVATE_HOOKS = {
    "_set_signature_columns_if_needed": ["self"],
    "_get_num_items_in_batch": ["self", "batch_samples", "device"],
    "_get_grad_norm": ["self", "model", "grad_norm"],
    "_get_collator_with_removed_columns": ["self", "data_collator", "description"],
    "_load_from_checkpoint": ["self", "resume_from_checkpoint", "model"],
    "_load_best_model": ["self"],
    "_save_checkpoint": ["self", "model", "trial"],
    "_get_output_dir": ["self", "trial"],
}


def test_every_private_hook_override_is_pinned():
    overridden = {
        name for name, value in vars(MixupTrainer).items()
        if name.startswith("_") and not name.startswith("__") and callable(value) and hasattr(Trainer, name)
    }
    assert overridden == set(PINNED_PRIVATE_HOOKS), (
        "MixupTrainer overrides other private transformers.Trainer methods than the pinned ones: add them to "
        "PINNED_PRIVATE_HOOKS (or drop the override)"
    )


@pytest.mark.parametrize("name", sorted(PINNED_PRIVATE_HOOKS))
def test_private_hooks_keep_their_signatures(name):
    assert hasattr(Trainer, name), f"transformers.Trainer no longer has {name}: MixupTrainer's override is dead code"
    upstream = list(inspect.signature(getattr(Trainer, name)).parameters)
    ours = list(inspect.signature(getattr(MixupTrainer, name)).parameters)
    assert upstream == PINNED_PRIVATE_HOOKS[name], f"transformers.Trainer.{name} changed its parameters: {upstream}"
    assert ours == upstream


def test_public_hooks_keep_their_signatures():
    """The public methods overridden in place of private ones, and where transformers puts checkpoints."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    assert PREFIX_CHECKPOINT_DIR == "checkpoint"
    for name in ("get_eval_dataloader", "get_test_dataloader"):
        upstream = list(inspect.signature(getattr(Trainer, name)).parameters)
        assert list(inspect.signature(getattr(MixupTrainer, name)).parameters) == upstream, (name, upstream)
    upstream = list(inspect.signature(Trainer.train).parameters)
    assert upstream[:2] == ["self", "resume_from_checkpoint"], upstream
