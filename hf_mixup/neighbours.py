"""Nearest-neighbour partners (``mixup_partner="knn"``): the paper's "KNN" ablation (Table 5), where each
example is mixed with one of its k nearest training examples rather than with a random one.

- :func:`nearest_neighbours` finds the ``k`` nearest examples of every example (L2 distance on flattened
  inputs, itself excluded), over all examples (the paper's "AC") or within its class ("SC", SMOTE-like),
  in blocks of rows so that memory stays bounded;
- :class:`PartnerDataset` wraps a training set so that each example comes with a partner drawn uniformly
  from its neighbours, under ``partner_<key>`` keys. The draw is a function of (seed, epoch, index) alone,
  so it is the same in the main process and in DataLoader workers, on every rank, and after a resume;
- :func:`knn_partner_dataset` builds that dataset for a `MixupTrainer`: it gathers the model inputs as the
  training loader collates them (:func:`knn_inputs`) and finds the neighbours once, cached on disk
  (:func:`cached_neighbours`, under :func:`knn_cache_dir`).

Torch and the engine only (huggingface_hub for the default cache folder, tqdm for the progress bar).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .mixing import derive_seed, select_input_keys

__all__ = [
    "PARTNER_PREFIX", "KNN_SCOPES", "PartnerDataset", "nearest_neighbours", "knn_cache_dir", "neighbour_cache_key",
    "cached_neighbours", "knn_inputs", "knn_partner_dataset",
]

PARTNER_PREFIX = "partner_"
KNN_SCOPES = ("all", "same_class")
# Salt of the partner draw's seed (derived from `args.seed`), so it differs from the mixer's.
PARTNER_SEED_SALT = 0x6B6E6E


def _block_neighbours(
    queries: torch.Tensor, pool: torch.Tensor, pool_norms: torch.Tensor, k: int, offset: int
) -> torch.Tensor:
    """The ``k`` nearest rows of ``pool`` for each row of ``queries`` (rows ``offset ..`` of ``pool``),
    excluding the query itself."""
    # ||q - p||^2 = ||q||^2 - 2 q.p + ||p||^2; ||q||^2 is the same for a whole row, so it is left out of
    # the ranking, and the rest is one fused matrix product.
    distances = torch.addmm(pool_norms[None, :], queries, pool.T, beta=1.0, alpha=-2.0)
    rows = torch.arange(queries.shape[0])
    distances[rows, rows + offset] = float("inf")  # never its own neighbour
    return torch.topk(distances, k, dim=1, largest=False, sorted=True).indices


def nearest_neighbours(
    features: torch.Tensor,
    k: int,
    *,
    labels: torch.Tensor | None = None,
    scope: str = "all",
    block_size: int = 1024,
    progress: bool = False,
) -> torch.Tensor:
    """Indices ``[N, k]`` of the ``k`` nearest examples of each of the ``N`` rows of ``features``.

    Args:
        features: ``[N, ...]`` inputs; flattened to ``[N, D]`` and compared by L2 distance (in float32).
        k: neighbours per example (the paper uses 200); at most ``N - 1`` (or the smallest class size - 1
            with ``scope="same_class"``).
        labels: ``[N]`` class ids, needed for ``scope="same_class"``.
        scope: ``all`` (neighbours from every class) or ``same_class`` (only the example's own class).
        block_size: query rows per distance block (memory: ``block_size x N`` floats).
        progress: show a progress bar over the blocks.

    Nearest first; the example itself is never among its neighbours (an exact duplicate may be).
    """
    if scope not in KNN_SCOPES:
        raise ValueError(f"mixup_knn_scope must be one of {', '.join(KNN_SCOPES)}; got {scope!r}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"mixup_knn_k must be an int >= 1, got {k!r}")
    flat = features.detach().reshape(features.shape[0], -1).to(torch.float32)
    n = flat.shape[0]
    if scope == "same_class":
        if labels is None or labels.ndim != 1 or labels.shape[0] != n or torch.is_floating_point(labels):
            raise ValueError("mixup_knn_scope='same_class' needs one integer class id per example")
        out = torch.empty(n, k, dtype=torch.int64)
        for label in torch.unique(labels).tolist():
            members = torch.nonzero(labels == label).squeeze(1)
            if members.numel() <= k:
                raise ValueError(
                    f"mixup_knn_k={k} but class {label} has only {members.numel()} training examples: with "
                    f"mixup_knn_scope='same_class' k must be below the smallest class size; lower mixup_knn_k"
                )
            out[members] = members[nearest_neighbours(flat[members], k, block_size=block_size)]
        return out
    if k >= n:
        raise ValueError(f"mixup_knn_k={k} but the training set has {n} examples: k must be at most {n - 1}")
    norms = (flat * flat).sum(1)
    blocks = range(0, n, block_size)
    if progress:
        from tqdm.auto import tqdm

        blocks = tqdm(blocks, desc=f"{k} nearest neighbours", unit="block")
    out = torch.empty(n, k, dtype=torch.int64)
    for start in blocks:
        stop = min(start + block_size, n)
        out[start:stop] = _block_neighbours(flat[start:stop], flat, norms, k, start)
    return out


class PartnerDataset(torch.utils.data.Dataset):
    """``dataset`` with a nearest-neighbour partner for every example.

    ``self[i]`` is ``dataset[i]`` (a dict) plus, for each of its keys, ``partner_<key>`` from
    ``dataset[j]``, where ``j`` is drawn uniformly from ``neighbours[i]`` by a hash of ``(seed, epoch, i)``:
    a new partner each epoch, and the same one wherever and whenever example ``i`` of that epoch is
    loaded (workers, ranks, a resumed run). ``partner_index`` holds ``j``. The trainer calls
    :meth:`set_epoch` at the start of each epoch.
    """

    def __init__(self, dataset, neighbours: torch.Tensor, seed: int = 0):
        if neighbours.ndim != 2 or neighbours.shape[0] != len(dataset):
            raise ValueError(
                f"neighbours must have one row per example ([{len(dataset)}, k]), got {tuple(neighbours.shape)}"
            )
        self.dataset = dataset
        self.neighbours = neighbours.to(torch.int64)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def partner_of(self, index: int) -> int:
        k = self.neighbours.shape[1]
        return int(self.neighbours[index, derive_seed(self.seed, self.epoch, index) % k])

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = self.dataset[index]
        if not isinstance(example, Mapping):
            raise ValueError(f"mixup_partner='knn' needs examples that are dicts of features, got {type(example).__name__}")
        partner_index = self.partner_of(int(index))
        partner = self.dataset[partner_index]
        out = dict(example)
        out.update({PARTNER_PREFIX + key: value for key, value in partner.items()})
        out[PARTNER_PREFIX + "index"] = partner_index
        return out


# -- building the partners of a MixupTrainer's training set ------------------------------------------


def knn_cache_dir() -> str:
    """Where nearest-neighbour indices are cached: ``$HF_MIXUP_CACHE`` or ``$HF_HOME/hf_mixup/knn``."""
    if os.environ.get("HF_MIXUP_CACHE"):
        return os.environ["HF_MIXUP_CACHE"]
    from huggingface_hub import constants

    return os.path.join(constants.HF_HOME, "hf_mixup", "knn")


def neighbour_cache_key(features: torch.Tensor, labels: torch.Tensor, k: int, scope: str) -> str:
    """The cache file name (a hex digest) of the neighbours of ``features`` ``[N, D]`` with class ids ``labels``
    ``[N]``: everything the search depends on (the inputs, the labels, ``k`` and the scope)."""
    digest = hashlib.sha1()
    digest.update(features.numpy().tobytes())
    digest.update(labels.numpy().tobytes())
    digest.update(f"{k}/{scope}/{tuple(features.shape)}".encode())
    return digest.hexdigest()


def cached_neighbours(
    features: torch.Tensor,
    labels: torch.Tensor,
    k: int,
    scope: str,
    *,
    cache_dir: str | None = None,
    main_process_first: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    is_main_process: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """:func:`nearest_neighbours` of ``features``, read from ``cache_dir`` (default :func:`knn_cache_dir`) when
    found there under :func:`neighbour_cache_key`, else computed and written there (atomically, by the main
    process). ``main_process_first`` (e.g. `Accelerator.main_process_first`) lets the main process compute
    first, so the other ranks read its file."""
    cache = os.path.join(cache_dir or knn_cache_dir(), f"{neighbour_cache_key(features, labels, k, scope)}.pt")
    with main_process_first():
        neighbours = torch.load(cache, weights_only=True) if os.path.isfile(cache) else None
        if neighbours is None or tuple(neighbours.shape) != (len(features), k):
            neighbours = nearest_neighbours(features, k, labels=labels, scope=scope, progress=progress)
            if is_main_process:
                os.makedirs(os.path.dirname(cache), exist_ok=True)
                torch.save(neighbours, f"{cache}.tmp{os.getpid()}")
                os.replace(f"{cache}.tmp{os.getpid()}", cache)
    return neighbours


def knn_inputs(data, collate: Callable, label_key: str = "labels") -> tuple[torch.Tensor, torch.Tensor]:
    """Every example's model inputs (its floating-point inputs, flattened and joined: ``[N, D]`` float32) and
    class id (``[N]``), in the order of ``data``, collated by ``collate`` as the training loader collates them.
    Raises `ValueError` for inputs that differ each time an example is loaded (random augmentation), labels
    that are not one class id per example, and an empty ``data``."""
    from torch.utils.data import DataLoader

    # Neighbours of randomly augmented inputs would differ from run to run (and from rank to rank).
    probe = [data[i] for i in range(min(8, len(data)))]
    first, again = collate(probe), collate([data[i] for i in range(len(probe))])
    for key in select_input_keys(first, len(probe), label_key=label_key) if probe else []:
        if not torch.equal(first[key], again[key]):
            raise ValueError(
                f"mixup_partner='knn' finds neighbours on the training inputs, but {key!r} differs each time an "
                "example is loaded (random augmentation): train without random augmentation for this ablation"
            )
    features, labels = [], []
    for batch in DataLoader(data, batch_size=256, shuffle=False, collate_fn=collate):
        y = batch.get(label_key, batch.get("label"))
        if y is None or torch.is_floating_point(y) or y.ndim != 1:
            raise ValueError("mixup_partner='knn' needs integer class ids for every training example")
        keys = select_input_keys(batch, y.shape[0], label_key=label_key)
        features.append(torch.cat([batch[k].detach().reshape(y.shape[0], -1).float().cpu() for k in keys], dim=1))
        labels.append(y.cpu())
    if not features:
        raise ValueError("mixup_partner='knn' needs a non-empty training set")
    return torch.cat(features), torch.cat(labels)


def knn_partner_dataset(trainer, dataset) -> PartnerDataset:
    """``dataset`` with a partner among each example's `mixup_knn_k` nearest training examples, for the
    `MixupTrainer` ``trainer`` (its arguments, collator, label key and accelerator). The neighbours are found
    once, on the flattened model inputs as the training loader collates them (the columns the Trainer would
    remove, removed), and cached against a digest of those inputs, their labels, k and the scope
    (:func:`cached_neighbours`); the main process computes them first, the others read the cache."""
    args = trainer.args
    datasets = sys.modules.get("datasets")  # not installed, or never imported: not a datasets.Dataset
    if datasets is not None and isinstance(dataset, datasets.Dataset):
        data, collate = trainer._remove_unused_columns(dataset, description="knn"), trainer.data_collator
    else:
        data, collate = dataset, trainer._get_collator_with_removed_columns(trainer.data_collator, description="knn")
    features, labels = knn_inputs(data, collate, label_key=trainer.label_key)
    neighbours = cached_neighbours(
        features, labels, args.mixup_knn_k, args.mixup_knn_scope,
        main_process_first=trainer.accelerator.main_process_first,
        is_main_process=trainer.is_world_process_zero(),
        progress=trainer.is_world_process_zero() and not args.disable_tqdm,
    )
    return PartnerDataset(dataset, neighbours, seed=derive_seed(args.seed, PARTNER_SEED_SALT))
