"""The swap orchestration against an in-memory host: restore always runs, compensations continue after
failures, a failed first restart is retried, the time cap and stop requests are honoured between steps."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from swapbench.core.steps import Outcome, PhaseSpan, Status, SwapStatus, downtime_split
from swapbench.core.swap import Launched, SwapPlan, rollback, run_swap

PLAN = SwapPlan(run_id="r", stop_order=["tts", "llm"], restore_order=["llm", "tts"], candidates=["e4b"],
                baseline="e2b", time_cap_s=100.0, restore_reserve_s=20.0, drain_timeout_s=5.0)  # fmt: skip


class FakeHost:
    """Services and candidates as sets; `fail` maps an operation name to how many times it fails."""

    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.up = {"tts", "llm"}
        self.live: set[str] = set()
        self.calls: list[str] = []
        self.fail = dict(fail or {})
        self.abort: str | None = None

    def _maybe_fail(self, op: str) -> None:
        self.calls.append(op)
        if self.fail.get(op, 0) > 0:
            self.fail[op] -= 1
            raise RuntimeError(f"{op} broke")

    def bench(self, label: str, deadline: float, should_stop: Callable[[], bool]) -> None:
        self._maybe_fail(f"bench {label}")

    def bench_drift(self, label: str, deadline: float, should_stop: Callable[[], bool]) -> None:
        self._maybe_fail(f"drift {label}")

    def prepare(self, should_stop: Callable[[], bool]) -> None:
        self._maybe_fail("prepare")

    def stop_service(self, name: str, timeout_s: float) -> None:
        self._maybe_fail(f"stop {name}")
        self.up.discard(name)

    def start_service(self, name: str, timeout_s: float) -> None:
        self._maybe_fail(f"start {name}")
        self.up.add(name)

    def drain(self, label: str | None, timeout_s: float) -> None:
        self._maybe_fail(f"drain {label}")

    def launch(self, label: str, timeout_s: float) -> Launched:
        self._maybe_fail(f"launch {label}")
        self.live.add(label)
        return Launched(pgid=42, port=11437, container=None)

    def wait_ready(self, label: str, timeout_s: float) -> None:
        self._maybe_fail(f"ready {label}")

    def smoke(self, label: str) -> None:
        self._maybe_fail(f"smoke {label}")

    def teardown(self, label: str, timeout_s: float) -> None:
        self._maybe_fail(f"teardown {label}")
        self.live.discard(label)

    def gate_abort(self) -> str | None:
        return self.abort

    def verify(self) -> list[Outcome]:
        ok = self.up == {"tts", "llm"} and not self.live
        return [Outcome(name="production", status=Status.PASS if ok else Status.FAIL, detail=str(self.up))]


class FakeJournal:
    """Records in memory; `lost` names intents (step, target) whose write 'fails' (a full disk)."""

    def __init__(self, lost: set[tuple[str, str]] | None = None) -> None:
        self.records: list[tuple[str, str, str]] = []
        self.lost = lost or set()

    def intent(self, step: str, target: str, undo: str, **info: Any) -> bool:
        if (step, target) in self.lost:
            return False
        self.records.append(("intent", step, target))
        return True

    def done(self, step: str, target: str, **info: Any) -> bool:
        self.records.append(("done", step, target))
        return True

    def failed(self, step: str, target: str, error: str) -> bool:
        self.records.append(("failed", step, target))
        return True


class Flag:
    def __init__(self) -> None:
        self.requested: str | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        yield


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def swap(host: FakeHost, hook: Callable[[str], None] = lambda at: None, flag: Flag | None = None,
         clock: Clock | None = None, journal: FakeJournal | None = None) -> tuple[Any, FakeJournal]:  # fmt: skip
    journal = journal or FakeJournal()
    report = run_swap(PLAN, host, journal, clock or Clock(), flag or Flag(), [], hook=hook)
    return report, journal


def test_happy_path_order() -> None:
    host = FakeHost()
    report, journal = swap(host)
    assert report.status is SwapStatus.COMPLETE
    assert host.calls == ["bench e2b", "prepare", "stop tts", "stop llm", "drain None", "launch e4b", "ready e4b",
                          "smoke e4b", "bench e4b", "teardown e4b", "drain e4b", "start llm", "start tts"]  # fmt: skip
    assert journal.records[0] == ("intent", "stop", "tts")
    assert report.downtime is not None and report.downtime.total_s > 0


STEPS = ["bench e2b", "prepare", "stop tts", "stop llm", "drain None", "launch e4b", "ready e4b", "smoke e4b",
         "bench e4b", "teardown e4b", "drain e4b"]  # fmt: skip


@pytest.mark.parametrize("step", STEPS)
def test_any_failing_step_restores_production(step: str) -> None:
    host = FakeHost(fail={step: 1})
    report, _ = swap(host)
    assert report.status is SwapStatus.ABORTED
    assert host.up == {"tts", "llm"} and not host.live
    assert report.verify[0].status is Status.PASS
    assert step.split(maxsplit=1)[0] in (report.error or "") or "broke" in (report.error or "")


@pytest.mark.parametrize(("step", "target"), [("stop", "tts"), ("stop", "llm"), ("launch", "e4b")])
def test_an_intent_the_disk_refuses_is_never_acted_on(step: str, target: str) -> None:
    host = FakeHost()
    report, _ = swap(host, journal=FakeJournal(lost={(step, target)}))
    assert report.status is SwapStatus.ABORTED
    assert f"could not record the intent to {step} {target}" in (report.error or "")
    assert f"{'stop' if step == 'stop' else 'launch'} {target}" not in host.calls
    assert host.up == {"tts", "llm"} and not host.live


def test_a_verify_that_crashes_is_a_failed_step_not_a_crash() -> None:
    def broken() -> list[Outcome]:
        raise IndexError("a verify step that crashed")

    host = FakeHost()
    host.verify = broken  # type: ignore[method-assign]
    report, _ = swap(host)
    assert report.status is SwapStatus.RESTORE_FAILED
    assert [(o.name, o.status) for o in report.verify] == [("verify", Status.FAIL)]
    assert "IndexError" in report.verify[0].detail and host.up == {"tts", "llm"}


def test_failed_first_restart_is_retried() -> None:
    host = FakeHost(fail={"start tts": 1})
    report, journal = swap(host)
    assert report.status is SwapStatus.COMPLETE
    assert host.calls.count("start tts") == 2
    assert ("failed", "restore", "tts") in journal.records


def test_every_compensation_runs_and_failures_are_reported() -> None:
    host = FakeHost(fail={"ready e4b": 1, "teardown e4b": 5, "start llm": 5})
    report, _ = swap(host)
    assert report.status is SwapStatus.RESTORE_FAILED
    assert "start tts" in host.calls  # tts still restored after llm and teardown failed
    assert any("llm" in p for p in report.restore_failures)
    assert any("e4b" in p for p in report.restore_failures)


def test_stop_request_is_honoured_between_steps() -> None:
    flag = Flag()

    def hook(at: str) -> None:
        if at == "launch e4b":
            flag.requested = "SIGTERM"

    host = FakeHost()
    report, _ = swap(host, hook=hook, flag=flag)
    assert report.status is SwapStatus.ABORTED and "SIGTERM" in (report.error or "")
    assert "launch e4b" not in host.calls and host.up == {"tts", "llm"}


def test_time_cap_keeps_the_reserve_for_restore() -> None:
    clock = Clock()

    def hook(at: str) -> None:
        if at == "smoke e4b":
            clock.now = 81.0  # the reserve starts 80 s after the start (cap 100 - reserve 20)

    host = FakeHost()
    report, _ = swap(host, hook=hook, clock=clock)
    assert report.status is SwapStatus.ABORTED and "time cap" in (report.error or "")
    assert "smoke e4b" not in host.calls and host.up == {"tts", "llm"} and not host.live


def test_exception_in_swapbench_itself_restores() -> None:
    def hook(at: str) -> None:
        if at == "bench e4b":
            raise ZeroDivisionError("bug")

    host = FakeHost()
    report, _ = swap(host, hook=hook)
    assert report.status is SwapStatus.ABORTED and "ZeroDivisionError" in (report.error or "")
    assert host.up == {"tts", "llm"} and not host.live


def test_rollback_converges_and_is_idempotent() -> None:
    host = FakeHost()
    host.up = {"llm"}
    host.live = {"e4b"}
    for _ in range(2):
        report = rollback(PLAN, host, FakeJournal(), Clock(), Flag(), ["e4b"])
        assert report.status is SwapStatus.COMPLETE and host.up == {"tts", "llm"} and not host.live


def test_downtime_split() -> None:
    timeline = [
        ("baseline-bench", 0, 5), ("stop", 5, 6), ("drain", 6, 6.5), ("launch", 6.5, 7), ("ready", 7, 9),
        ("smoke", 9, 10), ("bench", 10, 20), ("teardown", 20, 21), ("restore", 21, 25), ("verify", 25, 26),
    ]  # fmt: skip
    spans = [PhaseSpan(phase=p, start_s=s, end_s=e) for p, s, e in timeline]
    split = downtime_split(spans)
    assert split is not None
    assert (split.total_s, split.load_s, split.bench_s, split.restore_s) == (21, 2.5, 11, 6)
    assert split.overhead_s == pytest.approx(1.5)  # stop and drain 1.5, swapbench's own 0
    assert (split.stop_s, split.own_s) == (1.5, 0)


def test_the_split_names_swapbench_s_own_time_apart_from_stopping_production() -> None:
    """Gaps between the steps are swapbench's own time ("other"); stop and drain are production's, apart."""
    timeline = [
        ("prepare", 4.5, 5), ("stop", 5, 6), ("stop", 6.25, 7), ("drain", 7, 7.5), ("launch", 7.75, 8),
        ("ready", 8, 9), ("smoke", 9, 10), ("bench", 10, 20), ("teardown", 20, 21), ("drain-candidate", 21, 21.5),
        ("restore", 21.5, 25), ("verify", 25.25, 26),
    ]  # fmt: skip
    split = downtime_split([PhaseSpan(phase=p, start_s=s, end_s=e) for p, s, e in timeline])
    assert split is not None  # the prepare span ends before the first stop: no downtime
    assert (split.total_s, split.load_s, split.bench_s, split.restore_s, split.stop_s) == (21, 1.25, 11, 5.75, 2.25)
    assert split.own_s == pytest.approx(0.75) and split.overhead_s == pytest.approx(3.0)  # three gaps of 0.25 s


def test_a_prepare_that_fails_stops_nothing() -> None:
    """A model file that cannot be read right before the first stop ends the swap there: production untouched."""
    host = FakeHost(fail={"prepare": 1})
    report, journal = swap(host)
    assert report.status is SwapStatus.ABORTED and "prepare broke" in (report.error or "")
    assert host.calls[:2] == ["bench e2b", "prepare"] and not [c for c in host.calls if c.startswith("stop")]
    assert journal.records == [] and report.downtime is None


def test_the_drift_is_measured_after_verify_with_production_up_and_never_costs_downtime() -> None:
    host = FakeHost()
    journal = FakeJournal()
    with_drift = dataclasses.replace(PLAN, drift_check=True)
    report = run_swap(with_drift, host, journal, Clock(), Flag(), [])
    assert report.status is SwapStatus.COMPLETE and report.drift_note is None
    assert host.calls[-3:] == ["start llm", "start tts", "drift e2b"]
    phases = [s.phase for s in report.spans]
    assert phases[-2:] == ["verify", "drift-bench"]
    drift = report.spans[-1]
    assert report.downtime is not None
    verify_end = report.spans[-2].end_s
    assert drift.start_s >= verify_end  # after the window: not in the downtime split
    assert report.downtime.total_s <= verify_end


def test_a_failed_or_skipped_drift_never_changes_production_s_outcome() -> None:
    broken = FakeHost(fail={"drift e2b": 1})
    report = run_swap(dataclasses.replace(PLAN, drift_check=True), broken, FakeJournal(), Clock(), Flag(), [])
    assert report.status is SwapStatus.COMPLETE and report.drift_note == "failed: RuntimeError: drift e2b broke"
    stopped = Flag()
    stopped.requested = "SIGTERM"
    report = run_swap(dataclasses.replace(PLAN, drift_check=True), FakeHost(), FakeJournal(), Clock(), stopped, [])
    assert report.status is SwapStatus.ABORTED and report.drift_note is None  # aborted: no drift at all
    late = Flag()

    def signal_during_restore(at: str) -> None:
        if at == "restore llm":
            late.requested = "SIGTERM"

    host = FakeHost()
    report = run_swap(dataclasses.replace(PLAN, drift_check=True), host, FakeJournal(), Clock(), late, [],
                      hook=signal_during_restore)  # fmt: skip
    assert report.status is SwapStatus.COMPLETE and report.drift_note == "not measured: SIGTERM received"
    assert "drift e2b" not in host.calls
    failed = FakeHost(fail={"smoke e4b": 1})
    report = run_swap(dataclasses.replace(PLAN, drift_check=True), failed, FakeJournal(), Clock(), Flag(), [])
    assert report.status is SwapStatus.ABORTED and "drift e2b" not in failed.calls
