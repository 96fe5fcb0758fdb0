"""The live status reads its clock, not its events: the downtime clock and the time cap move every second while
nothing else happens; bars show done/total, the running p50 of measured samples and an upper bound on time left."""

from __future__ import annotations

import io
import time

from rich.console import Console

from swapbench.core.bench import BenchWorkload, WorkloadRun
from swapbench.core.phases import Phase
from swapbench.core.results import Exchange, Sample
from swapbench.report.live import LiveStatus, clock_text
from tests.unit.test_bench_loop import INFO


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def status(clock: Clock) -> LiveStatus:
    return LiveStatus(Console(file=io.StringIO(), width=200), every_s=3600, clock=clock)


def sample(latency_ms: float, usable: bool = True) -> Sample:
    exchange = Exchange(latency_ms=latency_ms, content="{}", error=None if usable else "HTTP 500")
    return Sample(index=0, offset_ms=0.0, exchange=exchange)


def test_clock_text() -> None:
    assert [clock_text(s) for s in (0, 7.9, 125, 3723, -3)] == ["0:00", "0:07", "2:05", "1:02:03", "0:00"]


def test_the_downtime_clock_ticks_with_no_event() -> None:
    clock = Clock()
    with status(clock) as live:
        live.on_cap(600)
        live.on_phase(Phase.BASELINE_BENCH, "e2b")
        clock.now += 30
        assert live.status_line() == "baseline-bench e2b · elapsed 0:30 · production up · time cap 9:30 left"
        live.on_phase(Phase.STOP, "tts")
        live.on_phase(Phase.BENCH, "e4b")
        clock.now += 17  # seventeen seconds of bench, no phase change
        assert live.status_line() == "bench e4b · elapsed 0:47 · production DOWN 0:17 · time cap 9:13 left"
        clock.now += 1
        assert live.status_line() == "bench e4b · elapsed 0:48 · production DOWN 0:18 · time cap 9:12 left"
        live.on_phase(Phase.REPORT, None)
        clock.now += 60
        assert live.status_line() == "report · elapsed 1:48 · production up again (was down 0:18) · time cap 8:12 left"


def test_a_bar_shows_done_total_running_p50_and_time_left() -> None:
    clock = Clock()
    run = WorkloadRun(BenchWorkload(info=INFO, bodies=({},), parse=None))
    with status(clock) as live:
        live.expect("e4b", "nav", 6)
        live.on_sample(run, sample(900.0), True)  # warm-up: counted, not in the p50
        for latency in (10.0, 30.0, 20.0):
            clock.now += 2
            live.on_sample(run, sample(latency), False)
        live.on_sample(run, sample(5.0, usable=False), False)  # an error: counted, not in the p50
        assert live.bar_lines() == ["e4b · nav 5/6 · p50 20.0 ms · ≤0:02 left"]
        clock.now += 2
        live.on_sample(run, sample(40.0), False)
        assert live.bar_lines() == ["e4b · nav 6/6 · p50 25.0 ms"]
        assert live.bar_lines(active_only=True) == []


def test_a_workload_that_stops_before_its_extension_ends_its_bar() -> None:
    """The total counts the extension (N -> N2); when the next workload or phase starts, the bar is done."""
    clock = Clock()
    run = WorkloadRun(BenchWorkload(info=INFO, bodies=({},), parse=None))
    describe = WorkloadRun(BenchWorkload(info=INFO.model_copy(update={"name": "describe"}), bodies=({},), parse=None))
    with status(clock) as live:
        live.on_phase(Phase.BENCH, "e4b")
        live.expect("e4b", "nav", 10)  # every workload's bar is announced before the first request
        live.expect("e4b", "describe", 10)
        for _ in range(4):
            clock.now += 2
            live.on_sample(run, sample(20.0), False)
        assert live.bar_lines(active_only=True) == ["e4b · nav 4/10 · p50 20.0 ms · ≤0:12 left", "e4b · describe 0/10"]
        live.on_sample(describe, sample(30.0), False)  # nav stopped at 4 of 10 (a thinking marker, say)
        assert live.bar_lines(active_only=True) == ["e4b · describe 1/10 · p50 30.0 ms"]
        live.on_phase(Phase.TEARDOWN, "e4b")
        assert live.bar_lines() == ["e4b · nav 4/4 · p50 20.0 ms", "e4b · describe 1/1 · p50 30.0 ms"]
        assert live.bar_lines(active_only=True) == []


def test_a_plain_log_gets_phase_lines_and_periodic_status_lines() -> None:
    out = io.StringIO()
    live = LiveStatus(Console(file=out, width=300), every_s=0.05, clock=Clock())  # its own time stands still
    with live:
        live.on_cap(600)
        live.on_phase(Phase.STOP, "tts")
        deadline = time.monotonic() + 30
        while out.getvalue().count("status: stop tts") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # the ticker prints on its own, with no further event
    lines = out.getvalue().splitlines()
    assert lines[0] == "[   0.0 s] stop tts"
    assert lines[1:3] == ["[   0.0 s] status: stop tts · elapsed 0:00 · production DOWN 0:00 · time cap 10:00 left"] * 2
