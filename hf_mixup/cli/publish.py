"""`hf-mixup publish`: publish an ERM/mixup pair of runs to the Hugging Face Hub, with cards that compare and link them.

    hf-mixup publish --erm runs/fashion_mnist-erm-seed1 --mixup runs/fashion_mnist-mixup-seed1 \\
        --namespace my-org                        # -> my-org/preact-resnet18-fashion-mnist-{erm,mixup}
    hf-mixup publish ... --dry_run       # render the cards and the curve plot only
    hf-mixup publish ... --stage_dir model_cards/reference --dry_run   # ready-to-push repo folders

Each run folder (an output_dir of `hf-mixup train`) gets its card (`README.md`: the recipe, this run's
results as model-index metadata, the ERM vs mixup table linking the sibling repository, the curve
plot, how to load it); then the weights, config (which holds a timm model's image preprocessing),
preprocessing files, card, plot and results are uploaded (not the intermediate checkpoints). A push
that fails (no token, no network, rejected) leaves the folders as they are and says what went wrong;
running the command again after a success uploads nothing new. Needs a token with write access
(`hf auth login` or HF_TOKEN).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys

from ..hub import PublishError, files_to_upload, prepare_pair, push_run
from ..runs import RUN_SETTINGS_NAME


def stage(run_path: str, target: str) -> str:
    """Copy what would be uploaded (plus run_settings.json, so the copy can be published itself)."""
    os.makedirs(target, exist_ok=True)
    for name in files_to_upload(run_path) + [RUN_SETTINGS_NAME]:
        shutil.copy2(os.path.join(run_path, name), os.path.join(target, name))
    return target


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--erm", required=True, help="output_dir of the ERM run (mixup_alpha 0)")
    parser.add_argument("--mixup", required=True, help="output_dir of the mixup run")
    parser.add_argument("--namespace", required=True, help="Hub user or organisation")
    parser.add_argument("--model", default=None, help="model part of the names (default: the architecture)")
    parser.add_argument("--dataset", default=None, help="dataset part of the names (default: the dataset's name)")
    parser.add_argument("--dataset_id", default=None,
                        help="the Hub dataset the cards name (e.g. zalando-datasets/fashion_mnist for a local copy of it)")
    parser.add_argument("--dataset_title", default=None, help="how the cards name the data (default: the dataset id)")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or `hf auth login`)")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--dry_run", action="store_true", help="render the cards; push nothing")
    parser.add_argument("--stage_dir", default=None, help="also copy each ready-to-push repository folder here")
    parser.add_argument("--no_plot", action="store_true", help="leave the training-curve plot out of the cards")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)

    try:
        pairs = prepare_pair(args.erm, args.mixup, args.namespace, args.model, args.dataset, plot=not args.no_plot,
                             dataset_id=args.dataset_id, dataset_title=args.dataset_title)
    except ValueError as error:
        print(f"{parser.prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    for run, repo_id in pairs:
        print(f"{run.path} -> {repo_id}: card rendered ({', '.join(files_to_upload(run.path))})")
        if args.stage_dir:
            print(f"  staged in {stage(run.path, os.path.join(args.stage_dir, repo_id.split('/')[-1]))}")
    if args.dry_run:
        print("dry run: nothing pushed")
        return 0
    failed = False
    for run, repo_id in pairs:
        try:
            url = push_run(run, repo_id, token=args.token, private=args.private)
            print(f"pushed {repo_id}: {url}")
        except PublishError as error:
            print(f"{parser.prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
