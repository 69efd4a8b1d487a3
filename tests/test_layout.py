"""The layout is the architecture: pure packages import nothing that does I/O, and nothing above them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "ai_job_tester"

PURE = ("domain", "config/schema.py", "output/report.py", "output/junit.py", "errors.py")
"""Modules that decide things without touching a socket, a file, a process or the clock."""

ALLOWED_OUTSIDE = {
    "__future__", "collections", "collections.abc", "dataclasses", "datetime", "enum", "hashlib", "hmac", "json",
    "math", "pathlib", "pydantic", "re", "signal", "statistics", "typing", "unicodedata", "urllib.parse",
    "xml.etree.ElementTree",
}  # fmt: skip
"""What a pure module may import from outside the project: values and parsing, no I/O (no httpx, os, time…)."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_pure(module: str) -> bool:
    relative = module.removeprefix("ai_job_tester.").replace(".", "/")
    return any(relative == p.removesuffix(".py") or relative.startswith(p + "/") for p in PURE)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
                # "from . import rows" names modules; "from .rows import X" names one module.
                found.extend([f"{prefix}.{a.name}" for a in node.names] if node.module is None else [prefix])
            else:
                found.append(node.module or "")
    return found


PURE_FILES = sorted(p for p in PACKAGE.rglob("*.py") if _is_pure(_module_name(p)))


def test_the_pure_packages_are_where_the_layout_says() -> None:
    assert {_module_name(p) for p in PURE_FILES} >= {
        "ai_job_tester.domain.plan", "ai_job_tester.domain.outcome", "ai_job_tester.domain.rows",
        "ai_job_tester.config.schema", "ai_job_tester.output.report",
    }  # fmt: skip


@pytest.mark.parametrize("path", PURE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_pure_module_imports_nothing_that_does_io(path: Path) -> None:
    offending = [
        name
        for name in _imports(path)
        if (name.startswith("ai_job_tester") and not _is_pure(name))
        or (not name.startswith("ai_job_tester") and name not in ALLOWED_OUTSIDE and name.split(".")[0] != "pydantic")
    ]
    assert offending == [], f"{path.name} imports {offending}: move the I/O to network/, storage/ or cycle/"
