"""Every JSON record swapbench writes carries a schema_version; a record written before versions (none) reads as
version 1, and one from a newer swapbench is refused with what to do, never misread."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from swapbench.app import verdict
from swapbench.core.compare import compare
from swapbench.core.decision import Judgment
from swapbench.core.phases import Phase
from swapbench.core.results import ADHERENCE
from swapbench.errors import InputError, JournalError
from swapbench.host.window.journal import Journal, read_journal
from swapbench.host.window.lock import WindowLock
from swapbench.report.results_file import read_results, reanalysed
from swapbench.report.terminal import downtime_line
from tests.unit.test_damaged_records import edit_json, run_folder


def test_the_run_folder_records_carry_their_version(tmp_path: Path) -> None:
    folder = run_folder(tmp_path / "run")
    verdict.record_judgment(folder, Judgment.SAME, None)
    for name in ("swap.json", "comparison.json", "decision.json", "results-e4b.json"):
        version = json.loads((folder / name).read_text())["schema_version"]
        assert version == {"swap.json": 3}.get(name, 3 if name.startswith("results") else 1), name


def test_the_journal_and_the_lock_carry_their_version(tmp_path: Path) -> None:
    journal = Journal.begin(tmp_path / "j.jsonl", run_id="r1")
    journal.intent(Phase.STOP, "tts", undo="start")
    begin = read_journal(tmp_path / "j.jsonl").records[0]
    assert (begin["type"], begin["schema_version"], begin["run_id"]) == ("begin", 1, "r1")
    lock = WindowLock(tmp_path)
    lock.acquire("run", "r1")
    try:
        owner = json.loads(lock.path.read_text())
    finally:
        lock.release()
    assert (owner["schema_version"], owner["role"], owner["run_id"]) == (1, "run", "r1")


def drop_version(data: dict[str, object]) -> None:
    del data["schema_version"]


def test_records_written_before_versions_read_as_version_1(tmp_path: Path) -> None:
    folder = run_folder(tmp_path / "run")
    verdict.record_judgment(folder, Judgment.BETTER, "sharper")
    edit_json(folder / "swap.json", drop_version)
    edit_json(folder / "decision.json", drop_version)
    opened = verdict.RunFolder.open(folder)
    assert opened.swap is not None and opened.swap.schema_version == 3  # read as the layout written now
    assert opened.judgment() == (Judgment.BETTER, "sharper")
    (tmp_path / "old.jsonl").write_text('{"seq":1,"type":"begin","run_id":"r0"}\n')
    assert read_journal(tmp_path / "old.jsonl").run_id == "r0"


VERSION_1_SWAP = {  # a swap.json as swapbench wrote it before the prepare step: overhead_s held stop and drain
    "schema_version": 1, "run_id": "r0", "status": "complete", "checks": [], "verify": [],
    "spans": [{"phase": "stop", "start_s": 1.0, "end_s": 2.0}, {"phase": "verify", "start_s": 9.0, "end_s": 10.0}],
    "downtime": {"total_s": 9.0, "load_s": 2.0, "bench_s": 3.0, "restore_s": 2.5, "overhead_s": 1.5},
}  # fmt: skip


def test_a_swap_report_of_version_1_reads_with_its_overhead_unsplit(tmp_path: Path) -> None:
    folder = run_folder(tmp_path / "run")
    edit_json(folder / "swap.json", lambda data: data.update(VERSION_1_SWAP))  # its results files kept
    swap = verdict.RunFolder.open(folder).swap
    assert swap is not None and swap.schema_version == 3 and swap.prepare == []
    assert swap.downtime is not None and (swap.downtime.overhead_s, swap.downtime.stop_s, swap.downtime.own_s) == (
        1.5, None, None)  # fmt: skip
    assert downtime_line(swap.downtime) == (
        "production downtime 9.0 s = load 2.0 + bench 3.0 + restore 2.5 + other 1.5 (stop, drain, swapbench)"
    )


def set_version(version: object) -> Callable[[dict[str, object]], None]:
    return lambda data: data.update(schema_version=version)


UPGRADE, ALTERED = "it was written by a newer swapbench: upgrade", "the file was altered"
NEWER = [
    ("swap.json", 4, "swap report {p} has schema_version 4, newer than this swapbench", UPGRADE),
    ("decision.json", 7, "recorded judgment {p} has schema_version 7, newer than this swapbench", UPGRADE),
    ("swap.json", "1", "swap report {p} has schema_version '1', not a version swapbench writes", ALTERED),
    ("decision.json", 0, "recorded judgment {p} has schema_version 0, not a version swapbench writes", ALTERED),
]


@pytest.mark.parametrize(("file", "version", "message", "hint"), NEWER, ids=[f"{n[0]} {n[1]!r}" for n in NEWER])
def test_a_record_of_a_newer_or_unknown_version_is_refused(
    tmp_path: Path, file: str, version: object, message: str, hint: str
) -> None:
    folder = run_folder(tmp_path / "run")
    verdict.record_judgment(folder, Judgment.BETTER, None)
    edit_json(folder / file, set_version(version))
    with pytest.raises(InputError) as caught:
        verdict.RunFolder.open(folder).judgment()
    assert caught.value.message.startswith(message.format(p=folder / file)), caught.value.message
    assert caught.value.hint.startswith(hint), caught.value.hint


def test_a_journal_a_newer_swapbench_began_is_refused_with_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"seq":1,"type":"begin","schema_version":2,"run_id":"r9"}\n{"seq":2,"type":"end"}\n')
    with pytest.raises(JournalError) as caught:
        read_journal(path)
    assert caught.value.message == f"journal {path} has schema_version 2; this swapbench reads 1"
    assert "swapbench rollback PLAN" in caught.value.hint


def test_a_results_file_of_version_2_reads_with_the_scores_its_parse_outcomes_give() -> None:
    """tests/golden/results-v2.json was written by the demo before the workload kinds' scores (schema 2): a nav
    sample's adherence becomes its score, the figure and the comparison row follow, and re-analysis agrees."""
    path = Path(__file__).resolve().parents[1] / "golden" / "results-v2.json"
    assert json.loads(path.read_text())["schema_version"] == 2
    old = read_results(path)
    nav, cached, describe = old.workloads
    for w in (nav, cached):
        assert w.workload.scores == [ADHERENCE]
        assert all(s.parse is not None and s.scores == {"adheres": s.parse.adheres} for s in w.samples)
        assert w.metrics.scores["adheres"].share == w.metrics.schema_adherence == 1.0
    assert describe.workload.scores == [] and all(s.scores == {} for s in describe.samples)
    again = reanalysed(old)
    assert [w.metrics for w in again.workloads] == [w.metrics for w in old.workloads]
    row = next(r for r in compare(old, old).workloads[0].rows if r.metric == "schema adherence")
    assert (row.baseline, row.candidate, row.share) == (1.0, 1.0, True)
