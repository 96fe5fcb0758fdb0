"""One window per host: a registry of live windows, whatever their plans and output folders.

Each window's owner (the run, a rollback, the watchdog that took over) holds an flock on an entry file of its
own in a host-wide folder; the entry names the plan, the run folder, the pid and what the window touches
(services, units, containers, ports, the GPU). A window that would touch any of these of a live one is
refused before its first step, naming that one. An entry whose owner is gone but whose journal is still open
(the run died, nobody rolled back yet) still blocks: that window's production may be down. Entries are
checked and written under one registry-wide flock, so two windows that start at the same instant cannot
both pass.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from swapbench.errors import JournalError, WindowBusy
from swapbench.host.window.journal import active_journal_path, read_journal

REGISTRY_ENV = "SWAPBENCH_REGISTRY"  # another folder: a test host of its own, never needed on a real one
SCHEMA_VERSION = 1
GUARD_WAIT_S = 10.0


def registry_dir() -> Path:
    """`/run/lock/swapbench` (a tmpfs every user may write to on Debian and most systemd hosts: a reboot, which
    also ends every window, empties it), else a folder in the temp dir."""
    if override := os.environ.get(REGISTRY_ENV):
        return Path(override)
    run_lock = Path("/run/lock")
    base = run_lock if run_lock.is_dir() and os.access(run_lock, os.W_OK) else Path(tempfile.gettempdir())
    return base / "swapbench"


@dataclass(frozen=True)
class Claim:
    """What a window touches, and where it lives."""

    plan: str
    output_dir: str
    resources: frozenset[str]

    @property
    def key(self) -> str:
        return hashlib.sha256(self.output_dir.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class LiveWindow:
    """Another window on this host, as its entry names it."""

    plan: str
    output_dir: str
    run_id: str | None
    pid: int
    role: str
    shared: tuple[str, ...]
    owner_alive: bool

    def describe(self) -> str:
        run = f" run {self.run_id}" if self.run_id else ""
        who = f"`swapbench {self.role}` (pid {self.pid})" if self.owner_alive else "no live swapbench (it died)"
        return (f"plan {self.plan}{run}, run folder {Path(self.output_dir) / (self.run_id or '')}, owned by {who}; "
                f"both touch {', '.join(self.shared)}")  # fmt: skip

    def hint(self) -> str:
        if self.owner_alive:
            return "wait for that window to end (it restores its production itself); `swapbench status` on its plan"
        return f"that window's production may be down: `swapbench rollback {self.plan}` first"


def _open_dir() -> Path:
    folder = registry_dir()
    if not folder.is_dir():
        with contextlib.suppress(FileExistsError):
            folder.mkdir(parents=True)
            # every user's windows meet here; the sticky bit keeps each user's entries their own
            os.chmod(folder, 0o1777)  # noqa: S103
    return folder


@contextlib.contextmanager
def _guard(folder: Path) -> Iterator[None]:
    fd = os.open(folder / "registry.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + GUARD_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        yield None
    finally:
        os.close(fd)


def _window_open(output_dir: str) -> bool:
    """Its journal is open (or unreadable): that window's production may be down."""
    try:
        state = read_journal(active_journal_path(Path(output_dir)))
    except JournalError:
        return True
    return bool(state.records) and not state.closed


def _read_entry(path: Path) -> tuple[dict[str, object] | None, bool]:
    """The entry's fields, and whether its owner still holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None, False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            held = False
        except BlockingIOError:
            held = True
        try:
            data = json.loads(os.pread(fd, 65536, 0) or b"null")
        except ValueError:
            data = None
        return (data if isinstance(data, dict) else None), held
    finally:
        os.close(fd)


def _live_windows(folder: Path, claim: Claim, clean: bool) -> list[LiveWindow]:
    found = []
    for path in sorted(folder.glob("*.json")):
        if path.stem == claim.key:
            continue
        data, held = _read_entry(path)
        output = str(data.get("output_dir", "")) if data else ""
        if data is None or (not held and not _window_open(output)):
            if clean and not held:  # its window is over: the entry is only a leftover
                with contextlib.suppress(OSError):
                    path.unlink()
            continue
        resources = data.get("resources")
        shared = sorted(claim.resources & {str(r) for r in resources}) if isinstance(resources, list) else []
        if shared:
            run_id, pid = data.get("run_id"), data.get("pid")
            found.append(LiveWindow(plan=str(data.get("plan")), output_dir=output,
                                    run_id=run_id if isinstance(run_id, str) else None,
                                    pid=pid if isinstance(pid, int) else 0, role=str(data.get("role")),
                                    shared=tuple(shared), owner_alive=held))  # fmt: skip
    return found


def live_windows(claim: Claim) -> list[LiveWindow]:
    """Other windows on this host that touch what `claim` touches (reads only)."""
    folder = registry_dir()
    return _live_windows(folder, claim, clean=False) if folder.is_dir() else []


class Entry:
    """This process's entry in the registry, held from `enter` until `leave` or the holder's death."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self._fd: int | None = None

    def enter(self, role: str, run_id: str | None, force: bool = False) -> None:
        """Refuse (exit 9, naming it) when a live window shares anything with this one; else hold the entry.
        `force`: the watchdog taking over its own window, which must roll back whatever else is live."""
        folder = _open_dir()
        with _guard(folder):
            live = _live_windows(folder, self.claim, clean=True)
            if live and not force:
                raise WindowBusy(f"another window is live on this host: {live[0].describe()}; nothing was touched",
                                 hint=live[0].hint())  # fmt: skip
            fd = os.open(folder / f"{self.claim.key}.json", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # this output folder's own lock is held by us: only a dying owner is left
                os.close(fd)
                raise WindowBusy("another swapbench still holds this window's registry entry",
                                 hint="wait a moment and try again") from None  # fmt: skip
            self._fd = fd
            self.record(role, run_id)

    def record(self, role: str, run_id: str | None) -> None:
        if self._fd is None:
            return
        me = psutil.Process()
        data = {"schema_version": SCHEMA_VERSION, "plan": self.claim.plan, "output_dir": self.claim.output_dir,
                "run_id": run_id, "pid": me.pid, "create_time": me.create_time(), "role": role,
                "resources": sorted(self.claim.resources),
                "since": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
        with contextlib.suppress(OSError):  # the flock, not the text, says the window is live
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, json.dumps(data).encode(), 0)

    def leave(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def find_open_window(plan: Path) -> tuple[str, str] | None:
    """(output_dir, run_id) of an open window of this plan file, from the registry (its owner may be gone): how a
    rollback finds the window's own plan copy even when the plan on disk no longer loads."""
    folder = registry_dir()
    if not folder.is_dir():
        return None
    for path in folder.glob("*.json"):
        data, _ = _read_entry(path)
        if data and data.get("plan") == str(plan) and data.get("run_id") and _window_open(str(data["output_dir"])):
            return str(data["output_dir"]), str(data["run_id"])
    return None
