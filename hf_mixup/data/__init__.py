"""Data for hf_mixup: dataset loading (Hub ids, local files, offline sets), image transforms, audio
features, the synthetic keyword set and table preprocessing.

- `loading`: `load_any_dataset` and the registry of offline datasets (`digits`, `fashion_mnist`, UCI tables)
- `images`: training augmentations (`none`, `cifar`, `imagenet`)
- `audio`: the paper's log spectrograms (`SpectrogramFeatureExtractor`) and waveform decoding
- `speech_commands`: a synthetic `google/speech_commands`-schema set spoken by espeak-ng
- `tabular`: `TabularPreprocessor` (kept with the checkpoint) and `TensorTable`
"""

from .loading import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    OFFLINE_DATASETS,
    TABULAR_DATASETS,
    class_names,
    find_column,
    load_any_dataset,
    load_digits_dataset,
    load_fashion_mnist,
    prepared_fashion_mnist,
    register_offline_dataset,
    save_dataset,
)

__all__ = [
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
]
