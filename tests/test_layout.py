"""The package's layering: the mixing engine stands on torch alone, nothing reaches scripts/ through
sys.path, and the wheel ships every subpackage."""

from __future__ import annotations

import ast
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
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)(,<[0-9.]+)?", requirement)
        assert match, f"{requirement!r}: declare a lower bound (the tested version), optionally an upper one"
        name = re.sub(r"[-_.]+", "-", match[1]).lower()
        assert pins.get(name) == match[2], f"{requirement!r}: constraints.txt tests {name}=={pins.get(name)}"
