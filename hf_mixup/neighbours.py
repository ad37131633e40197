"""Nearest-neighbour partners (``mixup_partner="knn"``): the paper's "KNN" ablation (Table 5), where each
example is mixed with one of its k nearest training examples rather than with a random one.

- :func:`nearest_neighbours` finds the ``k`` nearest examples of every example (L2 distance on flattened
  inputs, itself excluded), over all examples (the paper's "AC") or within its class ("SC", SMOTE-like),
  in blocks of rows so that memory stays bounded;
- :class:`PartnerDataset` wraps a training set so that each example comes with a partner drawn uniformly
  from its neighbours, under ``partner_<key>`` keys. The draw is a function of (seed, epoch, index) alone,
  so it is the same in the main process and in DataLoader workers, on every rank, and after a resume.

Torch only: the trainer gathers the inputs and caches the neighbours (see `MixupTrainer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .mixing import derive_seed

__all__ = ["PARTNER_PREFIX", "KNN_SCOPES", "PartnerDataset", "nearest_neighbours"]

PARTNER_PREFIX = "partner_"
KNN_SCOPES = ("all", "same_class")


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
