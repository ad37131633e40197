"""The Hub side of hf_mixup: offline model cards (`card`), publishing runs and ERM/mixup pairs
(`publish`), and training-curve plots (`plots`)."""

from .publish import (
    PUBLISHED_RECORD,
    PublishError,
    Run,
    files_to_upload,
    load_run,
    prepare_pair,
    push_run,
    render_card,
    repo_name,
)

__all__ = [
    "PUBLISHED_RECORD",
    "PublishError",
    "Run",
    "files_to_upload",
    "load_run",
    "prepare_pair",
    "push_run",
    "render_card",
    "repo_name",
]
