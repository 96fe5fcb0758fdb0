"""SIGINT/SIGTERM become a flag that the swap checks between steps; during restore they are held off."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM)


class SignalFlag:
    """Installed for the duration of a swap (a context manager); remembers the first signal received."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._holding = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        # Never raise here: the step in progress finishes, the runner sees the flag and restores.
        self.requested = self.requested or signal.Signals(signum).name

    def __enter__(self) -> SignalFlag:
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Restore and verify run to the end: signals received meanwhile are only noted."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
