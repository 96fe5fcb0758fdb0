"""`swapbench report` as a user runs it, on a copied run folder: one line per document with what became of it, the
original's [report] documents left alone with the way to update them, and updated when asked."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import swapbench
from tests.unit.test_docs_update import RUN_ID, written_run


def test_the_cli_prints_each_document_and_how_to_update_a_moved_folder_s(tmp_path: Path) -> None:
    original = written_run(tmp_path / "home")
    copy = tmp_path / "elsewhere" / RUN_ID
    shutil.copytree(original, copy)
    docs = tmp_path / "home" / "docs"
    done = swapbench("report", str(copy))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"created:    {copy / 'report.html'}" in lines
    assert f"left alone: {docs / 'REGISTRY.md'}" in lines
    assert lines[-1] == (f"note: this run folder was written at {original}, not here: the plan's [report] documents "
                         f"outside it were left alone; to update them from here: swapbench report {copy} "
                         "--update-moved-docs")  # fmt: skip
    asked = swapbench("report", str(copy), "--update-moved-docs")
    assert asked.returncode == 0, asked.stderr
    assert f"unchanged:  {copy / 'report.html'}" in asked.stdout.splitlines()
    assert f"updated:    {docs / 'REGISTRY.md'}" in asked.stdout.splitlines() and "note:" not in asked.stdout


def test_decide_prints_the_judgment_file_and_leaves_a_copy_s_documents_alone(tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / RUN_ID
    shutil.copytree(written_run(tmp_path / "home"), copy)
    registry = tmp_path / "home" / "docs" / "REGISTRY.md"
    before = registry.read_text()
    done = swapbench("decide", str(copy), "--describe", "better")
    lines = done.stdout.splitlines()
    # the default rule gates on VRAM in band, and these results measured none: INCONCLUSIVE (22)
    assert done.returncode == 22 and lines[0] == "decision: INCONCLUSIVE", done.stdout + done.stderr
    assert f"created:    {copy / 'decision.json'}" in lines and f"left alone: {registry}" in lines
    assert registry.read_text() == before
