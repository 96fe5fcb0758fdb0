"""The swap itself: prepare → stop → drain → launch → ready → smoke → bench → teardown → restore → verify.

Pure orchestration. The host, the journal, the clock and the stop flag come in as protocols, so the same
code runs against the real machine and against an in-memory host in unit tests. Two promises:

- restore and verify run on every path out: a failed step, an exception, a stop request, the time cap;
- every compensation runs even when an earlier one failed; failures are reported at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from swapbench.core.phases import Phase
from swapbench.core.steps import Outcome, PhaseSpan, Status, SwapReport, SwapStatus, downtime_split, failures
from swapbench.errors import GateAborted, Interrupted, SwapbenchError, SwapFailed, TimeCapReached

RESTORE_ATTEMPTS = 2  # a service that fails its first restart gets one more


class Launched(TypedDict):
    """What the journal keeps of a launch, so another process can tear the candidate down."""

    pgid: int | None  # a native candidate's process group
    port: int
    container: str | None  # a docker candidate's name


class Host(Protocol):
    def bench(self, label: str, deadline: float, should_stop: Callable[[], bool]) -> None: ...
    def bench_drift(self, label: str, deadline: float, should_stop: Callable[[], bool]) -> None: ...
    def prepare(self, should_stop: Callable[[], bool]) -> None: ...
    def stop_service(self, name: str, timeout_s: float) -> None: ...
    def start_service(self, name: str, timeout_s: float) -> None: ...
    def drain(self, label: str | None, timeout_s: float) -> None: ...
    def launch(self, label: str, timeout_s: float) -> Launched: ...
    def wait_ready(self, label: str, timeout_s: float) -> None: ...
    def smoke(self, label: str) -> None: ...
    def teardown(self, label: str, timeout_s: float) -> None: ...
    def verify(self) -> list[Outcome]: ...
    def gate_abort(self) -> str | None: ...


class JournalLike(Protocol):
    """Each write says whether it reached the disk; after the first mutation a write never raises."""

    def intent(self, step: Phase, target: str, undo: str, **info: Any) -> bool: ...
    def done(self, step: Phase, target: str, **info: Any) -> bool: ...
    def failed(self, step: Phase, target: str, error: str) -> bool: ...


class StopFlag(Protocol):
    @property
    def requested(self) -> str | None: ...

    def held(self) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class SwapPlan:
    """What the orchestrator needs from the plan, in its own terms."""

    run_id: str
    stop_order: Sequence[str]
    restore_order: Sequence[str]
    candidates: Sequence[str]
    baseline: str | None
    time_cap_s: float
    restore_reserve_s: float
    drain_timeout_s: float
    step_timeout_s: float = 600.0
    drift_check: bool = False  # measure the baseline again after verify (production is up then)


Hook = Callable[[str], None]  # called at every step boundary: a no-op, or a fault injector in tests
PhaseEvent = Callable[[Phase, str | None], None]


@dataclass
class _Run:
    plan: SwapPlan
    host: Host
    journal: JournalLike
    clock: Callable[[], float]
    flag: StopFlag
    hook: Hook
    on_phase: PhaseEvent
    t0: float = 0.0
    spans: list[PhaseSpan] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)  # launched and not yet torn down

    @property
    def deadline(self) -> float:
        """Work must end here; the rest of the cap is reserved for restore and verify."""
        return self.t0 + self.plan.time_cap_s - self.plan.restore_reserve_s

    def remaining(self) -> float:
        return max(self.deadline - self.clock(), 0.0)

    def step_timeout(self) -> float:
        return min(self.plan.step_timeout_s, max(self.remaining(), 0.001))

    def guard(self, where: str) -> None:
        """Between steps: honour a stop request and the time cap."""
        self.hook(where)
        if (reason := self.host.gate_abort()) is not None:
            raise GateAborted(reason, hint="the candidate does not fit this host's VRAM band; production is restored")
        if self.flag.requested:
            raise Interrupted(f"{self.flag.requested} received before {where}", hint="production is being restored")
        if self.clock() >= self.deadline:
            raise TimeCapReached(
                f"time cap reached before {where} ({self.plan.time_cap_s:.0f} s, "
                f"{self.plan.restore_reserve_s:.0f} s kept for restore)",
                hint="raise [run].time_cap_s, or lower [run].samples",
            )

    @contextmanager
    def span(self, phase: Phase, target: str | None = None) -> Iterator[None]:
        with suppress(Exception):  # the display may fail (a closed pipe); the phase itself must not
            self.on_phase(phase, target)
        start = self.clock() - self.t0
        try:
            yield
        except BaseException as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            end = self.clock() - self.t0
            self.spans.append(PhaseSpan(phase=phase, target=target, start_s=start, end_s=end, ok=False, detail=detail))
            raise
        self.spans.append(PhaseSpan(phase=phase, target=target, start_s=start, end_s=self.clock() - self.t0))

    def intend(self, step: Phase, target: str, undo: str) -> None:
        """Write-ahead: a forward step acts only once its intent is on disk; if the disk refuses, the swap
        ends here and restores (restore itself journals on a best-effort basis)."""
        if not self.journal.intent(step, target, undo=undo):
            raise SwapFailed(
                f"the journal could not record the intent to {step} {target} (disk full or read-only); "
                "not going further",
                hint="free space on run.output_dir's disk; production is being restored",
            )

    def should_stop(self) -> bool:
        """A stop was requested or a gate fired; the deadline reaches the bench separately (as the time cap)."""
        return bool(self.flag.requested) or self.host.gate_abort() is not None


def _work(run: _Run) -> None:
    plan, host, journal = run.plan, run.host, run.journal
    if plan.baseline is not None:
        run.guard("baseline bench")
        with run.span(Phase.BASELINE_BENCH, plan.baseline):
            host.bench(plan.baseline, run.deadline, run.should_stop)
    if plan.stop_order or plan.candidates:  # what can be done before the window is done now, not inside it
        run.guard("prepare")
        with run.span(Phase.PREPARE):
            host.prepare(run.should_stop)
    for name in plan.stop_order:
        run.guard(f"stop {name}")
        run.intend(Phase.STOP, name, undo="start")
        run.stopped.append(name)  # before acting: a half-done stop is still restored
        with run.span(Phase.STOP, name):
            host.stop_service(name, run.step_timeout())
        journal.done(Phase.STOP, name)
    if plan.stop_order:
        run.guard("drain")
        with run.span(Phase.DRAIN):
            host.drain(None, min(plan.drain_timeout_s, run.step_timeout()))
    for label in plan.candidates:
        _one_candidate(run, label)


def _one_candidate(run: _Run, label: str) -> None:
    host, journal = run.host, run.journal
    run.guard(f"launch {label}")
    run.intend(Phase.LAUNCH, label, undo="teardown")
    run.live.append(label)
    with run.span(Phase.LAUNCH, label):
        info = host.launch(label, run.step_timeout())
    journal.done(Phase.LAUNCH, label, **info)
    run.guard(f"ready {label}")
    with run.span(Phase.READY, label):
        host.wait_ready(label, run.step_timeout())
    run.guard(f"smoke {label}")
    with run.span(Phase.SMOKE, label):
        host.smoke(label)
    run.guard(f"bench {label}")
    with run.span(Phase.BENCH, label):
        host.bench(label, run.deadline, run.should_stop)
    if (reason := host.gate_abort()) is not None:
        raise GateAborted(reason, hint="the candidate does not fit this host's VRAM band; production is restored")
    if run.flag.requested:
        raise Interrupted(f"{run.flag.requested} received during bench of {label}", hint="production is restored")
    if run.clock() >= run.deadline:
        raise TimeCapReached(f"time cap reached during bench of {label}", hint="raise [run].time_cap_s")
    run.hook(f"teardown {label}")
    _teardown(run, label)


def _teardown(run: _Run, label: str) -> None:
    run.journal.intent(Phase.TEARDOWN, label, undo="none")
    with run.span(Phase.TEARDOWN, label):
        run.host.teardown(label, run.plan.step_timeout_s)
    if label in run.live:
        run.live.remove(label)
    run.journal.done(Phase.TEARDOWN, label)
    with run.span(Phase.DRAIN_CANDIDATE, label):
        run.host.drain(label, run.plan.drain_timeout_s)


def restore(run: _Run, launched: Sequence[str], stopped: Sequence[str]) -> list[str]:
    """Tear down every live candidate, then start every stopped service in restore order. Each step runs
    even if an earlier one failed; returns what could not be done, in words a person can act on."""
    problems: list[str] = []
    for label in reversed(list(launched)):
        try:
            _teardown(run, label)
        except Exception as exc:  # keep going: production matters more than this candidate
            run.journal.failed(Phase.TEARDOWN, label, str(exc))
            problems.append(f"candidate {label} may still run: {exc}")
    for name in [n for n in run.plan.restore_order if n in stopped]:
        _quietly(run.hook, f"restore {name}")
        problems += _restore_service(run, name)
    return problems


def _quietly(hook: Hook, where: str) -> None:
    """A hook inside restore may observe (tests stop here) but never keep a service down."""
    try:
        hook(where)
    except Exception:
        return


def _restore_service(run: _Run, name: str) -> list[str]:
    last = ""
    for attempt in range(1, RESTORE_ATTEMPTS + 1):
        run.journal.intent(Phase.RESTORE, name, undo="none", attempt=attempt)
        try:
            with run.span(Phase.RESTORE, name):
                run.host.start_service(name, run.plan.step_timeout_s)
        except Exception as exc:
            last = str(exc)
            run.journal.failed(Phase.RESTORE, name, last)
            continue
        run.journal.done(Phase.RESTORE, name, attempt=attempt)
        return []
    return [f"service {name} did not come back after {RESTORE_ATTEMPTS} attempts: {last}"]


def run_swap(
    plan: SwapPlan,
    host: Host,
    journal: JournalLike,
    clock: Callable[[], float],
    flag: StopFlag,
    checks: list[Outcome],
    hook: Hook = lambda where: None,
    on_phase: PhaseEvent = lambda phase, target: None,
) -> SwapReport:
    """Carry the swap out; restore and verify whatever happens. Phase 0 already passed (`checks`)."""
    run = _Run(plan, host, journal, clock, flag, hook, on_phase, t0=clock())
    error: SwapbenchError | None = None
    try:
        _work(run)
    except SwapbenchError as exc:
        error = exc
    except Exception as exc:  # a bug in swapbench or a plug-in must not leave production down
        error = SwapFailed(f"swapbench failed: {type(exc).__name__}: {exc}", hint="production is being restored")
    finally:
        with flag.held():
            problems = restore(run, list(run.live), list(run.stopped))
            verify = _verify(run)
    report = _report(run, error, problems, verify, checks)
    if report.status is SwapStatus.COMPLETE and plan.baseline is not None and plan.drift_check:
        note = _drift(run, plan.baseline)
        report = report.model_copy(update={"spans": run.spans, "drift_note": note})
    return report


def _drift(run: _Run, baseline: str) -> str | None:
    """Production is back and verified: measure the baseline again, costing no downtime, so the report can
    say how far the host moved while the candidate was measured. Nothing here can touch production's outcome."""
    if run.flag.requested:
        return f"not measured: {run.flag.requested} received"
    deadline = run.t0 + run.plan.time_cap_s
    if run.clock() >= deadline:
        return "not measured: the time cap was reached"
    try:
        with run.span(Phase.DRIFT_BENCH, baseline):
            run.host.bench_drift(baseline, deadline, lambda: bool(run.flag.requested))
    except SwapbenchError as exc:
        return f"stopped early: {exc.message.splitlines()[0]}"
    except Exception as exc:
        return f"failed: {type(exc).__name__}: {exc}"
    return None


def _verify(run: _Run) -> list[Outcome]:
    """Verify always reports: a host whose verify itself fails gets that failure as a failed step."""
    try:
        with run.span(Phase.VERIFY):
            return run.host.verify()
    except Exception as exc:
        return [Outcome(name="verify", status=Status.FAIL, detail=f"verify failed: {type(exc).__name__}: {exc}")]


def _report(
    run: _Run, error: SwapbenchError | None, problems: list[str], verify: list[Outcome], checks: list[Outcome]
) -> SwapReport:
    if problems or failures(verify):
        status = SwapStatus.RESTORE_FAILED
    elif error is not None:
        status = SwapStatus.ABORTED
    else:
        status = SwapStatus.COMPLETE
    return SwapReport(
        run_id=run.plan.run_id, status=status, error=error.message if error else None, checks=checks, verify=verify,
        restore_failures=problems, spans=run.spans, downtime=downtime_split(run.spans),
    )  # fmt: skip


def rollback(
    plan: SwapPlan,
    host: Host,
    journal: JournalLike,
    clock: Callable[[], float],
    flag: StopFlag,
    launched: Sequence[str],
) -> SwapReport:
    """After a crash: converge on production — every candidate gone, every stopped service up — and verify.
    Idempotent: a candidate already gone or a service already up costs a look, nothing more."""
    run = _Run(plan, host, journal, clock, flag, lambda where: None, lambda p, t: None, t0=clock())
    with flag.held():
        problems = restore(run, launched, list(plan.stop_order))
        verify = _verify(run)
    return _report(run, None, problems, verify, [])
