"""`swapbench history`: run folders indexed into a real SQLite file and listed by host, model and outcome; a
damaged database moved aside and rebuilt from the folders; a newer schema refused; an older one migrated."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from swapbench.core.steps import SwapReport, SwapStatus
from swapbench.host.history_db import SCHEMA_VERSION
from tests.helpers import swapbench
from tests.unit.test_damaged_records import run_folder


def fleet(root: Path) -> tuple[Path, Path, Path]:
    """Three run folders: two fetched from boxes (INTO/HOST/RUN_ID with REMOTE.md), one of them not restored,
    and one local."""
    (root / "remote" / "panda").mkdir(parents=True)
    (root / "remote" / "tiger").mkdir(parents=True)
    panda = run_folder(root / "remote" / "panda" / "20261207-100000-e4b-aaaa")
    tiger = run_folder(root / "remote" / "tiger" / "20261207-110000-e4b-bbbb")
    for box in (panda, tiger):
        (box / "REMOTE.md").write_text("## Driven remotely\n")
    swap = SwapReport.model_validate_json((tiger / "swap.json").read_text())
    (tiger / "swap.json").write_text(swap.model_copy(update={"status": SwapStatus.RESTORE_FAILED}).model_dump_json())
    (root / "local").mkdir()
    local = run_folder(root / "local" / "20261207-120000-e4b-cccc")
    return panda, tiger, local


def listed(*args: str) -> dict[str, object]:
    done = swapbench("history", *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    found: dict[str, object] = json.loads(done.stdout)
    return found


def runs(found: dict[str, object]) -> list[tuple[str, str, str]]:
    entries = found["runs"]
    assert isinstance(entries, list)
    return [(e["host"], e["run_id"], e["outcome"]) for e in entries]


def test_runs_are_indexed_and_listed_by_host_model_and_outcome(tmp_path: Path) -> None:
    panda, tiger, local = fleet(tmp_path / "runs")
    db = str(tmp_path / "history.sqlite")
    found = listed(str(tmp_path / "runs"), "--db", db)
    assert (found["schema_version"], found["total"], found["notes"], found["skipped"]) == (1, 3, [], [])
    hostname = json.loads((local / "results-e4b.json").read_text())["host"]["hostname"]
    assert sorted(runs(found)) == sorted([("panda", panda.name, "complete"), ("tiger", tiger.name, "not-restored"),
                                          (hostname, local.name, "complete")])  # fmt: skip
    entries = found["runs"]
    assert isinstance(entries, list)
    entry = next(e for e in entries if e["host"] == "panda")
    assert (entry["baseline"], entry["candidates"], entry["window"]["exit_code"]) == ("e2b", ["e4b"], 0)
    assert runs(listed("--db", db, "--host", "tiger")) == [("tiger", tiger.name, "not-restored")]
    assert len(runs(listed("--db", db, "--model", "E4B"))) == 3 and runs(listed("--db", db, "--model", "e9b")) == []
    assert [r[0] for r in runs(listed("--db", db, "--outcome", "complete"))] == [hostname, "panda"]  # newest first
    # indexed again: replaced, not doubled
    assert listed(str(tmp_path / "runs" / "remote"), "--db", db)["total"] == 3
    shown = swapbench("history", "--db", db)
    assert shown.returncode == 0 and "history: 3 run(s) in " in shown.stdout and "not-restored" in shown.stdout


def test_a_damaged_database_is_moved_aside_and_rebuilt_from_the_folders(tmp_path: Path) -> None:
    fleet(tmp_path / "runs")
    db = tmp_path / "history.sqlite"
    listed(str(tmp_path / "runs" / "remote"), "--db", str(db))
    listed(str(tmp_path / "runs" / "local"), "--db", str(db))
    db.write_bytes(b"not a database, years of notes" * 100)
    found = listed("--db", str(db))
    aside = next(tmp_path.glob("history.sqlite.damaged-*"))
    assert aside.read_bytes().startswith(b"not a database, years of notes")  # kept, never deleted
    notes = found["notes"]
    assert isinstance(notes, list) and len(notes) == 2
    assert notes[0].startswith(f"the history {db} could not be read (file is not a database): kept as {aside}")
    assert notes[1] == f"rebuilt: 3 run(s) from the 2 folder(s) listed in {tmp_path / 'history.roots'}"
    assert found["total"] == 3
    shown = swapbench("history", "--db", str(db), "--rebuild")
    assert shown.returncode == 0 and "rebuilt: 3 run(s) from the 2 folder(s)" in shown.stderr


def test_the_schema_version_is_checked_and_older_files_migrated(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    refused = swapbench("history", "--db", str(newer))
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert f"has schema version {SCHEMA_VERSION + 1}; this swapbench reads up to {SCHEMA_VERSION}" in refused.stderr
    assert "`swapbench history --rebuild`" in refused.stderr
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()  # version 0: an empty file, migrated to the current version
    assert listed("--db", str(empty))["total"] == 0
    with sqlite3.connect(empty) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE runs (x)")
        db.execute("PRAGMA user_version = 1")
    db.close()
    found = listed("--db", str(foreign))
    assert "its runs table has columns ['x'], not swapbench's" in str(found["notes"])
