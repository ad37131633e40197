"""The package's layering: the mixing engine stands on torch alone, nothing reaches scripts/ through
sys.path, and the wheel ships every subpackage."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hf_mixup"
ENGINE = ("mixing", "losses", "hidden", "analysis")
# What the engine may import: torch and the standard library.
ENGINE_ALLOWED = {"torch", "__future__", "math", "dataclasses", "typing", "collections", "contextlib", "functools", "numbers"}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every import of a module, at any depth (function-level imports included): (level, module)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_the_engine_imports_torch_and_the_standard_library_only():
    for name in ENGINE:
        for level, module in imports_of(PACKAGE / f"{name}.py"):
            if level:  # relative: only other engine modules
                assert level == 1 and module in ENGINE, f"hf_mixup/{name}.py imports .{module}, outside the engine"
            else:
                top = module.split(".")[0]
                assert top in ENGINE_ALLOWED, f"hf_mixup/{name}.py imports {module}: the engine stands on torch alone"


def test_the_engine_check_sees_function_level_imports(tmp_path):
    planted = tmp_path / "mixing.py"
    planted.write_text("import torch\n\ndef f():\n    from transformers import Trainer\n    return Trainer\n")
    assert (0, "transformers") in imports_of(planted)


def test_no_script_or_test_reaches_into_scripts_through_sys_path():
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("scripts", "tests", "hf_mixup")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != Path(__file__).name and "sys.path" in path.read_text()
    ]
    assert offenders == []


def test_the_wheel_lists_every_subpackage():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in PACKAGE.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    # Metric modules are evaluate scripts loaded by path (package data), not subpackages.
    on_disk = {name for name in on_disk if not name.startswith("hf_mixup.metrics.")}
    assert on_disk - declared == set(), "subpackages missing from [tool.setuptools] packages"


def test_every_declared_lower_bound_is_the_tested_version():
    """pyproject's floors are the pins of constraints.txt, so the oldest version a user may get is the one CI tests."""
    import re

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for requirement in requirements:
        if requirement.startswith("hf_mixup["):  # another extra of this project (checked below)
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)(,<[0-9.]+)?", requirement)
        assert match, f"{requirement!r}: declare a lower bound (the tested version), optionally an upper one"
        name = re.sub(r"[-_.]+", "-", match[1]).lower()
        assert pins.get(name) == match[2], f"{requirement!r}: constraints.txt tests {name}=={pins.get(name)}"


def _extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _expand(extra: str, extras: dict[str, list[str]]) -> set[str]:
    """The requirements ``extra`` installs, following ``hf_mixup[...]`` references to other extras."""
    import re

    out = set()
    for requirement in extras[extra]:
        if requirement.startswith("hf_mixup["):
            for name in requirement[len("hf_mixup["):-1].split(","):
                assert name.strip() in extras, f"{extra} names the extra {name.strip()!r}, which pyproject does not define"
                out |= _expand(name.strip(), extras)
        else:
            out.add(re.split(r"[<>=\[]", requirement)[0].lower().replace("_", "-"))
    return out


def test_the_core_is_what_the_trainer_needs_and_dev_installs_every_extra():
    """A light install: the hard dependencies are MixupTrainer's, every other one is an extra, and `dev`
    (what CI installs) holds every extra, so the whole suite runs against all of them."""
    import re

    core = {re.split(r"[<>=]", r)[0].lower().replace("_", "-")
            for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert core == {"torch", "transformers", "accelerate", "huggingface-hub", "safetensors", "jinja2"}
    extras = _extras()
    everything = set().union(*(_expand(name, extras) for name in extras))
    assert everything - _expand("dev", extras) == set(), "dev must install every extra"
    for heavy in ("datasets", "pandas", "timm", "torchvision", "evaluate", "scikit-learn", "matplotlib", "tensorboard"):
        assert heavy not in core and heavy in everything


def test_every_extra_the_code_names_is_declared():
    """`hf_mixup._extras` (the messages "pip install 'hf_mixup[<extra>]'") names only extras that exist and
    that install the modules it checks for."""
    from hf_mixup._extras import DISTRIBUTIONS, EXTRA_MODULES

    extras = _extras()
    for extra, modules in EXTRA_MODULES.items():
        assert extra in extras, f"hf_mixup._extras names the extra {extra!r}, which pyproject does not define"
        installed = _expand(extra, extras)
        for module in modules:
            assert DISTRIBUTIONS.get(module, module) in installed, f"the extra {extra!r} does not install {module}"
    for path in PACKAGE.rglob("*.py"):
        for name in set(re.findall(r"hf_mixup\[([a-z_,]+)\]", path.read_text())):
            for extra in name.split(","):
                assert extra in extras, f"{path.relative_to(ROOT)} tells users to install hf_mixup[{extra}]"


def markdown_anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_the_readme_front_page_is_short_and_its_docs_links_resolve():
    readme = ROOT / "README.md"
    assert readme.stat().st_size <= 12 * 1024, "README.md over 12 KB: move detail to docs/ (tables: docs/reproductions.md)"
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", readme.read_text())
    assert links, "the README links to no page of docs/"
    for target, anchor in links:
        assert (ROOT / target).is_file(), f"README.md links to {target}, which does not exist"
        if anchor:
            assert anchor in markdown_anchors(ROOT / target), f"README.md links to {target}#{anchor}: no such heading"


def results_tables(text: str) -> list[str]:
    """The Markdown tables of ``text`` with an ERM column (results, not settings)."""
    tables = re.findall(r"(?:^\|.*\|[ \t]*\n?)+", text, re.M)
    return [table for table in tables if re.search(r"^\|.*\|\s*ERM\s*\|", table.splitlines()[0])]


def test_the_readme_keeps_one_results_table_linking_the_reproductions():
    """Issue 19 J: one "where mixup pays off" table on the front page, each row and the section linking
    docs/reproductions.md, where every other results table lives."""
    text = (ROOT / "README.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    pays_off = [s for s in sections if "where mixup pays off" in s.splitlines()[0].lower()]
    assert len(pays_off) == 1, "README.md needs one '## ...where mixup pays off' section"
    tables = results_tables(text)
    assert len(tables) == 1, (
        f"README.md holds {len(tables)} results tables: keep one, move the others to docs/reproductions.md"
    )
    assert tables[0] in pays_off[0], "the results table belongs under 'where mixup pays off'"
    assert "](docs/reproductions.md)" in pays_off[0], "the section links docs/reproductions.md"
    rows = tables[0].strip().splitlines()[2:]
    assert rows and all("](docs/reproductions.md#" in row for row in rows), "each row links its reproduction"
