"""The dependency direction of DESIGN.md: core does no I/O; cli holds no logic beyond calling app."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "swapbench"
IO_MODULES = {"subprocess", "httpx", "pynvml", "socket", "requests", "psutil", "swapbench.adapters", "swapbench.app"}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((SRC / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_no_io(path: Path) -> None:
    bad = {n for n in imports_of(path) if any(n == m or n.startswith(m + ".") for m in IO_MODULES)}
    assert not bad, f"{path.name} imports {bad}"
    assert "time.sleep" not in path.read_text()


def test_every_module_has_a_docstring() -> None:
    missing = [
        p.relative_to(SRC)
        for p in SRC.rglob("*.py")
        if ast.get_docstring(ast.parse(p.read_text())) is None and p.stat().st_size > 0
    ]
    assert not missing, missing
