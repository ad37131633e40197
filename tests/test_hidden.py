"""Hidden-layer mixing (`mixup_layer`): the mixing points of a network, the features a mixed forward
pass feeds each of them, and MixupTrainer mixing the features entering stage k instead of the inputs."""

from __future__ import annotations

import pytest
import torch
from conftest import digits_batch, fixed_mixer, mixed_by_hand, mixup_args, tiny_preact

from hf_mixup import MixupArguments, MixupTrainer
from hf_mixup.hidden import mixing_at, mixing_points
from hf_mixup.losses import mixup_cross_entropy
from hf_mixup.mixing import MixDraw
from hf_mixup.models import create_timm_classifier

ROLLED = MixDraw(lam=torch.tensor([0.3, 0.5, 0.9, 0.0, 0.65, 0.2, 0.8, 0.45]), index=(torch.arange(8) + 3) % 8)
PAIRED = MixDraw(
    lam=torch.tensor([0.3, 0.7, 0.6, 0.3, 0.6, 0.1, 0.7, 0.1]), index=torch.tensor([3, 6, 4, 0, 2, 7, 1, 5])
)


class StageInputs:
    """Records what a module receives in each forward pass (after its pre-hooks, so mixed when mixed)."""

    def __init__(self, module):
        self.seen: list[torch.Tensor] = []
        self.handle = module.register_forward_hook(lambda m, args, out: self.seen.append(args[0].detach().clone()))


@pytest.mark.parametrize(
    "name, expected", [("preact_resnet18", 5), ("wide_resnet16_4", 4), ("densenet_bc_100", 4), ("resnet18", 5)]
)
def test_mixing_points(name, expected):
    model = create_timm_classifier(name, 10, image_size=32)
    assert len(mixing_points(model)) == expected


@pytest.mark.parametrize("layer", [1, 2, 3, 4, 5])
def test_hidden_mixing_is_the_convex_combination(layer):
    model = create_timm_classifier("preact_resnet18", 10, model_args={"channels": [8, 16, 32, 64]}).eval()
    recorder = StageInputs(mixing_points(model)[layer - 1])
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        clean_logits = model(pixel_values=x).logits
        clean = recorder.seen[-1]
        identity = MixDraw(lam=torch.ones(4), index=torch.tensor([1, 2, 3, 0]))
        with mixing_at(model, layer, identity):
            assert torch.equal(model(pixel_values=x).logits, clean_logits)  # lam 1: the unmixed batch
        draw = MixDraw(lam=torch.tensor([0.3, 0.5, 0.9, 0.0]), index=torch.tensor([1, 2, 3, 0]))
        with mixing_at(model, layer, draw):
            mixed_logits = model(pixel_values=x).logits
        torch.testing.assert_close(recorder.seen[-1], mixed_by_hand(clean, draw))
        assert not torch.allclose(mixed_logits, clean_logits)
        model(pixel_values=x)  # the hook is gone after the block
        assert torch.equal(recorder.seen[-1], clean)
    recorder.handle.remove()


def test_hidden_mixing_validation(tmp_path):
    with pytest.raises(ValueError, match="CutMix mixes inputs only"):
        MixupArguments(output_dir=str(tmp_path), mixup_layer=2, cutmix_alpha=1.0, report_to="none")
    with pytest.raises(ValueError, match="mixup_layer must be 0 \(the inputs\), \"embeddings\", a block k >= 1"):
        MixupArguments(output_dir=str(tmp_path), mixup_layer=-1, report_to="none")
    model = create_timm_classifier("wide_resnet10_2", 10)
    with pytest.raises(ValueError, match="has 3 stages"):
        MixupTrainer(model=model, args=mixup_args(tmp_path, mixup_layer=5))
    with pytest.raises(ValueError, match="mixup_layer must be 0"):
        with mixing_at(model, 5, MixDraw.identity(2)):
            pass


# -- MixupTrainer with mixup_layer = k --------------------------------------------------------------


@pytest.mark.parametrize("draw", [ROLLED, PAIRED], ids=["rolled-partners", "paired-partners"])
@pytest.mark.parametrize("layer", [1, 3, 5])
def test_trainer_mixes_the_features_entering_stage_k(tmp_path, digits_dataset, layer, draw):
    """In a training step with mixup_layer=k, the input of mixing point k is lam * h + (1 - lam) * h[index]
    where h is that input in an unmixed pass; the layers before k see the clean batch; the loss is the
    pair-form loss of the logits of that mixed pass."""
    model = tiny_preact().train()  # BatchNorm in training mode: batch statistics, the same in both passes
    trainer = MixupTrainer(model=model, args=mixup_args(tmp_path, mixup_layer=layer), mixer=fixed_mixer(draw))
    batch = digits_batch(digits_dataset, 8)
    points = mixing_points(model)
    at_k, at_first = StageInputs(points[layer - 1]), StageInputs(points[0])
    with torch.no_grad():
        clean_logits = model(pixel_values=batch["pixel_values"]).logits
    loss = trainer.compute_loss(model, batch)
    clean, mixed = at_k.seen
    torch.testing.assert_close(mixed, mixed_by_hand(clean, draw))
    assert not torch.allclose(mixed, clean)
    if layer > 1:
        torch.testing.assert_close(at_first.seen[1], at_first.seen[0])  # the inputs themselves are not mixed
    with mixing_at(model, layer, draw):
        logits = model(pixel_values=batch["pixel_values"]).logits
    y = batch["labels"]
    torch.testing.assert_close(loss, mixup_cross_entropy(logits, y, y[draw.index], draw.lam).mean())
    assert not torch.allclose(logits, clean_logits)
    assert not points[layer - 1]._forward_pre_hooks  # no mixing left behind after the step
    model.eval()  # evaluation is never mixed
    with torch.no_grad():
        model(pixel_values=batch["pixel_values"])
        trainer.compute_loss(model, batch)
    torch.testing.assert_close(at_k.seen[-1], at_k.seen[-2])


@pytest.mark.slow
@pytest.mark.parametrize("layer", [2, 5])
def test_trainer_trains_with_hidden_mixing(tmp_path, digits_dataset, layer):
    model = tiny_preact()
    args = mixup_args(tmp_path, mixup_layer=layer, max_steps=3, per_device_train_batch_size=16)
    trainer = MixupTrainer(model=model, args=args, train_dataset=digits_dataset.select(range(64)))
    recorder = StageInputs(mixing_points(model)[layer - 1])
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 3 and all("mixup_lambda" in h for h in logs)
    assert len(recorder.seen) == 3 and all(h.shape[0] == 16 for h in recorder.seen)
    assert not mixing_points(model)[layer - 1]._forward_pre_hooks
