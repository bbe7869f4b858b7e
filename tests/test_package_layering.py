"""The service (schemas/, service/, workers/, registry_import/ and simguard/)
never imports tooling/ or bench/: they drive simguard from outside, and the API
and workers must run without them. The one bridge is simguard/cli.py, which
imports their commands only when one of them runs or is listed."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVICE_PACKAGES = ("schemas", "service", "workers", "registry_import", "simguard")
CLI = REPO_ROOT / "simguard" / "cli.py"


def imported_modules(tree: ast.AST) -> Iterator[str]:
    """Every absolute module name an import statement anywhere in the tree names."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def service_sources() -> list[Path]:
    return [
        path
        for package in SERVICE_PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        if path != CLI
    ]


def importers_of(top_level: str) -> list[str]:
    return [
        f"{path.relative_to(REPO_ROOT)}: {module}"
        for path in service_sources()
        for module in imported_modules(parse(path))
        if module.split(".")[0] == top_level
    ]


def test_no_service_module_imports_tooling() -> None:
    assert service_sources()
    assert importers_of("tooling") == []


def test_no_service_module_imports_bench() -> None:
    assert importers_of("bench") == []


def test_loading_the_cli_imports_neither_tooling_nor_bench() -> None:
    probe = (
        "import sys, simguard.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tooling', 'bench')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout

    assert loaded.strip() == "[]"


def test_imports_inside_functions_are_seen() -> None:
    """The CLI's imports of tooling sit in function bodies; a walk that missed
    them would also miss a lazy import of tooling in a service module."""
    lazy = {module for module in imported_modules(parse(CLI)) if module.startswith("tooling.")}

    assert "tooling.demo" in lazy
