"""The document updaters on real files: run twice, the document changes once; `report` and `decide` name each
document with what became of it, and leave the documents of a moved or copied run folder alone unless asked."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

from swapbench.app import verdict
from swapbench.core.decision import Judgment
from swapbench.core.steps import SwapReport, SwapStatus
from swapbench.report.docs import Change, update_registry, update_research
from swapbench.report.results_file import render_json
from tests.unit.test_verdict import results

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


# --- `report` and `decide` on a run folder: each document named with what became of it ---------------------------

RUN_ID = "20261129-094424-panda-swap-1"
PLAN = """
[run]
output_dir = "runs"

[image]
path = "car-view.jpg"

[[workloads]]
name = "nav"
kind = "nav"

[[workloads]]
name = "describe"
kind = "describe"

[baseline]
label = "e2b"
url = "http://127.0.0.1:11435"

[report]
research_doc = "docs/RESEARCH.md"
registry_doc = "docs/REGISTRY.md"
"""


def written_run(home: Path) -> Path:
    """A run folder where `swapbench run` left it: PLAN_DIR/runs/RUN_ID beside the plan that ran (whose path its
    results record), with the plan's copy, two results files, swap.json and a registry kept by hand."""
    plan = home / "plan.toml"
    home.mkdir(parents=True)
    plan.write_text(PLAN)
    folder = home / "runs" / RUN_ID
    folder.mkdir(parents=True)
    (folder / "plan.toml").write_text(PLAN)
    files = []
    for res in (results("e2b", 18.4, 20), results("e4b", 24.0, 20)):
        provenance = res.provenance.model_copy(update={"plan_path": str(plan)})
        files.append(folder / f"results-{res.label}.json")
        files[-1].write_text(render_json(res.model_copy(update={"run_id": RUN_ID, "provenance": provenance})))
    swap = SwapReport(run_id=RUN_ID, status=SwapStatus.COMPLETE, checks=[], verify=[], spans=[], downtime=None,
                      results_files=[str(f) for f in files])  # fmt: skip
    (folder / "swap.json").write_text(swap.model_dump_json())
    (home / "docs").mkdir()
    (home / "docs" / "REGISTRY.md").write_text(REGISTRY)
    return folder


def changes(written: verdict.ReportWritten) -> list[tuple[str, Change]]:
    return [(str(d.path), d.change) for d in written.documents]


def test_report_names_each_document_created_updated_or_unchanged(tmp_path: Path) -> None:
    folder = written_run(tmp_path / "home")
    docs = tmp_path / "home" / "docs"
    own = [str(folder / name) for name in ("comparison.json", "report.md", "report.html")]
    first = verdict.report_folder(folder)
    assert changes(first) == [*((path, Change.CREATED) for path in own), (str(docs / "RESEARCH.md"), Change.CREATED),
                              (str(docs / "REGISTRY.md"), Change.UPDATED)]  # fmt: skip
    assert first.left_alone is None and f"(run {RUN_ID})" in (docs / "REGISTRY.md").read_text()
    again = verdict.report_folder(folder)  # the same results: not a byte changes, report.html's plots included
    assert {c for _, c in changes(again)} == {Change.UNCHANGED} and len(again.documents) == 5


def test_a_copied_run_folder_leaves_the_original_documents_alone_unless_asked(tmp_path: Path) -> None:
    original = written_run(tmp_path / "home")
    docs = tmp_path / "home" / "docs"
    copy = tmp_path / "elsewhere" / RUN_ID
    shutil.copytree(original, copy)
    before = (docs / "REGISTRY.md").read_text()
    written = verdict.report_folder(copy)
    assert changes(written)[-2:] == [(str(docs / "RESEARCH.md"), Change.LEFT_ALONE),
                                     (str(docs / "REGISTRY.md"), Change.LEFT_ALONE)]  # fmt: skip
    assert (docs / "REGISTRY.md").read_text() == before and not (docs / "RESEARCH.md").exists()
    assert written.left_alone == (
        f"this run folder was written at {original}, not here: the plan's [report] documents outside it were left "
        f"alone; to update them from here: swapbench report {copy} --update-moved-docs")  # fmt: skip
    assert (copy / "report.md").exists() and not (original / "report.md").exists()  # its own report: written
    asked = verdict.report_folder(copy, update_moved_docs=True)
    assert changes(asked)[-2:] == [(str(docs / "RESEARCH.md"), Change.CREATED),
                                   (str(docs / "REGISTRY.md"), Change.UPDATED)]  # fmt: skip
    assert asked.left_alone is None


def test_decide_names_the_judgment_it_recorded_and_leaves_a_copy_s_documents_alone(tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / RUN_ID
    shutil.copytree(written_run(tmp_path / "home"), copy)
    written = verdict.record_judgment(copy, Judgment.BETTER, "sharper")
    assert changes(written)[0] == (str(copy / "decision.json"), Change.CREATED)
    assert {c for _, c in changes(written)[-2:]} == {Change.LEFT_ALONE} and written.left_alone is not None
    assert written.decision is not None and "met: describe judged better" in written.decision.reasons


def test_the_pending_hint_names_the_run_folder_quoted_for_the_shell(tmp_path: Path) -> None:
    folder = written_run(tmp_path / "my runs")  # a space: pasted unquoted, the command would name two folders
    written = verdict.report_folder(folder)
    hint = f"open: describe outputs not judged yet: `swapbench decide '{folder}' --describe better` (or same, or worse)"
    assert written.decision is not None and hint in written.decision.reasons
    assert hint.removeprefix("open: ") in (folder / "report.md").read_text()
    page = html.unescape((folder / "report.html").read_text())
    assert f"swapbench decide '{folder}' --describe worse\n" in page
