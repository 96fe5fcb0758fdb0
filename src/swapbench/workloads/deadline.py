"""A deadline for user code called in the window's own thread: SIGALRM interrupts it where Python runs.

A parser runs in process on every bench answer (a child per answer would cost more than the answer). A
parser that loops must not hold the window: at the deadline an exception is raised inside it, and raised
again every REPEAT_S while it keeps running (user code that swallows one meets the next). What only C code
holds (a regex that backtracks for ever) is out of reach here; the watchdog's time cap ends that window.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

REPEAT_S = 0.05
T = TypeVar("T")


class Overrun(BaseException):
    """Raised inside user code at its deadline (a BaseException: `except Exception` in user code lets it by)."""


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Overrun


def call_with_deadline(call: Callable[[], T], timeout_s: float) -> T:
    """`call()`, interrupted by `Overrun` after `timeout_s`. Outside the main thread (no signals there) it runs
    unbounded: the window's bench runs in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return call()
    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, timeout_s, REPEAT_S)
    try:
        return call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
