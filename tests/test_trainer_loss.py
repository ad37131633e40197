"""`MixupTrainer.compute_loss`: the exact loss of every problem type (single-label, soft labels,
multi-label, regression) mixed on the device, plain cross-entropy for ERM and evaluation, and the
model outputs and settings it accepts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import PLAIN_SGD, digits_batch, fixed_mixer, mixed_by_hand, mixup_args, tiny_resnet, tiny_vit

from hf_mixup import MixupTrainer
from hf_mixup.losses import soft_target_cross_entropy
from hf_mixup.mixing import MixDraw, Mixer, mix_inputs

# Eight examples: partners paired (0-3, 1-6, 2-5, 4-7, not a roll of the batch), a distinct weight each.
DRAW = MixDraw(
    lam=torch.tensor([0.2, 0.9, 0.35, 0.6, 0.75, 0.5, 0.1, 0.45]),
    index=torch.tensor([3, 6, 5, 0, 7, 2, 1, 4]),
)


def logits_on_mixed_inputs(model, x: torch.Tensor, draw: MixDraw) -> torch.Tensor:
    return model(pixel_values=mixed_by_hand(x, draw)).logits


# -- mixed on the device ----------------------------------------------------------------------------


def test_class_ids_give_the_pair_form_loss(tmp_path, digits_dataset):
    model = tiny_vit().train()
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path), mixer=fixed_mixer(DRAW))
    batch = digits_batch(digits_dataset)
    loss = trainer.compute_loss(model, batch)
    logits = logits_on_mixed_inputs(model, batch["pixel_values"], DRAW)
    y = batch["labels"]
    expected = (DRAW.lam * F.cross_entropy(logits, y, reduction="none")
                + (1 - DRAW.lam) * F.cross_entropy(logits, y[DRAW.index], reduction="none")).mean()
    torch.testing.assert_close(loss, expected)
    assert "labels" in batch  # the caller's batch is not consumed


@pytest.mark.parametrize("num_labels", [1, 3], ids=["one-target", "three-targets"])
def test_regression_loss_is_the_mse_against_the_mixed_targets(tmp_path, digits_dataset, num_labels):
    model = tiny_vit(num_labels=num_labels, problem_type="regression").train()
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path), mixer=fixed_mixer(DRAW))
    assert trainer.problem_type == "regression"
    x = digits_dataset[:8]["pixel_values"]
    y = torch.linspace(-3.0, 11.0, 8 * num_labels).view(8, num_labels).squeeze(1)
    loss = trainer.compute_loss(model, {"pixel_values": x, "labels": y})
    predictions = logits_on_mixed_inputs(model, x, DRAW).squeeze(1)
    expected = F.mse_loss(predictions, mixed_by_hand(y, DRAW))
    torch.testing.assert_close(loss, expected)
    assert not torch.allclose(loss, F.mse_loss(predictions, y))  # the targets are mixed, not left as they are


@pytest.mark.parametrize("dtype", [torch.float32, torch.long], ids=["float-multi-hot", "integer-multi-hot"])
def test_multi_label_loss_is_the_bce_against_the_mixed_targets(tmp_path, digits_dataset, dtype):
    model = tiny_vit(num_labels=3, problem_type="multi_label_classification").train()
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path), mixer=fixed_mixer(DRAW))
    x = digits_dataset[:8]["pixel_values"]
    y = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 1, 1], [0, 0, 0]])
    loss = trainer.compute_loss(model, {"pixel_values": x, "labels": y.to(dtype)})
    logits = logits_on_mixed_inputs(model, x, DRAW)
    expected = F.binary_cross_entropy_with_logits(logits, mixed_by_hand(y.float(), DRAW))
    torch.testing.assert_close(loss, expected)
    assert not torch.allclose(loss, F.binary_cross_entropy_with_logits(logits, y.float()))


def test_soft_labels_in_the_dataset_are_mixed_on_the_device(tmp_path, digits_dataset):
    model = tiny_vit().train()
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path, mixup_mode="elem"))
    x = digits_dataset[:8]["pixel_values"]
    soft = torch.softmax(torch.randn(8, 10, generator=torch.Generator().manual_seed(0)), -1)
    state = trainer.mixer.state_dict()
    loss = trainer.compute_loss(model, {"pixel_values": x, "labels": soft})
    replay = Mixer(mode="elem")
    replay.load_state_dict(state)
    draw = replay.draw(8)
    logits = model(pixel_values=mix_inputs(x, draw)).logits
    torch.testing.assert_close(loss, soft_target_cross_entropy(logits, mixed_by_hand(soft, draw)).mean())


# -- ERM and evaluation: plain cross-entropy --------------------------------------------------------


def test_erm_loss_is_plain_cross_entropy(tmp_path, digits_dataset):
    model = tiny_vit().train()
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path, mixup_alpha=0.0))
    batch = digits_batch(digits_dataset, 16)
    loss = trainer.compute_loss(model, batch)
    expected = F.cross_entropy(model(pixel_values=batch["pixel_values"]).logits, batch["labels"])
    torch.testing.assert_close(loss, expected)
    smoothed = MixupTrainer(model=model, args=mixup_args(tmp_path, mixup_alpha=0.0, label_smoothing_factor=0.1))
    torch.testing.assert_close(
        smoothed.compute_loss(model, batch),
        F.cross_entropy(model(pixel_values=batch["pixel_values"]).logits, batch["labels"], label_smoothing=0.1),
    )


@pytest.mark.slow
def test_an_erm_training_step_is_one_sgd_step_on_plain_cross_entropy(tmp_path, digits_dataset):
    """One optimizer step of ERM (mixup_alpha 0) on a one-batch dataset: the logged loss is torch's
    cross-entropy of the initial model, and the new weights are ``w - lr * grad`` of that loss."""
    data = digits_dataset.select(range(32))
    trainer = MixupTrainer(
        model=tiny_vit(),
        args=mixup_args(tmp_path, mixup_alpha=0.0, max_steps=1, per_device_train_batch_size=32, learning_rate=0.5,
                        **PLAIN_SGD),
        train_dataset=data,
    )
    trainer.train()
    assert not any("mixup_lambda" in h for h in trainer.state.log_history)
    reference = tiny_vit().train()
    loss = F.cross_entropy(reference(pixel_values=data[:]["pixel_values"]).logits, data[:]["label"])
    loss.backward()
    logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert logged == [pytest.approx(loss.detach().item(), abs=1e-4)]
    trained = dict(trainer.model.named_parameters())
    for name, p in reference.named_parameters():
        torch.testing.assert_close(trained[name].detach(), p.detach() - 0.5 * p.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_eval_loss_ignores_minus_100_labels(tmp_path, digits_dataset):
    model = tiny_resnet().eval()
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path))
    x = digits_dataset[:4]["pixel_values"]
    labels = torch.tensor([1, -100, 2, 3])
    loss = trainer.compute_loss(model, {"pixel_values": x, "labels": labels})
    with torch.no_grad():
        logits = model(pixel_values=x).logits
    torch.testing.assert_close(loss, F.cross_entropy(logits, labels))


# -- what compute_loss accepts ----------------------------------------------------------------------


def test_tuple_outputs_keep_their_logits_in_evaluation(tmp_path, digits_dataset):
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=10,
                          return_dict=False)
    torch.manual_seed(0)
    model = ResNetForImageClassification(config).eval()
    data = digits_dataset.select(range(64))
    metrics = MixupTrainer(model=model, args=mixup_args(tmp_path), eval_dataset=data).evaluate()
    with torch.no_grad():
        logits = model(pixel_values=data[:]["pixel_values"])[0]
    labels = data[:]["label"]
    assert metrics["eval_accuracy"] == pytest.approx(float((logits.argmax(-1) == labels).float().mean()), abs=1e-6)
    assert metrics["eval_nll"] == pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-4)


def test_models_without_labels_in_forward(tmp_path, digits_dataset):
    from transformers import PretrainedConfig, PreTrainedModel
    from transformers.modeling_outputs import ImageClassifierOutput

    class NoLabels(PreTrainedModel):
        config_class = PretrainedConfig
        main_input_name = "pixel_values"

        def __init__(self, config):
            super().__init__(config)
            self.fc = torch.nn.Linear(3 * 8 * 8, config.num_labels)
            self.post_init()

        def forward(self, pixel_values):
            return ImageClassifierOutput(logits=self.fc(pixel_values.flatten(1)))

    model = NoLabels(PretrainedConfig(num_labels=10))
    data = digits_dataset.select(range(64))
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path, max_steps=2, per_device_train_batch_size=16),
                           train_dataset=data, eval_dataset=data)
    trainer.train()
    assert all("mixup_lambda" in h for h in trainer.state.log_history if "loss" in h)
    assert "eval_accuracy" in trainer.evaluate()


def test_compute_loss_func_is_refused(tmp_path):
    with pytest.raises(ValueError, match="computes the loss itself"):
        MixupTrainer(model=tiny_resnet(), args=mixup_args(tmp_path), compute_loss_func=lambda *a, **k: 0)


def test_mixup_needs_a_class_id_for_every_training_example(tmp_path, digits_dataset):
    model = tiny_vit().train()
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path), mixer=fixed_mixer(DRAW))
    batch = digits_batch(digits_dataset)
    batch["labels"][2] = -100
    with pytest.raises(ValueError, match="-100"):
        trainer.compute_loss(model, batch)


def test_a_subclass_overrides_the_one_loss_of_every_site(tmp_path, digits_dataset):
    """`_per_example_loss(logits, targets)` is the override point: it gets the site's `Targets` (the labels, the
    partners' labels, the weights) and its `[batch]` losses are reduced by the trainer."""
    seen = []

    class Doubled(MixupTrainer):
        def _per_example_loss(self, logits, targets):
            seen.append(targets)
            return 2 * super()._per_example_loss(logits, targets)

    model = tiny_vit().train()
    batch = digits_batch(digits_dataset)
    loss = Doubled(model=model, args=mixup_args(tmp_path), mixer=fixed_mixer(DRAW)).compute_loss(model, batch)
    plain = MixupTrainer(model=model, args=mixup_args(tmp_path), mixer=fixed_mixer(DRAW)).compute_loss(model, batch)
    torch.testing.assert_close(loss, 2 * plain)
    assert torch.equal(seen[0].partner_labels, batch["labels"][DRAW.index]) and torch.equal(seen[0].lam, DRAW.lam)
