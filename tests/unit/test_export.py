"""Exports and `--json` as a user runs them (the real CLI in a subprocess): the CSV read back with the standard
library's csv and checked cell by cell against the results JSON, JSON lines alike, and every `--json` alone on
stdout with its schema_version and the command's own exit code."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from swapbench.cli import export_command
from swapbench.core.results import (
    Exchange,
    ImageInfo,
    ParseOutcome,
    Results,
    Sample,
    ServerTimings,
    ThinkingLeak,
    Usage,
)  # fmt: skip
from swapbench.core.steps import SwapReport, SwapStatus
from swapbench.errors import DecisionExit, InputError, PreflightFailed
from swapbench.report.export import COLUMNS
from swapbench.report.results_file import render_json
from tests.conftest import DEMO_IMAGE
from tests.unit.test_verdict import results

FRAMES = [ImageInfo(path=f"{n}.jpg", sha256=n * 64, bytes=1, format="JPEG", width=640, height=480) for n in "ab"]


def swapbench(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The real CLI; its output decoded as written (text=True would turn a \\r inside a CSV cell into \\n)."""
    done = subprocess.run([sys.executable, "-m", "swapbench", *map(str, args)], capture_output=True, timeout=120,
                          check=False)  # fmt: skip
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def odd_warmup() -> list[Sample]:
    """What a warm-up can hold: an HTTP error, and a cut answer with a leak, a newline, a comma, a tab, quotes."""
    failed = Exchange(latency_ms=5.5, http_status=500, error='HTTP 500: "boom", again')
    text = 'line one\r\nline two, with a comma\tand a tab "quoted" ünïcode\n'
    cut = Exchange(latency_ms=30.0, ttft_ms=4.5, http_status=200, content=text, reasoning_content="<think>hm",
                   finish_reason="length", usage=Usage(prompt_tokens=10, completion_tokens=0, cached_tokens=3),
                   timings=ServerTimings(cache_n=3, prompt_n=7, prompt_ms=1.5, predicted_n=0, predicted_ms=0.0),
                   reconnects=1)  # fmt: skip
    return [
        Sample(index=0, offset_ms=0.0, exchange=failed, parse=ParseOutcome(strategy=None, error="request failed")),
        Sample(index=1, offset_ms=7.25, exchange=cut, parse=ParseOutcome(strategy=3, schema_ok=False, error="loose"),
               thinking_leak=ThinkingLeak(marker="<think>", where="reasoning_content"), frame=1, degenerate="cut"),
    ]  # fmt: skip


def varied(label: str, base_ms: float, started_at: str) -> Results:
    res = results(label, base_ms, adherent=4, n=6)
    nav = res.workloads[0].model_copy(update={"warmup": odd_warmup()})
    provenance = res.provenance.model_copy(update={"started_at": started_at})
    server = res.server.model_copy(update={"model_path": f"/models/{label}.gguf"})
    return res.model_copy(update={"workloads": [nav, *res.workloads[1:]], "frames": FRAMES,
                                  "provenance": provenance, "server": server})  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder as `swapbench run` leaves it: baseline, candidate, the baseline again after, swap.json."""
    folder = tmp_path_factory.mktemp("run")
    written = {
        "results-e2b.json": varied("e2b", 18.4, "2026-11-29T09:00:01+00:00"),
        "results-e4b.json": varied("e4b", 24.0, "2026-11-29T09:00:02+00:00"),
        "results-e2b.after.json": varied("e2b", 18.5, "2026-11-29T09:00:03+00:00"),
    }
    for name, res in written.items():
        (folder / name).write_text(render_json(res))
    swap = SwapReport(run_id="r1", status=SwapStatus.COMPLETE, checks=[], verify=[], spans=[], downtime=None,
                      results_files=[str(folder / "results-e2b.json"), str(folder / "results-e4b.json")],
                      drift_files=[str(folder / "results-e2b.after.json")])  # fmt: skip
    (folder / "swap.json").write_text(swap.model_dump_json())
    return folder


def expected_row(name: str, res: dict[str, Any], work: dict[str, Any], s: dict[str, Any], warmup: bool) -> list[Any]:
    """The columns, read straight from the results JSON (not through swapbench's models)."""
    ex, info = s["exchange"], work["workload"]
    usage, t, parse, leak = ex["usage"] or {}, ex["timings"] or {}, s["parse"] or {}, s["thinking_leak"] or {}
    decode = t["predicted_n"] * 1000 / t["predicted_ms"] if t.get("predicted_n") and t.get("predicted_ms") else None
    done = usage.get("completion_tokens")
    frame = res["frames"][s["frame"]]["sha256"] if s["frame"] is not None else None
    strategy = parse.get("strategy")
    return [
        2, res["run_id"], res["label"], name, name.endswith(".after.json"), res["server"]["model_path"], info["name"],
        info["kind"],
        "cached" if info["cache_prompt"] else "fresh", warmup, s["index"], s["frame"], frame, s["offset_ms"],
        ex["error"] is None, ex["error"] is None and s["degenerate"] is None, s["degenerate"], ex["error"],
        ex["http_status"], ex["finish_reason"], ex["latency_ms"], ex["ttft_ms"], usage.get("prompt_tokens"), done,
        usage.get("cached_tokens"), t.get("prompt_n"), t.get("cache_n"), t.get("prompt_ms"), t.get("predicted_n"),
        t.get("predicted_ms"), decode, done * 1000 / ex["latency_ms"] if done else None, ex["reconnects"],
        strategy, parse.get("schema_ok"), strategy in (1, 2) and parse.get("schema_ok") is not False if parse else None,
        parse.get("error"), s["item"], s["scores"], bool(leak), leak.get("where"), ex["content"],
        ex["reasoning_content"],
    ]  # fmt: skip


def expected_rows(folder: Path, names: list[str]) -> list[list[Any]]:
    rows = []
    for name in names:
        res = json.loads((folder / name).read_text())
        for work in res["workloads"]:
            rows += [expected_row(name, res, work, s, True) for s in work["warmup"]]
            rows += [expected_row(name, res, work, s, False) for s in work["samples"]]
    return rows


def same_cell(cell: str, value: Any) -> bool:
    """A CSV cell holds the value: empty for null, true/false, an int as written, a float read back exactly."""
    if value is None or isinstance(value, bool):
        return cell == {None: "", True: "true", False: "false"}[value]
    if isinstance(value, dict):
        return bool(json.loads(cell) == value)
    if isinstance(value, float):
        return float(cell) == value
    return cell == str(value)


MEASURED_ORDER = ["results-e2b.json", "results-e4b.json", "results-e2b.after.json"]


def test_the_csv_read_with_the_csv_module_holds_every_sample_of_the_json(run_dir: Path) -> None:
    done = swapbench("export", run_dir)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    header, *rows = list(csv.reader(io.StringIO(done.stdout, newline="")))
    assert header == list(COLUMNS)
    expected = expected_rows(run_dir, MEASURED_ORDER)
    assert len(rows) == len(expected) == 3 * (2 + 6 + 6)
    for row, want in zip(rows, expected, strict=True):
        bad = [(c, cell, v) for c, cell, v in zip(COLUMNS, row, want, strict=True) if not same_cell(cell, v)]
        assert not bad, bad
    after = [row[COLUMNS.index("after_window")] for row in rows]
    assert after == ["false"] * 28 + ["true"] * 14  # the baseline measured again: told apart from the first e2b
    cut = rows[1]
    assert cut[COLUMNS.index("content")] == 'line one\r\nline two, with a comma\tand a tab "quoted" ünïcode\n'
    assert (cut[COLUMNS.index("degenerate")], cut[COLUMNS.index("thinking_leak_where")]) == ("cut", "reasoning_content")


def test_jsonl_of_results_files_has_the_same_rows_typed(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "samples.jsonl"
    done = swapbench("export", run_dir / "results-e4b.json", "--format", "jsonl", "--output", out)
    assert (done.returncode, done.stdout) == (0, f"exported 14 samples to {out}\n"), done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [list(line) for line in lines] == [list(COLUMNS)] * 14
    assert [list(line.values()) for line in lines] == expected_rows(run_dir, ["results-e4b.json"])


def test_export_refusals_are_input_errors_with_what_to_do(run_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "file").write_text("")
    for args, message in [
        ((empty,), f"error: {empty} holds no results-*.json files"),
        ((tmp_path / "missing.json",), f"error: results file {tmp_path / 'missing.json'} does not exist"),
        ((run_dir, "-o", tmp_path / "file" / "out.csv"), f"error: cannot write {tmp_path / 'file' / 'out.csv'}: "),
    ]:
        done = swapbench("export", *args)
        assert (done.returncode, done.stdout) == (InputError.exit_code, ""), done.stderr
        assert done.stderr.startswith(message) and "what to do: " in done.stderr, done.stderr


def test_the_help_lists_every_column_in_order() -> None:
    doc = " ".join((export_command.__doc__ or "").split())
    listed = doc.split("Columns, in order (units in the names): ")[1].rstrip(".").split(", ")
    assert listed == list(COLUMNS)


def test_summary_of_a_run_folder_as_json_is_its_targets_baseline_first(run_dir: Path) -> None:
    done = swapbench("summary", run_dir, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["schema_version"] == 1
    assert [t["label"] for t in summary["targets"]] == ["e2b", "e4b"]
    nav = summary["targets"][1]["workloads"][0]
    metrics = nav["metrics"]
    assert (nav["workload"], nav["cache_mode"], metrics["samples"], metrics["ok"]) == ("nav", "cached", 6, 6)


def test_compare_json_is_the_comparison_record(run_dir: Path) -> None:
    done = swapbench("compare", run_dir / "results-e2b.json", run_dir / "results-e4b.json", "--json")
    assert done.returncode == 0, done.stderr
    comparison = json.loads(done.stdout)
    assert (comparison["schema_version"], comparison["baseline"], comparison["candidate"]) == (1, "e2b", "e4b")
    assert [w["workload"] for w in comparison["workloads"]] == ["nav", "describe"]


def test_decide_json_keeps_the_decision_exit_code(run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("results-e2b.json", "results-e4b.json", "swap.json"):
        (folder / name).write_text((run_dir / name).read_text())
    done = swapbench("decide", folder, "--describe", "worse", "--json")
    decided = json.loads(done.stdout)
    assert (done.returncode, decided["schema_version"]) == (DecisionExit.REJECT, 1), done.stderr
    assert decided["decision"]["status"] == "reject" and decided["report"] == str(folder / "report.md")
    written = {Path(d["path"]).name: d["change"] for d in decided["documents"]}
    assert written == {"decision.json": "created", "comparison.json": "created", "report.md": "created",
                       "report.html": "created"}  # fmt: skip
    assert json.loads((folder / "decision.json").read_text())["schema_version"] == 1
    assert json.loads((folder / "comparison.json").read_text())["schema_version"] == 1


def test_check_json_fails_with_exit_6_and_json_alone_on_stdout(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(f"""
[run]
output_dir = "{tmp_path / "out"}"
[image]
path = "{DEMO_IMAGE}"
[[workloads]]
name = "describe"
kind = "describe"
[[services]]
name = "phone"
manager = "process"
pattern = "swapbench-test-export-no-such-process"
[baseline]
label = "prod"
url = "http://127.0.0.1:9"
""")
    done = swapbench("check", plan, "--json")
    report = json.loads(done.stdout)
    assert (done.returncode, report["schema_version"], report["ok"]) == (PreflightFailed.exit_code, 1, False)
    assert [c["name"] for c in report["checks"] if c["status"] == "fail"] == ["service phone up now"]
    assert "error: 1 contract(s) failed" in done.stderr
    dry = swapbench("check", plan, "--dry-run", "--json")
    steps = json.loads(dry.stdout)["steps"]
    assert dry.returncode == 0 and steps[0]["phase"] == "check"


def test_the_results_schema_validates_a_results_file_and_refuses_a_damaged_one(run_dir: Path) -> None:
    done = swapbench("results-schema")
    schema = json.loads(done.stdout)
    data = json.loads((run_dir / "results-e4b.json").read_text())
    jsonschema.validate(data, schema)
    data["workloads"][0]["samples"][0]["exchange"]["latency_ms"] = "fast"
    with pytest.raises(jsonschema.ValidationError, match="'fast' is not of type 'number'"):
        jsonschema.validate(data, schema)
