"""MixupTrainer on real digits with real timm models through TimmWrapperForImageClassification."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from conftest import assert_same_weights, mixup_args, tiny_resnet, tiny_vit, weights

from hf_mixup import DataCollatorForMixup, MixupArguments, MixupTrainer
from hf_mixup.mixing import MixDraw, Mixer, mix_inputs
from hf_mixup.schedules import steps_per_epoch
from hf_mixup.trainer import MIXUP_STATE_NAME

pytestmark = pytest.mark.slow


def make_args(tmp_path, name="run", **kwargs):
    """`mixup_args` with plain SGD at a constant rate 0.05, batches of 32, no evaluation."""
    settings = dict(eval_strategy="no", per_device_train_batch_size=32, learning_rate=0.05, optim="sgd",
                    lr_scheduler_type="constant", seed=1)
    settings.update(kwargs)
    return mixup_args(tmp_path, name, **settings)


class FixedDraws(Mixer):
    """Mixing draws that do not depend on how the batch is cut: partners and weights are fixed within
    each block of 8 consecutive examples, so a batch of 32 and four batches of 8 mix identically."""

    def draw(self, batch_size, spatial_size=None):
        position = torch.arange(batch_size) % 8
        index = torch.arange(batch_size) - position + (7 - position)
        return MixDraw(lam=0.2 + 0.075 * position.float(), index=index)


def train_losses(trainer) -> list[float]:
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


# -- gradient accumulation (trap 2) -----------------------------------------------------------------


def test_gradient_accumulation_matches_the_large_batch(tmp_path, digits_dataset):
    big = MixupTrainer(
        model=tiny_vit(), args=make_args(tmp_path, "big", max_steps=4), train_dataset=digits_dataset, mixer=FixedDraws()
    )
    big.train()
    small = MixupTrainer(
        model=tiny_vit(),
        args=make_args(tmp_path, "small", max_steps=4, per_device_train_batch_size=8, gradient_accumulation_steps=4),
        train_dataset=digits_dataset,
        mixer=FixedDraws(),
    )
    small.train()
    np.testing.assert_allclose(train_losses(small), train_losses(big), atol=1e-2)
    for a, b in zip(big.model.parameters(), small.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)


class FixedDrawCollator(DataCollatorForMixup):
    def __post_init__(self):
        super().__post_init__()
        self._mixer = FixedDraws()


def test_collator_path_counts_examples_not_label_entries(tmp_path, digits_dataset):
    """Soft labels [B, C] from the collator: the loss is normalised by B examples, not B * C entries,
    so the collator path with accumulation matches on-device mixing of the large batch."""
    on_device = MixupTrainer(
        model=tiny_vit(), args=make_args(tmp_path, "dev", max_steps=3), train_dataset=digits_dataset, mixer=FixedDraws()
    )
    on_device.train()
    collated = MixupTrainer(
        model=tiny_vit(),
        args=make_args(tmp_path, "col", max_steps=3, per_device_train_batch_size=8, gradient_accumulation_steps=4),
        train_dataset=digits_dataset,
        data_collator=FixedDrawCollator(),
    )
    batch = collated.data_collator([digits_dataset[i] for i in range(8)])
    assert batch["labels"].shape == (8, 10)
    assert int(collated._get_num_items_in_batch([batch, batch], "cpu")) == 16
    collated.train()
    np.testing.assert_allclose(train_losses(collated), train_losses(on_device), atol=1e-2)


# -- labels never reach the model (trap 1) ----------------------------------------------------------


def test_soft_labels_never_switch_the_model_to_multi_label(tmp_path, digits_dataset):
    from PIL import Image
    from transformers import pipeline

    model = tiny_resnet(id2label={i: str(i) for i in range(10)}, label2id={str(i): i for i in range(10)})
    args = make_args(tmp_path, "soft", max_steps=3)
    trainer = MixupTrainer(
        model=model, args=args, train_dataset=digits_dataset, data_collator=DataCollatorForMixup(mixup_alpha=1.0)
    )
    trainer.train()
    assert model.config.problem_type is None
    trainer.save_model()
    saved = json.loads((tmp_path / "soft" / "config.json").read_text())
    assert saved.get("problem_type") is None
    classifier = pipeline("image-classification", model=str(tmp_path / "soft"))
    scores = classifier(Image.fromarray(np.zeros((8, 8, 3), np.uint8)), top_k=10)
    assert abs(sum(s["score"] for s in scores) - 1.0) < 1e-5  # softmax, not sigmoid


# -- evaluation is never mixed ----------------------------------------------------------------------


def test_evaluation_is_never_mixed(tmp_path, digits_dataset):
    model = tiny_resnet()
    model.eval()
    with torch.no_grad():
        logits = model(pixel_values=digits_dataset[:]["pixel_values"]).logits
    labels = digits_dataset[:]["label"]
    expected_accuracy = float((logits.argmax(-1) == labels).float().mean())
    expected_nll = float(torch.nn.functional.cross_entropy(logits, labels))
    for collator in (None, DataCollatorForMixup(mixup_alpha=1.0)):
        trainer = MixupTrainer(
            model=model, args=make_args(tmp_path, per_device_eval_batch_size=64), eval_dataset=digits_dataset,
            data_collator=collator,
        )
        metrics = trainer.evaluate()
        assert metrics["eval_accuracy"] == pytest.approx(expected_accuracy, abs=1e-6)
        assert metrics["eval_nll"] == pytest.approx(expected_nll, rel=1e-4)
        assert metrics["eval_loss"] == pytest.approx(expected_nll, rel=1e-4)
        assert {"eval_top5_accuracy", "eval_ece"} <= metrics.keys()


# -- determinism and resume -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, collator, accumulation",
    [("batch", False, 1), ("elem", False, 2), ("elem", True, 1), ("pair", True, 2)],
    ids=["device-batch", "device-elem-ga2", "collator-elem", "collator-pair-ga2"],
)
def test_resume_from_checkpoint_is_bit_identical(tmp_path, digits_dataset, mode, collator, accumulation):
    settings = dict(
        max_steps=6, save_strategy="steps", save_steps=3, mixup_mode=mode, cutmix_alpha=1.0,
        per_device_train_batch_size=16, gradient_accumulation_steps=accumulation,
    )

    def trainer(name):
        return MixupTrainer(
            model=tiny_resnet(), args=make_args(tmp_path, name, **settings), train_dataset=digits_dataset,
            data_collator=DataCollatorForMixup() if collator else None,
        )

    full = trainer("full")
    full.train()
    checkpoint = tmp_path / "full" / "checkpoint-3"
    assert (checkpoint / MIXUP_STATE_NAME).is_file()

    resumed = trainer("resumed")
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert_same_weights(weights(full.model), weights(resumed.model))

    # Without the saved mixing state the resumed run draws differently (the test can fail).
    (checkpoint / MIXUP_STATE_NAME).unlink()
    fresh = trainer("fresh")
    fresh.train(resume_from_checkpoint=str(checkpoint))
    assert any(not torch.equal(a, b) for a, b in zip(full.model.parameters(), fresh.model.parameters()))


def test_same_seed_same_run_other_seed_other_draws(tmp_path, digits_dataset):
    runs = []
    for seed in (1, 1, 2):
        trainer = MixupTrainer(
            model=tiny_resnet(), args=make_args(tmp_path, f"s{seed}", max_steps=3, seed=seed), train_dataset=digits_dataset
        )
        trainer.train()
        runs.append([h["mixup_lambda"] for h in trainer.state.log_history if "mixup_lambda" in h])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


# -- schedule, logging, tags ------------------------------------------------------------------------


def test_warmup_and_off_epochs(tmp_path, digits_dataset):
    args = make_args(tmp_path, num_train_epochs=3, mixup_warmup_epochs=1, mixup_off_epoch=2, per_device_train_batch_size=128)
    trainer = MixupTrainer(model=tiny_resnet(), args=args, train_dataset=digits_dataset)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 12
    mixed = ["mixup_lambda" in h for h in logs]
    # 4 steps per epoch; a log at epoch e + k/4 follows the step that ran at epoch e + (k-1)/4
    assert mixed == [False] * 4 + [True] * 4 + [False] * 4


def test_erm_is_plain_cross_entropy_and_tagged_erm(tmp_path, digits_dataset):
    trainer = MixupTrainer(
        model=tiny_resnet(), args=make_args(tmp_path, max_steps=2, mixup_alpha=0.0), train_dataset=digits_dataset
    )
    assert {"hf_mixup", "erm"} <= set(trainer.model.model_tags)
    trainer.train()
    assert not any("mixup_lambda" in h for h in trainer.state.log_history)
    mixup = MixupTrainer(model=tiny_resnet(), args=make_args(tmp_path, max_steps=1), train_dataset=digits_dataset)
    assert {"hf_mixup", "mixup"} <= set(mixup.model.model_tags)


def test_on_device_mixing_matches_the_engine(tmp_path, digits_dataset):
    """The trainer's loss on a mixed batch equals the pair-form loss computed by hand from the same draw."""
    model = tiny_vit()
    trainer = MixupTrainer(model=model, args=make_args(tmp_path, mixup_mode="elem"), train_dataset=digits_dataset)
    batch = {"pixel_values": digits_dataset[:16]["pixel_values"], "labels": digits_dataset[:16]["label"]}
    state = trainer.mixer.state_dict()
    model.train()
    loss = trainer.compute_loss(model, batch)
    replay = Mixer(mode="elem")
    replay.load_state_dict(state)
    draw = replay.draw(16)
    logits = model(pixel_values=mix_inputs(batch["pixel_values"], draw)).logits
    y = batch["labels"]
    expected = (draw.lam * torch.nn.functional.cross_entropy(logits, y, reduction="none")
                + (1 - draw.lam) * torch.nn.functional.cross_entropy(logits, y[draw.index], reduction="none")).mean()
    torch.testing.assert_close(loss, expected)
    assert "labels" in batch  # the caller's batch is not consumed


def test_label_smoothing_composes_with_mixup(tmp_path, digits_dataset):
    model = tiny_vit()
    model.train()
    batch = {"pixel_values": digits_dataset[:16]["pixel_values"], "labels": digits_dataset[:16]["label"]}
    trainer = MixupTrainer(model=model, args=make_args(tmp_path, label_smoothing_factor=0.1), mixer=FixedDraws())
    loss = trainer.compute_loss(model, batch)
    draw = FixedDraws().draw(16)
    logits = model(pixel_values=mix_inputs(batch["pixel_values"], draw)).logits
    from hf_mixup.losses import soft_target_cross_entropy
    from hf_mixup.mixing import mix_targets

    soft = mix_targets(batch["labels"], draw, num_classes=10, label_smoothing=0.1)
    torch.testing.assert_close(loss, soft_target_cross_entropy(logits, soft).mean())


def test_regression_and_multi_label_train(tmp_path, digits_arrays):
    from datasets import Dataset

    pixels, labels = digits_arrays
    regression = Dataset.from_dict({"pixel_values": pixels[:64].numpy(), "labels": labels[:64].float().numpy()})
    model = tiny_resnet(num_labels=1)
    trainer = MixupTrainer(model=model, args=make_args(tmp_path, "reg", max_steps=2), train_dataset=regression.with_format("torch"),
                           eval_dataset=regression.with_format("torch"))
    trainer.train()
    assert {"eval_rmse", "eval_mae", "eval_r2"} <= trainer.evaluate().keys()

    multi = torch.stack([labels[:64] % 2 == 0, labels[:64] > 4], 1).float()
    ml = Dataset.from_dict({"pixel_values": pixels[:64].numpy(), "labels": multi.numpy()}).with_format("torch")
    model = tiny_resnet(num_labels=2, problem_type="multi_label_classification")
    trainer = MixupTrainer(model=model, args=make_args(tmp_path, "ml", max_steps=2), train_dataset=ml, eval_dataset=ml)
    trainer.train()
    assert {"eval_bce", "eval_micro_f1"} <= trainer.evaluate().keys()


def test_trainer_refuses_plain_training_arguments(tmp_path):
    from transformers import TrainingArguments

    with pytest.raises(ValueError, match="MixupArguments"):
        MixupTrainer(model=tiny_resnet(), args=TrainingArguments(output_dir=str(tmp_path), report_to="none"))


def test_mixup_state_is_in_every_checkpoint(tmp_path, digits_dataset):
    args = make_args(tmp_path, "ck", max_steps=4, save_strategy="steps", save_steps=2)
    MixupTrainer(model=tiny_resnet(), args=args, train_dataset=digits_dataset).train()
    for step in (2, 4):
        state = torch.load(tmp_path / "ck" / f"checkpoint-{step}" / MIXUP_STATE_NAME, weights_only=True)
        assert "mixer" in state
    assert os.path.isfile(tmp_path / "ck" / "checkpoint-4" / "model.safetensors")


def test_warmup_reaches_the_collator(tmp_path, digits_dataset):
    args = make_args(tmp_path, num_train_epochs=2, mixup_warmup_epochs=1, per_device_train_batch_size=128)
    trainer = MixupTrainer(model=tiny_resnet(), args=args, train_dataset=digits_dataset,
                           data_collator=DataCollatorForMixup())
    trainer.train()
    lam = [h["mixup_lambda"] for h in trainer.state.log_history if "loss" in h]
    assert lam[:4] == [1.0] * 4  # warm-up epoch: the collator leaves batches unmixed
    assert all(v < 1.0 for v in lam[4:])


def test_step_schedule_with_warmup_from_a_start_factor(tmp_path, digits_dataset):
    # 512 examples / batch 128 = 4 steps an epoch; warm-up 4 steps from 0.25 * lr; / 10 at epochs 2 and 3
    args = make_args(tmp_path, num_train_epochs=4, per_device_train_batch_size=128, learning_rate=0.4,
                     lr_milestones=[2, 3], warmup_steps=4, warmup_start_factor=0.25)
    trainer = MixupTrainer(model=tiny_resnet(), args=args, train_dataset=digits_dataset)
    trainer.train()
    lrs = [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
    expected = [0.1, 0.175, 0.25, 0.325] + [0.4] * 4 + [0.04] * 4 + [0.004] * 4
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="lr_milestones"):
        make_args(tmp_path, lr_milestones=[100, 50])


@pytest.mark.parametrize("accumulation, expected", [(1, 4), (3, 2)])
def test_steps_per_epoch_counts_like_the_trainer(tmp_path, digits_dataset, accumulation, expected):
    # 512 examples, batch 128: 4 batches; with accumulation 3, two optimizer steps (the last one partial)
    args = make_args(tmp_path, per_device_train_batch_size=128, gradient_accumulation_steps=accumulation,
                     lr_milestones=[1])
    trainer = MixupTrainer(model=tiny_resnet(), args=args, train_dataset=digits_dataset)
    assert steps_per_epoch(trainer.train_dataset, trainer.args, trainer._train_batch_size, 100) == expected
    assert len(trainer.get_train_dataloader()) == 4


def test_skipping_gc_at_train_start_keeps_the_logged_figures(tmp_path, digits_dataset, monkeypatch):
    """Opted in, no full gc.collect when train() starts on the CPU: nothing that is logged changes, and
    nothing is replaced process-wide."""
    import gc

    import accelerate.accelerator
    import accelerate.optimizer
    from accelerate import Accelerator

    trainer = MixupTrainer(model=tiny_resnet(), args=make_args(tmp_path, max_steps=4, logging_steps=2),
                           train_dataset=digits_dataset, skip_gc_at_train_start=True)
    for module in (accelerate.accelerator, accelerate.optimizer):
        assert not hasattr(module.is_lomo_available, "cache_info")
    assert "free_memory" in vars(trainer.accelerator)  # this accelerator only
    assert vars(Accelerator)["free_memory"].__module__ == "accelerate.accelerator"
    collections = []
    monkeypatch.setattr(gc, "collect", lambda *a: collections.append(a) or 0)
    trainer.train()
    assert collections == []
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in logged] == [2, 4]
    assert all(h["grad_norm"] > 0 for h in logged)
    assert trainer.floating_point_ops({"pixel_values": torch.zeros(2, 3, 32, 32)}) == (
        6 * 2 * 3 * 32 * 32 * trainer.model.num_parameters(exclude_embeddings=True))


def test_the_unclipped_gradient_norm_is_accelerates_and_leaves_the_gradients_alone(tmp_path, digits_dataset):
    """Without clipping, the logged norm is the number `accelerator.clip_grad_norm_(parameters, inf)` gives,
    bit for bit, and the gradients stay as they are (accelerate multiplies them by exactly 1.0)."""
    from hf_mixup.speed import unclipped_grad_norm

    trainer = MixupTrainer(model=tiny_resnet(), args=make_args(tmp_path, max_grad_norm=0.0),
                           train_dataset=digits_dataset)
    model = trainer.model
    batch = next(iter(trainer.get_train_dataloader()))
    model.train()
    trainer.compute_loss(model, batch).backward()
    before = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    ours = trainer._get_grad_norm(model)
    assert torch.equal(ours, unclipped_grad_norm(trainer.accelerator, model))
    assert all(torch.equal(a, p.grad) for a, p in zip(before, (p for p in model.parameters() if p.grad is not None)))
    theirs = trainer.accelerator.clip_grad_norm_(model.parameters(), float("inf"))
    assert torch.equal(ours, theirs) and float(ours) > 0


def test_the_lean_optimizer_step_trains_the_same_weights_without_accelerates_lookups(
        tmp_path, digits_dataset, monkeypatch):
    """The prepared optimizer steps without accelerate's two `is_lomo_available()` lookups a call, only this
    trainer's optimizer changes class, and the weights are bit-identical to accelerate's own step (with
    gradient accumulation)."""
    import accelerate.optimizer
    from accelerate.optimizer import AcceleratedOptimizer

    import hf_mixup.trainer
    from hf_mixup.speed import LeanAcceleratedOptimizer

    def run(lean: bool):
        if not lean:
            monkeypatch.setattr(hf_mixup.trainer, "lean_optimizer_step", lambda optimizer: False)
        torch.manual_seed(0)
        args = make_args(tmp_path / str(lean), max_steps=4, gradient_accumulation_steps=2)
        trainer = MixupTrainer(model=tiny_resnet(), args=args, train_dataset=digits_dataset)
        lookups = []
        lookup = accelerate.optimizer.is_lomo_available
        monkeypatch.setattr(accelerate.optimizer, "is_lomo_available", lambda: lookups.append(1) or lookup())
        trainer.train()
        monkeypatch.undo()
        return trainer, lookups

    lean, lean_lookups = run(True)
    theirs, their_lookups = run(False)
    assert type(lean.optimizer) is LeanAcceleratedOptimizer and lean_lookups == []
    assert type(theirs.optimizer) is AcceleratedOptimizer and len(their_lookups) == 2 * 4
    assert vars(AcceleratedOptimizer)["step"].__module__ == "accelerate.optimizer"
    assert lean.state.global_step == theirs.state.global_step == 4
    for a, b in zip(lean.model.state_dict().values(), theirs.model.state_dict().values()):
        assert torch.equal(a, b)


def test_the_lean_optimizer_step_skips_unsynchronised_steps_as_accelerate_does():
    """Inside `accelerator.accumulate` (gradients not synchronised) neither step moves a weight; synchronised,
    both take the same step. A scaler, or another accelerate whose step was not checked, keeps accelerate's
    class."""
    from accelerate import Accelerator

    from hf_mixup.speed import LeanAcceleratedOptimizer, lean_optimizer_step

    results = []
    for lean in (True, False):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        accelerator = Accelerator(cpu=True)
        model, optimizer = accelerator.prepare(model, torch.optim.SGD(model.parameters(), lr=0.5))
        if lean:
            assert lean_optimizer_step(optimizer) and type(optimizer) is LeanAcceleratedOptimizer
        start = model.weight.detach().clone()
        model(torch.ones(4, 3)).sum().backward()
        accelerator.gradient_state._set_sync_gradients(False)
        optimizer.step()
        assert torch.equal(model.weight, start)
        accelerator.gradient_state._set_sync_gradients(True)
        optimizer.step()
        assert not torch.equal(model.weight, start)
        results.append(model.weight.detach().clone())
        accelerator.free_memory()
    assert torch.equal(*results)
    optimizer = Accelerator(cpu=True).prepare_optimizer(torch.optim.SGD(torch.nn.Linear(3, 2).parameters(), lr=1))
    optimizer.scaler = object()
    assert lean_optimizer_step(optimizer) is False and type(optimizer) is not LeanAcceleratedOptimizer
    optimizer.scaler = None
    import hf_mixup.speed

    original = hf_mixup.speed.CHECKED_STEP_SHA1
    hf_mixup.speed.CHECKED_STEP_SHA1 = "another accelerate"
    try:
        assert lean_optimizer_step(optimizer) is False and type(optimizer) is not LeanAcceleratedOptimizer
    finally:
        hf_mixup.speed.CHECKED_STEP_SHA1 = original
    assert lean_optimizer_step(optimizer) is True


def test_the_parameter_count_of_total_flos_is_taken_once_a_train_call(tmp_path, digits_dataset, monkeypatch):
    trainer = MixupTrainer(model=tiny_resnet(), args=make_args(tmp_path, max_steps=3), train_dataset=digits_dataset)
    count = trainer.model.num_parameters(exclude_embeddings=True)
    calls = []
    monkeypatch.setattr(trainer.model, "num_parameters",
                        lambda **kwargs: calls.append(kwargs) or count)
    trainer.train()
    assert calls == [{"exclude_embeddings": True}]
    pixels = next(iter(trainer.get_train_dataloader()))["pixel_values"]
    assert trainer.state.total_flos == 3 * 6 * pixels.numel() * count


def test_train_start_collects_garbage_by_default(tmp_path, digits_dataset, monkeypatch):
    import gc

    trainer = MixupTrainer(model=tiny_resnet(), args=make_args(tmp_path, max_steps=1), train_dataset=digits_dataset)
    assert "free_memory" not in vars(trainer.accelerator)
    collections = []
    collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: collections.append(a) or collect(*a))
    trainer.train()
    assert collections


def test_free_memory_without_gc_resets_what_accelerate_resets(tmp_path, digits_dataset, monkeypatch):
    """The opt-in replacement leaves the accelerator as accelerate's own free_memory does (less the
    garbage collection), so an accelerate upgrade that resets more fails here."""
    import gc

    trainer = MixupTrainer(model=tiny_resnet(), args=make_args(tmp_path, max_steps=1), train_dataset=digits_dataset,
                           skip_gc_at_train_start=True)
    trainer.train()  # the accelerator now holds the prepared model, optimizer and loader
    accelerator = trainer.accelerator
    before = dict(vars(accelerator))
    assert before["_models"] and before["_optimizers"]
    ours = accelerator.free_memory("a", "b")
    after_ours = dict(vars(accelerator))
    vars(accelerator).update(before)
    monkeypatch.setattr(gc, "collect", lambda *a: 0)
    theirs = type(accelerator).free_memory(accelerator, "a", "b")
    after_theirs = dict(vars(accelerator))
    assert ours == theirs == [None, None]
    assert after_ours.keys() == after_theirs.keys()
    changed = [k for k in after_ours if k != "free_memory" and not (after_ours[k] is after_theirs[k] or after_ours[k] == after_theirs[k])]
    assert not changed
