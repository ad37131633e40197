"""`hf-mixup`: the console script (`hf-mixup train ...`) and `python -m hf_mixup`."""

from __future__ import annotations

import argparse
import sys

COMMANDS = {
    "train": "train a model with mixup (or ERM) through MixupTrainer; `hf-mixup train --help` lists the flags",
    "publish": "push an ERM/mixup pair of runs to the Hub with cards that compare them (`hf-mixup publish --help`)",
    "recipes": "list the paper's recipes, one line each; `hf-mixup train NAME` trains with one from any folder",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="hf-mixup",
        description="mixup (Zhang et al., ICLR 2018) inside the Hugging Face Trainer.",
        epilog="\n".join(f"  {name:8s}{text}" for name, text in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="hf-mixup {train,publish,recipes} ...",
    )
    parser.add_argument("command", choices=list(COMMANDS), help="what to do")
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        parser.error(f"unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}")
    if argv[0] == "publish":
        from . import publish

        return publish.main(argv[1:], prog="hf-mixup publish")
    if argv[0] == "recipes":
        from . import recipes

        return recipes.main(argv[1:], prog="hf-mixup recipes")
    from .._extras import MissingExtraError, require_extra

    try:  # a missing extra is one line and exit 2, checked before anything imports it
        require_extra("train", "hf-mixup train")
        from . import train

        return train.run(argv[1:], prog="hf-mixup train")
    except MissingExtraError as error:
        print(error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
