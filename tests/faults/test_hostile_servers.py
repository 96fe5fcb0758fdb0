"""`swapbench bench` against hostile servers: the real CLI, a real socket server. Malformed answers are failed
samples, a dripping server is cut at the request's deadline, a flood is cut at the size cap; the results file
is always written, the exit code is exact, nothing is printed as markup and no traceback reaches the user."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.faults.hostile_server import MARKUP, hostile_server
from tests.helpers import swapbench

PLAN = """
[run]
samples = 3
warmup = 0
request_timeout_s = 2
stream = {stream}
output_dir = "{out}"

[[workloads]]
name = "describe"
kind = "describe"
image = false

[baseline]
label = "hostile"
url = "http://127.0.0.1:{port}"
"""

FAILS = 5  # three failed requests in a row: the server cannot be benchmarked (samples kept, status partial)


def bench(tmp_path: Path, mode: str, stream: bool = False) -> tuple[int, str, dict[str, Any], Path, float]:
    with hostile_server(mode) as port:
        plan = tmp_path / "plan.toml"
        plan.write_text(PLAN.format(stream=str(stream).lower(), out=tmp_path / "out", port=port))
        start = time.monotonic()
        run = swapbench("bench", "--plan", str(plan), "--target", "hostile", timeout_s=120)
        took = time.monotonic() - start
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    [path] = (tmp_path / "out").glob("*/results-hostile.json")
    return run.returncode, run.stdout + run.stderr, json.loads(path.read_text()), path, took


def errors(results: dict[str, Any]) -> list[str]:
    [workload] = results["workloads"]
    return [s["exchange"]["error"] for s in workload["samples"]]


@pytest.mark.parametrize(
    ("mode", "stream", "error"),
    [
        ("nonstring-content", False, "malformed answer: content is int, not text"),
        ("choices-5-stream", True, "malformed stream event: choices is int"),
        ("not-json", False, "not a chat completion (not JSON): <html>upstream error</html>"),
        ("empty-choices", False, "not a chat completion (no choices)"),
        ("invalid-utf8", False, "not a chat completion (not JSON)"),
        ("markup-error", False, MARKUP),
    ],
)
def test_malformed_answers_are_failed_samples(tmp_path: Path, mode: str, stream: bool, error: str) -> None:
    code, output, results, _, _ = bench(tmp_path, mode, stream)
    assert code == FAILS, output
    assert results["status"] == "partial"
    assert [e.startswith(error) for e in errors(results)] == [True, True, True], errors(results)
    assert "3 requests failed in a row" in output


def test_markup_in_a_server_message_prints_as_written(tmp_path: Path) -> None:
    _, output, _, _, _ = bench(tmp_path, "markup-error")
    assert MARKUP in output


def test_non_finite_timings_are_absent_not_numbers(tmp_path: Path) -> None:
    code, output, results, _, _ = bench(tmp_path, "nan-timings")
    assert code == 0, output
    [workload] = results["workloads"]
    timings = [s["exchange"]["timings"] for s in workload["samples"]]
    assert timings == [{"cache_n": None, "prompt_n": None, "prompt_ms": None, "predicted_n": 2,
                        "predicted_ms": None}] * 3  # fmt: skip


def test_text_that_is_not_utf8_safe_is_stored_repaired(tmp_path: Path) -> None:
    code, output, results, _, _ = bench(tmp_path, "surrogate-content")
    assert code == 0, output
    [workload] = results["workloads"]
    assert [s["exchange"]["content"] for s in workload["samples"]] == ["? lone surrogate"] * 3


@pytest.mark.parametrize("mode", ["drip-body", "drip-headers"])
def test_a_dripping_server_is_cut_at_the_deadline(tmp_path: Path, mode: str) -> None:
    code, output, results, _, took = bench(tmp_path, mode)
    assert code == FAILS, output
    assert errors(results) == ["no complete answer within 2 s (deadline)"] * 3
    assert took < 30  # three 2-second deadlines and a start, not three minutes of dripping


def test_a_flood_is_cut_at_the_size_cap(tmp_path: Path) -> None:
    code, output, results, path, _ = bench(tmp_path, "huge-answer")
    assert code == FAILS, output
    assert errors(results) == ["answer larger than 1024 KiB; not stored"] * 3
    assert path.stat().st_size < 100_000  # the 50 MB answers are not in the results file
