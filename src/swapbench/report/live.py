"""The window's live status: phase, elapsed, a downtime clock that ticks while production is down, the time cap
left, and per workload done/total, a running p50 and time left. A terminal gets a line redrawn twice a second;
a pipe or a file (CI, nohup) gets a plain line every few seconds, so a log shows progress too."""

from __future__ import annotations

import contextlib
import math
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from swapbench.core.bench import WorkloadRun
from swapbench.core.phases import Phase
from swapbench.core.results import Sample

BACK_UP = (Phase.DRIFT_BENCH, Phase.REPORT)  # after verify: production is up again


def clock_text(seconds: float) -> str:
    """0:07, 2:05, 1:02:03: what a person reads at a glance."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class _Bar:
    target: str
    workload: str
    total: int
    done: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # measured, usable samples: the running p50
    first_at: float | None = None
    last_at: float | None = None

    def line(self) -> str:
        text = f"{self.target} · {self.workload} {self.done}/{self.total}"
        if self.latencies_ms:
            text += f" · p50 {statistics.median(self.latencies_ms):.1f} ms"
        if self.first_at is not None and self.last_at is not None and 1 < self.done < self.total:
            per_sample = (self.last_at - self.first_at) / (self.done - 1)
            # the total includes the adaptive extension, which may not be needed: an upper bound
            text += f" · ≤{clock_text(math.ceil(per_sample * (self.total - self.done)))} left"
        return text


class LiveStatus:
    """Fed by the window's events (`on_phase`, `expect`, `on_sample`, `on_cap`, `say`); renders from its state
    and the clock alone, so the downtime clock moves every second even when no event comes."""

    def __init__(self, console: Console, *, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.console = console
        self.every_s = every_s
        self.clock = clock
        self.t0 = clock()
        self.phase: Phase | None = None
        self.target: str | None = None
        self.down_since: float | None = None
        self.up_at: float | None = None
        self.cap_s: float | None = None
        self.cap_t0: float | None = None
        self.bars: dict[tuple[str, str], _Bar] = {}
        self._current: dict[str, tuple[str, str]] = {}  # workload -> the bar its samples go to now
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._ticker: threading.Thread | None = None
        self._done = threading.Event()

    # -- events ------------------------------------------------------------------------------------------
    def on_cap(self, cap_s: float) -> None:
        """The session's hard cap; it counts from the window's first phase."""
        self.cap_s = cap_s

    def on_phase(self, phase: Phase, target: str | None, at: float | None = None) -> None:
        now = self.clock() if at is None else at
        with self._lock:
            self.phase, self.target = phase, target
            if self.cap_t0 is None:
                self.cap_t0 = now
            if phase is Phase.STOP and self.down_since is None:
                self.down_since = now
            if phase in BACK_UP and self.down_since is not None and self.up_at is None:
                self.up_at = now
            self._finish(self.bars)  # a new phase: every workload before it has ended
        self._start()
        self._print(
            Text.assemble((f"[{self._stamp(now)}]", "dim"), " ", (phase, "bold"), f" {target}" if target else "")
        )

    @staticmethod
    def _finish(bars: dict[tuple[str, str], _Bar], target: str | None = None) -> None:
        """Their workloads have ended (all of them, or those of one target): a total that counted on extension
        samples that were not needed (a marker, the VRAM band, the p50's precision) becomes what was done."""
        for (label, _), bar in bars.items():
            if target is None or label == target:
                bar.total = bar.done

    def expect(self, target: str, workload: str, total: int) -> None:
        with self._lock:
            self.bars[(target, workload)] = _Bar(target, workload, total)
            self._current[workload] = (target, workload)
        self._start()

    def on_sample(self, run: WorkloadRun, sample: Sample, is_warmup: bool) -> None:
        latency = sample.exchange.latency_ms if sample.usable else None
        self.sample_seen(run.workload.info.name, latency, is_warmup)

    def sample_seen(self, name: str, latency_ms: float | None, is_warmup: bool, at: float | None = None) -> None:
        """A sample of workload `name`; `latency_ms` None when it is not usable."""
        now = self.clock() if at is None else at
        with self._lock:
            key = self._current.get(name) or (self.target or "target", name)
            bar = self.bars.setdefault(key, _Bar(key[0], name, 0))
            if bar.done == 0:  # a target's workloads run one after another: the one before this one has ended
                self._finish({k: b for k, b in self.bars.items() if k != key and b.done > 0}, key[0])
            bar.done += 1
            bar.total = max(bar.total, bar.done)
            bar.first_at = now if bar.first_at is None else bar.first_at
            bar.last_at = now
            if not is_warmup and latency_ms is not None:
                bar.latencies_ms.append(latency_ms)

    def say(self, text: str) -> None:
        self._print(Text(text))

    def apply(self, event: Mapping[str, Any], offset_s: float = 0.0) -> None:
        """One event of a window shown from elsewhere (an attached terminal, a laptop over SSH): `t` is on the
        window's clock; `offset_s` turns it into this one's. An event this version does not know is skipped."""
        kind = event.get("e")
        at = float(event.get("t", self.clock() - offset_s)) + offset_s
        with contextlib.suppress(KeyError, ValueError, TypeError):
            if kind == "start":
                self.t0 = at
            elif kind == "cap":
                self.on_cap(float(event["cap_s"]))
            elif kind == "phase":
                self.on_phase(Phase(event["phase"]), event.get("target"), at=at)
            elif kind == "expect":
                self.expect(str(event["target"]), str(event["workload"]), int(event["total"]))
            elif kind == "sample":
                latency = float(event["latency_ms"]) if event.get("usable") else None
                self.sample_seen(str(event["workload"]), latency, bool(event.get("warmup")), at=at)
            elif kind == "say":
                self.say(str(event["text"]))

    # -- rendering -----------------------------------------------------------------------------------------
    def _stamp(self, now: float) -> str:
        return f"{now - self.t0:6.1f} s"

    def status_line(self) -> str:
        """Phase · elapsed · downtime · cap left, at this instant."""
        now = self.clock()
        with self._lock:
            parts = [f"{self.phase or 'starting'}{' ' + self.target if self.target else ''}",
                     f"elapsed {clock_text(now - self.t0)}"]  # fmt: skip
            if self.down_since is None:
                parts.append("production up")
            elif self.up_at is None:
                parts.append(f"production DOWN {clock_text(now - self.down_since)}")
            else:
                parts.append(f"production up again (was down {clock_text(self.up_at - self.down_since)})")
            if self.cap_s is not None and self.cap_t0 is not None:
                left_s = math.ceil(self.cap_s - (now - self.cap_t0))  # a countdown rounds up
                parts.append(f"time cap {clock_text(left_s)} left")
        return " · ".join(parts)

    def bar_lines(self, active_only: bool = False) -> list[str]:
        """Every workload's bar, or (for the plain lines) only those still running."""
        with self._lock:
            return [bar.line() for bar in self.bars.values() if not active_only or bar.done < bar.total]

    def __rich__(self) -> Group:
        down = self.down_since is not None and self.up_at is None
        return Group(Text(self.status_line(), style="bold red" if down else "bold"),
                     *(Text("  " + line) for line in self.bar_lines()))  # fmt: skip

    # -- the two ways to show it -------------------------------------------------------------------------
    def _start(self) -> None:
        """Lazily, on the first phase or workload: a question asked before the window (build the rig?) is
        not drawn over."""
        if self._live is not None or self._ticker is not None:
            return
        if self.console.is_terminal:
            self._live = Live(self, console=self.console, refresh_per_second=2, transient=False)
            self._live.start()
        else:
            self._ticker = threading.Thread(target=self._tick, name="swapbench-status", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._done.wait(self.every_s):
            lines = [self.status_line(), *self.bar_lines(active_only=True)]
            self._print(Text(f"[{self._stamp(self.clock())}] status: " + " | ".join(lines)))

    def _print(self, text: Text) -> None:
        with contextlib.suppress(OSError):  # the terminal went away (SIGHUP): the run folder holds the story
            self.console.print(text, highlight=False, soft_wrap=True)

    def __enter__(self) -> LiveStatus:
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        if self._live is not None:
            with contextlib.suppress(OSError):
                self._live.stop()
