"""Every third-party package the library imports is a declared dependency (or an optional extra's)."""

import ast
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
#: import name -> distribution name, where they differ
DISTRIBUTION = {"yaml": "pyyaml", "websocket": "websocket-client", "PIL": "pillow"}


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """Imports under ``if TYPE_CHECKING:``: read by the type checker, never at run time."""
    blocks = [n for n in ast.walk(tree) if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING"]
    return {inner for block in blocks for stmt in block.body for inner in ast.walk(stmt)}


def imported_top_level() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "comfykit_batch").rglob("*.py"):
        tree = ast.parse(path.read_text())
        skip = _type_checking_only(tree)
        for node in ast.walk(tree):
            if node in skip:
                continue
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"comfykit_batch", "comfy", "nodes", "folder_paths", "torch"}


def declared_requirements() -> list[str]:
    """pyproject.toml's dependencies and extras, read from the file (an installed copy's metadata may be older)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project.get("dependencies", []), *(r for extra in project.get("optional-dependencies", {}).values() for r in extra)]


def test_every_imported_package_is_declared():
    declared = {re.split(r"[\s<>=!\[;]", r, maxsplit=1)[0].lower() for r in declared_requirements()}
    missing = sorted(n for n in imported_top_level() if DISTRIBUTION.get(n, n).lower() not in declared)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
