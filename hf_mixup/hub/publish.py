"""Publish trained runs to the Hugging Face Hub: one run, or an ERM/mixup pair with cards that link
each other.

Names follow ``<namespace>/<model>-<dataset>-mixup`` and ``<namespace>/<model>-<dataset>-erm``. A run
folder is what ``scripts/train.py`` writes (weights, ``config.json``, the preprocessing, results,
``trainer_state.json``, ``run_settings.json``). Publishing renders the card (and the training-curve
plot) into the run folder first, then uploads the files a user needs and nothing else (no
intermediate checkpoints, no optimizer state). A push that fails leaves the folder as it was, and says
what went wrong; a successful push is recorded in ``.hf_mixup_published.json``, so a retry of a run
that did not change uploads nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from .card import CARD_SETTINGS_FILE, build_card
from .plots import CALIBRATION_FILE, RELIABILITY_FILE

logger = logging.getLogger(__name__)

PUBLISHED_RECORD = ".hf_mixup_published.json"
CURVES_FILE = "curves.png"
# Files of a run that a user of the published model needs.
UPLOAD_PATTERNS = [
    "README.md", "config.json", "*.safetensors", "*.safetensors.index.json", "preprocessor_config.json",
    "processor_config.json", "feature_extractor_config.json", "all_results.json", "test_results.json",
    "train_results.json", "trainer_state.json", CARD_SETTINGS_FILE, CURVES_FILE, CALIBRATION_FILE, RELIABILITY_FILE,
]


class PublishError(RuntimeError):
    """A push did not happen; the message says why and what to change."""


@dataclass
class Run:
    """A finished training run, read back from its output folder."""

    path: str
    args: Any
    config: dict[str, Any]
    settings: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return "mixup" if self.args.mixing_enabled else "erm"

    @property
    def modality(self) -> str:
        return self.settings.get("modality", "image")

    @property
    def model_slug(self) -> str:
        name = self.config.get("architecture") or self.config.get("model_type", "model")
        if self.config.get("model_type") == "hf_mixup_tabular_mlp":
            name = "mlp"
        return _slug(name)

    @property
    def dataset_slug(self) -> str:
        name = self.settings.get("dataset_id") or self.settings.get("dataset_name") or "dataset"
        return _slug(os.path.basename(os.path.normpath(name)))

    @property
    def needs_hf_mixup(self) -> bool:
        if str(self.config.get("model_type", "")).startswith("hf_mixup"):
            return True
        from ..models import CIFAR_MODEL_NAMES as MODEL_NAMES

        return self.config.get("architecture") in MODEL_NAMES


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() or c in "-._" else "-" for c in str(text).lower().replace("_", "-"))
    return "-".join(part for part in out.split("-") if part)


def load_run(path: str | os.PathLike) -> Run:
    """Read a run folder written by ``scripts/train.py``; a clear error names what is missing. The settings come
    from the run's ``run_settings.json``: nothing in the folder is unpickled (``training_args.bin`` is never
    loaded), so a folder from someone else cannot run code."""
    from ..runs import RUN_SETTINGS_NAME, RecordedArguments, read_run_settings

    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ValueError(f"{path} is not a folder: give the output_dir of a finished scripts/train.py run")
    needed = ["config.json", RUN_SETTINGS_NAME, CARD_SETTINGS_FILE]
    missing = [name for name in needed if not os.path.isfile(os.path.join(path, name))]
    if not any(name.endswith(".safetensors") for name in os.listdir(path)):
        missing.append("model.safetensors")
    if missing:
        raise ValueError(
            f"{path} lacks {missing}: is it the output_dir of a finished scripts/train.py run "
            "(the final model is saved there at the end of training)?"
        )
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(path, CARD_SETTINGS_FILE)) as f:
        settings = json.load(f)
    args = RecordedArguments(read_run_settings(path))
    metrics = dict(settings.get("metrics") or {})
    results = os.path.join(path, "test_results.json")
    if not metrics and os.path.isfile(results):
        with open(results) as f:
            metrics = {k[len("test_"):]: v for k, v in json.load(f).items() if k.startswith("test_")}
    return Run(path=path, args=args, config=config, settings=settings, metrics=metrics)


def repo_name(run: Run, namespace: str, model: str | None = None, dataset: str | None = None) -> str:
    """``<namespace>/<model>-<dataset>-<mixup|erm>``."""
    if not namespace or "/" in namespace:
        raise ValueError(f"namespace must be a Hub user or organisation name without '/', got {namespace!r}")
    return f"{namespace}/{_slug(model or run.model_slug)}-{_slug(dataset or run.dataset_slug)}-{run.method}"


def render_card(run: Run, repo_id: str, sibling: Run | None = None, sibling_repo: str | None = None,
                curves: str | None = None, reliability: str | None = None):
    """The published card of ``run`` (as ``repo_id``), comparing it with its sibling run."""
    settings = run.settings
    return build_card(
        run.args,
        architecture=run.config.get("architecture") or (run.config.get("architectures") or ["model"])[0],
        metrics=run.metrics,
        model_name=repo_id.split("/")[-1],
        dataset_name=settings.get("dataset_name"),
        dataset_id=settings.get("dataset_id"),
        eval_split=settings.get("eval_split", "test"),
        modality=run.modality,
        license=settings.get("license", "apache-2.0"),
        repo_id=repo_id,
        needs_hf_mixup=run.needs_hf_mixup,
        regression=run.config.get("problem_type") == "regression" and run.modality == "tabular",
        sibling=None if sibling is None else {"repo_id": sibling_repo, "method": sibling.method, "metrics": sibling.metrics},
        curves=curves,
        reliability=reliability,
        run_settings=settings.get("run_settings"),
    )


def files_to_upload(folder: str) -> list[str]:
    from huggingface_hub.utils import filter_repo_objects

    names = sorted(os.listdir(folder))
    return [n for n in filter_repo_objects(names, allow_patterns=UPLOAD_PATTERNS) if os.path.isfile(os.path.join(folder, n))]


def _fingerprint(folder: str, names: list[str]) -> dict[str, str]:
    out = {}
    for name in names:
        digest = hashlib.sha256()
        with open(os.path.join(folder, name), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        out[name] = digest.hexdigest()
    return out


def push_run(run: Run, repo_id: str, token: str | None = None, private: bool | None = None,
             commit_message: str | None = None) -> str:
    """Upload ``run``'s folder (card already rendered) to ``repo_id``; returns the commit URL, or the
    recorded one when nothing changed since the last successful push. Raises `PublishError`."""
    from huggingface_hub import HfApi, get_token

    names = files_to_upload(run.path)
    fingerprint = _fingerprint(run.path, names)
    record_path = os.path.join(run.path, PUBLISHED_RECORD)
    if os.path.isfile(record_path):
        with open(record_path) as f:
            record = json.load(f)
        if record.get("repo_id") == repo_id and record.get("files") == fingerprint:
            logger.warning("%s is already published as %s (%s); nothing to upload", run.path, repo_id, record["commit_url"])
            return record["commit_url"]
    token = token or get_token()
    if not token:
        raise PublishError(
            f"no Hugging Face token, so {repo_id} was not pushed: log in with `hf auth login`, set HF_TOKEN, "
            f"or pass --token. {run.path} is unchanged and ready for a retry."
        )
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        # The exact top-level files (a pattern such as *.safetensors would also match checkpoint-N/...).
        info = api.upload_folder(
            repo_id=repo_id, folder_path=run.path, allow_patterns=names,
            commit_message=commit_message or f"Upload {run.method} model trained with hf_mixup",
        )
    except Exception as error:  # network, authentication, rejection: all end the same way for the user
        raise PublishError(
            f"pushing {run.path} to {repo_id} failed ({type(error).__name__}: {error}). The local checkpoint "
            "and card are unchanged; fix the cause (token with write access, network, repository name) and "
            "run the same command again."
        ) from error
    commit_url = str(getattr(info, "commit_url", info))
    with open(record_path, "w") as f:
        json.dump({"repo_id": repo_id, "commit_url": commit_url, "files": fingerprint}, f, indent=2)
    return commit_url


def prepare_pair(erm_dir: str, mixup_dir: str, namespace: str, model: str | None = None,
                 dataset: str | None = None, plot: bool = True, dataset_id: str | None = None,
                 dataset_title: str | None = None) -> list[tuple[Run, str]]:
    """Render the cards (and the curve plot) of an ERM/mixup pair into their folders; returns
    ``[(run, repo_id), ...]``, ready for :func:`push_run`. ``dataset_id`` / ``dataset_title``: the Hub
    dataset and the name the cards give the data (for a run on a local copy of a Hub dataset)."""
    erm, mixup = load_run(erm_dir), load_run(mixup_dir)
    for run in (erm, mixup):
        if dataset_id:
            run.settings["dataset_id"] = dataset_id
        if dataset_title or dataset_id:
            run.settings["dataset_name"] = dataset_title or dataset_id
            with open(os.path.join(run.path, CARD_SETTINGS_FILE), "w") as f:  # later pushes keep the names
                json.dump(run.settings, f, indent=2)
    if erm.method != "erm" or mixup.method != "mixup":
        raise ValueError(
            f"--erm must be a run without mixing and --mixup one with it; got {erm.method} ({erm_dir}) and "
            f"{mixup.method} ({mixup_dir})"
        )
    if erm.modality != mixup.modality:
        raise ValueError(f"the runs are of different modalities ({erm.modality} and {mixup.modality})")
    repos = {run.method: repo_name(run, namespace, model, dataset) for run in (erm, mixup)}
    curves = None
    if plot:
        from .plots import plot_runs

        try:
            for run in (erm, mixup):
                plot_runs([erm.path], [mixup.path], os.path.join(run.path, CURVES_FILE))
            curves = CURVES_FILE
        except ValueError as error:  # no per-epoch evaluation, or no matplotlib
            logger.warning("no training-curve plot in the cards: %s", error)
    reliability = None
    if plot and all(os.path.isfile(os.path.join(run.path, CALIBRATION_FILE)) for run in (erm, mixup)):
        from .plots import plot_run_reliability

        try:
            for run in (erm, mixup):
                plot_run_reliability({"ERM": [erm.path], "mixup": [mixup.path]}, os.path.join(run.path, RELIABILITY_FILE))
            reliability = RELIABILITY_FILE
        except ValueError as error:  # no matplotlib
            logger.warning("no reliability diagram in the cards: %s", error)
    pairs = []
    for run, other in ((erm, mixup), (mixup, erm)):
        card = render_card(run, repos[run.method], sibling=other, sibling_repo=repos[other.method], curves=curves,
                           reliability=reliability)
        card.save(os.path.join(run.path, "README.md"))
        pairs.append((run, repos[run.method]))
    return pairs
