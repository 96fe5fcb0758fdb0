"""The out-of-process watchdog: if swapbench dies (SIGKILL, OOM) with its journal open, it runs rollback.

Armed before the first mutation as a detached process in its own session (Ctrl-C in the terminal does not
reach it); disarmed after verify, when the journal is closed. Where systemd runs, a transient timer is
armed as well, as a backstop that survives even the watchdog.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

from swapbench.errors import JournalError
from swapbench.host.journal import read_journal
from swapbench.host.proc import run_argv

POLL_S = 0.2


def watchdog_argv(plan: Path, journal: Path, pid: int, create_time: float) -> list[str]:
    return [
        sys.executable, "-m", "swapbench", "watchdog", "--plan", str(plan), "--journal", str(journal),
        "--pid", str(pid), "--create-time", repr(create_time),
    ]  # fmt: skip


def systemd_backstop_argv(run_id: str, plan: Path, delay_s: float, scope: Sequence[str] = ()) -> list[str]:
    """A transient systemd timer that runs rollback after `delay_s` unless it is stopped first."""
    return [
        "systemd-run", *scope, f"--unit=swapbench-rollback-{run_id}", f"--on-active={int(delay_s)}s",
        "--description=swapbench rollback backstop",
        sys.executable, "-m", "swapbench", "rollback", str(plan), "--if-unfinished",
    ]  # fmt: skip


def systemd_disarm_argv(run_id: str, scope: Sequence[str] = ()) -> list[str]:
    return ["systemctl", *scope, "stop", f"swapbench-rollback-{run_id}.timer"]


def has_systemd() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemd-run") is not None


def backstop_scope() -> list[str] | None:
    """Which systemd manager can hold the backstop timer: the system's for root; for an operator, their own
    user manager, where one runs (a login session; with lingering it outlives the login). None: neither — an
    unprivileged `systemd-run` on the system manager is refused (found on the rehearsal host)."""
    if not has_systemd():
        return None
    if os.geteuid() == 0:
        return []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return ["--user"] if runtime and (Path(runtime) / "systemd" / "private").exists() else None


class Watchdog:
    """Arm on construction; `disarm()` after verify."""

    def __init__(self, plan: Path, journal: Path, run_id: str, log_path: Path, backstop_s: float) -> None:
        self.run_id = run_id
        me = psutil.Process()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                watchdog_argv(plan.resolve(), journal.resolve(), me.pid, me.create_time()),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.scope = backstop_scope()
        if self.scope is not None:
            armed = run_argv(systemd_backstop_argv(run_id, plan.resolve(), backstop_s, self.scope), 15.0)
            if not armed.ok:  # the watchdog process still stands guard; the log says the backstop is missing
                with contextlib.suppress(OSError), log_path.open("a") as log:
                    log.write(f"systemd backstop not armed: {armed.describe()}\n")
                self.scope = None

    def disarm(self) -> None:
        if self.scope is not None:
            run_argv(systemd_disarm_argv(self.run_id, self.scope), 15.0)
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5.0)


def say(line: str) -> None:
    """The watchdog's log line; its log may sit on a disk that turned read-only: never fail for it."""
    with contextlib.suppress(OSError):
        print(line, flush=True)


def _alive(pid: int, create_time: float) -> bool:
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - create_time) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def watch(pid: int, create_time: float, journal: Path, rollback: Callable[[], int]) -> int:
    """Loop until the journal is closed (disarmed: 0) or the watched process dies with it open (rollback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            state = read_journal(journal)
        except JournalError:
            state = None  # damaged: rollback converges on the plan anyway
        if state is not None and (state.closed or not journal.exists()):
            return 0
        if not _alive(pid, create_time):
            say(f"[watchdog] swapbench (pid {pid}) died with its journal open: rolling back")
            return rollback()
        time.sleep(POLL_S)
