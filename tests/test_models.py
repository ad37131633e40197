"""The CIFAR model family in timm and the transformers wrapper path (checkpoints, Auto classes, pipeline)."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from conftest import assert_scores_are_softmax

import hf_mixup  # noqa: F401  (registers the models)
from hf_mixup.models import create_timm_classifier


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name, published",
    [("preact_resnet18", 11.2e6), ("wide_resnet28_10", 36.5e6), ("densenet_bc_190", 25.6e6)],
)
def test_parameter_counts_match_the_published_ones(name, published):
    with torch.device("meta"):
        model = timm.create_model(name, num_classes=10)
    assert abs(n_params(model) - published) / published < 0.01


@pytest.mark.parametrize("name", ["preact_resnet18", "wide_resnet16_4", "densenet_bc_100"])
def test_cifar_models_take_32x32_and_any_channels(name):
    model = timm.create_model(name, num_classes=7, in_chans=1).eval()
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 7)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert model.forward_head(model.forward_features(torch.randn(2, 1, 28, 28)), pre_logits=True).shape == (
        2, model.num_features,
    )


def test_wide_resnet_variants_and_bad_depth():
    assert n_params(timm.create_model("wide_resnet28_10", depth=16, widen_factor=4)) == n_params(
        timm.create_model("wide_resnet16_4")
    )
    with pytest.raises(ValueError, match="6n"):
        timm.create_model("wide_resnet28_10", depth=20)


def test_preact_block_dropout_sits_between_the_convolutions():
    model = timm.create_model("preact_resnet18", block_drop_rate=0.3)
    block = model.layer2[0]
    assert isinstance(block.drop, torch.nn.Dropout) and block.drop.p == 0.3
    x = torch.randn(4, 3, 32, 32)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize(
    "name, p",
    [("preact_resnet18_dropout", 0.5), ("preact_resnet18_dropout70", 0.7), ("preact_resnet18_dropout80", 0.8),
     ("preact_resnet18_dropout90", 0.9)],
)
def test_preact_dropout_variants_by_name(name, p):
    """Table 2's ERM + dropout models: one dropout of probability p in every block, registered by name
    (and among the architectures whose checkpoints need `import hf_mixup`); block_drop_rate overrides p."""
    from hf_mixup.models.cifar import MODEL_NAMES

    with torch.device("meta"):
        model = timm.create_model(name, num_classes=10)
        assert n_params(model) == n_params(timm.create_model("preact_resnet18", num_classes=10))
        blocks = [block for stage in model.stages() for block in stage]
        assert len(blocks) == 8 and all(isinstance(b.drop, torch.nn.Dropout) and b.drop.p == p for b in blocks)
        other = timm.create_model(name, block_drop_rate=0.3)
    assert all(block.drop.p == 0.3 for stage in other.stages() for block in stage)
    assert name in MODEL_NAMES


def test_preact_dropout_follows_the_relu_between_the_convolutions_in_train_mode_only():
    """The block computes conv2(dropout(relu(bn2(conv1(.))))): the dropout takes the ReLU's output (never
    negative) and feeds conv2; in train mode it zeroes some of it and scales the rest by 1 / (1 - p), in
    eval mode it passes it through."""
    torch.manual_seed(0)
    model = timm.create_model("preact_resnet18_dropout70", num_classes=10, channels=(8, 16, 32, 64))
    block = model.layer2[1]
    seen = {}
    block.bn2.register_forward_hook(lambda m, i, o: seen.__setitem__("bn2", o.detach().clone()))
    block.drop.register_forward_hook(lambda m, i, o: seen.update(drop_in=i[0].detach().clone(), drop_out=o.detach().clone()))
    block.conv2.register_forward_pre_hook(lambda m, i: seen.__setitem__("conv2_in", i[0].detach().clone()))
    x = torch.randn(4, 3, 32, 32)

    model.train()
    model(x)
    assert torch.equal(seen["drop_in"], torch.relu(seen["bn2"]))
    assert torch.equal(seen["conv2_in"], seen["drop_out"])
    active = seen["drop_in"] > 0
    kept = seen["drop_out"] != 0
    assert kept[~active].sum() == 0
    assert 0.6 < 1 - kept[active].float().mean() < 0.8  # about p = 0.7 of the active units dropped
    torch.testing.assert_close(seen["drop_out"][kept], seen["drop_in"][kept] / 0.3)

    model.eval()
    model(x)
    assert torch.equal(seen["drop_in"], torch.relu(seen["bn2"]))
    assert torch.equal(seen["drop_out"], seen["drop_in"]) and torch.equal(seen["conv2_in"], seen["drop_in"])


def test_create_timm_classifier_keeps_timm_init():
    torch.manual_seed(0)
    reference = timm.create_model("preact_resnet18", num_classes=10)
    torch.manual_seed(0)
    wrapped = create_timm_classifier("preact_resnet18", 10)
    for (name, a), b in zip(reference.state_dict().items(), wrapped.timm_model.state_dict().values()):
        assert torch.equal(a, b), name
    # the trap it avoids: transformers' own init of the wrapper draws every conv from N(0, 0.02)
    from transformers import TimmWrapperForImageClassification

    plain = TimmWrapperForImageClassification(wrapped.config)
    assert abs(float(plain.timm_model.conv1.weight.detach().std()) - 0.02) < 0.003
    assert float(wrapped.timm_model.conv1.weight.detach().std()) > 0.05  # Kaiming fan_out: sqrt(2 / (64 * 9)) = 0.059


@pytest.mark.slow
def test_checkpoint_round_trip_auto_classes_and_pipeline(tmp_path):
    from PIL import Image
    from transformers import AutoModelForImageClassification, pipeline

    model = create_timm_classifier("preact_resnet18", ["a", "b", "c"], model_args={"channels": [8, 16, 32, 64]}).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(pixel_values=x).logits, loaded(pixel_values=x).logits)
    classifier = pipeline("image-classification", model=str(tmp_path))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    scores = classifier(image, top_k=3)
    with torch.no_grad():
        logits = loaded(**classifier.image_processor(images=image, return_tensors="pt")).logits[0]
    assert loaded.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert_scores_are_softmax(scores, logits, loaded.config.id2label)


@pytest.mark.parametrize(
    "name, shrink",
    [("resnet50", {"layers": [1, 1, 1, 1]}), ("resnext101_32x4d", {"layers": [1, 1, 1, 1]}),
     ("wide_resnet28_10", {"depth": 10, "widen_factor": 1})],
)
def test_any_timm_name_works_as_a_backbone(name, shrink):
    """Any timm architecture goes through the same wrapper path (shrunk here to keep the test fast)."""
    model = create_timm_classifier(name, 10, image_size=32, model_args=shrink).eval()
    assert model.config.architecture == name
    assert model(pixel_values=torch.randn(2, 3, 32, 32)).logits.shape == (2, 10)


@pytest.mark.parametrize("name", ["preact_resnet18", "wide_resnet10_2", "densenet_bc_100"])
def test_timm_conventions_features_only_pooling_and_unknown_arguments(name):
    features = timm.create_model(name, features_only=True)
    maps = features(torch.randn(2, 3, 32, 32))
    assert [m.shape[-1] for m in maps] == [32 // 2**i for i in range(len(maps))]
    model = timm.create_model(name, num_classes=5, global_pool="catavgmax")
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    model.reset_classifier(0, "")
    assert model.forward_head(model.forward_features(torch.randn(2, 3, 32, 32))).ndim == 4  # unpooled
    with pytest.raises(TypeError, match="drop_path_rate"):
        timm.create_model(name, drop_path_rate=0.1)


def test_one_channel_models_get_one_channel_normalisation():
    model = create_timm_classifier("wide_resnet10_2", 10, image_size=28, model_args={"in_chans": 1})
    assert model.config.pretrained_cfg["input_size"] == [1, 28, 28]
    assert len(model.config.pretrained_cfg["mean"]) == 1 and len(model.config.pretrained_cfg["std"]) == 1


def test_image_mlp_is_the_784_1024_1024_10_network_on_flattened_pixels():
    """`image_mlp` computes fc(relu(W2 relu(W1 x + b1) + b2)) on the flattened image, checked against the
    same arithmetic written out; `image_mlp_dropout` drops after each hidden ReLU in train mode only."""
    from hf_mixup.models.cifar import MODEL_NAMES

    torch.manual_seed(0)
    model = timm.create_model("image_mlp", num_classes=10).eval()
    assert [tuple(p.shape) for p in model.parameters()] == [(1024, 784), (1024,), (1024, 1024), (1024,), (10, 1024), (10,)]
    x = torch.randn(3, 1, 28, 28)
    l1, l2, fc = model.layer1[0], model.layer2[0], model.fc
    by_hand = fc(torch.relu(l2(torch.relu(l1(x.reshape(3, 784))))))
    torch.testing.assert_close(model(x), by_hand)
    assert {"image_mlp", "image_mlp_dropout"} <= set(MODEL_NAMES)

    dropped = timm.create_model("image_mlp_dropout", num_classes=10, hidden_sizes=(64, 32))
    assert [m.p for m in dropped.modules() if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    dropped.train()
    assert not torch.equal(dropped(x), dropped(x))
    dropped.eval()
    assert torch.equal(dropped(x), dropped(x))


def test_image_mlp_names_the_image_size_it_needs():
    model = timm.create_model("image_mlp", num_classes=10)
    with pytest.raises(ValueError, match="784 values per image.*in_chans / img_size"):
        model(torch.randn(2, 3, 32, 32))
    wider = timm.create_model("image_mlp", num_classes=4, in_chans=3, img_size=8, hidden_sizes=[16])
    assert wider(torch.randn(2, 3, 8, 8)).shape == (2, 4)


def test_image_mlp_classifier_takes_one_channel_images():
    """Built through `create_timm_classifier` without in_chans, the preprocessing follows the architecture's
    own input size (1 x 28 x 28), so the images are converted to grey and the network gets 784 values."""
    from hf_mixup.models import create_timm_classifier

    model = create_timm_classifier("image_mlp", ["a", "b"], image_size=28)
    assert model.config.pretrained_cfg["input_size"] == [1, 28, 28]
    assert len(model.config.pretrained_cfg["mean"]) == 1
    assert model(pixel_values=torch.randn(2, 1, 28, 28)).logits.shape == (2, 2)
