"""Imports point one way: core → signals → sdk / resilience / cache → app → patterns → cli.

Every import of a private module counts, also the ones inside functions: a late import is
still a dependency. The top-level modules ``_exceptions`` and ``_version`` sit below
everything; ``__init__``, ``__main__`` and ``testing`` sit above everything.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ttbt5_otel"
RANK = {
    "_exceptions": 0,
    "_version": 0,
    "_core": 1,
    "_signals": 2,
    "_sdk": 3,
    "_resilience": 3,
    "_cache": 3,
    "_app": 4,
    # The guide's API: adapters over every native part, the application context included.
    "patterns": 5,
    "_cli": 6,
}
TOP = 99  # __init__, __main__, testing


def _part(module: str) -> str | None:
    pieces = module.split(".")
    if pieces[0] != "ttbt5_otel":
        return None
    return pieces[1] if len(pieces) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "ttbt5_otel":
                found.extend((node.lineno, f"ttbt5_otel.{a.name}") for a in node.names)
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
    return found


def _source_part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_part_has_a_rank() -> None:
    parts = {_source_part(p) for p in _modules()}
    assert parts - set(RANK) == {"__init__", "__main__", "testing"}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    source = _source_part(path)
    rank = RANK.get(source, TOP)
    wrong = []
    for line, module in _imports(path):
        target = _part(module)
        if target in (None, "", source) or target not in RANK:
            continue
        if RANK[target] > rank or (RANK[target] == rank and rank != TOP):
            wrong.append(f"line {line}: {module}")
    assert not wrong, f"{source} (rank {rank}) must not import upward or sideways: {wrong}"
