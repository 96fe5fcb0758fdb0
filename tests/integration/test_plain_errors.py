"""Plain errors, as a user meets them: broken plans refused through the real CLI in plain words with the key
named and every bracket kept; help that shows `[run].output_dir`; and why a service is not up, from real
servers, sockets and processes."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from rich.text import Text

from swapbench.cli import cli
from swapbench.errors import PlanError, StepFailed
from swapbench.host.candidate.llama_server import free_port
from swapbench.host.services import ServiceOps
from swapbench.plan.load import load_plan
from swapbench.plan.models import CommandService, HealthCheck, ProcessService
from tests.helpers import swapbench

CORPUS = sorted((Path(__file__).parent / "broken_plans").glob("*.toml"))
# What a user must never have to decode: pydantic's internals, or the design notes' numbering.
JARGON = ("Unable to extract tag", "discriminator", "union_tag", "Extra inputs are not permitted", "Value error",
          "valid dictionary", "instance of", "function-after", "lax-or-strict", "user plan", "decision 1")  # fmt: skip


def expectation(path: Path) -> tuple[str, str]:
    """The key and the message a corpus file holds in its first two lines: `# key: ...`, `# says: ...`."""
    header = dict(line.removeprefix("# ").split(": ", 1) for line in path.read_text().splitlines()[:2])
    return header["key"], header["says"]


@pytest.mark.parametrize("source", CORPUS, ids=lambda p: p.stem)
def test_a_broken_plan_is_refused_in_plain_words(source: Path, tmp_path: Path) -> None:
    key, says = expectation(source)
    plan = tmp_path / source.name
    shutil.copyfile(source, plan)
    run = swapbench("check", str(plan), timeout_s=60)
    assert run.returncode == 2, run.stderr
    assert any(f"{plan.name}: {key}{sep}{says}" in run.stderr for sep in (": ", " ")), run.stderr
    with pytest.raises(PlanError) as refused:
        load_plan(plan)
    assert f"error: {refused.value.message}\n" in run.stderr  # printed as written: no bracket taken for markup
    assert "what to do: " in run.stderr
    assert [j for j in JARGON if j in run.stderr] == []
    assert "Traceback" not in run.stdout + run.stderr
    assert run.stdout == ""


def test_the_corpus_covers_the_class() -> None:
    """The issue asks for at least 40 broken plans; each names the key it breaks."""
    assert len(CORPUS) >= 40, len(CORPUS)
    assert all(expectation(p)[0] for p in CORPUS)


@pytest.mark.parametrize(
    ("command", "shown"),
    [("bench", "Where results go (default [run].output_dir)."), ("report", "report.html and the [report] documents")],
)
def test_help_keeps_its_brackets(command: str, shown: str) -> None:
    run = swapbench(command, "--help")
    assert run.returncode == 0, run.stderr
    assert shown in run.stdout


def help_texts() -> Iterator[object]:
    """Every command's help and every option's, named `command` or `command option`."""
    group = typer.main.get_command(cli)
    assert isinstance(group, typer.core.TyperGroup)
    for name, command in group.commands.items():
        yield pytest.param(command.help or "", id=name)
        for param in command.params:
            yield pytest.param(getattr(param, "help", None) or "", id=f"{name} {param.name}")


@pytest.mark.parametrize("text", list(help_texts()))
def test_no_help_text_is_eaten_as_markup(text: str) -> None:
    """typer renders help as rich markup: a bare `[report]` would vanish. Written `\\[report]`, it shows."""
    assert Text.from_markup(text).plain == text.replace("\\[", "[")


@pytest.fixture
def answering() -> Iterator[int]:
    """A real HTTP server on loopback: /health is 503 with llama-server's loading body, /ok is 200."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = (200, b'{"status": "ok"}') if self.path == "/ok" else (503, LOADING)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


LOADING = b'{"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}'


@pytest.fixture
def deaf() -> Iterator[int]:
    """A listener that never answers: the kernel completes the handshake, nobody reads the request."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@pytest.fixture
def sleeper() -> Iterator[str]:
    """A real process with a command line no other process has."""
    marker = f"swapbench-plain-errors-{uuid.uuid4().hex}"
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(600)", marker])
    yield marker
    proc.kill()
    proc.wait()


def command_service(url: str, pattern: str | None = None, timeout_s: float = 5.0) -> ServiceOps:
    health = HealthCheck(url=url, timeout_s=timeout_s)
    svc = CommandService(name="svc", manager="command", start=["true"], stop=["true"], health=health, pattern=pattern)
    return ServiceOps(svc, resolve=lambda p: p)


def test_a_service_answering_503_says_so_with_the_body(answering: int) -> None:
    state = command_service(f"http://127.0.0.1:{answering}/health").state()
    assert not state.ok
    assert state.detail == (
        f"NOT up: GET http://127.0.0.1:{answering}/health: HTTP 503, expected 200: {LOADING.decode()}"
    )


def test_a_service_nothing_listens_for_says_refused() -> None:
    port = free_port()
    state = command_service(f"http://127.0.0.1:{port}/health").state()
    assert state.detail == (
        f"NOT up: GET http://127.0.0.1:{port}/health: connection refused: nothing listens on 127.0.0.1:{port}"
    )


def test_a_service_that_never_answers_says_timeout(deaf: int) -> None:
    state = command_service(f"http://127.0.0.1:{deaf}/health", timeout_s=0.5).state()
    assert (
        state.detail == f"NOT up: GET http://127.0.0.1:{deaf}/health: connected, but no answer within 0.5 s (timeout)"
    )


def test_a_service_whose_process_is_missing_says_so(answering: int) -> None:
    pattern = f"no-such-process-{uuid.uuid4().hex}"
    state = command_service(f"http://127.0.0.1:{answering}/ok", pattern=pattern).state()
    assert state.detail == f"NOT up: process missing: nothing matches {pattern!r}"


def test_an_up_service_says_how_it_was_seen(answering: int, sleeper: str) -> None:
    state = command_service(f"http://127.0.0.1:{answering}/ok", pattern=sleeper).state()
    assert state.ok
    assert state.detail.startswith("running and healthy (pid ")
    assert state.detail.endswith(f"; GET http://127.0.0.1:{answering}/ok: HTTP 200)")


def test_an_observed_process_found_is_up(sleeper: str) -> None:
    state = ServiceOps(ProcessService(name="p", manager="process", pattern=sleeper), resolve=lambda p: p).state()
    assert state.ok and state.detail.startswith("running and healthy (pid ")


def test_check_says_why_a_service_is_not_up(answering: int, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[run]\noutput_dir = "{tmp_path / "results"}"\n\n[[workloads]]\nname = "describe"\nkind = "describe"\n'
        'image = false\n\n[[services]]\nname = "llama-prod"\nmanager = "command"\nstart = ["true"]\n'
        f'stop = ["true"]\nhealth = {{ url = "http://127.0.0.1:{answering}/health" }}\n'
    )
    run = swapbench("check", str(plan), timeout_s=60)
    assert run.returncode == 6, run.stderr
    assert (
        f"- service llama-prod up now: NOT up: GET http://127.0.0.1:{answering}/health: HTTP 503, expected 200: "
        f"{LOADING.decode()}\n"
    ) in run.stderr


def test_a_service_not_ready_in_time_says_why() -> None:
    pattern = f"no-such-process-{uuid.uuid4().hex}"
    svc = ProcessService(name="phone", manager="process", pattern=pattern, settle_s=0.0, ready_timeout_s=0.2)
    with pytest.raises(StepFailed) as late:
        ServiceOps(svc, resolve=lambda p: p).wait_ready(0.2)
    assert late.value.message.startswith("phone is not ready after ")
    assert late.value.message.endswith(f" s (NOT up: process missing: nothing matches {pattern!r})")
