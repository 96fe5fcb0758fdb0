"""`swapbench fleet-report`: fetched run folders of several boxes in one report, in every format, each host's
newest window, hosts of another llama.cpp build grouped apart, one verdict for the fleet."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from swapbench.core.steps import SwapReport, SwapStatus
from swapbench.core.vram import Verdict
from swapbench.report.results_file import render_json
from tests.helpers import swapbench
from tests.unit.test_verdict import results


def window(root: Path, box: str, run_id: str, candidate_ms: float, build: str = "b11434",
           status: SwapStatus = SwapStatus.COMPLETE) -> Path:  # fmt: skip
    """A run folder as `swapbench remote fetch` leaves it in INTO/HOST/RUN_ID: nav only (no human judgment)."""
    folder = root / box / run_id
    folder.mkdir(parents=True)
    files = []
    measured = {"kinds": ("nav",), "vram": Verdict.HEALTHY}
    for res in (results("e2b", 18.4, 20, **measured), results("e4b", candidate_ms, 20, **measured)):  # type: ignore[arg-type]
        data = json.loads(render_json(res))
        data["server"]["build_info"] = build
        files.append(folder / f"results-{res.label}.json")
        files[-1].write_text(json.dumps(data))
    swap = SwapReport(run_id=run_id, status=status, checks=[], verify=[], spans=[], downtime=None,
                      results_files=[str(f) for f in files])  # fmt: skip
    (folder / "swap.json").write_text(swap.model_dump_json())
    (folder / "REMOTE.md").write_text("## Driven remotely\n")
    return folder


def test_a_fleet_in_one_report(tmp_path: Path) -> None:
    runs = tmp_path / "swapbench-remote"
    window(runs, "panda", "20261207-090000-e4b-old1", 80.0)  # an older, slower window: not the one shown
    window(runs, "panda", "20261207-100000-e4b-aaaa", 18.5)
    window(runs, "tiger", "20261207-110000-e4b-bbbb", 18.6)
    window(runs, "lynx", "20261207-120000-e4b-cccc", 18.5, build="b12000")
    out = tmp_path / "report"
    done = swapbench("fleet-report", str(runs), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "fleet-report.json").read_text())
    assert report["schema_version"] == 1
    hosts = {h["host"]: h for h in report["hosts"]}
    assert sorted(hosts) == ["lynx", "panda", "tiger"]
    assert hosts["panda"]["run_id"] == "20261207-100000-e4b-aaaa"
    assert hosts["panda"]["earlier_runs"] == ["20261207-090000-e4b-old1"]
    assert [(g["build"], g["hosts"]) for g in report["groups"]] == [("b12000", ["lynx"]),
                                                                    ("b11434", ["panda", "tiger"])]  # fmt: skip
    nav = hosts["tiger"]["workloads"][0]
    assert nav["workload"] == "nav" and nav["p50_ms"][0] is not None and nav["p50_ms"][1] is not None
    assert {h["decision"] for h in hosts.values()} == {"adopt"}  # each box's own rule, on its own figures
    assert report["verdict"] == "adopt" and "fleet: ADOPT" in done.stdout
    assert "vram_peak_mib" in hosts["lynx"] and hosts["lynx"]["vram_peak_mib"] == 6400
    markdown = (out / "fleet-report.md").read_text()
    assert "## GPU RTX 5070 Ti driver 580 · llama.cpp b11434 · 2 host(s)" in markdown
    assert "## GPU RTX 5070 Ti driver 580 · llama.cpp b12000 · 1 host(s)" in markdown
    assert "panda `20261207-090000-e4b-old1`" in markdown
    rows = list(csv.DictReader((out / "fleet-report.csv").read_text().splitlines()))
    assert [(r["host"], r["workload"]) for r in rows] == [("lynx", "nav"), ("panda", "nav"), ("tiger", "nav")]
    html = (out / "fleet-report.html").read_text()
    assert "Okabe-Ito" in html and "llama.cpp b12000" in html  # report.html's own style sheet


def test_a_host_not_restored_rejects_the_fleet(tmp_path: Path) -> None:
    runs = tmp_path / "swapbench-remote"
    window(runs, "panda", "20261207-100000-e4b-aaaa", 18.5)
    window(runs, "tiger", "20261207-110000-e4b-bbbb", 18.5, status=SwapStatus.RESTORE_FAILED)
    done = swapbench("fleet-report", str(runs), "--out", str(tmp_path / "report"), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["verdict"] == "reject" and report["reasons"][0] == "production was NOT restored on tiger"


def test_no_run_folder_is_a_clear_error(tmp_path: Path) -> None:
    done = swapbench("fleet-report", str(tmp_path), "--out", str(tmp_path / "report"))
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"no run folder under {tmp_path}" in done.stderr and "Traceback" not in done.stderr
