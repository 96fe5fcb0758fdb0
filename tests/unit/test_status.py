"""`swapbench status` tells the present from the past: each service probed now (and why one is not up), then the
last finished run with when it ended, its verify marked as then. Real files, a real HTTP server, real pgrep."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swapbench.app.status import status
from swapbench.core.command_json import HostStatus
from swapbench.plan.load import load_plan
from swapbench.report.status import status_lines


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.end_headers()
        self.wfile.write(b'{"error": "Loading model"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loading_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def llama_process() -> Iterator[str]:
    """A real process for the `llama` service's pattern to find (swapbench never counts itself)."""
    marker = f"status-test-llama-{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
    yield marker
    proc.kill()
    proc.wait()


def plan(tmp_path: Path, port: int, pattern: str = "never-matches") -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(f"""
[run]
output_dir = "out"
[image]
path = "car.jpg"
[[workloads]]
name = "nav"
kind = "nav"
[[services]]
name = "llama"
manager = "process"
pattern = "{pattern}"
health = {{ url = "http://127.0.0.1:{port}/health" }}
[[services]]
name = "phone"
manager = "process"
pattern = "no-such-daemon-{os.getpid()} auto"
""")
    return path


def swap_json(folder: Path, run_id: str, status: str, age_s: float) -> None:
    folder.mkdir(parents=True)
    verify = [{"name": "service phone up", "status": "pass", "detail": "running and healthy"}]
    record = {"run_id": run_id, "status": status, "checks": [], "verify": verify, "spans": [], "downtime": None}
    (folder / "swap.json").write_text(json.dumps(record))
    os.utime(folder / "swap.json", (time.time() - age_s, time.time() - age_s))


def test_status_probes_now_and_dates_the_last_run(tmp_path: Path, loading_server: int, llama_process: str) -> None:
    swap_json(tmp_path / "out" / "old", "old", "aborted", age_s=7200)
    swap_json(tmp_path / "out" / "new", "new", "complete", age_s=600)
    found = status(load_plan(plan(tmp_path, loading_server, llama_process)))
    assert [(o.name, o.status.value) for o in found.services_now] == [("service llama", "fail"),
                                                                      ("service phone", "fail")]  # fmt: skip
    assert "HTTP 503" in found.services_now[0].detail and "Loading model" in found.services_now[0].detail
    assert (
        found.services_now[1].detail == f"NOT up: process missing: nothing matches 'no-such-daemon-{os.getpid()} auto'"
    )
    assert found.last_run is not None and found.last_run.run_id == "new"
    assert 599 <= found.last_run.ended_s_ago < 900
    lines = status_lines(found)
    assert lines[0] == f"now ({found.checked_at}):"
    assert lines[3].startswith("last finished run new: complete; ended ") and lines[3].endswith("(10 min ago)")
    assert lines[4:] == [f"  run folder: {tmp_path / 'out' / 'new'}",
                         "  at its verify: pass service phone up: running and healthy"]  # fmt: skip
    assert HostStatus.model_validate_json(found.model_dump_json()) == found  # --json round-trips
    assert json.loads(found.model_dump_json())["schema_version"] == 2


def test_no_run_yet(tmp_path: Path, loading_server: int) -> None:
    found = status(load_plan(plan(tmp_path, loading_server)))
    assert found.last_run is None and found.unfinished_run is None and found.owner is None
    assert status_lines(found)[-1] == "no finished run yet"


def test_a_damaged_journal_still_shows_what_is_live(tmp_path: Path, loading_server: int) -> None:
    """After a crash the journal may be torn in the middle: the services are probed all the same."""
    path = plan(tmp_path, loading_server)
    journal = tmp_path / "out" / "journal.active.jsonl"
    journal.parent.mkdir()
    journal.write_text('{"type": "begin", "run_id": "r"}\nnot json at all\n{"type": "intent", "step": "stop"}\n')
    found = status(load_plan(path))
    assert found.journal_damaged is not None and len(found.services_now) == 2
    lines = status_lines(found)
    assert lines[:2] == [f"journal {journal} is damaged: {found.journal_damaged}", f"run `swapbench rollback {path}`"]
    assert lines[2] == f"now ({found.checked_at}):" and lines[3].startswith("  service llama: NOT up: ")


def test_a_damaged_swap_json_is_named_and_skipped(tmp_path: Path, loading_server: int) -> None:
    swap_json(tmp_path / "out" / "good", "good", "complete", age_s=600)
    (tmp_path / "out" / "empty").mkdir()
    (tmp_path / "out" / "empty" / "swap.json").write_text("")  # the newest: written last, and empty
    found = status(load_plan(plan(tmp_path, loading_server)))
    assert found.last_run is not None and found.last_run.run_id == "good"
    lines = status_lines(found)
    assert f"{tmp_path / 'out' / 'empty' / 'swap.json'} is damaged (JSONDecodeError); skipped" in lines
