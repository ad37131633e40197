"""Regressions for bugs found in review: each test failed before its fix."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_resnet, tiny_vit

from hf_mixup import DataCollatorForMixup, MixupArguments, MixupTrainer
from hf_mixup.losses import soft_target_cross_entropy
from hf_mixup.mixing import MixDraw, Mixer, mix_inputs, mix_targets


def args(tmp_path, **kwargs):
    base = dict(output_dir=str(tmp_path), report_to="none", save_strategy="no", disable_tqdm=True)
    base.update(kwargs)
    return MixupArguments(**base)


def test_soft_labels_in_the_dataset_are_mixed_on_the_device(tmp_path, digits_dataset):
    model = tiny_vit()
    model.train()
    trainer = MixupTrainer(model=model, args=args(tmp_path, mixup_mode="elem"))
    x = digits_dataset[:8]["pixel_values"]
    soft = torch.softmax(torch.randn(8, 10, generator=torch.Generator().manual_seed(0)), -1)
    state = trainer.mixer.state_dict()
    loss = trainer.compute_loss(model, {"pixel_values": x, "labels": soft})
    replay = Mixer(mode="elem")
    replay.load_state_dict(state)
    draw = replay.draw(8)
    logits = model(pixel_values=mix_inputs(x, draw)).logits
    torch.testing.assert_close(loss, soft_target_cross_entropy(logits, mix_targets(soft, draw)).mean())


def test_tuple_outputs_keep_their_logits_in_evaluation(tmp_path, digits_dataset):
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=10,
                          return_dict=False)
    model = ResNetForImageClassification(config)
    metrics = MixupTrainer(model=model, args=args(tmp_path), eval_dataset=digits_dataset).evaluate()
    assert "eval_accuracy" in metrics and "eval_nll" in metrics


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
    trainer = MixupTrainer(model=model, args=args(tmp_path, max_steps=2, per_device_train_batch_size=16),
                           train_dataset=digits_dataset, eval_dataset=digits_dataset)
    trainer.train()
    assert "eval_accuracy" in trainer.evaluate()


def test_compute_loss_func_is_refused(tmp_path):
    with pytest.raises(ValueError, match="computes the loss itself"):
        MixupTrainer(model=tiny_resnet(), args=args(tmp_path), compute_loss_func=lambda *a, **k: 0)


def test_collator_refuses_fractional_warmup(tmp_path):
    with pytest.raises(ValueError, match="whole number of epochs"):
        MixupTrainer(model=tiny_resnet(), args=args(tmp_path, mixup_warmup_epochs=0.5),
                     data_collator=DataCollatorForMixup())


def test_collator_integer_multi_hot_and_no_smoothing_of_regression(tmp_path):
    collator = DataCollatorForMixup(num_labels=3, seed=0, rank=0)
    features = [{"pixel_values": torch.zeros(3, 2, 2), "labels": torch.tensor([1, 0, 1])} for _ in range(4)]
    batch = collator(features)
    assert batch["labels"].dtype == torch.float32 and torch.equal(batch["labels"], torch.tensor([[1.0, 0.0, 1.0]] * 4))
    with pytest.raises(ValueError, match="single-label"):
        MixupTrainer(model=tiny_resnet(num_labels=1), args=args(tmp_path),
                     data_collator=DataCollatorForMixup(label_smoothing=0.1))
    trainer = MixupTrainer(model=tiny_resnet(num_labels=1), args=args(tmp_path, label_smoothing_factor=0.1),
                           data_collator=DataCollatorForMixup())
    assert trainer.data_collator.label_smoothing == 0.0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_per_example_weights_are_not_rounded(dtype):
    x = torch.tensor([[1.0], [0.0]]).to(dtype)
    draw = MixDraw(lam=torch.tensor([0.2, 0.9]), index=torch.tensor([1, 0]))
    out = mix_inputs(x, draw).float()
    torch.testing.assert_close(out, torch.tensor([[0.2], [0.1]]), atol=2e-3, rtol=0)


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_no_example_is_its_own_partner(mode):
    mixer = Mixer(mode=mode, seed=0)
    for batch_size in (2, 3, 7, 64):
        for _ in range(20):
            index = mixer.draw(batch_size).index
            assert not bool((index == torch.arange(batch_size)).any())
            assert torch.equal(index.sort().values, torch.arange(batch_size))


def test_eval_loss_ignores_minus_100_labels(tmp_path, digits_dataset):
    model = tiny_resnet().eval()
    trainer = MixupTrainer(model=model, args=args(tmp_path))
    x = digits_dataset[:4]["pixel_values"]
    labels = torch.tensor([1, -100, 2, 3])
    loss = trainer.compute_loss(model, {"pixel_values": x, "labels": labels})
    with torch.no_grad():
        logits = model(pixel_values=x).logits
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, labels))


def test_push_to_hub_card_keeps_the_run_figures(tmp_path, digits_dataset):
    from huggingface_hub import ModelCard

    trainer = MixupTrainer(model=tiny_resnet(), args=args(tmp_path))
    trainer.create_model_card(dataset_name="digits", metrics={"accuracy": 0.75}, eval_split="validation")
    trainer.create_model_card(model_name="run")  # what Trainer.push_to_hub does
    card = ModelCard.load(tmp_path / "README.md")
    result = card.data.eval_results[0]
    assert result.dataset_name == "digits" and result.dataset_split == "validation" and result.metric_value == 0.75
