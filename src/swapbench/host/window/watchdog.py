"""The out-of-process watchdog: if swapbench dies (SIGKILL, OOM) or hangs with its journal open, it rolls back.

Armed before the first mutation as a detached process in its own session (Ctrl-C in the terminal does not
reach it); disarmed after verify, when the journal is closed. A run is dead when its process is gone, and
hung when its heartbeat (a byte a second on a pipe, from a thread of the run) stops for
`heartbeat_timeout_s` (SIGSTOP, Ctrl-Z, a process stuck whole) or when it is still alive `hang_grace_s` past
its time cap (a step stuck in the run's own thread). A hung run is killed — its process group when it leads
one — and rolled back like a dead one. Where systemd runs, a transient timer is armed as well, as a backstop
that survives even the watchdog.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from swapbench.errors import JournalError
from swapbench.host.processes.proc import run_argv
from swapbench.host.window.journal import read_journal

POLL_S = 0.2
BEAT_S = 1.0  # the heartbeat's period; the timeout is a plan key, at least 3 beats
KILL_WAIT_S = 10.0


@dataclass(frozen=True)
class Liveness:
    """When the watchdog calls a living run hung: past `cap_at` (time.monotonic(), shared by every process of the
    machine) plus `grace_s`, or no heartbeat on `fd` for `timeout_s`."""

    fd: int
    timeout_s: float
    cap_at: float
    grace_s: float

    def argv(self) -> list[str]:
        return ["--heartbeat-fd", str(self.fd), "--heartbeat-timeout", repr(self.timeout_s),
                "--cap-at", repr(self.cap_at), "--grace", repr(self.grace_s)]  # fmt: skip


def watchdog_argv(plan: Path, journal: Path, pid: int, create_time: float, liveness: Liveness | None) -> list[str]:
    return [
        sys.executable, "-m", "swapbench", "watchdog", "--plan", str(plan), "--journal", str(journal),
        "--pid", str(pid), "--create-time", repr(create_time), *(liveness.argv() if liveness else []),
    ]  # fmt: skip


class Heartbeat:
    """The run's pulse: a thread writes a byte to a pipe every BEAT_S; the watchdog holds the read end. A
    stopped process (SIGSTOP, Ctrl-Z) stops every thread, so the pulse stops with it. The pipe is no file:
    a full or read-only disk never silences it."""

    def __init__(self) -> None:
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)  # a watchdog that stopped reading never blocks the run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="swapbench-heartbeat", daemon=True)

    def start(self) -> None:
        """The read end now belongs to the watchdog alone."""
        os.close(self.read_fd)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(BEAT_S):
            with contextlib.suppress(OSError):  # EAGAIN: the pipe is full, the watchdog has beats enough
                os.write(self._write_fd, b".")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * BEAT_S)
        with contextlib.suppress(OSError):
            os.close(self._write_fd)

    def close(self) -> None:
        """Never started (the watchdog could not be): both ends closed."""
        for fd in (self.read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def systemd_backstop_argv(run_id: str, plan: Path, delay_s: float, scope: Sequence[str] = ()) -> list[str]:
    """A transient systemd timer that runs rollback after `delay_s` unless it is stopped first."""
    return [
        "systemd-run", *scope, f"--unit=swapbench-rollback-{run_id}", f"--on-active={int(delay_s)}s",
        "--description=swapbench rollback backstop",
        sys.executable, "-m", "swapbench", "rollback", str(plan), "--if-unfinished", "--take-over-hung",
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

    def __init__(
        self, plan: Path, journal: Path, run_id: str, log_path: Path, backstop_s: float,
        hang: tuple[float, float, float],
    ) -> None:  # fmt: skip
        """`hang`: (heartbeat_timeout_s, cap_at, hang_grace_s) of `Liveness`."""
        self.run_id = run_id
        me = psutil.Process()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.heartbeat = Heartbeat()
        liveness = Liveness(self.heartbeat.read_fd, *hang)
        try:
            with log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    watchdog_argv(plan.resolve(), journal.resolve(), me.pid, me.create_time(), liveness),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    pass_fds=(self.heartbeat.read_fd,),
                )  # fmt: skip
        except BaseException:
            self.heartbeat.close()
            raise
        self.heartbeat.start()
        self.scope = backstop_scope()
        if self.scope is not None:
            armed = run_argv(systemd_backstop_argv(run_id, plan.resolve(), backstop_s, self.scope), 15.0)
            if not armed.ok:  # the watchdog process still stands guard; the log says the backstop is missing
                with contextlib.suppress(OSError), log_path.open("a") as log:
                    log.write(f"systemd backstop not armed: {armed.describe()}\n")
                self.scope = None

    def disarm(self) -> None:
        self.heartbeat.stop()
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


def _state_of(pid: int) -> str:
    try:
        return str(psutil.Process(pid).status())
    except psutil.Error:
        return "gone"


class Pulse:
    """The watchdog's side of the heartbeat: when the last beat came, and whether the run is hung."""

    def __init__(self, liveness: Liveness) -> None:
        self.liveness = liveness
        self.last = time.monotonic()
        os.set_blocking(liveness.fd, False)

    def read(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            if os.read(self.liveness.fd, 4096):
                self.last = time.monotonic()

    def hung(self, pid: int) -> str | None:
        """Why a living run counts as hung, or None."""
        now, live = time.monotonic(), self.liveness
        if now > live.cap_at + live.grace_s:
            return f"still running {now - live.cap_at:.0f} s past its time cap (hang_grace_s {live.grace_s:g})"
        if now - self.last > live.timeout_s:
            return (f"no heartbeat for {now - self.last:.0f} s (heartbeat_timeout_s {live.timeout_s:g}; "
                    f"process state: {_state_of(pid)})")  # fmt: skip
        return None


def kill_owner(pid: int, create_time: float) -> str:
    """SIGKILL a hung swapbench (a stopped one too: SIGKILL needs no SIGCONT): its whole process group when it
    leads one (a supervised window), else the process alone (a run in somebody else's group: a shell's, a test's).
    Returns what was killed, for the log."""
    if not _alive(pid, create_time):
        return f"pid {pid} already gone"
    try:
        group = os.getpgid(pid) == pid
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return f"pid {pid} already gone"
    deadline = time.monotonic() + KILL_WAIT_S
    while _alive(pid, create_time) and time.monotonic() < deadline:
        time.sleep(0.02)
    return f"process group {pid}" if group else f"pid {pid}"


def watch(
    pid: int,
    create_time: float,
    journal: Path,
    rollback: Callable[[str | None], int],
    liveness: Liveness | None = None,
) -> int:
    """Loop until the journal is closed (disarmed: 0) or the watched process dies or hangs with it open
    (rollback, told why when it was killed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pulse = Pulse(liveness) if liveness is not None else None
    while True:
        try:
            state = read_journal(journal)
        except JournalError:
            state = None  # damaged: rollback converges on the plan anyway
        if state is not None and (state.closed or not journal.exists()):
            return 0
        if not _alive(pid, create_time):
            say(f"[watchdog] swapbench (pid {pid}) died with its journal open: rolling back")
            return rollback(None)
        if pulse is not None:
            pulse.read()
            if (why := pulse.hung(pid)) is not None:
                killed = kill_owner(pid, create_time)
                say(f"[watchdog] swapbench (pid {pid}) hung: {why}; killed {killed}; rolling back")
                return rollback(why)
        time.sleep(POLL_S)
