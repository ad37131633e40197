"""DataCollatorForMixup: soft labels, seeding across workers / ranks / epochs, column removal."""

from __future__ import annotations

import pytest
import torch
from conftest import mixup_args, tiny_resnet, tiny_vit

from hf_mixup import DataCollatorForMixup, MixupTrainer
from hf_mixup.collator import MIXUP_DRAW_KEY, MIXUP_LAMBDA_KEY


def features(n=6, size=4):
    return [{"pixel_values": torch.full((3, size, size), float(i)), "label": i % 3} for i in range(n)]


def test_soft_labels_and_mixed_inputs_agree():
    batch = DataCollatorForMixup(num_labels=3, mixup_mode="elem", seed=0, rank=0)(features())
    assert batch["labels"].shape == (6, 3) and batch["labels"].dtype == torch.float32
    assert torch.allclose(batch["labels"].sum(-1), torch.ones(6))
    lam = batch[MIXUP_LAMBDA_KEY]
    # input i is lam_i * i + (1 - lam_i) * j: recover j from the mixed pixel value
    values = batch["pixel_values"][:, 0, 0, 0]
    own = torch.arange(6, dtype=torch.float32)
    partner_value = torch.where(lam < 1, (values - lam * own) / (1 - lam).clamp_min(1e-6), own)
    partner = partner_value.round().long()
    expected = lam[:, None] * torch.eye(3)[own.long() % 3] + (1 - lam[:, None]) * torch.eye(3)[partner % 3]
    assert torch.allclose(batch["labels"], expected, atol=1e-4)


def test_alpha_zero_gives_one_hot_labels_and_clean_inputs():
    batch = DataCollatorForMixup(num_labels=3, mixup_alpha=0.0, seed=0, rank=0)(features())
    assert torch.equal(batch["labels"], torch.eye(3)[[0, 1, 2, 0, 1, 2]])
    assert torch.equal(batch["pixel_values"], torch.stack([f["pixel_values"] for f in features()]))


def test_ranks_and_seeds_draw_differently():
    lam = {}
    for seed, rank in [(0, 0), (0, 1), (1, 0), (0, 0)]:
        collator = DataCollatorForMixup(num_labels=3, mixup_mode="elem", seed=seed, rank=rank)
        lam.setdefault((seed, rank), []).append(collator(features())[MIXUP_LAMBDA_KEY])
    assert torch.equal(lam[(0, 0)][0], lam[(0, 0)][1])
    assert not torch.equal(lam[(0, 0)][0], lam[(0, 1)][0])
    assert not torch.equal(lam[(0, 0)][0], lam[(1, 0)][0])


def test_needs_num_labels_for_class_ids():
    with pytest.raises(ValueError, match="num_labels"):
        DataCollatorForMixup(seed=0, rank=0)(features())
    with pytest.raises(ValueError, match="mixup_mode"):
        DataCollatorForMixup(mixup_mode="diagonal")


def test_cutmix_through_the_collator():
    batch = DataCollatorForMixup(num_labels=3, mixup_alpha=0.0, cutmix_alpha=1.0, mixup_mode="elem", seed=0, rank=0)(
        features(8, 8)
    )
    values = batch["pixel_values"]
    # CutMix pastes whole pixels: every mixed pixel is some example's value
    assert torch.equal(values, values.round())
    area_share = torch.stack([(values[i] == i).float().mean() for i in range(8)])
    own_label = torch.eye(3)[torch.arange(8) % 3]
    lam = batch[MIXUP_LAMBDA_KEY]
    assert torch.allclose(area_share[lam < 1], lam[lam < 1], atol=1e-6)
    assert torch.all((batch["labels"] * own_label).sum(-1) >= lam - 1e-6)


@pytest.mark.slow
def test_workers_draw_differently_across_workers_and_epochs(tmp_path, digits_dataset):
    args = mixup_args(tmp_path, per_device_train_batch_size=32, dataloader_num_workers=2, mixup_mode="elem", seed=3)
    trainer = MixupTrainer(model=tiny_resnet(), args=args, train_dataset=digits_dataset,
                           data_collator=DataCollatorForMixup())
    loader = trainer.get_train_dataloader()
    epochs = []
    for epoch in range(2):
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        epochs.append([batch[MIXUP_LAMBDA_KEY].cpu() for batch in loader])
    draws = [lam for epoch in epochs for lam in epoch]
    assert len(draws) == 2 * 16
    distinct = {tuple(lam.tolist()) for lam in draws}
    assert len(distinct) == len(draws), "two batches got the same mixing draws"
    # batches 0 and 1 come from different workers; epoch 1 re-seeds the workers
    assert not torch.equal(epochs[0][0], epochs[1][0])


@pytest.mark.slow
def test_survives_remove_unused_columns(tmp_path, digits_dataset):
    extra = digits_dataset.with_format(None).add_column("note", ["x"] * len(digits_dataset)).with_format("torch")
    args = mixup_args(tmp_path, "a", remove_unused_columns=True, max_steps=2, per_device_train_batch_size=16)
    trainer = MixupTrainer(model=tiny_resnet(), args=args, train_dataset=extra, data_collator=DataCollatorForMixup())
    batch = next(iter(trainer.get_train_dataloader()))
    assert set(batch) == {"pixel_values", "labels", MIXUP_LAMBDA_KEY, MIXUP_DRAW_KEY}
    assert batch["labels"].shape == (16, 10)
    trainer.train()

    # A plain torch dataset of dicts goes through the Trainer's RemoveColumnsCollator wrapper.
    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            row = digits_dataset[i]
            return {"pixel_values": row["pixel_values"], "label": row["label"], "note": "dropped"}

    args = mixup_args(tmp_path, "b", remove_unused_columns=True, max_steps=2, per_device_train_batch_size=16)
    trainer = MixupTrainer(model=tiny_resnet(), args=args, train_dataset=Rows(), data_collator=DataCollatorForMixup())
    trainer.train()
    assert any("mixup_lambda" in h for h in trainer.state.log_history)


def test_from_args_takes_the_mixing_settings(tmp_path):
    args = mixup_args(tmp_path, mixup_alpha=0.4, cutmix_alpha=1.0, mixup_mode="pair", mixup_prob=0.5,
                      label_smoothing_factor=0.1, seed=7)
    collator = DataCollatorForMixup.from_args(args, num_labels=3)
    assert (collator.mixup_alpha, collator.cutmix_alpha, collator.mixup_mode, collator.mixup_prob) == (0.4, 1.0, "pair", 0.5)
    assert collator.label_smoothing == 0.1 and collator.seed == 7 and collator.num_labels == 3
    assert collator._mixer.mode == "pair" and collator._mixer.prob == 0.5


def test_integer_multi_hot_labels_become_float_targets():
    collator = DataCollatorForMixup(num_labels=3, seed=0, rank=0)
    rows = [{"pixel_values": torch.zeros(3, 2, 2), "labels": torch.tensor([1, 0, 1])} for _ in range(4)]
    batch = collator(rows)
    assert batch["labels"].dtype == torch.float32 and torch.equal(batch["labels"], torch.tensor([[1.0, 0.0, 1.0]] * 4))


def test_label_smoothing_is_for_single_label_models_only(tmp_path):
    with pytest.raises(ValueError, match="single-label"):
        MixupTrainer(model=tiny_resnet(num_labels=1), args=mixup_args(tmp_path),
                     data_collator=DataCollatorForMixup(label_smoothing=0.1))
    trainer = MixupTrainer(model=tiny_resnet(num_labels=1), args=mixup_args(tmp_path, label_smoothing_factor=0.1),
                           data_collator=DataCollatorForMixup())
    assert trainer.data_collator.label_smoothing == 0.0  # regression targets are never smoothed


def test_the_trainer_refuses_fractional_warmup_with_a_collator(tmp_path):
    with pytest.raises(ValueError, match="whole number of epochs"):
        MixupTrainer(model=tiny_resnet(), args=mixup_args(tmp_path, mixup_warmup_epochs=0.5),
                     data_collator=DataCollatorForMixup())


def transformers_vit(num_labels: int = 10):
    """transformers' own ViTForImageClassification (the issue's model): its forward takes **kwargs, so the extra
    batch keys pass and its loss, given soft labels, would train it as multi-label with BCE without any error."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    return ViTForImageClassification(ViTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=8, patch_size=4,
        num_labels=num_labels,
    ))


@pytest.mark.parametrize("build", [tiny_vit, tiny_resnet, transformers_vit], ids=["vit", "timm", "transformers-vit"])
@pytest.mark.parametrize("workers", [0, 2], ids=["main-process", "workers"])
def test_a_plain_trainer_is_stopped_before_the_first_step(tmp_path, digits_dataset, build, workers):
    """A plain transformers.Trainer would pass the soft labels to the model (multi-label BCE, problem_type
    switched for good) and mix evaluation: the collator stops it at the first batch, naming MixupTrainer.
    The timm models would fail on the unknown `mixup_lambda` key anyway; transformers' ViT would not, so it is
    the case where a missing stop trains silently as multi-label."""
    from transformers import Trainer, TrainingArguments

    model = build()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", save_strategy="no", max_steps=2,
                             per_device_train_batch_size=8, disable_tqdm=True, dataloader_num_workers=workers,
                             remove_unused_columns=False)
    trainer = Trainer(model=model, args=args, train_dataset=digits_dataset, eval_dataset=digits_dataset,
                      data_collator=DataCollatorForMixup(num_labels=10))
    with pytest.raises(ValueError, match="use hf_mixup.MixupTrainer"):
        trainer.train()
    assert model.config.problem_type is None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="use hf_mixup.MixupTrainer"):
        Trainer(model=model, args=args, eval_dataset=digits_dataset,
                data_collator=DataCollatorForMixup(num_labels=10)).evaluate()


def test_mixup_trainer_takes_the_same_collator(tmp_path, digits_dataset):
    collator = DataCollatorForMixup(num_labels=10)
    trainer = MixupTrainer(model=tiny_vit(), args=mixup_args(tmp_path, max_steps=2, per_device_train_batch_size=8),
                           train_dataset=digits_dataset, data_collator=collator)
    trainer.train()
    assert trainer.model.config.problem_type is None
    assert collator._draw_count >= 2  # and the DataLoader may have collated one more ahead


def test_a_loop_of_your_own_uses_the_documented_keys(digits_dataset):
    """The documented batch keys in a hand-written loop: inputs, soft `labels`, `mixup_lambda` (and the draw
    number), with the loss computed from the soft labels."""
    from torch.utils.data import DataLoader

    from hf_mixup import soft_target_cross_entropy

    model = tiny_vit()
    collator = DataCollatorForMixup(num_labels=10, seed=0, rank=0)
    loader = DataLoader(digits_dataset.select(range(16)), batch_size=8, collate_fn=collator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for batch in loader:
        assert set(batch) == {"pixel_values", "labels", MIXUP_LAMBDA_KEY, MIXUP_DRAW_KEY}
        soft = batch.pop("labels")
        batch.pop(MIXUP_LAMBDA_KEY), batch.pop(MIXUP_DRAW_KEY)
        loss = soft_target_cross_entropy(model(**batch).logits, soft).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert collator._draw_count == 2 and torch.isfinite(loss)
    assert model.config.problem_type is None


def test_token_ids_are_refused_with_the_on_device_sites_named():
    """The collator mixes on the CPU, before the model: token ids cannot be averaged there, and the message names
    the site that mixes their embeddings on the device."""
    features = [{"input_ids": torch.tensor([2, 7, 9, 3]), "attention_mask": torch.ones(4, dtype=torch.long), "label": i % 2}
                for i in range(4)]
    with pytest.raises(ValueError, match=r'token ids cannot be mixed: mix their embeddings on the device instead \(MixupTrainer with mixup_layer="embeddings"'):
        DataCollatorForMixup(num_labels=2, seed=0, rank=0)(features)
