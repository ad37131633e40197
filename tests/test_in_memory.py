"""The in-memory fast path: `InMemoryImages` serves the batches the `set_transform` path gives, and `CifarCrop`
is the paper's pad-4 crop and flip, exactly and with the right statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from hf_mixup.data.in_memory import CifarCrop, InMemoryImages, collate_batches

MEAN, STD = [0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616]


@pytest.fixture(scope="module")
def digits():
    from hf_mixup.data import load_digits_dataset

    return load_digits_dataset()["train"].select(range(64))


def test_batches_equal_the_image_processors_transform_bit_for_bit(digits):
    """The eval transform of a timm checkpoint (ToTensor then Normalize) on each PIL image, stacked, is the
    batch `__getitems__` serves: the two paths train on the same numbers."""
    from transformers import TimmWrapperImageProcessor

    cfg = {"input_size": [3, 8, 8], "mean": MEAN, "std": STD, "interpolation": "bilinear", "crop_pct": 1.0,
           "crop_mode": "center"}
    transform = TimmWrapperImageProcessor(pretrained_cfg=cfg).val_transforms
    data = InMemoryImages.from_dataset(digits, mean=MEAN, std=STD, mode="RGB", size=8)
    indices = [5, 0, 63, 17]
    batch = collate_batches(data.__getitems__(indices))
    expected = torch.stack([transform(digits[i]["image"].convert("RGB")) for i in indices])
    assert torch.equal(batch["pixel_values"], expected)
    assert batch["labels"].tolist() == [digits[i]["label"] for i in indices]
    assert torch.equal(data[17]["pixel_values"], expected[3])
    with pytest.raises(ValueError, match="the model takes 16x16"):
        InMemoryImages.from_dataset(digits, mean=MEAN, std=STD, size=16)
    with pytest.raises(ValueError, match="2 values for 3-channel"):
        InMemoryImages.from_dataset(digits, mean=[0.5, 0.5], std=STD)


def test_grey_images_keep_one_channel_and_a_list_of_examples_is_stacked(digits):
    data = InMemoryImages.from_dataset(digits, mean=[0.5], std=[0.25], mode="L")
    assert data.images.shape == (64, 1, 8, 8)
    first = np.asarray(digits[0]["image"].convert("L"), dtype=np.float32)
    assert torch.equal(data[0]["pixel_values"][0], torch.from_numpy(first).div(255).sub(0.5).div(0.25))
    stacked = collate_batches([data[0], data[1]])
    assert stacked["pixel_values"].shape == (2, 1, 8, 8) and stacked["labels"].tolist() == data.labels[:2].tolist()


def test_crop_equals_cropping_the_padded_uint8_image_then_normalising():
    """Each output is the window at the drawn offsets of the image padded with black (0), flipped where drawn,
    then normalised; the black border is -mean/std after normalisation."""
    generator = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (16, 3, 6, 6), dtype=torch.uint8, generator=generator)
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    normalised = raw.float().div(255).sub(mean).div(std)
    crop = CifarCrop(MEAN, STD, padding=4, seed=3)
    top, left, flipped = CifarCrop(MEAN, STD, padding=4, seed=3).draw(16)
    out = crop(normalised)
    padded = torch.nn.functional.pad(raw, (4, 4, 4, 4))  # black
    for i in range(16):
        window = padded[i, :, top[i]:top[i] + 6, left[i]:left[i] + 6]
        if flipped[i]:
            window = window.flip(-1)
        assert torch.equal(out[i], window.float().div(255).sub(mean).div(std)), i
    assert flipped.any() and not flipped.all() and (top != 4).any()


def test_crop_offsets_are_uniform_over_the_nine_positions_and_half_are_flipped():
    """torchvision's RandomCrop(padding=4) + RandomHorizontalFlip: offsets uniform on 0..8, flips with p 1/2."""
    top, left, flipped = CifarCrop(MEAN, STD, seed=0).draw(90_000)
    for offsets in (top, left):
        counts = torch.bincount(offsets, minlength=9).double()
        assert len(counts) == 9
        chi2 = float(((counts - 10_000) ** 2 / 10_000).sum())
        assert chi2 < 26.1  # the 0.1% point of chi-square with 8 degrees of freedom
    assert abs(float(flipped.double().mean()) - 0.5) < 0.006  # 3.6 standard deviations
    assert abs(float(torch.corrcoef(torch.stack([top, left]).double())[0, 1])) < 0.012  # drawn independently
    assert not CifarCrop(MEAN, STD, flip=False).draw(100)[2].any()


def test_crop_state_resumes_the_same_draws():
    crop = CifarCrop(MEAN, STD, seed=5)
    crop.draw(8)
    state = crop.state_dict()
    after = crop.draw(8)
    other = CifarCrop(MEAN, STD, seed=99)
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(after, other.draw(8)))


def test_augmentation_matches_torchvision_in_distribution_on_one_image():
    """The same image cropped many times: each of our outputs is one of the 81 x 2 outputs torchvision's
    RandomCrop(padding=4) + RandomHorizontalFlip can give, and all of them occur."""
    image = torch.randint(0, 256, (1, 3, 5, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    reference = v2.Compose([v2.RandomCrop(5, padding=4), v2.RandomHorizontalFlip()])
    possible = set()
    torch.manual_seed(0)
    for _ in range(3000):
        possible.add(reference(image[0]).numpy().tobytes())
    assert len(possible) == 162
    crop = CifarCrop(MEAN, STD, seed=0)
    normalised = image.float().div(255).sub(mean).div(std).expand(4000, 3, 5, 5)
    seen = set()
    for out in crop(normalised):
        raw = torch.round((out * std + mean) * 255).to(torch.uint8)
        seen.add(raw.numpy().tobytes())
    assert seen == possible


# -- through the command ------------------------------------------------------------------------------------------

def _command(out, *flags: str) -> list[str]:
    from conftest import SMALL_IMAGE_RUN

    return SMALL_IMAGE_RUN + ["--image_size", "8", "--output_dir", str(out), "--eval_strategy", "no",
                              "--logging_steps", "1", *flags]


def _weights(folder) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_fast_path_trains_the_same_weights_as_the_set_transform_path(tmp_path):
    """Augmentation off, mixup on: the same batches in the same order, so the same weights bit for bit, the same
    test accuracy and a checkpoint that loads the same way."""
    from hf_mixup.cli import train

    slow = train.main(_command(tmp_path / "slow", "--max_steps", "6", "--save_strategy", "no"))
    fast = train.main(_command(tmp_path / "fast", "--max_steps", "6", "--save_strategy", "no", "--in_memory", "true"))
    a, b = _weights(tmp_path / "slow"), _weights(tmp_path / "fast")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert fast["test_accuracy"] == slow["test_accuracy"] and fast["test_nll"] == slow["test_nll"]
    assert fast["train_loss"] == slow["train_loss"]


def test_fast_path_with_augmentation_resumes_bit_identically(tmp_path):
    """--augmentation cifar on the device: a run stopped after checkpoint-2 and resumed ends with the weights of
    an uninterrupted run (the crops' generator is in the checkpoint), and the crops changed the training."""
    from transformers import TrainerCallback

    from hf_mixup.cli import train

    flags = ("--in_memory", "true", "--augmentation", "cifar", "--save_strategy", "steps", "--save_steps", "2")
    train.main(_command(tmp_path / "straight", "--max_steps", "4", *flags))

    class StopAfterTwo(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                control.should_training_stop = True

    resumed = tmp_path / "resumed"
    model_args, data_args, args = train.parse_args(_command(resumed, "--max_steps", "4", *flags))
    trainer, _, _ = train.build_trainer(model_args, data_args, args)
    trainer.add_callback(StopAfterTwo())
    trainer.train()
    assert (resumed / "checkpoint-2" / "mixup_state.pth").is_file()
    model_args, data_args, args = train.parse_args(_command(resumed, "--max_steps", "4", *flags))
    trainer, _, _ = train.build_trainer(model_args, data_args, args)
    train.run_training(trainer, args)  # resumes checkpoint-2
    assert [h["step"] for h in trainer.state.log_history if "loss" in h][:2] == [1, 2]
    a, b = _weights(tmp_path / "straight"), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    train.main(_command(tmp_path / "uncropped", "--max_steps", "4", "--in_memory", "true", "--save_strategy", "no"))
    c = _weights(tmp_path / "uncropped")
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_fast_path_refusals_say_what_to_change(tmp_path):
    from hf_mixup.cli import train

    with pytest.raises(ValueError, match="the model takes 32x32: the in-memory path does not resize"):
        train.main(_command(tmp_path / "a", "--image_size", "32", "--in_memory", "true", "--max_steps", "1"))
    with pytest.raises(ValueError, match="imagenet augmentation .* drop --in_memory"):
        train.main(_command(tmp_path / "b", "--in_memory", "true", "--augmentation", "imagenet", "--max_steps", "1"))
