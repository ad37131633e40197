"""Nearest-neighbour partners (`mixup_partner="knn"`): the neighbour search, the partner draw, and training
through `MixupTrainer` with partners fetched from the dataset (cache, loss, epochs, resume)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_same_weights, mixup_args, tiny_resnet, weights

from hf_mixup import MixupArguments, MixupTrainer
from hf_mixup.neighbours import PartnerDataset, nearest_neighbours


@pytest.fixture(autouse=True)
def knn_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_MIXUP_CACHE", str(tmp_path / "knn-cache"))
    return tmp_path / "knn-cache"


def brute_force(features: torch.Tensor, k: int) -> torch.Tensor:
    flat = features.reshape(len(features), -1).double()
    distances = torch.cdist(flat, flat)
    distances.fill_diagonal_(float("inf"))
    return distances.topk(k, largest=False).indices


# -- the search -------------------------------------------------------------------------------------


def test_neighbours_on_a_line_are_the_nearest_points():
    points = torch.tensor([0.0, 1.0, 3.0, 10.0, 11.5, 21.0]).view(-1, 1)
    assert nearest_neighbours(points, 2).tolist() == [[1, 2], [0, 2], [1, 0], [4, 2], [3, 2], [4, 3]]
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    assert nearest_neighbours(points, 1, labels=labels, scope="same_class").view(-1).tolist() == [2, 3, 0, 1, 2, 3]


def test_blocked_search_equals_brute_force_on_digits(digits_arrays):
    pixels, _ = digits_arrays
    features = pixels[:300]
    assert torch.equal(nearest_neighbours(features, 5, block_size=37), brute_force(features, 5))


@pytest.mark.parametrize(
    "k, kwargs, match",
    [(0, {}, "mixup_knn_k"), (6, {}, "at most 5"), (2, {"scope": "near"}, "mixup_knn_scope"),
     (3, {"scope": "same_class", "labels": torch.tensor([0, 0, 0, 1, 1, 1])}, "class 0 has only 3")],
)
def test_bad_searches_say_what_to_change(k, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nearest_neighbours(torch.arange(6.0).view(-1, 1), k, **kwargs)


# -- the partner draw -------------------------------------------------------------------------------


def test_partners_are_drawn_from_the_neighbours_anew_each_epoch():
    data = [{"x": torch.tensor([float(i)]), "label": i % 2} for i in range(50)]
    neighbours = nearest_neighbours(torch.stack([d["x"] for d in data]), 4)
    partners = PartnerDataset(data, neighbours, seed=7)
    by_epoch = []
    for epoch in range(3):
        partners.set_epoch(epoch)
        drawn = [partners[i]["partner_index"] for i in range(50)]
        assert all(j in neighbours[i].tolist() for i, j in enumerate(drawn))
        assert [partners[i]["partner_index"] for i in range(50)] == drawn  # a function of (seed, epoch, index)
        example = partners[3]
        assert torch.equal(example["partner_x"], data[example["partner_index"]]["x"]) and torch.equal(example["x"], data[3]["x"])
        by_epoch.append(drawn)
    assert by_epoch[0] != by_epoch[1] != by_epoch[2]
    assert len({j for drawn in by_epoch for j in drawn[:10]}) > 10  # all four neighbours get used


# -- training ---------------------------------------------------------------------------------------


class Recording(MixupTrainer):
    """Keeps each training batch's partner indices and labels."""

    def compute_loss(self, model, inputs, *args, **kwargs):
        if model.training and "partner_index" in inputs:
            self.seen.append((inputs["partner_index"].clone(), inputs["labels"].clone(), inputs["partner_label"].clone()))
        return super().compute_loss(model, inputs, *args, **kwargs)


def knn_args(tmp_path, name, **kwargs):
    settings = dict(mixup_partner="knn", mixup_knn_k=3, max_steps=6, per_device_train_batch_size=16, optim="sgd",
                    learning_rate=0.05, lr_scheduler_type="constant", seed=1, eval_strategy="no")
    settings.update(kwargs)
    return mixup_args(tmp_path, name, **settings)


@pytest.mark.parametrize("scope", ["all", "same_class"])
def test_training_partners_are_among_the_k_nearest(tmp_path, digits_dataset, knn_cache, scope):
    train = digits_dataset.select(range(96))
    trainer = Recording(model=tiny_resnet(), args=knn_args(tmp_path, scope, mixup_knn_scope=scope, num_train_epochs=2,
                                                              max_steps=-1), train_dataset=train)
    trainer.seen = []
    assert isinstance(trainer.train_dataset, PartnerDataset)
    pixels, labels = train[:]["pixel_values"], train[:]["label"]
    if scope == "all":
        expected = brute_force(pixels, 3)
    else:
        expected = torch.empty(96, 3, dtype=torch.long)
        for c in labels.unique():
            members = torch.nonzero(labels == c).squeeze(1)
            expected[members] = members[brute_force(pixels[members], 3)]
    assert torch.equal(trainer.train_dataset.neighbours, expected)
    trainer.train()
    assert len(trainer.seen) == 12  # 2 epochs of 6 batches
    for partner_index, _, partner_y in trainer.seen:
        assert torch.equal(labels[partner_index], partner_y)
    drawn = torch.cat([p for p, _, _ in trainer.seen])
    assert all(int(j) in expected.view(-1).tolist() for j in drawn)
    if scope == "same_class":
        assert all(torch.equal(y, py) for _, y, py in trainer.seen)
    assert len(list(knn_cache.glob("*.pt"))) == 1


def test_each_example_meets_only_its_own_neighbours(tmp_path, digits_dataset):
    """The partner of example i (identified by its pixels) is one of i's k nearest."""
    train = digits_dataset.select(range(64))
    pixels = train[:]["pixel_values"]
    expected = brute_force(pixels, 3)
    seen = []

    class ByExample(MixupTrainer):
        def compute_loss(self, model, inputs, *args, **kwargs):
            if model.training:
                seen.append((inputs["pixel_values"].clone(), inputs["partner_index"].clone()))
            return super().compute_loss(model, inputs, *args, **kwargs)

    ByExample(model=tiny_resnet(), args=knn_args(tmp_path, "by-example", max_steps=4), train_dataset=train).train()
    for batch, partners in seen:
        for x, j in zip(batch, partners):
            i = int(torch.nonzero((pixels == x).flatten(1).all(1)).view(-1)[0])
            assert int(j) in expected[i].tolist()


def test_the_loss_mixes_with_the_dataset_partner(tmp_path, digits_dataset):
    """x = lam x_i + (1 - lam) x_j with x_j from the dataset, loss lam CE(y_i) + (1 - lam) CE(y_j)."""
    train = digits_dataset.select(range(32))
    model = tiny_resnet().train()
    trainer = MixupTrainer(model=model, args=knn_args(tmp_path, "loss"), train_dataset=train)
    examples = [trainer.train_dataset[i] for i in range(8)]
    batch = {
        "pixel_values": torch.stack([e["pixel_values"] for e in examples]),
        "labels": torch.stack([e["label"] for e in examples]),
        "partner_pixel_values": torch.stack([e["partner_pixel_values"] for e in examples]),
        "partner_labels": torch.stack([e["partner_label"] for e in examples]),
    }
    generator_state = trainer.mixer.generator.get_state()
    loss = trainer.compute_loss(model, batch)
    trainer.mixer.generator.set_state(generator_state)
    lam = trainer.mixer.draw(8).lam
    w = lam.view(-1, 1, 1, 1)
    logits = model(pixel_values=w * batch["pixel_values"] + (1 - w) * batch["partner_pixel_values"]).logits
    expected = (lam * F.cross_entropy(logits, batch["labels"], reduction="none")
                + (1 - lam) * F.cross_entropy(logits, batch["partner_labels"], reduction="none")).mean()
    torch.testing.assert_close(loss, expected)


def test_knn_resume_is_bit_identical(tmp_path, digits_dataset):
    train = digits_dataset.select(range(96))
    settings = dict(max_steps=8, save_strategy="steps", save_steps=4, num_train_epochs=2)

    def trainer(name):
        return MixupTrainer(model=tiny_resnet(), args=knn_args(tmp_path, name, **settings), train_dataset=train)

    full = trainer("full")
    full.train()
    resumed = trainer("resumed")
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-4"))
    assert_same_weights(weights(full.model), weights(resumed.model))


@pytest.mark.parametrize(
    "settings_, match",
    [(dict(mixup_knn_k=0), "mixup_knn_k"), (dict(mixup_knn_scope="near"), "mixup_knn_scope"),
     (dict(mixup_layer=2), "mixup_layer=0"), (dict(cutmix_alpha=1.0), "cutmix_alpha=0"),
     (dict(mixup_mode="pair"), "not pair")],
)
def test_bad_knn_settings_name_their_field(tmp_path, settings_, match):
    with pytest.raises(ValueError, match=match):
        MixupArguments(output_dir=str(tmp_path), report_to="none", mixup_partner="knn", **settings_)


def test_k_larger_than_the_dataset_is_refused(tmp_path, digits_dataset):
    with pytest.raises(ValueError, match="at most 9"):
        MixupTrainer(model=tiny_resnet(), args=knn_args(tmp_path, "big", mixup_knn_k=10), train_dataset=digits_dataset.select(range(10)))


def test_workers_fetch_the_same_partners_as_the_main_process(tmp_path, digits_dataset):
    """The partner draw is a function of (seed, epoch, index): loading in two workers trains the same
    weights as loading in the main process, over two epochs."""
    train = digits_dataset.select(range(64))
    runs = {}
    for workers in (0, 2):
        args = knn_args(tmp_path, f"w{workers}", max_steps=-1, num_train_epochs=2, dataloader_num_workers=workers)
        trainer = MixupTrainer(model=tiny_resnet(), args=args, train_dataset=train)
        trainer.train()
        runs[workers] = weights(trainer.model)
    assert_same_weights(runs[0], runs[2])


def test_kept_columns_stay_the_same_across_loaders(tmp_path, digits_dataset):
    """With remove_unused_columns (the Trainer's default), building loaders again does not grow the list of
    kept columns (partner copies of partner copies)."""
    args = knn_args(tmp_path, "columns", remove_unused_columns=True, eval_strategy="no")
    trainer = MixupTrainer(model=tiny_resnet(), args=args, train_dataset=digits_dataset.select(range(32)),
                           eval_dataset=digits_dataset.select(range(16)))
    trainer.get_eval_dataloader()
    kept = list(trainer._signature_columns)
    for _ in range(3):
        trainer.get_eval_dataloader()
        trainer.get_train_dataloader()
    assert trainer._signature_columns == kept
    assert "partner_pixel_values" in kept and not any(k.startswith("partner_partner_") for k in kept)


def test_a_training_set_given_later_gets_its_partners(tmp_path, digits_dataset):
    trainer = MixupTrainer(model=tiny_resnet(), args=knn_args(tmp_path, "later"))
    trainer.train_dataset = digits_dataset.select(range(32))
    batch = next(iter(trainer.get_train_dataloader()))
    assert isinstance(trainer.train_dataset, PartnerDataset) and "partner_pixel_values" in batch


def test_the_card_names_k_and_the_scope(tmp_path):
    from hf_mixup.hub.card import recipe_of

    recipe = recipe_of(knn_args(tmp_path, "card", mixup_knn_k=7, mixup_knn_scope="same_class"))
    assert (recipe["mixup_partner"], recipe["mixup_knn_k"], recipe["mixup_knn_scope"]) == ("knn", 7, "same_class")


def test_randomly_augmented_inputs_are_refused(tmp_path, digits_dataset):
    class Jittered(torch.utils.data.Dataset):
        def __init__(self, data):
            self.data = data

        def __len__(self):
            return len(self.data)

        def __getitem__(self, i):
            example = self.data[i]
            return {"pixel_values": example["pixel_values"] + 0.1 * torch.randn_like(example["pixel_values"]),
                    "labels": example["label"]}

    with pytest.raises(ValueError, match="random augmentation"):
        MixupTrainer(model=tiny_resnet(), args=knn_args(tmp_path, "jitter"), train_dataset=Jittered(digits_dataset.select(range(16))))
