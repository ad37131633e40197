"""Recipes by name: the paper's settings (``recipes/*.yaml``), shipped in the wheel as ``hf_mixup/recipes``.

    hf-mixup recipes                       # every recipe, one line each
    hf-mixup recipes uci_mlp               # one recipe's file (copy it to change it)
    hf-mixup train uci_mlp --seed 3        # train with a recipe, from any folder; flags after it override

`hf-mixup train` resolves its first argument when it is not a flag: an existing file is a config file
(YAML or JSON); otherwise a bare name (``uci_mlp`` or ``uci_mlp.yaml``) is looked up among the shipped
recipes. Anything else is a mistake reported in one line that lists the recipes.
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from .errors import UsageError

RECIPE_SUFFIXES = (".yaml", ".yml")
CONFIG_SUFFIXES = (*RECIPE_SUFFIXES, ".json")


def recipes_folder() -> Traversable:
    """Where the recipes are: ``hf_mixup/recipes`` in an installed wheel (package data of ``hf_mixup.recipes``),
    else the checkout's top-level ``recipes/`` (an editable install or ``PYTHONPATH=.``)."""
    shipped = resources.files("hf_mixup").joinpath("recipes")
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "recipes"


def recipe_files() -> dict[str, Traversable]:
    """Name (the file's stem) -> recipe file, sorted by name."""
    folder = recipes_folder()
    found = {} if not folder.is_dir() else {
        entry.name.rsplit(".", 1)[0]: entry for entry in folder.iterdir()
        if entry.name.endswith(RECIPE_SUFFIXES) and entry.is_file()
    }
    return dict(sorted(found.items()))


def describe(text: str) -> str:
    """A recipe's one-line description: its first comment line (``# ...``)."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            return stripped.lstrip("#").strip()
        if stripped:
            break
    return ""


def _stem(argument: str) -> str:
    """``uci_mlp.yaml`` -> ``uci_mlp``; a name without a recipe suffix stays as it is."""
    for suffix in RECIPE_SUFFIXES:
        if argument.endswith(suffix):
            return argument[: -len(suffix)]
    return argument


def recipe_names() -> list[str]:
    return list(recipe_files())


def available() -> str:
    """The recipes' names for an error message, and where they are described."""
    names = recipe_names()
    listed = ", ".join(names) if names else "none (the recipes folder is missing from this install)"
    return f"the recipes are {listed} (`hf-mixup recipes` describes them)"


def resolve_config(argument: str) -> Traversable:
    """The config file named by ``hf-mixup train``'s first argument: an existing file (any path), else a shipped
    recipe by name (``uci_mlp`` or ``uci_mlp.yaml``). Raises `UsageError` naming the recipes otherwise."""
    if os.path.isfile(argument):
        return Path(argument)
    files = recipe_files()
    is_bare_name = os.sep not in argument and "/" not in argument
    if is_bare_name and _stem(argument) in files:
        return files[_stem(argument)]
    if os.path.isdir(argument):
        what = f"{argument!r} is a folder, not a config file"
    elif not is_bare_name or argument.endswith(CONFIG_SUFFIXES):
        what = f"no config file {argument!r} (no such file)"
        shipped = _stem(os.path.basename(argument))
        if shipped in files:
            what += f"; the shipped recipe of that name runs from any folder as `hf-mixup train {shipped}`"
    else:
        what = f"no recipe {argument!r}"
    raise UsageError(f"{what}; give a YAML/JSON file or a recipe name: {available()}")


def main(argv: list[str] | None = None, prog: str = "hf-mixup recipes") -> int:
    """`hf-mixup recipes`: the recipe names with one line each; with a name, that recipe's file."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: {prog} [NAME]\n\n{__doc__.strip()}")
        return 0
    files = recipe_files()
    if not argv:
        width = max((len(name) for name in files), default=0)
        for name, entry in files.items():
            print(f"{name:{width}s}  {describe(entry.read_text())}")
        return 0
    if len(argv) > 1:
        print(f"{prog}: error: give at most one recipe name, got {argv}", file=sys.stderr)
        return 2
    name = _stem(argv[0])
    if name not in files:
        print(f"{prog}: error: no recipe {argv[0]!r}; {available()}", file=sys.stderr)
        return 2
    sys.stdout.write(files[name].read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
