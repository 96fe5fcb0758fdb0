"""Call a user's function in a child process: bounded in time, unable to exit swapbench or forge its answer.

The child (`isolated_child.py`) runs in its own session, imports `module:function` with the ref's python_path
first on sys.path, calls it once per input and reports each outcome on a pipe of its own — stdout and stderr
are only kept, a short tail, for the message. At the deadline the whole process group is killed; so are the
strays it leaves behind when it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

CALL_TIMEOUT_S = 20.0
OUTPUT_KEEP_BYTES = 2048  # the end of what the user code printed, for the message
MAX_VALUE_CHARS = 2**20  # a returned value longer than this as JSON is only measured, not sent back
MAX_REPORT_BYTES = 16 * 2**20  # the report channel: a few calls' values, each escaped once more
POLL_S = 0.05
CHILD = Path(__file__).with_name("isolated_child.py")


class Ending(StrEnum):
    FINISHED = "finished"  # every call returned or raised
    IMPORT_FAILED = "import failed"
    NO_FUNCTION = "no function"
    EXITED = "exited"  # sys.exit() or the process ended, before the call in progress returned
    TIMED_OUT = "timed out"
    GARBLED = "garbled"  # the report channel held something the child did not write
    NOT_STARTED = "not started"


@dataclass(frozen=True)
class Returned:
    value: Any  # the JSON value (a tuple if a tuple came back); None when not `json_ok`
    json_ok: bool  # False: not JSON-serialisable, or longer than MAX_VALUE_CHARS as JSON
    kind: str  # "str", "tuple" or "other"
    type_name: str
    json_chars: int
    shown: str  # the start of its repr


@dataclass(frozen=True)
class Raised:
    error: str  # the last line of the traceback, e.g. "RuntimeError: no camera"
    where: str  # file:line of the innermost frame, or ""


@dataclass(frozen=True)
class IsolatedCall:
    """What happened: one outcome per call that ended, in order, then how the process ended."""

    outcomes: tuple[Returned | Raised, ...]
    ending: Ending
    detail: str  # the import error, how the process exited, ...
    imported: bool
    output: str  # the end of the user code's stdout and stderr

    def output_note(self, limit: int = 300) -> str:
        """A short ' (its output ended: ...)' for a message, or ''."""
        text = " ".join(self.output.split())
        if not text:
            return ""
        return f" (its output ended: {('...' + text[-limit:]) if len(text) > limit else text!r})"


def call_isolated(
    target: str,
    kwargs: Mapping[str, Any],
    calls: Sequence[Sequence[Any]],
    python_path: Sequence[Path],
    timeout_s: float = CALL_TIMEOUT_S,
) -> IsolatedCall:
    """Import `module:function` in a child and call it with each of `calls` (positional args) and `kwargs`."""
    module, _, attr = target.partition(":")
    first = [str(p) for p in python_path]
    request = {
        "sys_path": first + [p for p in sys.path if isinstance(p, str) and p not in first],
        "module": module,
        "attr": attr,
        "kwargs": dict(kwargs),
        "calls": [list(args) for args in calls],
        "max_json_chars": MAX_VALUE_CHARS,
    }
    try:
        report, output, returncode, timed_out = _run_child(pickle.dumps(request), timeout_s)
    except OSError as exc:
        return IsolatedCall((), Ending.NOT_STARTED, f"cannot start {sys.executable}: {exc}", False, "")
    return _interpret(report, output, returncode, timed_out)


def _run_child(request: bytes, timeout_s: float) -> tuple[bytes, bytes, int, bool]:
    read_fd, write_fd = os.pipe()
    try:
        with tempfile.TemporaryFile() as stdin:  # a file, not a pipe: writing it can never block
            stdin.write(request)
            stdin.seek(0)
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-I", str(CHILD), str(write_fd)],
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                )
            finally:
                os.close(write_fd)
        assert proc.stdout is not None
        report, output = _Capped(MAX_REPORT_BYTES, tail=False), _Capped(OUTPUT_KEEP_BYTES, tail=True)
        with proc.stdout, selectors.DefaultSelector() as sel:
            sel.register(read_fd, selectors.EVENT_READ, report)
            sel.register(proc.stdout.fileno(), selectors.EVENT_READ, output)
            try:
                timed_out = _pump(sel, proc.pid, time.monotonic() + timeout_s)
            finally:  # Ctrl-C included: nothing of the user's code outlives the call
                _kill_group(proc.pid)
                proc.wait()
            while sel.get_map() and _read_ready(sel, 0):
                pass
        return report.data, output.data, proc.returncode, timed_out
    finally:
        os.close(read_fd)


class _Capped:
    """Bytes read from a pipe, kept up to a cap: the first bytes, or the last ones (`tail`)."""

    def __init__(self, cap: int, tail: bool) -> None:
        self.cap, self.tail, self.buffer = cap, tail, bytearray()

    def add(self, chunk: bytes) -> None:
        if self.tail:
            self.buffer = (self.buffer + chunk)[-self.cap :]
        else:
            self.buffer += chunk[: self.cap - len(self.buffer)]

    @property
    def data(self) -> bytes:
        return bytes(self.buffer)


def _pump(sel: selectors.BaseSelector, pid: int, deadline: float) -> bool:
    """Read both pipes until the child ends (False) or the deadline passes (True)."""
    while not _exited(pid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return True
        _read_ready(sel, min(remaining, POLL_S))
    return False


def _read_ready(sel: selectors.BaseSelector, timeout_s: float) -> bool:
    events = sel.select(timeout_s) if sel.get_map() else []
    for key, _ in events:
        chunk = os.read(key.fd, 65536)
        if chunk:
            key.data.add(chunk)
        else:
            sel.unregister(key.fd)
    return bool(events)


def _exited(pid: int) -> bool:
    """Has the child ended? Not reaped (WNOWAIT): its pid, hence its process group id, stay ours to kill."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _interpret(report: bytes, output: bytes, returncode: int, timed_out: bool) -> IsolatedCall:
    outcomes: list[Returned | Raised] = []
    imported, ending, detail = False, None, ""
    for event in _events(report):
        match event.get("event"):
            case "imported":
                imported = True
            case "returned":
                outcomes.append(_decode_returned(event))
            case "raised":
                outcomes.append(Raised(error=str(event.get("error")), where=str(event.get("where") or "")))
            case "import_failed":
                ending, detail = Ending.IMPORT_FAILED, str(event.get("error"))
            case "no_function":
                ending = Ending.NO_FUNCTION
            case "exited":
                ending, detail = Ending.EXITED, f"sys.exit({event.get('code')})"
            case "done":
                ending = Ending.FINISHED
            case _:
                ending, detail = Ending.GARBLED, "its report channel holds something swapbench did not write"
                break
    if ending is None:
        ending = Ending.TIMED_OUT if timed_out else Ending.EXITED
        detail = "" if timed_out else _exit_status(returncode)
    text = output.decode("utf-8", errors="replace")
    return IsolatedCall(tuple(outcomes), ending, detail, imported, text)


def _events(report: bytes) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for line in report.splitlines():
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            event = None
        events.append(event if isinstance(event, dict) else {"event": None})
    return events


def _decode_returned(event: dict[str, Any]) -> Returned:
    text, value, ok = event.get("json"), None, False
    if isinstance(text, str):
        with contextlib.suppress(ValueError, RecursionError):
            value, ok = json.loads(text), True
    if ok and event.get("kind") == "tuple" and isinstance(value, list):
        value = tuple(value)
    return Returned(
        value=value,
        json_ok=ok,
        kind=str(event.get("kind")),
        type_name=str(event.get("type")),
        json_chars=int(event.get("json_chars") or 0),
        shown=str(event.get("repr")),
    )


def _exit_status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"
