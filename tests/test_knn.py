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


def knn_batch(trainer, size: int) -> dict[str, torch.Tensor]:
    """The first ``size`` examples of the trainer's partner dataset as a training batch."""
    examples = [trainer.train_dataset[i] for i in range(size)]
    return {
        "pixel_values": torch.stack([e["pixel_values"] for e in examples]),
        "labels": torch.stack([e["label"] for e in examples]),
        "partner_pixel_values": torch.stack([e["partner_pixel_values"] for e in examples]),
        "partner_labels": torch.stack([e["partner_label"] for e in examples]),
    }


def loss_and_weights(trainer, model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The trainer's training loss on ``batch`` and the weights ``lam`` it drew (drawn again from the same state)."""
    generator_state = trainer.mixer.generator.get_state()
    loss = trainer.compute_loss(model, batch)
    trainer.mixer.generator.set_state(generator_state)
    return loss, trainer.mixer.draw(len(batch["labels"])).lam


def test_the_loss_mixes_with_the_dataset_partner(tmp_path, digits_dataset):
    """x = lam x_i + (1 - lam) x_j with x_j from the dataset, loss lam CE(y_i) + (1 - lam) CE(y_j)."""
    train = digits_dataset.select(range(32))
    model = tiny_resnet().train()
    trainer = MixupTrainer(model=model, args=knn_args(tmp_path, "loss"), train_dataset=train)
    batch = knn_batch(trainer, 8)
    loss, lam = loss_and_weights(trainer, model, batch)
    w = lam.view(-1, 1, 1, 1)
    logits = model(pixel_values=w * batch["pixel_values"] + (1 - w) * batch["partner_pixel_values"]).logits
    expected = (lam * F.cross_entropy(logits, batch["labels"], reduction="none")
                + (1 - lam) * F.cross_entropy(logits, batch["partner_labels"], reduction="none")).mean()
    torch.testing.assert_close(loss, expected)


def test_input_only_keeps_the_label_of_the_larger_weight(tmp_path, digits_dataset):
    """`mixup_targets="input_only"` with dataset partners: CE on the label of whichever of the two examples
    weighs more (its own when lam >= 0.5), unmixed."""
    train = digits_dataset.select(range(32))
    model = tiny_resnet().train()
    args = knn_args(tmp_path, "input-only", mixup_targets="input_only", mixup_mode="elem")
    trainer = MixupTrainer(model=model, args=args, train_dataset=train)
    batch = knn_batch(trainer, 16)
    loss, lam = loss_and_weights(trainer, model, batch)
    labels, partner_labels = batch["labels"], batch["partner_labels"]
    assert bool((lam > 0.5).any()) and bool((lam < 0.5).any())
    assert bool((labels != partner_labels).any())  # the two labels differ somewhere: the pick shows
    w = lam.view(-1, 1, 1, 1)
    logits = model(pixel_values=w * batch["pixel_values"] + (1 - w) * batch["partner_pixel_values"]).logits
    expected = F.cross_entropy(logits, torch.where(lam >= 0.5, labels, partner_labels))
    torch.testing.assert_close(loss, expected)


def test_input_noise_is_added_to_the_mixed_inputs(tmp_path, digits_dataset):
    """`input_noise_std` applies on the kNN path too: Gaussian noise (from the global generator) on the mixed
    inputs, before the model."""
    train = digits_dataset.select(range(32))
    model = tiny_resnet().train()
    trainer = MixupTrainer(model=model, args=knn_args(tmp_path, "noise", input_noise_std=0.5), train_dataset=train)
    batch = knn_batch(trainer, 8)
    torch.manual_seed(3)
    loss, lam = loss_and_weights(trainer, model, batch)
    w = lam.view(-1, 1, 1, 1)
    mixed = w * batch["pixel_values"] + (1 - w) * batch["partner_pixel_values"]
    torch.manual_seed(3)
    logits = model(pixel_values=mixed + 0.5 * torch.randn_like(mixed)).logits
    expected = (lam * F.cross_entropy(logits, batch["labels"], reduction="none")
                + (1 - lam) * F.cross_entropy(logits, batch["partner_labels"], reduction="none")).mean()
    torch.testing.assert_close(loss, expected)


def test_each_epoch_trains_with_the_partners_of_that_epoch(tmp_path, digits_dataset):
    """Over two epochs, example i meets the partner PartnerDataset draws for (i, epoch): the trainer moves
    the partners on at each epoch start (a new partner for some examples in the second epoch)."""
    train = digits_dataset.select(range(64))
    pixels = train[:]["pixel_values"]
    seen = []

    class ByExample(MixupTrainer):
        def compute_loss(self, model, inputs, *args, **kwargs):
            if model.training:
                seen.append((inputs["pixel_values"].clone(), inputs["partner_index"].clone()))
            return super().compute_loss(model, inputs, *args, **kwargs)

    trainer = ByExample(model=tiny_resnet(), args=knn_args(tmp_path, "epochs", max_steps=-1, num_train_epochs=2),
                        train_dataset=train)
    reference = PartnerDataset(train, trainer.train_dataset.neighbours, seed=trainer.train_dataset.seed)
    drawn = []
    for epoch in range(2):
        reference.set_epoch(epoch)
        drawn.append([reference.partner_of(i) for i in range(64)])
    assert drawn[0] != drawn[1]
    trainer.train()
    assert len(seen) == 8  # 2 epochs of 4 batches
    met = [{}, {}]
    for step, (batch, partners) in enumerate(seen):
        for x, j in zip(batch, partners):
            i = int(torch.nonzero((pixels == x).flatten(1).all(1)).view(-1)[0])
            met[step // 4][i] = int(j)
    assert [[met[epoch][i] for i in range(64)] for epoch in range(2)] == drawn


def test_the_epoch_callback_moves_the_partners_on_where_accelerate_does_not(tmp_path, digits_dataset):
    """On one process accelerate's loader passes the epoch to the dataset itself; on several it gives it to
    its batch sampler only, so there the trainer's epoch callback is what moves the partners on (also from a
    fractional epoch, as a resumed run starts)."""
    from accelerate.data_loader import prepare_data_loader

    trainer = MixupTrainer(model=tiny_resnet(), args=knn_args(tmp_path, "callback"),
                           train_dataset=digits_dataset.select(range(32)))
    partners = trainer.train_dataset
    loader = torch.utils.data.DataLoader(partners, batch_size=4, shuffle=True)
    prepare_data_loader(loader, num_processes=2, process_index=0, put_on_device=False,
                        use_seedable_sampler=True).set_epoch(1)
    assert partners.epoch == 0  # what each of two ranks gets from accelerate
    for epoch, expected in ((1.0, 1), (1.5, 1), (2.0 - 1e-12, 2)):
        trainer.state.epoch = epoch
        trainer.callback_handler.on_epoch_begin(trainer.args, trainer.state, trainer.control)
        assert partners.epoch == expected


def test_a_same_class_run_does_not_reuse_an_all_classes_cache(tmp_path, digits_dataset, knn_cache):
    """The neighbour cache is keyed by the scope (and k): a same_class run after an all-classes run on the same
    data finds neighbours of the same class only."""
    from hf_mixup.neighbours import neighbour_cache_key

    train = digits_dataset.select(range(96))
    labels = train[:]["label"]
    everywhere = MixupTrainer(model=tiny_resnet(), args=knn_args(tmp_path, "all", mixup_knn_scope="all"),
                              train_dataset=train)
    within = MixupTrainer(model=tiny_resnet(), args=knn_args(tmp_path, "sc", mixup_knn_scope="same_class"),
                          train_dataset=train)
    assert not bool((labels[everywhere.train_dataset.neighbours] == labels[:, None]).all())
    assert bool((labels[within.train_dataset.neighbours] == labels[:, None]).all())
    assert len(list(knn_cache.glob("*.pt"))) == 2
    features = train[:]["pixel_values"].flatten(1)
    keys = {neighbour_cache_key(features, labels, k, scope) for k in (3, 4) for scope in ("all", "same_class")}
    assert len(keys) == 4


@pytest.mark.parametrize("k", [1, 2, 5])
def test_every_one_of_the_k_neighbours_is_drawn_about_equally(digits_arrays, k):
    """The partner is drawn uniformly among all k neighbours: the k-th too, and k = 1 works."""
    pixels, _ = digits_arrays
    n, epochs = 200, 5
    neighbours = nearest_neighbours(pixels[:n], k)
    partners = PartnerDataset([{"x": x} for x in pixels[:n]], neighbours, seed=3)
    counts = torch.zeros(k)
    for epoch in range(epochs):
        partners.set_epoch(epoch)
        for i in range(n):
            counts[neighbours[i].tolist().index(partners.partner_of(i))] += 1
    expected = n * epochs / k
    assert bool(((counts > 0.75 * expected) & (counts < 1.25 * expected)).all()), counts.tolist()


def test_one_neighbour_is_always_the_partner(tmp_path, digits_dataset):
    train = digits_dataset.select(range(32))
    trainer = MixupTrainer(model=tiny_resnet(), args=knn_args(tmp_path, "k1", mixup_knn_k=1, max_steps=2),
                           train_dataset=train)
    nearest = brute_force(train[:]["pixel_values"], 1).view(-1).tolist()
    assert [trainer.train_dataset[i]["partner_index"] for i in range(32)] == nearest
    trainer.train()
    assert trainer.state.global_step == 2


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
