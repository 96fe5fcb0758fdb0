"""The window as a job that belongs to no terminal: its own session, stdin closed, its output in the run folder.

The terminal that started it only attaches (reads the window's events), so closing it, losing the SSH link
or stopping it (Ctrl-Z) never touches the window. The job is supervised by the watchdog it arms itself before
the first mutation (heartbeat and time cap), and by the systemd backstop timer where a manager is reachable.

Where a systemd manager will take it (the system's for root, else the operator's own user manager), the job is
a transient service of its own (`systemd-run`): `RuntimeMaxSec` is a last limit after the watchdog's, and
`KillMode=process`, so that reaching it, or `systemctl stop`, ends the job alone and never the watchdog that
then restores production, nor a production service the window restored (those started as its children live in
its cgroup). A transient unit inherits none of the caller's environment and holds none of its file
descriptors: both are handed over through a private folder (a FIFO for the events, the environment as JSON,
mode 0600: never in an argv), which the job removes once it has them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from swapbench.errors import StepFailed
from swapbench.host.processes.proc import run_argv
from swapbench.host.window.watchdog import backstop_scope

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
    unit: str | None = None  # the transient systemd service it runs as, if any

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


UNIT_STOP_S = 10  # after its SIGTERM (abort and restore), the job is SIGKILLed; the watchdog restores then
HANDOFF_EVENTS = "events"
HANDOFF_ENVIRON = "environ.json"


@dataclass(frozen=True)
class UnitLimit:
    """A transient unit's limit: `runtime_max_s` past its start (the plan's cap, the watchdog's grace, a margin)."""

    runtime_max_s: float


def spawn(argv: list[str], run_dir: Path, limit: UnitLimit | None = None) -> Job:
    """Start `argv` as a job of no terminal, its output in run_dir/window.log; recorded in run_dir/job.json. With
    `limit`, as a transient systemd service where a manager will take one; else (or if it refuses: said in
    window.log) as a child in a session of its own."""
    scope = backstop_scope() if limit is not None else None
    if limit is not None and scope is not None:
        job = _spawn_unit(argv, run_dir, limit, scope)
        if job is not None:
            return _recorded(job, argv)
    return _recorded(_spawn_child(argv, run_dir), argv)


def _recorded(job: Job, argv: list[str]) -> Job:
    """The job written down in run_dir/job.json, for `attach` from another terminal."""
    record = {"pid": job.pid, "create_time": job.create_time, "argv": argv, "unit": job.unit}
    with contextlib.suppress(OSError):
        (job.run_dir / JOB_FILE).write_text(json.dumps(record) + "\n")
    return job


def unit_name(run_dir: Path) -> str:
    return f"swapbench-window-{run_dir.name}.service"


def unit_argv(argv: Sequence[str], run_dir: Path, limit: UnitLimit, scope: Sequence[str], handoff: Path) -> list[str]:
    """`systemd-run` of the job as a transient service: no terminal, output appended to window.log, its limit,
    KillMode=process (see the module's docstring), collected once it ends whatever its exit code."""
    log = run_dir / LOG_FILE
    return [
        "systemd-run", *scope, f"--unit={unit_name(run_dir)}", f"--description=swapbench window {run_dir.name}",
        "--quiet", "--collect", "--service-type=exec", f"--working-directory={Path.cwd()}",
        f"--property=RuntimeMaxSec={math.ceil(limit.runtime_max_s)}", "--property=KillMode=process",
        f"--property=TimeoutStopSec={UNIT_STOP_S}", "--property=SendSIGHUP=no", "--property=StandardInput=null",
        f"--property=StandardOutput=append:{log}", f"--property=StandardError=append:{log}",
        "--", *argv, "--handoff", str(handoff),
    ]  # fmt: skip


def _spawn_unit(argv: list[str], run_dir: Path, limit: UnitLimit, scope: Sequence[str]) -> Job | None:
    """The job as a transient unit; None (and why, in window.log) when the manager would not start it."""
    handoff = Path(tempfile.mkdtemp(prefix="swapbench-handoff-"))  # mode 0700, this user's
    read_fd: int | None = None
    try:
        os.mkfifo(handoff / HANDOFF_EVENTS, 0o600)
        read_fd = os.open(handoff / HANDOFF_EVENTS, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        env = {k: v for k, v in os.environ.items() if k not in TERMINAL_VARIABLES}
        descriptor = os.open(handoff / HANDOFF_ENVIRON, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(env, file)
        started = run_argv(unit_argv(argv, run_dir, limit, scope, handoff), 30.0)
        main = run_argv(["systemctl", *scope, "show", "-p", "MainPID", "--value", unit_name(run_dir)], 15.0)
        pid = int(main.stdout.strip() or 0) if started.ok and main.ok else 0
        if pid <= 0:
            why = started.describe() if not started.ok else f"no main process: {main.describe()}"
            raise OSError(f"systemd-run {' '.join(scope)} did not start the job ({why})")
    except (OSError, ValueError) as exc:
        with contextlib.suppress(OSError), (run_dir / LOG_FILE).open("a") as log:
            log.write(f"not a transient unit: {exc}; the job runs as a child of no terminal instead\n")
        if read_fd is not None:
            os.close(read_fd)
        shutil.rmtree(handoff, ignore_errors=True)
        return None
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        created = 0.0
    return Job(pid, created, run_dir, read_fd, unit_name(run_dir))


def take_handoff(folder: Path) -> int | None:
    """The job's side of a transient unit's start: the caller's environment put back, the events FIFO opened for
    writing (None when its reader is already gone), and the folder removed."""
    try:
        environ = json.loads((folder / HANDOFF_ENVIRON).read_text())
        if isinstance(environ, dict):
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in environ.items()})
        fd: int | None = os.open(folder / HANDOFF_EVENTS, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        fd = None
    shutil.rmtree(folder, ignore_errors=True)
    return fd


def _spawn_child(argv: list[str], run_dir: Path) -> Job:
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
    return Job(proc.pid, created, run_dir, read_fd)


def read_job(run_dir: Path) -> Job | None:
    try:
        data = json.loads((run_dir / JOB_FILE).read_text())
        unit = data.get("unit")
        return Job(int(data["pid"]), float(data["create_time"]), run_dir, unit=str(unit) if unit else None)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def job_argv(plan: Path, run_id: str) -> list[str]:
    return [sys.executable, "-m", "swapbench", "run", str(plan), "--foreground", "--job", run_id]
