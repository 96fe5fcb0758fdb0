"""SIGINT and SIGTERM become a flag that the swap checks between steps; SIGHUP only means the terminal went away.

Installed by the command for its whole life — the window, the report and the printing after it — so a
second or tenth Ctrl-C, during verify or after it, is only noted. SIGHUP means the operator's terminal or
SSH session went away: the window goes on to its end (its measurement is what the TTS was muted for), and
from then on output that has no terminal to go to is dropped instead of failing. An attached terminal
(`Forwarding`) passes Ctrl-C and SIGTERM on to the window it shows, and on SIGHUP simply stops showing it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _drop_terminal_output() -> None:
    """The terminal is gone: point stdout and stderr at /dev/null so a print cannot fail (EIO)."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            os.dup2(null, fd)
        os.close(null)


class SignalFlag:
    """A context manager; remembers the first signal received and counts them all."""

    def __init__(self, keep: bool = False) -> None:
        """`keep`: after the block, until the process ends, these signals are ignored (the CLI: the command's
        outcome is decided; a late Ctrl-C while the interpreter exits must neither kill it nor print a trace —
        CPython resets Python-level handlers to the default during finalization, but leaves SIG_IGN)."""
        self.requested: str | None = None
        self.received: list[str] = []
        self.keep = keep
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        # Never raise here: the step in progress finishes, the runner sees the flag and restores.
        name = signal.Signals(signum).name
        self.received.append(name)
        if signum == signal.SIGHUP:  # the terminal is gone, not the reason to measure: the window goes on
            _drop_terminal_output()
            return
        self.requested = self.requested or name

    def __enter__(self) -> SignalFlag:
        for sig in HANDLED:
            previous = signal.getsignal(sig)
            if sig == signal.SIGHUP and previous == signal.SIG_IGN:
                continue  # started under nohup: output to the terminal is the operator's business
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_IGN if self.keep else handler)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Restore and verify run to the end: signals received meanwhile are only noted (the handler never
        raises, so this only marks the intent in the code that calls it)."""
        yield


class Forwarding:
    """An attached terminal's signals: SIGINT (Ctrl-C) and SIGTERM are passed on to the window, which restores
    production and ends; the terminal stays attached to show that. SIGHUP detaches: the window goes on."""

    def __init__(self, forward: Callable[[signal.Signals], bool]) -> None:
        self.forward = forward
        self.detached = False
        self.passed: list[str] = []  # signals passed on, for the viewer to say so
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        if sig == signal.SIGHUP:
            self.detached = True
            _drop_terminal_output()
            return
        if self.forward(sig):
            self.passed.append(sig.name)

    def __enter__(self) -> Forwarding:
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        """The window's outcome is known: until this process ends, Ctrl-C and SIGTERM are ignored (there is
        nothing left to pass on, and the exit code must be the window's) and SIGHUP still silences output."""
        for sig in self._previous:
            signal.signal(sig, _silence if sig == signal.SIGHUP else signal.SIG_IGN)


def _silence(signum: int, frame: FrameType | None) -> None:
    _drop_terminal_output()
