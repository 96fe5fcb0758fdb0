"""The window as a job that belongs to no terminal: its own session, stdin closed, its output in the run folder.

The terminal that started it only attaches (reads the window's events), so closing it, losing the SSH link
or stopping it (Ctrl-Z) never touches the window. The job is supervised by the watchdog it arms itself before
the first mutation (heartbeat and time cap), and by the systemd backstop timer where a manager is reachable.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from swapbench.errors import StepFailed

JOB_FILE = "job.json"
LOG_FILE = "window.log"
EVENTS_FILE = "events.jsonl"
# what the job needs of the caller's environment is passed on whole, but never the terminal's own
TERMINAL_VARIABLES = ("TERM", "COLUMNS", "LINES")


@dataclass(frozen=True)
class Job:
    """A started window: its process and where it writes. `events_fd`: the read end of a pipe the job also
    writes its events to, held by the terminal that started it (a full or read-only disk cannot silence it)."""

    pid: int
    create_time: float
    run_dir: Path
    events_fd: int | None = None

    @property
    def events(self) -> Path:
        return self.run_dir / EVENTS_FILE

    def alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            return abs(proc.create_time() - self.create_time) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def signal(self, sig: signal.Signals) -> bool:
        """Pass a signal on to the window (Ctrl-C at an attached terminal); False when it is gone."""
        if not self.alive():
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
            return True
        return False


def spawn(argv: list[str], run_dir: Path) -> Job:
    """Start `argv` as a job of no terminal, its output in run_dir/window.log; recorded in run_dir/job.json."""
    env = {k: v for k, v in os.environ.items() if k not in TERMINAL_VARIABLES}
    read_fd, write_fd = os.pipe()
    try:
        with (run_dir / LOG_FILE).open("ab") as log:
            proc = subprocess.Popen([*argv, "--events-fd", str(write_fd)], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, env=env,
                                    pass_fds=(write_fd,))  # fmt: skip
    except OSError as exc:
        os.close(read_fd)
        raise StepFailed(f"cannot start the window's job ({exc.strerror or exc})",
                         hint="free memory and processes, then run again; nothing was touched") from exc  # fmt: skip
    finally:
        os.close(write_fd)
    # The job is nobody's child to reap once this process ends: a zombie of it is reaped by init then.
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        created = 0.0
    job = Job(proc.pid, created, run_dir, read_fd)
    with contextlib.suppress(OSError):
        (run_dir / JOB_FILE).write_text(json.dumps({"pid": job.pid, "create_time": created, "argv": argv}) + "\n")
    return job


def read_job(run_dir: Path) -> Job | None:
    try:
        data = json.loads((run_dir / JOB_FILE).read_text())
        return Job(int(data["pid"]), float(data["create_time"]), run_dir)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def job_argv(plan: Path, run_id: str) -> list[str]:
    return [sys.executable, "-m", "swapbench", "run", str(plan), "--foreground", "--job", run_id]
