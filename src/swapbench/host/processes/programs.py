"""Files and programs as the kernel will see them: a regular file's first bytes (never blocking on a FIFO), and
whether argv[0] of a command can be executed by this user (its #! line, its interpreter, PATH)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from swapbench.core.steps import Outcome, Status


def outcome(name: str, ok: bool, detail: str, exit_code: int | None = None) -> Outcome:
    """A check's result: passed or failed, in words."""
    return Outcome(name=name, status=Status.PASS if ok else Status.FAIL, detail=detail, exit_code=exit_code)


class Unusable(Exception):
    """Why a path cannot be used as the file the plan says it is (internal: turned into an Outcome)."""


def not_a_file(path: Path) -> str | None:
    """Why `path` is not a regular file, from its stat alone (nothing is opened), or None."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"is a broken symlink (to {os.readlink(path)})" if path.is_symlink() else "does not exist"
    except OSError as exc:
        return f"cannot be reached ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket"}
    return "is " + next((what for test, what in kinds.items() if test(mode)), "a device, not a regular file")


def read_head(path: Path, limit: int) -> bytes:
    """Up to `limit` bytes of a regular file. Raises Unusable. A non-regular file is refused on its stat, and the
    open is non-blocking and checked again, so a FIFO swapped in between cannot block Phase 0."""
    why = not_a_file(path)
    if why is not None:
        raise Unusable(why)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except PermissionError as exc:
        raise Unusable("is not readable by this user") from exc
    except OSError as exc:
        raise Unusable(f"cannot be opened ({exc.strerror})") from exc
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Unusable("is not a regular file")
        return f.read(limit)


def _interpreter_problem(head: bytes) -> str | None:
    """Why the kernel would refuse to execute a file starting with `head`, or None."""
    if head.startswith(b"\x7fELF"):
        return None
    if not head.startswith(b"#!"):
        return "has no #! line and is not a binary: running it fails with 'Exec format error'; add #!/bin/sh"
    line = head[2:].split(b"\n", 1)[0]
    if b"\r" in line:
        return "has Windows line endings (CRLF) in its #! line: run `dos2unix` on it"
    words = line.decode("utf-8", "replace").replace("\0", " ").split()  # a NUL would make os.access raise
    if not words or not os.access(words[0], os.X_OK) or not os.path.isfile(words[0]):
        return f"names an interpreter that cannot be run: #!{' '.join(words)}"
    if words[0].endswith("/env"):
        named = next((w for w in words[1:] if not w.startswith("-")), None)
        if named is not None and shutil.which(named) is None:
            return f"runs {named!r} through #!{' '.join(words)}, and {named!r} is not on PATH"
    return None


def executable_problem(path: Path) -> str | None:
    why = not_a_file(path)
    if why is not None:
        return why
    if not os.access(path, os.X_OK):
        return f"is not executable by this user: `chmod +x {path}`"
    try:
        head = read_head(path, 256)
    except Unusable:
        return None  # execute-only (not readable): the kernel can still run it
    return _interpreter_problem(head)


def check_program(name: str, cwd: Path, key: str) -> Outcome:
    """argv[0] of a command: a path with a `/` is taken from `cwd` (as exec does); a bare name from PATH."""
    if "/" in name:
        path = cwd / name
    else:
        found = shutil.which(name)
        if found is None:
            return outcome(
                key, False, f"{name!r} is not on PATH ({os.environ.get('PATH', '')}); install it or fix {key}"
            )
        path = Path(found)
    why = executable_problem(path)
    return outcome(key, why is None, f"{path} {why}; fix {key}" if why else f"{path}: executable")
