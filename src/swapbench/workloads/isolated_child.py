"""The child side of an isolated call, run as a script (stdlib only): import the user's function, call it on each
input, and report each outcome as one JSON line on a private file descriptor — never on stdout, which is the
user code's to print on.

Request (a pickle on stdin): sys_path, module, attr, kwargs, calls (a list of positional-argument lists),
max_json_chars. Events: imported | import_failed | no_function, then returned | raised per call, then done;
or exited, when the function called sys.exit().
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pickle
import sys
import traceback
from typing import Any, TextIO


def _error(exc: BaseException) -> dict[str, str]:
    """The last line of the traceback, and the innermost frame that is neither this file nor importlib."""
    text = traceback.format_exception_only(type(exc), exc)[-1].strip()
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<frozen") and f.filename != __file__
    ]
    where = f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{os.path.basename(exc.filename)}:{exc.lineno}"
    return {"error": text, "where": where}


def _returned(value: Any, max_json_chars: int) -> dict[str, Any]:
    """What came back: JSON text (None if it is not JSON or too long), its kind and a short repr."""
    try:
        text: str | None = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        text = None
    size = len(text) if text is not None else 0
    try:
        shown = repr(value)[:200]
    except Exception:  # a user __repr__
        shown = "<unprintable>"
    kind = "str" if isinstance(value, str) else "tuple" if isinstance(value, tuple) else "other"
    return {
        "event": "returned",
        "type": type(value).__name__,
        "kind": kind,
        "json": text if size <= max_json_chars else None,
        "json_chars": size,
        "repr": shown,
    }


def _send(channel: TextIO, event: dict[str, Any]) -> None:
    channel.write(json.dumps(event) + "\n")
    channel.flush()


def _run(channel: TextIO, request: dict[str, Any]) -> None:
    sys.path[:] = request["sys_path"]
    try:
        module = importlib.import_module(request["module"])
        func = getattr(module, request["attr"], None)
    except SystemExit as exc:
        _send(channel, {"event": "exited", "code": repr(exc.code)})
        return
    except BaseException as exc:  # any failure while importing user code is the user's to see
        _send(channel, {"event": "import_failed", **_error(exc)})
        return
    if not callable(func):
        _send(channel, {"event": "no_function"})
        return
    _send(channel, {"event": "imported"})
    for args in request["calls"]:
        try:
            value = func(*args, **request["kwargs"])
        except SystemExit as exc:
            _send(channel, {"event": "exited", "code": repr(exc.code)})
            return
        except BaseException as exc:
            _send(channel, {"event": "raised", **_error(exc)})
            continue
        _send(channel, _returned(value, request["max_json_chars"]))
    _send(channel, {"event": "done"})


def main() -> None:
    channel = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
    request = pickle.load(sys.stdin.buffer)  # noqa: S301 -- written by swapbench, read before any user code
    _run(channel, request)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the user code may have closed or replaced them
            stream.flush()
    # Skip interpreter shutdown: a thread or atexit hook the user code left behind must not hold the call.
    os._exit(0)


if __name__ == "__main__":
    main()
