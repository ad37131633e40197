"""Real Hugging Face cache layouts on disk, so tests exercise the real offline loading code.

- :func:`cache_hub_dataset` writes what ``load_dataset("<namespace>/<name>")`` leaves in
  ``HF_DATASETS_CACHE`` after a first online load (``<namespace>___<name>/<config>/<version>/<hash>/``
  with arrow shards and ``dataset_info.json``), built by the real parquet builder; with
  ``HF_HUB_OFFLINE=1`` the real ``load_dataset`` then finds it by the Hub id.
"""

from __future__ import annotations

import os
import tempfile

from datasets import DatasetDict


def cache_hub_dataset(cache_dir: str | os.PathLike, repo_id: str, dataset: DatasetDict, config_name: str = "default") -> str:
    """Prepare ``dataset`` in ``cache_dir`` as the cached copy of the Hub dataset ``repo_id``."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    namespace, name = repo_id.split("/")
    with tempfile.TemporaryDirectory() as source:
        files = {}
        for split, data in dataset.items():
            files[split] = os.path.join(source, f"{split}-00000-of-00001.parquet")
            data.to_parquet(files[split])
        features = next(iter(dataset.values())).features
        builder = Parquet(
            cache_dir=str(cache_dir), dataset_name=name, config_name=config_name, config_id=config_name,
            hash="0" * 40, data_files=files, features=features,
        )
        builder.download_and_prepare()
    # The builder names the folder after the dataset alone; the Hub loader adds the namespace.
    target = os.path.join(cache_dir, f"{namespace}___{name}")
    os.rename(os.path.join(cache_dir, name), target)
    return target
