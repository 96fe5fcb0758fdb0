"""Writes that cannot take production down with them: a ballast of reserved space, and a rescue folder.

Once the window has begun, a full or read-only disk must never stop restore, verify or the watchdog. Every
write after the first mutation goes through `SafeWriter`: on ENOSPC it frees the ballast (space laid aside
before the first mutation) and tries again; if the run folder still refuses, the file goes to a rescue
folder; whatever happens is remembered and reported, never raised.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

BALLAST_NAME = ".swapbench-ballast"
BALLAST_MIB = 8
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
T = TypeVar("T")


class Ballast:
    """Space reserved in the run folder, given back the first time a write finds the disk full."""

    def __init__(self, folder: Path, size_mib: int = BALLAST_MIB) -> None:
        self.path = folder / BALLAST_NAME
        self.size_mib = size_mib
        self.laid = False

    def lay(self) -> None:
        """Reserve the space (real blocks, not a sparse file). Raises OSError: call it before the first
        mutation, where a failure still touches nothing."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            chunk = b"\0" * (1 << 20)
            for _ in range(self.size_mib):
                os.write(fd, chunk)
            os.fsync(fd)
        except OSError:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            raise
        os.close(fd)
        self.laid = True

    def release(self) -> bool:
        """Give the space back; True if that freed anything."""
        if not self.laid:
            return False
        self.laid = False
        try:
            self.path.unlink()
        except OSError:
            return False
        return True


def rescue_dirs(run_id: str) -> list[Path]:
    """Where a file goes when its run folder refuses it: the first of these that takes it."""
    found = []
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        found.append(Path(runtime) / "swapbench-rescue" / run_id)
    found.append(Path.home() / ".cache" / "swapbench" / "rescue" / run_id)
    found.append(Path(tempfile.gettempdir()) / "swapbench-rescue" / run_id)
    return found


def write_atomic(path: Path, data: bytes) -> Path:
    """Write via a temporary file and rename: a reader never sees half a file. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return path


class SafeWriter:
    """Writes for one run after its first mutation: never raise, free the ballast on ENOSPC, fall back to a
    rescue folder, and remember each failure for the report."""

    def __init__(self, run_id: str, ballast: Ballast | None = None) -> None:
        self.run_id = run_id
        self.ballast = ballast
        self.failures: list[str] = []

    def attempt(self, what: str, action: Callable[[], T]) -> T | None:
        """Run a write; on a full disk free the ballast and retry once; on failure note it and return None."""
        try:
            return action()
        except OSError as first:
            if first.errno in NO_SPACE and self.ballast is not None and self.ballast.release():
                try:
                    return action()
                except OSError as second:
                    first = second
            self.failures.append(f"{what}: {first.strerror or first}")
            return None

    def write_text(self, path: Path, text: str) -> Path | None:
        """The file where it belongs, else in a rescue folder; returns where it is, None if nowhere."""
        data = text.encode("utf-8")
        if (written := self.attempt(f"writing {path}", lambda: write_atomic(path, data))) is not None:
            return written
        for folder in rescue_dirs(self.run_id):
            try:
                write_atomic(folder / path.name, data)
            except OSError:
                continue
            self.failures.append(f"{path.name} was saved to {folder} instead")
            return folder / path.name
        return None
