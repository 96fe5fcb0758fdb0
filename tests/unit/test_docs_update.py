"""The document updaters on real files: run twice, the document changes once."""

from __future__ import annotations

from pathlib import Path

from swapbench.report.docs import update_registry, update_research

RESEARCH = """# Gemma 4 E4B quantizations

Variants catalogued in session 101.

## Benchmarks

No benchmarks exist yet for E4B on Panda.

## Sources
"""

REGISTRY = """# Resource registry

## Active Models

(hand-kept table)

## Change Log

- 2026-04-01 E2B moved to llama.cpp (session 67)
"""


def apply_twice(path: Path, update: object) -> list[str]:
    versions = []
    for _ in range(2):
        text = path.read_text() if path.exists() else None
        path.write_text(update(text))  # type: ignore[operator]
        versions.append(path.read_text())
    return versions


def test_research_placeholder_replaced_once(tmp_path: Path) -> None:
    doc = tmp_path / "RESEARCH.md"
    doc.write_text(RESEARCH)
    first, second = apply_twice(doc, lambda t: update_research(t, "x", "| p50 | 24.0 ms |"))
    assert first == second
    assert "No benchmarks exist yet" not in first and "| p50 | 24.0 ms |" in first
    assert first.index("## Benchmarks") < first.index("24.0 ms") < first.index("## Sources")


def test_research_section_replaced_by_a_later_run_and_new_doc_created(tmp_path: Path) -> None:
    doc = tmp_path / "RESEARCH.md"
    apply_twice(doc, lambda t: update_research(t, "E4B research", "run A"))
    later = update_research(doc.read_text(), "E4B research", "run B")
    assert later.startswith("# E4B research") and "run B" in later and "run A" not in later


def test_registry_row_peak_and_change_log_once_per_run(tmp_path: Path) -> None:
    doc = tmp_path / "REGISTRY.md"
    doc.write_text(REGISTRY)

    def run(text: str | None, run_id: str = "r1", peak: str = "6.25 GiB") -> str:
        row = f"| gemma-4-E4B | {peak} | 24.0 ms | 100% | {run_id} |"
        return update_registry(text, "gemma-4-E4B", row, f"Steady-state peak: 15.6 GiB ({run_id})", run_id,
                               "2026-11-26 benchmarked gemma-4-E4B: PENDING")  # fmt: skip

    first, second = apply_twice(doc, run)
    assert first == second
    assert first.count("(run r1)") == 1 and first.count("| gemma-4-E4B |") == 1
    assert first.index("(run r1)") < first.index("E2B moved")  # newest entry first
    third = run(first, "r2", "6.40 GiB")
    assert third.count("| gemma-4-E4B |") == 1 and "6.40 GiB" in third and "6.25 GiB" not in third
    assert third.count("(run r") == 2 and "(hand-kept table)" in third
    decided = update_registry(third, "gemma-4-E4B", "| gemma-4-E4B | 6.40 GiB | 24.0 ms | 100% | r2 |", "peak", "r2",
                              "2026-11-26 benchmarked gemma-4-E4B: ADOPT")  # fmt: skip
    assert decided.count("(run r2)") == 1 and "ADOPT (run r2)" in decided
