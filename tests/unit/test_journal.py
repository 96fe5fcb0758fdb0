"""The write-ahead journal on real files: records in order, an open journal blocks a new one, a torn last line
is dropped and cut off before appending, damage elsewhere is refused with a way out."""

from __future__ import annotations

from pathlib import Path

import pytest

from swapbench.app.swap import window_plan
from swapbench.core.phases import Phase
from swapbench.errors import JournalError, PlanError
from swapbench.host.window.journal import Journal, read_journal
from swapbench.plan.load import load_plan


def test_records_and_close(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal.begin(path, run_id="r1")
    journal.intent(Phase.STOP, "tts", undo="start")
    journal.done(Phase.STOP, "tts")
    archived = journal.end("complete", archive_to=tmp_path / "run" / "journal.jsonl")
    assert not path.exists()
    state = read_journal(archived)
    assert state.closed and state.run_id == "r1"
    assert [r["type"] for r in state.records] == ["begin", "intent", "done", "end"]
    assert [r["seq"] for r in state.records] == [1, 2, 3, 4]


def test_open_journal_blocks_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    Journal.begin(path, run_id="r1").intent(Phase.STOP, "tts", undo="start")
    with pytest.raises(JournalError, match="unfinished run \\(r1\\)") as info:
        Journal.begin(path, run_id="r2")
    assert "swapbench rollback" in info.value.hint


def test_torn_tail_is_dropped_then_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    Journal.begin(path, run_id="r1").intent(Phase.STOP, "tts", undo="start")
    with path.open("ab") as f:
        f.write(b'{"seq":3,"type":"do')
    state = read_journal(path)
    assert state.torn_tail and len(state.records) == 2
    resumed = Journal.resume(path)
    resumed.done(Phase.RESTORE, "tts")
    again = read_journal(path)
    assert not again.torn_tail and [r["type"] for r in again.records] == ["begin", "intent", "done"]


def test_damage_in_the_middle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"type":"begin","run_id":"r"}\nnot json\n{"type":"end"}\n')
    with pytest.raises(JournalError, match="damaged at line 2") as info:
        read_journal(path)
    assert "rollback" in info.value.hint


def test_missing_journal_is_empty(tmp_path: Path) -> None:
    state = read_journal(tmp_path / "none.jsonl")
    assert state.records == [] and not state.closed


def test_a_record_nested_too_deeply_is_damage_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    Journal.begin(path, run_id="r1").intent(Phase.STOP, "tts", undo="start")
    with path.open("a") as f:
        f.write("[" * 100_000 + "\n" + '{"seq": 4, "type": "done"}\n')
    with pytest.raises(JournalError, match="is damaged at line 3"):
        read_journal(path)


OLD_STYLE_PLAN = """
[run]
samples = "2"
[image]
path = "car.jpg"
[[workloads]]
name = "nav"
kind = "nav"
"""


def test_the_watchdog_reads_the_window_s_plan_copy_leniently(tmp_path: Path) -> None:
    """A run started by a swapbench that accepted `samples = "2"`: its watchdog (started from whatever swapbench is
    installed when it fires) must still restore production, so the copy is read as leniently as rollback reads."""
    journal = Journal.begin(tmp_path / "journal.active.jsonl", run_id="r1")
    journal.intent(Phase.STOP, "tts", undo="start")
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "plan.toml").write_text(OLD_STYLE_PLAN)
    loaded = window_plan(tmp_path / "plan.toml", journal.path)
    assert loaded.path == (tmp_path / "r1" / "plan.toml").resolve() and loaded.plan.run.samples == 2
    with pytest.raises(PlanError, match=r"run\.samples: must be an integer, not a string"):
        load_plan(tmp_path / "r1" / "plan.toml")  # a run, by contrast, is refused: the plan must be fixed
