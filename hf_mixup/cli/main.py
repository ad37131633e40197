"""`hf-mixup`: the console script (`hf-mixup train ...`) and `python -m hf_mixup`."""

from __future__ import annotations

import argparse
import sys

COMMANDS = {
    "train": "train a model with mixup (or ERM) through MixupTrainer; `hf-mixup train --help` lists the flags",
    "publish": "push an ERM/mixup pair of runs to the Hub with cards that compare them (`hf-mixup publish --help`)",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="hf-mixup",
        description="mixup (Zhang et al., ICLR 2018) inside the Hugging Face Trainer.",
        epilog="\n".join(f"  {name:8s}{text}" for name, text in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="hf-mixup {train,publish} ...",
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
    from . import train

    return train.run(argv[1:], prog="hf-mixup train")


if __name__ == "__main__":
    sys.exit(main())
