"""The import direction of DESIGN.md, read from the source (AST): spaces <- evaluators <- search, and
the dashboard reads storage only (the storage layout, the one front module, contracts), never training.

Every ``import`` statement counts, at module level or inside functions (lazy imports are still
dependencies).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("spaces", "evaluators", "search", "dashboard")

ALLOWED: dict[str, tuple[str, ...]] = {
    "spaces": ("spaces",),
    "evaluators": ("spaces", "evaluators"),
    "search": ("spaces", "evaluators", "search"),
    "dashboard": ("dashboard", "spaces", "search.attrs", "search.front", "search.storage", "evaluators.contracts",
                  "evaluators.db", "evaluators.errors", "evaluators.fleet.tables", "evaluators.fleet.protocol"),
}
"""Which project modules each package may import (a prefix allows its sub-modules)."""


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in PROJECT]


def _allowed(name: str, allowed: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in allowed)


@pytest.mark.parametrize("package", PROJECT)
def test_each_package_imports_only_what_the_design_allows(package: str) -> None:
    violations = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, name in _imports(path)
        if not _allowed(name, ALLOWED[package])
    ]
    assert violations == []


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from evaluators.training import train\n")
    assert [name for _, name in _imports(bad)] == ["evaluators.training.train"]
    assert not _allowed("evaluators.training.train", ALLOWED["dashboard"])
    assert _allowed("search.front.front", ALLOWED["dashboard"]) and not _allowed("search.launch", ALLOWED["dashboard"])
