"""Use cases of the safe swap: check (Phase 0), run and rollback (the dry run and status have modules of their own)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from swapbench.app import bench, verdict
from swapbench.app.faults import fault_hook
from swapbench.core.bench import OnSample
from swapbench.core.compare import Comparison
from swapbench.core.decision import DecisionResult
from swapbench.core.phases import Phase
from swapbench.core.steps import Outcome, Status, SwapReport, SwapStatus, failures
from swapbench.core.swap import PhaseEvent, SwapPlan, rollback, run_swap
from swapbench.errors import (
    InputError,
    Interrupted,
    JournalError,
    PlanError,
    PreflightFailed,
    RestoreFailed,
    StepFailed,
    SwapbenchError,
    SwapFailed,
    WorkloadError,
)
from swapbench.host.candidate.prepare import Preparer, prepare_checks
from swapbench.host.claims import claim_of
from swapbench.host.gpu.device import read_device
from swapbench.host.preflight import checks as chk
from swapbench.host.preflight.contracts import plan_preflight
from swapbench.host.processes.proc import run_argv
from swapbench.host.processes.programs import outcome
from swapbench.host.processes.waiting import wait_until
from swapbench.host.real import RealHost
from swapbench.host.services import ServiceOps, driver_for, privileged_argv
from swapbench.host.window.files import BALLAST_MIB, Ballast, SafeWriter
from swapbench.host.window.journal import Journal, JournalState, active_journal_path, read_journal
from swapbench.host.window.lock import POLL_S as LOCK_POLL_S
from swapbench.host.window.lock import WindowLock, live_owner
from swapbench.host.window.registry import find_open_window, live_windows
from swapbench.host.window.signals import SignalFlag
from swapbench.host.window.watchdog import Liveness, Watchdog, kill_owner, say, watch
from swapbench.plan.load import LoadedPlan, load_plan, plan_json_schema
from swapbench.plan.models import DockerLaunch, Plan, port_of
from swapbench.workloads.requests import prepare_workloads

SAMPLE_KIB = 4  # a sample in a results file, generously (Phase 0 estimates the disk a run needs)


def output_dir(loaded: LoadedPlan) -> Path:
    return loaded.resolve(loaded.plan.run.output_dir)


def journal_path(loaded: LoadedPlan) -> Path:
    return active_journal_path(output_dir(loaded))


def swap_plan(loaded: LoadedPlan, run_id: str) -> SwapPlan:
    plan = loaded.plan
    cap = plan.run.time_cap_s
    reserve = plan.run.restore_reserve_s or min(max(cap / 5, 60.0), cap / 2)
    return SwapPlan(
        run_id=run_id,
        stop_order=plan.run.stop_order,
        restore_order=plan.effective_restore_order,
        candidates=[t.label for t in plan.candidates if t.launch is not None],
        baseline=plan.baseline.label if plan.baseline and plan.baseline.url and plan.run.bench_baseline else None,
        time_cap_s=cap,
        restore_reserve_s=reserve,
        drain_timeout_s=plan.run.drain_timeout_s,
        drift_check=plan.run.drift_check,
    )


# --- Phase 0 ------------------------------------------------------------------------------------------------


WINDOW_FREE = "window free"
INPUT_ERRORS: dict[int, type[SwapbenchError]] = {
    InputError.exit_code: InputError,
    WorkloadError.exit_code: WorkloadError,
}


def _journal_check(loaded: LoadedPlan) -> Outcome:
    """No other swapbench owns the window, and no run left its journal open."""
    if (owner := live_owner(output_dir(loaded))) is not None:
        return outcome(WINDOW_FREE, False, f"{owner.describe()} owns the window now; wait for it to finish")
    if live := live_windows(claim_of(loaded)):
        return outcome(WINDOW_FREE, False, f"another window is live on this host: {live[0].describe()}; "
                           f"{live[0].hint()}")  # fmt: skip
    try:
        state = read_journal(journal_path(loaded))
    except JournalError as exc:
        return outcome(WINDOW_FREE, False, f"{exc.message}; run `swapbench rollback PLAN`")
    if state.records and not state.closed:
        return outcome(
            WINDOW_FREE,
            False,
            f"run {state.run_id} did not finish and no swapbench owns it ({state.path}): production may be "
            "down; run `swapbench rollback PLAN` first",
        )
    return outcome(WINDOW_FREE, True, "no live owner, no unfinished journal")


def _output_checks(loaded: LoadedPlan) -> list[Outcome]:
    """The run folder's disk: writable, with room for the journal, the results and the ballast."""
    plan = loaded.plan
    folder = output_dir(loaded)
    per_target = len(plan.workloads) * ((plan.run.extended_samples or plan.run.samples) + plan.run.warmup)
    need_mib = 32 + BALLAST_MIB + len(plan.targets()) * per_target * SAMPLE_KIB / 1024
    name = f"run.output_dir {folder} writable, {need_mib:.0f} MiB free"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".swapbench-probe-"):
            pass
        free_mib = shutil.disk_usage(folder).free / 2**20
    except OSError as exc:
        return [outcome(name, False, f"cannot write there: {exc.strerror or exc}; pick another run.output_dir")]
    ok = free_mib >= need_mib
    return [outcome(name, ok, f"{free_mib:.0f} MiB free" + ("" if ok else "; free space or move run.output_dir"))]


def _input_checks(loaded: LoadedPlan) -> list[Outcome]:
    """The image, schemas, prompt builders and parsers (tried in a bounded child process), for every target.
    A failure keeps its own exit code (3 for a file, 4 for the user's code): see `require_checks`."""
    plan = loaded.plan
    found, image = [], None
    for target in plan.targets():
        try:
            image, _ = prepare_workloads(loaded, target)
        except SwapbenchError as exc:
            detail = f"{exc.message} (what to do: {exc.hint})" if exc.hint else exc.message
            return [outcome("inputs", False, detail, exit_code=exc.exit_code)]
    if plan.image is not None and image is not None:
        info = image.frames[0].info
        if len(image.frames) == 1:
            found.append(outcome(f"image {info.path}", True, f"{info.format} {info.width}x{info.height}, decoded"))
        else:
            found.append(outcome(f"image.frames {plan.image.frames}", True,
                                     f"{len(image.frames)} frames decoded, set {image.digest[:12]}"))  # fmt: skip
    found.append(outcome("workloads", True, f"{len(plan.workloads)} prepared (prompts, parsers, schemas)"))
    return found


def _candidate_checks(loaded: LoadedPlan) -> list[Outcome]:
    """Ports now; programs, model files, secrets and flags through `preflight.plan_preflight`; the version and
    the memory for the page cache through `prepare.prepare_checks`."""
    found = [chk.check_port_free(t.launch.port, f" (candidate {t.label})") for t in loaded.plan.candidates if t.launch]
    return found + plan_preflight(loaded) + prepare_checks(loaded)


def _host_checks(loaded: LoadedPlan) -> list[Outcome]:
    plan, found = loaded.plan, []
    privileged = privileged_argv(plan.services, loaded.resolve)
    if privileged:
        found += chk.check_sudo(privileged)
    uses_docker = any(driver_for(s, loaded.resolve).uses_docker_engine for s in plan.services) or any(
        isinstance(t.launch, DockerLaunch) for t in plan.candidates
    )
    if uses_docker:
        result = run_argv(["docker", "version", "--format", "{{.Server.Version}}"], 15.0)
        found.append(outcome("docker engine", result.ok, result.stdout.strip() or result.describe()))
    return found


def check(loaded: LoadedPlan) -> list[Outcome]:
    """Every contract, before anything is touched. Reads only."""
    plan = loaded.plan
    found = [_journal_check(loaded), *_output_checks(loaded), *_input_checks(loaded), *_host_checks(loaded)]
    found += _candidate_checks(loaded)
    for svc in plan.services:
        state = ServiceOps(svc, loaded.resolve).state()
        found.append(outcome(f"service {svc.name} up now", state.ok, state.detail))
    privileged = privileged_argv(plan.services, loaded.resolve)
    for declared in plan.checks:
        if privileged and declared.kind == "sudo":
            continue  # already checked above, command by command
        found += chk.run_declared_check(declared, loaded.resolve, privileged)
    return found + _not_enforced(plan)


def _not_enforced(plan: Plan) -> list[Outcome]:
    """Sections this version records but does not act on: shown as SKIP, never as a pass."""
    found = []
    if plan.gates is not None and plan.gates.candidate_vram_gb is not None:
        reading = read_device(plan.run.gpu_index)
        if reading.error:
            detail = f"no GPU reading ({reading.error}): the VRAM gate cannot fire on this host"
            found.append(Outcome(name="gates.candidate_vram_gb", status=Status.SKIP, detail=detail))
    return found


def require_checks(found: list[Outcome]) -> None:
    if (error := checks_error(found)) is not None:
        raise error


def checks_error(found: list[Outcome]) -> SwapbenchError | None:
    """Exit 9 when the window is not free (before any contract: a run or a rollback comes first), else 6."""
    window = next((o for o in found if o.name == WINDOW_FREE and o.failed), None)
    if window is not None:
        return JournalError(f"the window is not free: {window.detail}", hint=_window_hint(window.detail))
    inputs = [o for o in failures(found) if o.exit_code in INPUT_ERRORS]
    if inputs:  # a broken file or function of the plan's own, before any contract of the host
        error = INPUT_ERRORS[inputs[0].exit_code or 0]
        return error(
            "\n".join(f"{o.detail}" for o in inputs) + "\n  nothing was touched",
            hint="fix the input named above, then run `swapbench check` again",
        )
    failed = failures(found)
    if failed:
        return PreflightFailed(
            f"{len(failed)} contract(s) failed; nothing was touched:\n"
            + "\n".join(f"  - {o.name}: {o.detail}" for o in failed),
            hint="fix the host or the plan, then run `swapbench check` again",
        )
    return None


@dataclass(frozen=True)
class CheckOutcome:
    """`swapbench check`: every contract's outcome; `error()` is what makes the command fail, if anything."""

    plan: Path
    found: list[Outcome]

    def error(self) -> SwapbenchError | None:
        return checks_error(self.found)


def check_plan(path: Path) -> CheckOutcome:
    """`swapbench check PLAN`: Phase 0 alone, touching nothing."""
    return CheckOutcome(path, check(load_plan(path)))


def plan_schema() -> str:
    """`swapbench plan-schema`: the JSON Schema of a plan file, for editors."""
    return plan_json_schema()


def _window_hint(detail: str) -> str:
    if "owns the window" in detail or "another window is live" in detail:
        return "wait for it: it restores and verifies production itself (`swapbench status PLAN` shows it)"
    return "run `swapbench rollback PLAN`: it converges on production whatever state the host is in"


# --- run ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    report: SwapReport
    run_dir: Path
    decision: DecisionResult | None = None
    report_md: Path | None = None
    comparison: Comparison | None = None
    write_failures: list[str] = field(default_factory=list)

    def error(self) -> SwapbenchError | None:
        """What makes `run` fail after the window: production not verified (8), stopped early (7), or records
        incomplete (7); None when the swap completed."""
        report = self.report
        if report.status is SwapStatus.RESTORE_FAILED:
            bad = report.restore_failures + [f"{o.name}: {o.detail}" for o in failures(report.verify)]
            return RestoreFailed(
                "PRODUCTION IS NOT VERIFIED:\n" + "\n".join(f"  - {b}" for b in bad),
                hint="fix the items above by hand now; `swapbench rollback PLAN` retries the restore",
            )
        if report.status is SwapStatus.ABORTED:
            return SwapFailed(
                f"the swap stopped early: {report.error}\n  production was restored and verified",
                hint=f"see {self.run_dir}",
            )
        if self.write_failures:
            return SwapFailed(
                "production was restored and verified, but the run's records are incomplete:\n"
                + "\n".join(f"  - {f}" for f in self.write_failures),
                hint="free the disk of run.output_dir (or make it writable); then `swapbench status PLAN` — a "
                "journal that could not be closed asks for `swapbench rollback PLAN`, which only checks and closes it",
            )
        return None


def baseline_service(plan: Plan) -> str | None:
    """The production service that serves the baseline: its health URL has the baseline's port."""
    if plan.baseline is None or plan.baseline.url is None:
        return None
    port = port_of(plan.baseline.url)
    return next((s.name for s in plan.services if s.health and port_of(s.health.url) == port), None)


@dataclass(frozen=True)
class Display:
    """How a window shows itself: phase changes, each sample, each workload's expected count, and lines of text."""

    on_phase: PhaseEvent = lambda phase, target: None
    on_sample: OnSample | None = None
    expect: Callable[[str, str, int], None] | None = None
    say: Callable[[str], None] = lambda text: None
    on_cap: Callable[[float], None] = lambda cap_s: None  # the session's time cap, told before the window


Signals = SignalFlag  # what signals_noted() gives a command, by the name cli.py knows it


def signals_noted() -> SignalFlag:
    """For a command that touches the host, from its start to the end of the process (the window, the report and
    the printing after it): SIGINT, SIGTERM and SIGHUP are noted, never fatal. A late Ctrl-C must neither cut a
    restore short nor print a trace, and after a SIGHUP output goes to /dev/null instead of failing."""
    return SignalFlag(keep=True)


def run_plan(path: Path, display: Display, flag: SignalFlag, run_id: str | None = None) -> RunOutcome:
    """`swapbench run PLAN --foreground`, inside `signals_noted()`; `run_id` names the run folder a job was given."""
    loaded = load_plan(path)
    display.on_cap(loaded.plan.run.time_cap_s)
    return run(loaded, display.on_phase, display.on_sample, display.expect, flag, run_id=run_id)


def run(
    loaded: LoadedPlan,
    on_phase: PhaseEvent,
    on_sample: OnSample | None = None,
    expect: Callable[[str, str, int], None] | None = None,
    flag: SignalFlag | None = None,
    run_id: str | None = None,
) -> RunOutcome:
    """The window, owned by this process from the lock to the report. Exit codes in order: 9 (the window is
    not free), 6 (a contract), 130 (a signal before anything was touched); after the first mutation
    production is restored and verified on every path and `RunOutcome.error()` turns the outcome into 0, 7 or 8."""
    if loaded.path is None:
        raise PreflightFailed("`swapbench run` needs a plan file", hint="write the plan to a file")
    lock = WindowLock(output_dir(loaded), claim_of(loaded))
    lock.acquire("run")
    try:
        with contextlib.nullcontext(flag) if flag is not None else SignalFlag() as signals:
            return _window(loaded, lock, signals, on_phase, on_sample, expect, run_id)
    finally:
        lock.release()


@dataclass(frozen=True)
class _Begun:
    checks: list[Outcome]
    run_dir: Path
    journal: Journal
    writer: SafeWriter
    preparer: Preparer


def _prepare(loaded: LoadedPlan, signals: SignalFlag) -> Preparer:
    """The candidates' model files read into the page cache before the checks say go (Phase 0 touches nothing
    else): the load inside the window then reads memory, and a file that cannot be read to its end stops the run
    here, with production untouched."""
    preparer = Preparer(loaded)
    try:
        preparer.first_read(lambda: bool(signals.requested))
    except StepFailed as exc:
        raise PreflightFailed(f"{exc.message}; nothing was touched", hint=exc.hint) from exc
    return preparer


def _begin(loaded: LoadedPlan, lock: WindowLock, signals: SignalFlag, run_id: str | None) -> _Begun:
    """Phase 0, then everything that must hold before the first mutation (raises: nothing is touched)."""
    found = check(loaded)
    require_checks(found)
    preparer = _prepare(loaded, signals)
    if signals.requested:
        raise Interrupted(f"{signals.requested} received during Phase 0: nothing was touched", hint="run it again")
    run_id = run_id or bench.new_run_id(loaded.plan.run.label)
    run_dir = output_dir(loaded) / run_id
    ballast = Ballast(run_dir)
    writer = SafeWriter(run_id, ballast)
    try:
        ballast.lay()
        shutil.copyfile(str(loaded.path), run_dir / "plan.toml")
        changed = hashlib.sha256((run_dir / "plan.toml").read_bytes()).hexdigest() != loaded.sha256
        journal = Journal.begin(journal_path(loaded), writer, run_id=run_id, plan=str(loaded.path),
                                plan_sha256=loaded.sha256, pid=os.getpid())  # fmt: skip
    except OSError as exc:
        ballast.release()
        raise PreflightFailed(f"cannot prepare the run folder {run_dir}: {exc.strerror or exc}; nothing was touched",
                              hint="free space on run.output_dir's disk or pick another folder") from exc  # fmt: skip
    if changed:  # the copy is what the watchdog will roll back with: it must be what Phase 0 checked
        ballast.release()
        journal.end("not-started", archive_to=run_dir / "journal.jsonl")
        raise PreflightFailed(f"{loaded.path} changed while Phase 0 checked it; nothing was touched",
                              hint="run again once the plan is saved")  # fmt: skip
    lock.record("run", run_id)
    return _Begun(found, run_dir, journal, writer, preparer)


def _window(
    loaded: LoadedPlan,
    lock: WindowLock,
    signals: SignalFlag,
    on_phase: PhaseEvent,
    on_sample: OnSample | None,
    expect: Callable[[str, str, int], None] | None,
    run_id: str | None,
) -> RunOutcome:
    begun = _begin(loaded, lock, signals, run_id)
    run_dir, journal, writer, run_id = begun.run_dir, begun.journal, begun.writer, begun.run_dir.name
    sp = swap_plan(loaded, run_id)
    watchdog = _arm_watchdog(loaded, begun, sp.time_cap_s + 120)
    host = RealHost(loaded, run_id, run_dir, bench.measure, on_sample=on_sample, expect=expect, writer=writer,
                    preparer=begun.preparer)  # fmt: skip
    offset = [0.0]
    report = run_swap(sp, host, journal, lambda: time.monotonic() + offset[0], signals, begun.checks,
                      hook=fault_hook(host, offset), on_phase=on_phase)  # fmt: skip
    with contextlib.suppress(Exception):  # production is verified: the display's clock stops (it may fail: a pipe)
        on_phase(Phase.REPORT, None)
    report = _with_gpu(report, loaded, host)
    journal.end(report.status.value, archive_to=run_dir / "journal.jsonl")
    watchdog.disarm()
    writer.write_text(run_dir / "swap.json", report.model_dump_json(indent=2) + "\n")
    comparison, decision, report_md = _write_report(run_dir, writer)
    if writer.ballast is not None:
        writer.ballast.release()
    return RunOutcome(report, run_dir, decision, report_md, comparison, list(writer.failures))


def _arm_watchdog(loaded: LoadedPlan, begun: _Begun, backstop_s: float) -> Watchdog:
    """Armed after the journal is open and before the first mutation; if it cannot be, nothing is touched."""
    run_dir = begun.run_dir
    run = loaded.plan.run
    hang = (run.heartbeat_timeout_s, time.monotonic() + run.time_cap_s, run.hang_grace_s)
    try:
        return Watchdog(loaded.path or run_dir, begun.journal.path, run_dir.name, run_dir / "watchdog.log", backstop_s,
                        hang)  # fmt: skip
    except OSError as exc:
        begun.journal.end("not-started", archive_to=run_dir / "journal.jsonl")
        raise PreflightFailed(f"the watchdog could not be started ({exc.strerror or exc}); nothing was touched",
                              hint="free memory and processes, then run again") from exc  # fmt: skip


def _with_gpu(report: SwapReport, loaded: LoadedPlan, host: RealHost) -> SwapReport:
    try:
        gpu = host.gpu.summary(baseline_service(plan=loaded.plan), host.drain_seconds)
    except Exception:  # a GPU reading that fails now must not cost the report of a restored production
        gpu = None
    files = {"results_files": [str(p) for p in host.results_files], "drift_files": [str(p) for p in host.drift_files]}
    prepared = host.preparer.records() if host.preparer is not None else []
    return report.model_copy(update={**files, "gpu": gpu, "prepare": prepared})


def _write_report(run_dir: Path, writer: SafeWriter) -> tuple[Comparison | None, DecisionResult | None, Path | None]:
    """Production is back and verified; a report that cannot be written must not hide that."""
    try:
        return verdict.write_report(verdict.RunFolder.open(run_dir))
    except Exception as exc:  # a report is re-made from the run folder later; production's outcome stands
        why = exc.message if isinstance(exc, SwapbenchError) else f"{type(exc).__name__}: {exc}"
        writer.failures.append(f"report not written ({why}); `swapbench report {run_dir}` writes it later")
        return None, None, None


# --- rollback and status ------------------------------------------------------------------------------------


def _rollback_journal(path: Path, state: JournalState | None, run_id: str, writer: SafeWriter) -> Journal:
    """Append to an unfinished journal; set a damaged one aside (kept for a person) and start a new one. Every
    write is best effort: a rollback on a read-only or full disk still puts production back."""
    if state is not None and state.records and not state.closed:
        return Journal.resume(path, writer)
    journal = Journal(path, writer)
    fields: dict[str, object] = {"run_id": run_id, "rollback": True}
    if state is None:
        damaged = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        if writer.attempt(f"setting the damaged journal aside as {damaged}", lambda: path.replace(damaged)):
            fields["damaged_journal"] = str(damaged)
    else:
        writer.attempt(f"removing the closed journal {path}", lambda: _unlink(path))
    journal.write("begin", **fields)
    return journal


def _unlink(path: Path) -> bool:
    path.unlink(missing_ok=True)
    return True


@dataclass(frozen=True)
class RollbackOutcome:
    """`swapbench rollback`: the report, or None when `--if-unfinished` found nothing to do; `notes`: which plan
    it converged on, and what is wrong with the one on disk."""

    report: SwapReport | None
    output_dir: Path
    notes: list[str] = field(default_factory=list)

    def error(self) -> SwapbenchError | None:
        if self.report is None or self.report.status is SwapStatus.COMPLETE:
            return None
        bad = self.report.restore_failures + [f"{o.name}: {o.detail}" for o in failures(self.report.verify)]
        return RestoreFailed(
            "PRODUCTION IS NOT VERIFIED after the rollback:\n" + "\n".join(f"  - {b}" for b in bad),
            hint="fix the items above by hand now; `swapbench rollback PLAN` tries again",
        )


def rollback_plan(path: Path, if_unfinished: bool = False, take_over_hung: bool = False) -> RollbackOutcome:
    """`swapbench rollback PLAN`, inside `signals_noted()`. The plan is read leniently: putting production back
    is never refused over `port = "8081"` (a string where a number belongs) that a run would be refused for.
    `take_over_hung` (the systemd backstop, which fires past the cap): a run that still owns the window then is
    hung — it is killed and the window taken over, instead of the rollback being refused."""
    loaded, notes = rollback_target(path)
    lock, ended_by = None, None
    if take_over_hung and (owner := live_owner(output_dir(loaded))) is not None and owner.role == "run":
        killed = kill_owner(owner.pid, owner.create_time)
        notes.append(f"the run (pid {owner.pid}) still owned the window past its time cap: killed {killed}")
        ended_by = (
            f"the systemd backstop killed the run at {datetime.now(UTC).isoformat(timespec='seconds')}: "
            "still running past its time cap"
        )
        lock = WindowLock(output_dir(loaded), claim_of(loaded))
        if not lock.wait("rollback", owner.run_id, time.monotonic() + 30.0):
            lock.acquire("rollback", owner.run_id)  # refuses, naming whoever holds it now
    try:
        report = do_rollback(loaded, if_unfinished=if_unfinished, lock=lock, ended_by=ended_by)
    finally:
        if lock is not None:
            lock.release()
    return RollbackOutcome(report, output_dir(loaded), notes)


def rollback_target(path: Path) -> tuple[LoadedPlan, list[str]]:
    """The plan a rollback converges on. With a window open: that window's own copy (the one its Phase 0
    checked), whatever was done to the plan file since — an edit that broke it only earns a warning. Without
    one: the plan file, read leniently."""
    try:
        on_disk: LoadedPlan | None = load_plan(path, lenient=True)
        problem = ""
    except PlanError as exc:
        on_disk, problem = None, exc.message
    window = _open_window(path, on_disk)
    if window is None:
        if on_disk is None:
            raise PlanError(f"{problem}\n  and no open window of this plan was found to roll back with its own copy",
                            hint="fix the plan (the key is named above), then run the rollback again")  # fmt: skip
        return on_disk, []
    copy = window[0] / window[1] / "plan.toml"
    try:
        loaded = load_plan(copy, base_dir=path.resolve().parent, lenient=True)
    except SwapbenchError as exc:
        if on_disk is None:
            why = f"{problem}\n  and the window's own copy {copy} cannot be read: {exc.message}"
            raise PlanError(why, hint="fix the plan (the key is named above), then run the rollback again") from exc
        return on_disk, [f"the window's plan copy {copy} cannot be read ({exc.message}); rolling back with {path}"]
    notes = [f"rolling back run {window[1]} with the window's own plan copy {copy} (the one its Phase 0 checked)"]
    if on_disk is None:
        notes.append(f"warning: the plan on disk does not load now ({problem}); fix it before the next run")
    elif on_disk.sha256 != loaded.sha256:
        notes.append(f"warning: {path} changed since the window started; its current content is not used")
    return loaded, notes


def _open_window(path: Path, on_disk: LoadedPlan | None) -> tuple[Path, str] | None:
    """(output folder, run id) of an open window of this plan: the host's registry names it (its owner may be
    dead); else the journal in the plan's output folder — from the plan, or from its raw TOML when it fails to
    validate."""
    if (found := find_open_window(path.resolve())) is not None:
        return Path(found[0]), found[1]
    folder = output_dir(on_disk) if on_disk is not None else _raw_output_dir(path)
    if folder is None:
        return None
    try:
        state = read_journal(active_journal_path(folder))
    except JournalError:
        return None
    if state.records and not state.closed and state.run_id:
        return folder, state.run_id
    return None


def _raw_output_dir(path: Path) -> Path | None:
    """`[run] output_dir` of a plan that does not validate, read from its TOML alone (its default otherwise)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return None
    run = data.get("run")
    raw = run.get("output_dir", "swapbench-results") if isinstance(run, dict) else "swapbench-results"
    if not isinstance(raw, str):
        return None
    folder = Path(raw).expanduser()
    return folder if folder.is_absolute() else path.resolve().parent / folder


def do_rollback(
    loaded: LoadedPlan, if_unfinished: bool = False, lock: WindowLock | None = None, ended_by: str | None = None
) -> SwapReport | None:
    """Converge on production from whatever state the host is in; close an unfinished journal. Takes the
    window's lock (refused, naming the owner, while a run or another rollback lives) unless given it.
    `ended_by`: who ended the window, when not the run itself (the watchdog, and why), for the record."""
    own = lock is None
    if lock is None:
        lock = WindowLock(output_dir(loaded), claim_of(loaded))
        lock.acquire("rollback")
    try:
        return _converge(loaded, if_unfinished, lock, ended_by)
    finally:
        if own:
            lock.release()


def _ended_by(killed: str | None) -> str:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    if killed is None:
        return f"the watchdog rolled back at {at}: swapbench died with the window open"
    return f"the watchdog killed the run at {at}: {killed}"


def _converge(loaded: LoadedPlan, if_unfinished: bool, lock: WindowLock, ended_by: str | None) -> SwapReport | None:
    path = journal_path(loaded)
    try:
        state: JournalState | None = read_journal(path)
    except JournalError:
        state = None  # damaged: converge on the plan alone
    unfinished = state is None or (bool(state.records) and not state.closed)
    if if_unfinished and not unfinished:
        return None
    run_id = (state.run_id if state else None) or bench.new_run_id("rollback")
    lock.record(lock.role, run_id)  # the role stays: `rollback` by hand, or the watchdog
    run_dir = output_dir(loaded) / run_id
    writer = SafeWriter(run_id)
    host = RealHost(loaded, run_id, run_dir, bench.measure, writer=writer)
    for label, ops in host.candidates.items():
        done = state.done(Phase.LAUNCH, label) if state else None
        ops.pgid = done.get("pgid") if done else None
    journal = _rollback_journal(path, state, run_id, writer)
    if ended_by is not None:
        journal.write("ended-by", reason=ended_by)
    with SignalFlag() as flag:
        report = rollback(swap_plan(loaded, run_id), host, journal, time.monotonic, flag, list(host.candidates))
    archive = run_dir / "journal.jsonl"
    if archive.exists():  # the run closed its own journal: keep it, and this one beside it
        archive = run_dir / f"journal.rollback-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    journal.end(f"rollback-{report.status.value}", archive_to=archive)
    report = report.model_copy(update={"write_failures": list(writer.failures), "ended_by": ended_by})
    writer.write_text(run_dir / "rollback.json", report.model_dump_json(indent=2) + "\n")
    return report.model_copy(update={"write_failures": list(writer.failures)})


def window_plan(plan: Path, journal: Path) -> LoadedPlan:
    """The plan of a window for its watchdog: the copy the window ran with (paths resolved beside the
    original), whatever was done to the plan file since; the plan file only if the copy cannot be read. Both
    leniently, as rollback reads them: a newer swapbench's stricter types never stand between it and production."""
    try:
        state = read_journal(journal)
        return load_plan(journal.parent / (state.run_id or "?") / "plan.toml", base_dir=plan.parent, lenient=True)
    except SwapbenchError:
        return load_plan(plan, lenient=True)


def watch_window(
    plan: Path,
    journal: Path,
    pid: int,
    create_time: float,
    hang: tuple[int | None, float, float, float],
    after: Callable[[LoadedPlan, Path], None] = lambda loaded, run_dir: None,
) -> int:
    """`swapbench watchdog` (internal): watch a running swap; roll back if it dies or hangs with its journal open.
    `hang`: the heartbeat pipe's fd (None: no pipe, only death counts), its timeout, the cap (monotonic), the grace.
    `after(plan, run_dir)`: once it rolled back (the notifications)."""
    fd, timeout_s, cap_at, grace_s = hang
    liveness = Liveness(fd, timeout_s, cap_at, grace_s) if fd is not None else None

    def roll(killed: str | None) -> int:
        try:
            loaded = window_plan(plan, journal)
            run_id = read_journal(journal).run_id or "?"
            say(f"[watchdog] rollback: {watchdog_rollback(loaded, killed=killed)}")
            after(loaded, output_dir(loaded) / run_id)
        except Exception as exc:  # the watchdog is the last line: say why, never die silently
            say(f"[watchdog] rollback failed: {type(exc).__name__}: {exc}")
            return 1
        return 0

    return watch(pid, create_time, journal, roll, liveness)


def watchdog_rollback(loaded: LoadedPlan, give_up_s: float = 3600.0, killed: str | None = None) -> str:
    """The watchdog's rollback after its run died (or was killed, hung: `killed` says why): wait for the window's
    lock (a person's rollback may hold it), then converge — unless whoever held it already closed the journal."""
    lock = WindowLock(output_dir(loaded), claim_of(loaded))
    got = [False]

    def closed_or_ours() -> bool:
        if _journal_closed(loaded):
            return True
        got[0] = lock.try_acquire("watchdog") is None
        return got[0]

    if not wait_until(closed_or_ours, give_up_s, poll_s=LOCK_POLL_S):
        return f"gave up after {give_up_s:.0f} s: the window's lock stayed held"
    if not got[0]:  # the journal was closed by whoever held the lock
        return "another swapbench finished the rollback"
    try:
        if _journal_closed(loaded):
            return "another swapbench finished the rollback"
        report = do_rollback(loaded, if_unfinished=True, lock=lock, ended_by=_ended_by(killed))
        return report.status.value if report else "nothing to do"
    finally:
        lock.release()


def _journal_closed(loaded: LoadedPlan) -> bool:
    try:
        state = read_journal(journal_path(loaded))
    except JournalError:
        return False
    return not state.records or state.closed
