"""Data for hf_mixup: dataset loading (Hub ids, local files, offline sets), image transforms, audio
features, the synthetic keyword set and table preprocessing.

- `loading`: `load_any_dataset` and the registry of offline datasets (`digits`, `fashion_mnist`, UCI tables)
- `images`: training augmentations (`none`, `cifar`, `imagenet`)
- `audio`: the paper's log spectrograms (`SpectrogramFeatureExtractor`) and waveform decoding
- `speech_commands`: a synthetic `google/speech_commands`-schema set spoken by espeak-ng
- `tabular`: `TabularPreprocessor` (kept with the checkpoint) and `TensorTable`
- `text`: IMDB and Rotten Tomatoes offline (`load_imdb`, `load_rotten_tomatoes`), `train_tokenizer`,
  `small_bert_config`

The names below come from `loading`, which needs `datasets` (``pip install 'hf_mixup[train]'``); it is
imported on first access, so `import hf_mixup` (which loads `audio` and `tabular` for the Auto classes)
does not import `datasets`.
"""

from __future__ import annotations

import importlib

from .._extras import require

_LOADING_NAMES = (
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "OFFLINE_DATASETS",
    "TABULAR_DATASETS",
    "class_names",
    "find_column",
    "load_any_dataset",
    "load_digits_dataset",
    "load_fashion_mnist",
    "prepared_fashion_mnist",
    "register_offline_dataset",
    "save_dataset",
)


# From `text`: the tokenizer and model builders need no `datasets`; the loaders ask for it themselves.
_TEXT_NAMES = ("load_imdb", "load_rotten_tomatoes", "small_bert_config", "train_tokenizer")


def __getattr__(name: str):
    if name in _TEXT_NAMES:
        return getattr(importlib.import_module(".text", __name__), name)
    if name in _LOADING_NAMES:
        require("datasets", "train", "hf_mixup.data")
        return getattr(importlib.import_module(".loading", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LOADING_NAMES) + list(_TEXT_NAMES))


__all__ = list(_LOADING_NAMES) + list(_TEXT_NAMES)
