"""Helpers shared by the sandbox tests: the real CLI in a subprocess, production's state, plan variants."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from swapbench.app import swap
from swapbench.demo.sandbox import Sandbox
from swapbench.host.processes.proc import pgrep, port_open
from swapbench.host.services import ServiceOps
from swapbench.plan.load import LoadedPlan, load_plan

TESTING = {"SWAPBENCH_TESTING": "1"}
started: list[subprocess.Popen[str]] = []  # background runs of this test, ended by the faults' cleanup


def end_started() -> None:
    """Every background run a test started and left: killed if still running, reaped, forgotten."""
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    started.clear()


def loaded_of(box: Sandbox, plan: Path | None = None) -> LoadedPlan:
    return load_plan(plan or box.plan_path)


def assert_production_up(box: Sandbox, plan: Path | None = None) -> None:
    loaded = loaded_of(box, plan)
    for svc in loaded.plan.services:
        assert ServiceOps(svc, loaded.resolve).is_up(), f"{svc.name} is down"
    assert not port_open(box.ports["candidate"]), "candidate port still open"
    assert not pgrep(f"--port {box.ports['candidate']}"), "a candidate process is left"
    assert not swap.journal_path(loaded).exists(), "journal left open"


def swapbench(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    """The real command line, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "swapbench", *args], capture_output=True, text=True,
                          timeout=timeout_s, env={**os.environ, "COLUMNS": "200", **(env or {})},
                          check=False)  # fmt: skip


def start_swapbench(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The real command line in the background, for a test that acts on it from outside."""
    proc = subprocess.Popen([sys.executable, "-m", "swapbench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200", **(env or {})})  # fmt: skip
    started.append(proc)
    return proc


def variant(box: Sandbox, folder: Path, *replacements: tuple[str, str]) -> Path:
    """The sandbox plan with text replaced (each replacement must apply), written to folder/plan.toml."""
    text = box.plan_path.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.toml"
    path.write_text(text)
    return path


def wait_until(what: str, ok: object, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Barrier:
    """The run stops at a step boundary (SWAPBENCH_FAULT=WHERE:barrier) until the test says go."""

    def __init__(self, folder: Path, where: str) -> None:
        self.folder = folder
        self.env = {**TESTING, "SWAPBENCH_FAULT": f"{where}:barrier", "SWAPBENCH_BARRIER": str(folder)}

    def reached(self, proc: subprocess.Popen[str] | None = None, timeout_s: float = 120.0) -> None:
        def there() -> bool:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"swapbench exited {proc.returncode} before the barrier: {proc.communicate()}")
            return (self.folder / "reached").exists()

        wait_until("the barrier", there, timeout_s)

    def go(self) -> None:
        (self.folder / "go").touch()


def journal_records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def latest_run_dir(output_dir: Path) -> Path:
    return max((p for p in output_dir.iterdir() if p.is_dir()), key=os.path.getmtime)


class Terminal:
    """A real pty with `argv` on it (an interactive bash: job control on), read continuously so it never blocks."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.master = pty.fork()
        if self.pid == 0:  # the child, with the pty as its controlling terminal
            os.execvpe(argv[0], argv, env)
        self.seen = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.seen += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", data.decode(errors="replace"))

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        for child in psutil.Process(self.pid).children(recursive=True):
            child.kill()
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.master)
