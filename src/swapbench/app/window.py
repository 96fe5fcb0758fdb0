"""The supervised window: `run` starts it as a job of no terminal and attaches; `attach` shows it from anywhere.

The job (`swapbench run PLAN --foreground --job RUN_ID`) writes every event of its display — the cap, each
phase, each expected count and sample, each line of text — as JSON lines to RUN_DIR/events.jsonl, and ends
with an `end` event carrying its exit code, message and hint. A terminal that attaches replays those events
into the same live status line, prints the same summary from the run folder, and exits with the same code.
When the job was killed (hung past its cap or heartbeat) or died, the watchdog's rollback.json is its end:
7 when production was restored and verified, 8 when not.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from swapbench.app import bench, swap, verdict
from swapbench.core.bench import WorkloadRun
from swapbench.core.command_json import Headline, WindowRecord
from swapbench.core.compare import Comparison
from swapbench.core.decision import DecisionResult
from swapbench.core.phases import Phase
from swapbench.core.results import Sample
from swapbench.core.steps import SwapReport, SwapStatus, failures
from swapbench.errors import InputError, PlanError, PreflightFailed, StepFailed, SwapbenchError, error_for
from swapbench.host.processes.waiting import wait_until
from swapbench.host.window.lock import live_owner
from swapbench.host.window.notify import notify
from swapbench.host.window.signals import Forwarding, SignalFlag
from swapbench.host.window.supervisor import (
    EVENTS_FILE,
    LOG_FILE,
    Job,
    UnitLimit,
    job_argv,
    read_job,
    spawn,
    take_handoff,
)
from swapbench.plan.load import LoadedPlan, load_plan
from swapbench.plan.models import NOTIFY_ALWAYS
from swapbench.report.records import read_model
from swapbench.report.results_file import write_text

EVENTS_SCHEMA_VERSION = 1
POLL_S = 0.05
GONE_GRACE_S = 2.0  # a job gone without its end event: the end may still be on its way to the disk
UNIT_MARGIN_S = 30.0  # a transient unit's RuntimeMaxSec: the cap, the watchdog's grace, and this
PIPE_ATOMIC = 4096  # PIPE_BUF: a write this size or less is never split on a pipe
Outcome = Literal["complete", "aborted-restored", "not-restored", "refused"]


# --- the job's side: its display written as events ----------------------------------------------------------


class EventLog:
    """Appends the window's events to RUN_DIR/events.jsonl; never raises (a full disk costs the viewer lines,
    never the window)."""

    def __init__(self, path: Path, pipe_fd: int | None = None) -> None:
        """`pipe_fd`: the pipe to the terminal that started the job, written as well (never blocking: a viewer
        that stopped reading, or is gone, costs it lines, never the window a moment)."""
        self.path = path
        self._file = None
        self._pipe = pipe_fd
        if pipe_fd is not None:
            with contextlib.suppress(OSError):
                os.set_blocking(pipe_fd, False)
        with contextlib.suppress(OSError):
            self._file = path.open("a", encoding="utf-8")
        self.write("start", schema_version=EVENTS_SCHEMA_VERSION, pid=os.getpid())

    def write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"e": event, "t": time.monotonic(), **fields}, default=str) + "\n"
        if self._file is not None:
            with contextlib.suppress(OSError, ValueError):
                self._file.write(line)
                self._file.flush()
        if self._pipe is not None:
            self._to_pipe(line.encode(), patient=event == "end")

    def _to_pipe(self, data: bytes, patient: bool) -> None:
        """All of it or nothing of it; the end is worth a short wait for a viewer that is behind."""
        deadline = time.monotonic() + (2.0 if patient else 0.0)
        while True:
            try:
                if len(data) <= PIPE_ATOMIC:
                    os.write(self._pipe or -1, data)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return
                time.sleep(POLL_S)
            except OSError:  # the viewer is gone (EPIPE): the file is the record
                self._pipe = None
                return

    def display(self) -> swap.Display:
        def on_sample(run: WorkloadRun, sample: Sample, is_warmup: bool) -> None:
            self.write("sample", workload=run.workload.info.name, usable=sample.usable, warmup=is_warmup,
                       latency_ms=sample.exchange.latency_ms)  # fmt: skip

        return swap.Display(
            on_phase=lambda phase, target: self.write("phase", phase=phase.value, target=target),
            on_sample=on_sample,
            expect=lambda target, workload, total: self.write("expect", target=target, workload=workload, total=total),
            say=lambda text: self.write("say", text=text),
            on_cap=lambda cap_s: self.write("cap", cap_s=cap_s),
        )

    def end(self, exit_code: int, message: str = "", hint: str = "", write_failures: list[str] | None = None) -> None:
        self.write("end", exit_code=exit_code, message=message, hint=hint, write_failures=write_failures or [])


def _both(first: swap.Display, second: swap.Display) -> swap.Display:
    def on_sample(run: WorkloadRun, sample: Sample, is_warmup: bool) -> None:
        for display in (first, second):
            if display.on_sample is not None:
                display.on_sample(run, sample, is_warmup)

    def expect(target: str, workload: str, total: int) -> None:
        for display in (first, second):
            if display.expect is not None:
                display.expect(target, workload, total)

    def on_phase(phase: Phase, target: str | None) -> None:
        first.on_phase(phase, target)
        second.on_phase(phase, target)

    def say(text: str) -> None:
        first.say(text)
        second.say(text)

    def on_cap(cap_s: float) -> None:
        first.on_cap(cap_s)
        second.on_cap(cap_s)

    return swap.Display(on_phase=on_phase, on_sample=on_sample, expect=expect, say=say, on_cap=on_cap)


def run_job(
    path: Path, run_id: str, started_by: tuple[int | None, Path | None], display: swap.Display, flag: SignalFlag
) -> swap.RunOutcome:
    """`swapbench run PLAN --foreground --job RUN_ID`: the window itself; its events go to the run folder for
    the terminals that attach (and to the pipe of the one that started it), and to `display` (window.log).
    `started_by`: that pipe's fd (a child), or the handoff folder (a transient unit: the pipe and the
    environment are taken from it first)."""
    events_fd, handoff = started_by
    if handoff is not None:
        events_fd = take_handoff(handoff)
    loaded = load_plan(path)
    log = EventLog(swap.output_dir(loaded) / run_id / EVENTS_FILE, events_fd)
    try:
        outcome = swap.run_plan(path, _both(log.display(), display), flag, run_id=run_id)
    except SwapbenchError as exc:
        log.end(exc.exit_code, exc.message, exc.hint)
        raise
    except BaseException as exc:
        log.end(SwapbenchError.exit_code, f"swapbench failed: {type(exc).__name__}: {exc}", "a bug: see window.log")
        raise
    error = outcome.error()
    code, message, hint = (error.exit_code, error.message, error.hint) if error else (0, "", "")
    log.end(code, message, hint, outcome.write_failures)
    end: dict[str, Any] = {
        "exit_code": code,
        "message": message,
        "hint": hint,
        "write_failures": outcome.write_failures,
    }
    announce(loaded, outcome_of(outcome.run_dir, end))
    return outcome


def run_here(path: Path, display: swap.Display, flag: SignalFlag) -> swap.RunOutcome:
    """`swapbench run --foreground PLAN`: the window in this process, then its notifications."""
    outcome = swap.run_plan(path, display, flag)
    error = outcome.error()
    code, message = (error.exit_code, error.message) if error else (0, "")
    announce(load_plan(path), outcome_of(outcome.run_dir, {"exit_code": code, "message": message}))
    return outcome


def watch_window(
    plan: Path, journal: Path, pid: int, create_time: float, hang: tuple[int | None, float, float, float]
) -> int:
    """`swapbench watchdog` (internal): the watchdog; after a rollback of its own, the notifications."""

    def after(loaded: LoadedPlan, run_dir: Path) -> None:
        end = _end_without_job(run_dir, GONE_GRACE_S)
        if end is not None:
            announce(loaded, outcome_of(run_dir, end))

    return swap.watch_window(plan, journal, pid, create_time, hang, after)


def announce(loaded: LoadedPlan, outcome: WindowOutcome) -> list[str]:
    """Run the plan's `[[notify]]` commands for a window that touched production (complete, aborted-restored,
    not-restored); a refused one touched nothing and tells nobody."""
    record = outcome.record()
    if not loaded.plan.notify or record.outcome not in NOTIFY_ALWAYS:
        return []
    variables = {"SWAPBENCH_OUTCOME": record.outcome, "SWAPBENCH_EXIT_CODE": str(record.exit_code),
                 "SWAPBENCH_RUN_ID": record.run_id, "SWAPBENCH_RUN_DIR": record.run_dir,
                 "SWAPBENCH_DECISION": record.decision or "", "SWAPBENCH_PLAN": str(loaded.path)}  # fmt: skip
    return notify(loaded.plan.notify, record.outcome, record.model_dump_json(indent=2) + "\n", variables,
                  outcome.run_dir, loaded.base_dir)  # fmt: skip


# --- the terminal's side: start, find, follow, the outcome --------------------------------------------------


def find(target: Path) -> Path:
    """The run folder to attach to: a run folder as given, or for a plan the window live now (its lock names the
    run), else its newest run folder with events."""
    if target.is_dir():
        if not (target / EVENTS_FILE).exists():
            raise InputError(f"{target} holds no window events ({EVENTS_FILE})",
                             hint="give a run folder written by `swapbench run`, or the plan")  # fmt: skip
        return target
    try:
        loaded = swap.rollback_target(target)[0]
    except PlanError:
        raise
    folder = swap.output_dir(loaded)
    owner = live_owner(folder)
    if owner is not None and owner.run_id and (folder / owner.run_id / EVENTS_FILE).exists():
        return folder / owner.run_id
    found = sorted(folder.glob(f"*/{EVENTS_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not found:
        raise InputError(f"no window of {target} to attach to in {folder}",
                         hint=f"start one with `swapbench run {target}`")  # fmt: skip
    return found[0].parent


def follow(run_dir: Path, should_stop: Callable[[], bool] = lambda: False, job: Job | None = None
           ) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Every event of the window, past ones first, until its end (the job's `end` event, or the rollback that
    ended a job that died or was killed). Ends early when `should_stop()` (the viewer detached). From the job's
    pipe when this terminal started it (until the pipe closes), else from its events file."""
    path, offset, pending = run_dir / EVENTS_FILE, 0, b""
    job = job or read_job(run_dir)
    pipe = job.events_fd if job is not None else None
    gone_at: float | None = None
    while not should_stop():
        if pipe is not None:
            chunk = _read_pipe(pipe)
            if chunk is None:  # closed: the job is gone; what it could not say, the run folder's files say
                os.close(pipe)
                pipe, chunk = None, b""
                with contextlib.suppress(OSError):
                    offset = path.stat().st_size  # its events came by the pipe: not again from the file
        else:
            chunk = _read_file(path, offset)
            offset += len(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                yield event
                if event.get("e") == "end":
                    return
        if chunk:
            continue
        if pipe is None and (job is None or not job.alive()):
            gone_at = gone_at or time.monotonic()
            if (end := _end_without_job(run_dir, time.monotonic() - gone_at)) is not None:
                yield end
                return
        time.sleep(POLL_S)


def _read_pipe(fd: int) -> bytes | None:
    """What the pipe holds now (b"" for nothing yet), or None once it is closed."""
    ready, _, _ = select.select([fd], [], [], POLL_S)
    if not ready:
        return b""
    data = os.read(fd, 65536)
    return data or None


def _read_file(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return b""


def _end_without_job(run_dir: Path, gone_s: float) -> dict[str, Any] | None:
    """The end of a window whose job is gone without an `end` event: the watchdog's rollback once it is written,
    or, with no journal ever begun (it died before its first step), a plain error."""
    rollback = run_dir / "rollback.json"
    if rollback.exists():
        try:
            report = read_model(rollback, SwapReport, "rollback report", "")
        except InputError:
            report = None
        restored = report is not None and report.status is SwapStatus.COMPLETE
        why = (report.ended_by if report else None) or "the window's job ended without finishing"
        if restored:
            return {"e": "end", "exit_code": 7, "message": f"{why}\n  production was restored and verified",
                    "hint": f"see {run_dir} (watchdog.log, rollback.json)", "ended_by": why}  # fmt: skip
        return {"e": "end", "exit_code": 8, "message": f"{why}\n  PRODUCTION IS NOT VERIFIED after the rollback",
                "hint": f"act now: `swapbench status` on the plan; see {run_dir / 'rollback.json'}",
                "ended_by": why}  # fmt: skip
    if gone_s < GONE_GRACE_S or _watchdog_busy(run_dir):
        return None
    if (swap_file := run_dir / "swap.json").exists():  # the window ended; its job died before saying so
        with contextlib.suppress(InputError):
            status = read_model(swap_file, SwapReport, "swap report", "").status
            code = {SwapStatus.COMPLETE: 0, SwapStatus.ABORTED: 7, SwapStatus.RESTORE_FAILED: 8}[status]
            return {"e": "end", "exit_code": code, "message": f"the window ended {status.value}; its job died "
                    "before it said so", "hint": f"see {run_dir}"}  # fmt: skip
    if (run_dir / "journal.jsonl").exists() or (run_dir / "plan.toml").exists():
        lost = "the window's job is gone and nothing says how it ended"
        return None if gone_s < 120 else {"e": "end", "exit_code": 1, "message": lost, "hint": f"see {run_dir}"}
    why = "the window's job ended before its first step: nothing was touched"
    return {"e": "end", "exit_code": 1, "message": why, "hint": f"see {run_dir / LOG_FILE}"}


def _watchdog_busy(run_dir: Path) -> bool:
    """The window's output folder is still locked (by its watchdog, rolling back)."""
    return live_owner(run_dir.parent) is not None


@dataclass(frozen=True)
class WindowOutcome:
    """What an attached terminal shows at the end: the run's outcome, read back from its folder."""

    run_dir: Path
    exit_code: int
    message: str
    hint: str
    report: SwapReport | None
    comparison: Comparison | None = None
    decision: DecisionResult | None = None
    report_md: Path | None = None
    write_failures: list[str] = field(default_factory=list)
    ended_by: str | None = None

    @property
    def outcome(self) -> Outcome:
        """complete / aborted-restored / not-restored, or refused (Phase 0 said no: nothing was touched)."""
        if self.report is None:
            return "refused" if self.exit_code else "complete"
        if self.report.status is SwapStatus.RESTORE_FAILED:
            return "not-restored"
        rolled_back = self.ended_by is not None or not (self.run_dir / "swap.json").exists()
        return "aborted-restored" if rolled_back or self.report.status is SwapStatus.ABORTED else "complete"

    def error(self) -> SwapbenchError | None:
        if self.exit_code == 0:
            return None
        return error_for(self.exit_code)(self.message, hint=self.hint)

    def record(self) -> WindowRecord:
        """The outcome for machines (`--json`): the outcome, the decision, the headline figures, the run folder."""
        report = self.report
        changed = report is not None and any(s.phase in (Phase.STOP, Phase.LAUNCH) for s in report.spans)
        if report is not None and not (self.run_dir / "swap.json").exists():
            changed = True  # a rollback ended it: the window had touched production
        return WindowRecord(
            outcome=self.outcome, exit_code=self.exit_code, changed=changed, run_id=self.run_dir.name,
            run_dir=str(self.run_dir), message=self.message, hint=self.hint,
            ended_by=self.ended_by or (report.ended_by if report else None),
            decision=self.decision.status.value if self.decision else None,
            decision_reasons=list(self.decision.reasons) if self.decision else [],
            downtime_s=report.downtime.total_s if report and report.downtime else None,
            headline=_headline(self.comparison), report_md=str(self.report_md) if self.report_md else None,
            restore_failures=list(report.restore_failures) if report else [],
            verify_failed=[f"{o.name}: {o.detail}" for o in failures(report.verify)] if report else [],
        )  # fmt: skip


def _headline(comparison: Comparison | None) -> list[Headline]:
    if comparison is None:
        return []
    found = []
    for workload in comparison.workloads:
        if not workload.judged:
            continue
        rows = {r.metric: r for r in workload.rows}
        p50, p95 = rows.get("p50 ms"), rows.get("p95 ms")
        if p50 is None or p95 is None:
            continue
        found.append(Headline(workload=workload.workload, p50_ms=(p50.baseline, p50.candidate),
                              p50_verdict=p50.verdict, p95_ms=(p95.baseline, p95.candidate),
                              p95_verdict=p95.verdict))  # fmt: skip
    return found


def detached_record(run_dir: Path) -> WindowRecord:
    """`run --detach --json`: the window started and goes on."""
    return WindowRecord(outcome="detached", exit_code=0, changed=False, run_id=run_dir.name, run_dir=str(run_dir),
                        hint=f"`swapbench attach {run_dir}` shows it")  # fmt: skip


def outcome_of(run_dir: Path, end: dict[str, Any]) -> WindowOutcome:
    """The end event and what the run folder holds: the swap report (or the rollback's), results, decision."""
    code, message, hint = int(end.get("exit_code", 1)), str(end.get("message", "")), str(end.get("hint", ""))
    failures = [str(f) for f in end.get("write_failures", [])]
    report = None
    for name in ("swap.json", "rollback.json"):
        with contextlib.suppress(InputError):
            if (run_dir / name).exists():
                report = read_model(run_dir / name, SwapReport, "swap report", "")
                break
    comparison = decision = None
    if report is not None and (run_dir / "swap.json").exists():
        with contextlib.suppress(SwapbenchError):
            comparison, decision = verdict.decided(verdict.RunFolder.open(run_dir))
    report_md = run_dir / "report.md" if (run_dir / "report.md").exists() else None
    return WindowOutcome(run_dir, code, message, hint, report, comparison, decision, report_md, failures,
                         end.get("ended_by"))  # fmt: skip


def _forget_refused(run_dir: Path, outcome: WindowOutcome) -> None:
    """A window refused before its first step leaves no run folder behind: the attached terminal showed why."""
    if outcome.report is None and not (run_dir / "plan.toml").exists():
        shutil.rmtree(run_dir, ignore_errors=True)


# --- the use cases --------------------------------------------------------------------------------------------


@dataclass
class Viewer:
    """An attached terminal: the job it shows (where its Ctrl-C goes)."""

    job: Job | None = None

    def forward(self, sig: signal.Signals) -> bool:
        return self.job.signal(sig) if self.job is not None else False


def forwarding(viewer: Viewer) -> Forwarding:
    """The attached terminal's signals, for the whole command: Ctrl-C and SIGTERM reach the window, SIGHUP
    detaches."""
    return Forwarding(viewer.forward)


@dataclass(frozen=True)
class Viewed:
    """What an attached terminal saw: the run folder, and the outcome (None: it detached; the window goes on)."""

    run_dir: Path
    outcome: WindowOutcome | None

    def record(self) -> WindowRecord:
        """For `--json`: the outcome's record, or `detached` (the window goes on)."""
        return self.outcome.record() if self.outcome is not None else detached_record(self.run_dir)


OnEvent = Callable[[dict[str, Any]], None]


def run_window(path: Path, detach: bool, viewer: Viewer, on_event: OnEvent, detached: Callable[[], bool],
               note: Path | None = None) -> Viewed:  # fmt: skip
    """`swapbench run PLAN`: start the window as a job of no terminal, then show it until its end (or, with
    `detach`, only until it started). With `note`, the run folder's path is written there before the job
    exists, so a caller that dies at any moment after can find its window again (never start a second)."""
    loaded = load_plan(path)
    run_id = bench.new_run_id(loaded.plan.run.label)
    run_dir = swap.output_dir(loaded) / run_id
    try:
        run_dir.mkdir(parents=True)
        (run_dir / EVENTS_FILE).touch()
    except OSError as exc:  # the output folder is unusable: Phase 0 names it the way a window would
        swap.require_checks(swap.check(loaded))
        raise PreflightFailed(f"cannot create the run folder {run_dir}: {exc.strerror or exc}; nothing was touched",
                              hint="pick another [run].output_dir") from exc  # fmt: skip
    if note is not None:
        try:
            write_text(note.expanduser(), f"{run_dir}\n")
        except OSError as exc:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise InputError(f"cannot write the run folder's path to {note}: {exc.strerror or exc}; nothing was "
                             "touched", hint="give --note-run-dir a file in a writable folder") from exc  # fmt: skip
    run = loaded.plan.run
    limit = UnitLimit(run.time_cap_s + run.hang_grace_s + UNIT_MARGIN_S)  # the last limit, after the watchdog's
    viewer.job = spawn(job_argv(path.resolve(), run_id), run_dir, limit)
    if detach:
        if not wait_until(lambda: _first_event(run_dir), 30.0, poll_s=POLL_S):
            raise StepFailed(f"the window's job did not start within 30 s; see {run_dir / LOG_FILE}",
                             hint="run it again in the foreground: `swapbench run --foreground PLAN`")  # fmt: skip
        return Viewed(run_dir, None)
    outcome = _attach(run_dir, on_event, detached, viewer.job)
    if outcome is not None:
        _forget_refused(run_dir, outcome)
    return Viewed(run_dir, outcome)


def _first_event(run_dir: Path) -> bool:
    try:
        return (run_dir / EVENTS_FILE).stat().st_size > 0
    except OSError:
        return False


def attach_window(target: Path, viewer: Viewer, on_event: OnEvent, detached: Callable[[], bool]) -> Viewed:
    """`swapbench attach PLAN|RUN_DIR`: show a window from its first event to its end, from any terminal."""
    run_dir = find(target)
    viewer.job = read_job(run_dir)
    return Viewed(run_dir, _attach(run_dir, on_event, detached))


def _attach(
    run_dir: Path, on_event: OnEvent, detached: Callable[[], bool], job: Job | None = None
) -> WindowOutcome | None:
    end = None
    for event in follow(run_dir, detached, job):
        on_event(event)
        if event.get("e") == "end":
            end = event
    return outcome_of(run_dir, end) if end is not None else None
