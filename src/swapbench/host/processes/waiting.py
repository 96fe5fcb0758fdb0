"""Every wait on this host: poll a condition until it holds or a deadline passes. Never a fixed sleep.

`wait_until` is "until it is true"; `wait_steady` is "until it has stayed true for settle_s", which is what
ready means for a server or a service (a /health that flickers 200 → 503 while a model loads is not ready).
Both return what happened; the caller raises its own error, which knows what to tell the user.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.05
READY_POLL_S = 0.02  # inside the window: a local /health or process check costs ~1-10 ms; look every 20 ms


def throttled(ask: Callable[[], T], every_s: float, otherwise: T) -> Callable[[], T]:
    """`ask` at most once per `every_s` (the first call asks at once); between, `otherwise`. For a check too
    costly for every poll of a fast wait: a `docker inspect` costs 30-100 ms."""
    last = [float("-inf")]

    def get() -> T:
        now = time.monotonic()
        if now - last[0] < every_s:
            return otherwise
        last[0] = now
        return ask()

    return get


def wait_until(done: Callable[[], bool], timeout_s: float, poll_s: float = POLL_S) -> bool:
    """Poll `done` until it is true (True) or `timeout_s` passes (False). It is always asked at least once, and
    once more at the deadline, so a zero timeout is a single look."""
    deadline = time.monotonic() + timeout_s
    while True:
        if done():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(poll_s, left))


@dataclass(frozen=True)
class Steady:
    ok: bool  # `healthy` held for settle_s (and `confirm` agreed)
    seconds: float  # from the start of the wait
    aborted: str | None = None  # why `abort` ended the wait early


def wait_steady(
    healthy: Callable[[], bool],
    settle_s: float,
    timeout_s: float,
    abort: Callable[[], str | None] = lambda: None,
    confirm: Callable[[], bool] = lambda: True,
    poll_s: float = POLL_S,
) -> Steady:
    """Poll until `healthy` has been true continuously for `settle_s`. `abort` is asked first on every poll (a
    server that exited while loading: no point waiting out the deadline); `confirm` is asked once the settle time
    has held (a systemd unit that restarted meanwhile says no, and the settling starts again)."""
    start = time.monotonic()
    since: float | None = None
    while True:
        if (why := abort()) is not None:
            return Steady(False, time.monotonic() - start, aborted=why)
        up = healthy()
        now = time.monotonic()
        since = (since or now) if up else None
        if since is not None and now - since >= settle_s:
            if confirm():
                return Steady(True, now - start)
            since = None
        if now - start > timeout_s:
            return Steady(False, now - start)
        time.sleep(poll_s)
