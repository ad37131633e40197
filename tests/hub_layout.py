"""Real Hugging Face cache layouts on disk, so tests exercise the real offline loading code.

- :class:`FakeHub` takes the upload calls of ``HfApi`` (``create_repo``, ``upload_folder``) and writes
  what they would put on the Hub into a real Hub cache (``models--<ns>--<name>/blobs``, ``snapshots/<commit>``,
  ``refs/main``): the very layout ``from_pretrained`` reads with ``HF_HUB_OFFLINE=1``.
- :func:`cache_hub_dataset` writes what ``load_dataset("<namespace>/<name>")`` leaves in
  ``HF_DATASETS_CACHE`` after a first online load (``<namespace>___<name>/<config>/<version>/<hash>/``
  with arrow shards and ``dataset_info.json``), built by the real parquet builder; with
  ``HF_HUB_OFFLINE=1`` the real ``load_dataset`` then finds it by the Hub id.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

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


class FakeHub:
    """The Hub's upload side, on disk. ``fail_with``: an exception every upload call raises (a network
    error, a rejected token), to test what a failed push leaves behind."""

    def __init__(self, cache_dir: str | os.PathLike, fail_with: BaseException | None = None):
        self.cache_dir = Path(cache_dir)
        self.fail_with = fail_with
        self.commits: list[tuple[str, str]] = []  # (repo_id, commit)
        self.created: list[str] = []

    def install(self, monkeypatch) -> FakeHub:
        from huggingface_hub import HfApi

        hub = self

        def create_repo(api, repo_id, *args, exist_ok=False, **kwargs):
            return hub.create_repo(repo_id, exist_ok=exist_ok)

        def upload_folder(api, *, repo_id, folder_path, allow_patterns=None, ignore_patterns=None,
                          commit_message=None, **kwargs):
            return hub.upload_folder(repo_id, folder_path, allow_patterns, ignore_patterns, commit_message)

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
        return self

    def repo_dir(self, repo_id: str) -> Path:
        return self.cache_dir / ("models--" + repo_id.replace("/", "--"))

    def head(self, repo_id: str) -> str | None:
        ref = self.repo_dir(repo_id) / "refs" / "main"
        return ref.read_text().strip() if ref.is_file() else None

    def snapshot(self, repo_id: str) -> Path:
        return self.repo_dir(repo_id) / "snapshots" / self.head(repo_id)

    def create_repo(self, repo_id: str, exist_ok: bool = False):
        from huggingface_hub import RepoUrl

        if self.fail_with is not None:
            raise self.fail_with
        repo = self.repo_dir(repo_id)
        if repo.exists() and not exist_ok:
            raise FileExistsError(f"{repo_id} exists")
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        self.created.append(repo_id)
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, repo_id, folder_path, allow_patterns=None, ignore_patterns=None, commit_message=None):
        from huggingface_hub import CommitInfo
        from huggingface_hub.utils import filter_repo_objects

        if self.fail_with is not None:
            raise self.fail_with
        repo = self.repo_dir(repo_id)
        if not repo.exists():
            raise FileNotFoundError(f"repository {repo_id} was never created")
        folder = Path(folder_path)
        names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        names = list(filter_repo_objects(names, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns))
        tree: dict[str, str] = {}
        head = self.head(repo_id)
        if head is not None:  # a commit adds to the files already there
            old = repo / "snapshots" / head
            for path in old.rglob("*"):
                if path.is_symlink() or path.is_file():
                    tree[str(path.relative_to(old))] = os.path.basename(os.readlink(path)) if path.is_symlink() else ""
        (repo / "blobs").mkdir(exist_ok=True)
        for name in names:
            digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
            blob = repo / "blobs" / digest
            if not blob.exists():
                shutil.copyfile(folder / name, blob)
            tree[name] = digest
        commit = hashlib.sha1("".join(f"{k}:{v}\n" for k, v in sorted(tree.items())).encode()).hexdigest()
        if commit != head:  # the Hub skips a commit that changes nothing
            snapshot = repo / "snapshots" / commit
            for name, digest in tree.items():
                link = snapshot / name
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(os.path.relpath(repo / "blobs" / digest, link.parent), link)
            (repo / "refs" / "main").write_text(commit)
            self.commits.append((repo_id, commit))
        return CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/{commit}",
                          commit_message=commit_message or "", commit_description="", oid=commit)
