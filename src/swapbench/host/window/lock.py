"""One owner per window: an flock on OUTPUT_DIR/swapbench.lock, with the owner's pid and start time in it.

`run`, `rollback` and the watchdog take it before they touch the host; a second actor finds it held and is
refused with the owner named. The kernel drops an flock when its holder dies, however it dies, so a dead
owner's lock is free at once — the pid and start time in the file only name the owner for people.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from swapbench.errors import WindowBusy
from swapbench.host.processes.waiting import wait_until
from swapbench.host.window.registry import Claim, Entry

LOCK_NAME = "swapbench.lock"
POLL_S = 0.2
_HELD: set[Path] = set()  # locks this process holds: its own window is no obstacle to its own Phase 0


@dataclass(frozen=True)
class Owner:
    """Who holds the window, as the lock file says."""

    pid: int
    create_time: float
    role: str
    run_id: str | None
    since: str

    def describe(self) -> str:
        what = f"`swapbench {self.role}`" + (f" of run {self.run_id}" if self.run_id else "")
        return f"{what} (pid {self.pid}, since {self.since})"


def stop_hint(owner: Owner) -> str:
    """How to end a live owner: SIGTERM, which a stopped process (SIGSTOP, Ctrl-Z) only acts on once continued."""
    if not owner.pid:
        return "wait for it to finish"
    try:
        stopped = psutil.Process(owner.pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
    except psutil.Error:
        stopped = False
    if stopped:
        return (
            f"it is STOPPED (SIGSTOP or Ctrl-Z): `kill -CONT {owner.pid}` lets it go on, `kill -TERM {owner.pid}; "
            f"kill -CONT {owner.pid}` ends it and restores production; left alone, its watchdog kills it once "
            "the heartbeat is late (heartbeat_timeout_s) and restores production"
        )
    return f"wait for it to finish (it restores production itself), or stop it with `kill -TERM {owner.pid}`"


def lock_path(output_dir: Path) -> Path:
    return output_dir / LOCK_NAME


def _read_owner(fd: int) -> Owner | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096) or b"null")
        return Owner(int(data["pid"]), float(data["create_time"]), str(data["role"]), data.get("run_id"),
                     str(data.get("since", "?")))  # fmt: skip
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _open(path: Path) -> int | None:
    """Open (or create) the lock file; a read-only filesystem still allows an flock on a read-only fd."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        try:
            return os.open(path, os.O_RDONLY)
        except OSError:
            return None


class WindowLock:
    """The window's lock, held from `acquire` until `release` or the holder's death."""

    def __init__(self, output_dir: Path, claim: Claim | None = None) -> None:
        """`claim`: what the window touches, entered in the host's registry while the lock is held (one window per
        host); without one, the lock guards this output folder alone."""
        self.path = lock_path(output_dir)
        self.entry = Entry(claim) if claim is not None else None
        self._fd: int | None = None
        self.role = "?"
        self.note: str | None = None  # why the lock could not be kept as a file (read-only disk): reported

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self, role: str, run_id: str | None = None) -> Owner | None:
        """Take the lock; None when taken, else the live owner."""
        fd = _open(self.path)
        if fd is None:  # no lock file can exist here (read-only and absent): nobody else can hold one either
            self.note = f"no lock file at {self.path} (the folder is not writable)"
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = _read_owner(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            return owner or Owner(0, 0.0, "?", None, "?")
        self._fd = fd
        _HELD.add(self.path)
        if self.entry is not None:
            try:
                self.entry.enter(role, run_id, force=role == "watchdog")
            except BaseException:
                self.release()
                raise
        self.record(role, run_id)
        return None

    def acquire(self, role: str, run_id: str | None = None) -> None:
        """Take the lock or refuse, naming the owner (exit 9). A `status` probing the lock that very moment
        holds it for microseconds: retry for a second before calling anyone an owner."""
        owner = self.try_acquire(role, run_id)
        if owner is not None and self.wait(role, run_id, time.monotonic() + 1.0):
            owner = None
        if owner is not None:
            raise WindowBusy(f"another swapbench owns this window: {owner.describe()}", hint=stop_hint(owner))

    def wait(self, role: str, run_id: str | None, deadline: float) -> bool:
        """Take the lock as soon as it is free (the watchdog, after its run died); False at the deadline."""
        return wait_until(lambda: self.try_acquire(role, run_id) is None, deadline - time.monotonic(), poll_s=POLL_S)

    def record(self, role: str, run_id: str | None) -> None:
        """Name the owner in the file (best effort: on a read-only disk the flock still works)."""
        self.role = role
        if self._fd is None:
            return
        if self.entry is not None:
            self.entry.record(role, run_id)
        me = psutil.Process()
        # schema_version: the layout, for people and tools; readers take the fields they know from any version,
        # since the flock, not the file, says whether the window is held
        owner = {"schema_version": 1, "pid": me.pid, "create_time": me.create_time(), "role": role,
                 "run_id": run_id, "since": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, json.dumps(owner).encode(), 0)
        except OSError as exc:
            self.note = f"could not name the owner in {self.path}: {exc.strerror}"

    def release(self) -> None:
        if self._fd is None:
            return
        if self.entry is not None:
            self.entry.leave()
        _HELD.discard(self.path)
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def live_owner(output_dir: Path) -> Owner | None:
    """The live owner of the window, if any (reads only: the test-lock is released at once)."""
    path = lock_path(output_dir)
    if path in _HELD or not path.exists():
        return None
    fd = _open(path)
    if fd is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read_owner(fd) or Owner(0, 0.0, "?", None, "?")
    finally:
        os.close(fd)
    return None
