"""Every file swapbench reads back (results, swap.json, decision.json) goes through one door: damage it any way
you can and the answer is an InputError naming the file and what is wrong, never a third-party exception."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from swapbench.app import verdict
from swapbench.core.decision import Judgment
from swapbench.core.steps import SwapReport, SwapStatus
from swapbench.errors import InputError, PlanError
from swapbench.report.results_file import read_results, render_json
from tests.unit.test_verdict import results


def run_folder(path: Path) -> Path:
    """A run folder as `swapbench run` leaves it: two results files and the swap report naming them."""
    path.mkdir()
    files = []
    for res in (results("e2b", 18.4, 20), results("e4b", 24.0, 20)):
        files.append(path / f"results-{res.label}.json")
        files[-1].write_text(render_json(res))
    swap = SwapReport(run_id="r1", status=SwapStatus.COMPLETE, checks=[], verify=[], spans=[], downtime=None,
                      results_files=[str(f) for f in files])  # fmt: skip
    (path / "swap.json").write_text(swap.model_dump_json())
    return path


def edit_json(path: Path, change: Callable[[dict[str, object]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def replace_by_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def drop_samples_latency(data: dict[str, object]) -> None:
    workloads = data["workloads"]
    assert isinstance(workloads, list)
    workloads[0]["samples"][3]["exchange"]["latency_ms"] = "fast"


DAMAGE: list[tuple[str, str, Callable[[Path], object], str]] = [
    ("swap.json garbage", "swap.json", lambda p: p.write_text("garbage"), "swap report {p} is not readable JSON"),
    ("swap.json not UTF-8", "swap.json", lambda p: p.write_bytes(b"\xff\xfe{}"), "swap report {p} is not UTF-8"),
    ("swap.json a list", "swap.json", lambda p: p.write_text("[1, 2]"), "swap report {p}: (top level): Input should"),
    ("swap.json wrong field", "swap.json", lambda p: edit_json(p, lambda d: d.update(status="fine")),
     "swap report {p}: status: Input should be"),
    ("swap.json a folder", "swap.json", replace_by_folder, "swap report {p} cannot be read"),
    ("results truncated", "results-e4b.json", lambda p: p.write_text(p.read_text()[:300]),
     "results file {p} is not readable JSON"),
    ("results a sample's latency", "results-e4b.json", lambda p: edit_json(p, drop_samples_latency),
     "results file {p}: workloads.0.samples.3.exchange.latency_ms: Input should be a valid number"),
    ("results a number", "results-e4b.json", lambda p: p.write_text("5"), "results file {p} has schema_version None"),
    ("results missing", "results-e4b.json", lambda p: p.unlink(), "results file {p} does not exist"),
    ("decision.json a list", "decision.json", lambda p: p.write_text("[1]"), "recorded judgment {p}: (top level)"),
    ("decision.json a word", "decision.json", lambda p: p.write_text('{"judgment": "great"}'),
     "recorded judgment {p}: judgment: Input should be 'better', 'same' or 'worse'"),
    ("decision.json deep", "decision.json", lambda p: p.write_text("[" * 100_000), "recorded judgment {p} is not"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "file", "damage", "message"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_record_is_an_input_error_naming_the_file(
    tmp_path: Path, name: str, file: str, damage: Callable[[Path], object], message: str
) -> None:
    folder = run_folder(tmp_path / "run")
    target = folder / file
    if not target.exists():
        target.write_text("{}")
    damage(target)
    with pytest.raises(InputError) as caught:
        verdict.report_folder(folder)
    assert caught.value.message.startswith(message.format(p=target)), caught.value.message
    assert caught.value.hint


def test_a_moved_run_folder_reads_its_own_files_not_the_recorded_paths(tmp_path: Path) -> None:
    """swap.json records absolute paths; a copy of the folder must be reported from the copy's files."""
    original = run_folder(tmp_path / "run")
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    (original / "results-e4b.json").write_text("damaged where it was first written")
    written = verdict.report_folder(copy)
    assert written.report == copy / "report.md" and written.decision is not None
    assert read_results(copy / "results-e4b.json").label == "e4b"


def test_a_recorded_judgment_reads_back(tmp_path: Path) -> None:
    folder = run_folder(tmp_path / "run")
    decision = verdict.record_judgment(folder, Judgment.BETTER, "sharper").decision
    recorded = json.loads((folder / "decision.json").read_text())
    assert recorded == {"schema_version": 1, "judgment": "better", "note": "sharper", "blinded": None}
    assert decision is not None and "met: describe judged better" in decision.reasons


PLAN_COPY = """
[run]
samples = "20"
[image]
path = "car.jpg"
[[workloads]]
name = "nav"
kind = "nav"
[decision]
min_schema_adherence = "0.5"
"""


def test_a_run_folder_s_plan_copy_from_before_strict_types_still_reports(tmp_path: Path) -> None:
    """A plan that a looser swapbench ran (numbers written as strings) stays the run's rule: read leniently."""
    folder = run_folder(tmp_path / "run")
    (folder / "plan.toml").write_text(PLAN_COPY)
    assert verdict.RunFolder.open(folder).rule.min_schema_adherence == 0.5
    (folder / "plan.toml").write_text(PLAN_COPY.replace('"0.5"', '"half"'))
    with pytest.raises(PlanError) as refused:
        verdict.RunFolder.open(folder)
    assert refused.value.message.startswith(f"{folder / 'plan.toml'} (the copy of the plan this run used) no longer "
                                            "loads: plan.toml: decision.min_schema_adherence: ")  # fmt: skip
