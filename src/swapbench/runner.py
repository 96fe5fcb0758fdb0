"""Use cases of the safe swap: check (Phase 0), run, rollback, status, and the dry-run listing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from swapbench import app, verdict
from swapbench.adapters import checks as chk
from swapbench.adapters.candidate import launch_argv, teardown_argv
from swapbench.adapters.gpu import read_device
from swapbench.adapters.image import load_image
from swapbench.adapters.journal import Journal, JournalState, active_journal_path, read_journal
from swapbench.adapters.proc import kill_group, run_argv
from swapbench.adapters.services import ServiceOps, privileged_argv, start_argv, stop_argv
from swapbench.adapters.signals import SignalFlag
from swapbench.adapters.watchdog import Watchdog
from swapbench.core.bench import OnSample
from swapbench.core.compare import Comparison
from swapbench.core.decision import Outcome as DecisionOutcome
from swapbench.core.steps import Outcome, Status, SwapReport, SwapStatus, failures
from swapbench.core.swap import Hook, PhaseEvent, SwapPlan, rollback, run_swap
from swapbench.errors import JournalError, PreflightFailed, RestoreFailed, SwapbenchError, SwapFailed
from swapbench.hostops import RealHost
from swapbench.plan.load import LoadedPlan
from swapbench.plan.models import DockerService, Plan, port_of

FAULT_ENV = "SWAPBENCH_FAULT"  # tests only, and only with SWAPBENCH_TESTING=1: "WHERE:FAULT"


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
    )


# --- Phase 0 ------------------------------------------------------------------------------------------------


def _journal_check(loaded: LoadedPlan) -> Outcome:
    try:
        state = read_journal(journal_path(loaded))
    except JournalError as exc:
        return chk.outcome("no unfinished journal", False, exc.message)
    if state.records and not state.closed:
        return chk.outcome(
            "no unfinished journal",
            False,
            f"run {state.run_id} did not finish ({state.path}); run `swapbench rollback` first",
        )
    return chk.outcome("no unfinished journal", True, "none")


def _input_checks(loaded: LoadedPlan) -> list[Outcome]:
    plan = loaded.plan
    found = []
    if plan.image is not None:
        try:
            info = load_image(loaded.resolve(plan.image.path), plan.image.sha256).info
            found.append(chk.outcome(f"image {info.path}", True, f"{info.format} {info.width}x{info.height}"))
        except SwapbenchError as exc:
            found.append(chk.outcome("image", False, exc.message))
    for target in plan.targets():
        try:
            app.prepare_workloads(loaded, target)
        except SwapbenchError as exc:
            found.append(chk.outcome("workloads", False, exc.message))
            break
    else:
        found.append(chk.outcome("workloads", True, f"{len(plan.workloads)} prepared (prompts, parsers, schemas)"))
    return found


def _candidate_checks(loaded: LoadedPlan) -> list[Outcome]:
    found = []
    for t in loaded.plan.candidates:
        if t.launch is None:
            continue
        found.append(chk.check_port_free(t.launch.port, f" (candidate {t.label})"))
        found.append(chk.check_path(loaded.resolve(t.launch.model)))
        if t.launch.mmproj:
            found.append(chk.check_path(loaded.resolve(t.launch.mmproj)))
        if t.launch.kind == "native" and t.launch.binary:
            found.append(chk.check_path(loaded.resolve(t.launch.binary), executable=True))
    return found


def _host_checks(plan: Plan) -> list[Outcome]:
    found = []
    privileged = privileged_argv(plan.services)
    if privileged:
        found += chk.check_sudo(privileged)
    uses_docker = any(isinstance(s, DockerService) for s in plan.services) or any(
        t.launch and t.launch.kind == "docker" for t in plan.candidates
    )
    if uses_docker:
        result = run_argv(["docker", "version", "--format", "{{.Server.Version}}"], 15.0)
        found.append(chk.outcome("docker engine", result.ok, result.stdout.strip() or result.describe()))
    return found


def check(loaded: LoadedPlan) -> list[Outcome]:
    """Every contract, before anything is touched. Reads only."""
    plan = loaded.plan
    found = [_journal_check(loaded), *_input_checks(loaded), *_host_checks(plan), *_candidate_checks(loaded)]
    for svc in plan.services:
        up = ServiceOps(svc, loaded.resolve).is_up()
        found.append(chk.outcome(f"service {svc.name} up now", up, "running and healthy" if up else "NOT up"))
    privileged = privileged_argv(plan.services)
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
    failed = failures(found)
    if failed:
        raise PreflightFailed(
            f"{len(failed)} contract(s) failed; nothing was touched:\n"
            + "\n".join(f"  - {o.name}: {o.detail}" for o in failed),
            hint="fix the host or the plan, then run `swapbench check` again",
        )


# --- dry run ------------------------------------------------------------------------------------------------


def _describe_check(c: object) -> str:
    fields = {k: v for k, v in vars(c).items() if k != "kind" and v is not None}
    return f"{getattr(c, 'kind', '?')} " + " ".join(f"{k}={v}" for k, v in fields.items())


def dry_run(loaded: LoadedPlan) -> list[tuple[str, str]]:
    """Every check and command of a run, in order, without running any: (phase, what)."""
    plan, resolve = loaded.plan, loaded.resolve
    steps: list[tuple[str, str]] = [("check", "no unfinished journal at " + str(journal_path(loaded)))]
    privileged = privileged_argv(plan.services)
    steps += [("check", "sudo -n true")] if privileged else []
    steps += [("check", f"sudo -n -l {' '.join(a)}") for a in privileged]
    steps += [("check", f"service {s.name} is up now ({s.manager})") for s in plan.services]
    steps += [("check", _describe_check(c)) for c in plan.checks if not (privileged and c.kind == "sudo")]
    sp = swap_plan(loaded, "RUN_ID")
    if sp.baseline and plan.baseline:
        steps.append(("bench", f"baseline {plan.baseline.label} live at {plan.baseline.url}, before any stop"))
    for name in plan.run.stop_order:
        steps.append(("stop", f"{name}: {' '.join(stop_argv(plan.service(name)) or [])}"))
    if plan.run.stop_order:
        steps.append(
            (
                "drain",
                f"until the stopped services' processes leave NVML's list (deadline "
                f"{plan.run.drain_timeout_s:.0f} s; with no GPU: their stop confirmed them down)",
            )
        )
    for t in plan.candidates:
        if t.launch is None:
            continue
        log = output_dir(loaded) / "RUN_ID" / f"llama-server-{t.label}.log"
        steps.append(("launch", f"{t.label}: {' '.join(launch_argv(t, 'RUN_ID', resolve, log))}"))
        steps.append(
            ("ready", f"{t.endpoint}/health 200 for {t.launch.settle_s} s (timeout {t.launch.ready_timeout_s:.0f} s)")
        )
        steps.append(("smoke", f"{t.label}: one request per workload; nav by strategy 1 or 2, no thinking marker"))
        n, n2 = plan.run.samples, plan.run.extended_samples
        more = f", extended to {n2} unless a thinking marker trips or VRAM leaves its band" if n2 and n2 > n else ""
        what = f"{t.label}: {plan.run.warmup} warm-up + {n} samples per workload ({len(plan.workloads)} workloads)"
        steps.append(("bench", what + more))
        down = teardown_argv(t)
        steps.append(
            ("teardown", f"{t.label}: " + (" ".join(down) if down else "TERM its process group, KILL after 5 s"))
        )
        steps.append(
            (
                "drain",
                f"until {t.label}'s processes and port {t.launch.port} are gone and device memory is "
                f"back within {plan.run.drain_tolerance_mib:.0f} MiB of its pre-launch level",
            )
        )
    for name in plan.effective_restore_order:
        svc = plan.service(name)
        ready = f"health {svc.health.url}" if svc.health else "running"
        steps.append(("restore", f"{name}: {' '.join(start_argv(svc) or [])}; ready = {ready} for {svc.settle_s} s"))
    steps += [("verify", f"service {s.name} up") for s in plan.services]
    steps += [
        ("verify", f"candidate {t.label} gone, port {t.launch.port} refused") for t in plan.candidates if t.launch
    ]
    steps += [("verify", _describe_check(v)) for v in plan.verify]
    if plan.gates is not None and plan.gates.candidate_vram_gb is not None:
        band = plan.gates.candidate_vram_gb
        steps.append(
            (
                "gates",
                f"candidate VRAM sampled every {plan.run.vram_sample_ms:.0f} ms from launch to the end "
                f"of the bench: healthy {band.healthy}, warn {band.warn}, above {band.abort_above} GB "
                "-> abort: teardown, restore, verify",
            )
        )
    steps.append(("report", f"results, swap report and journal under {output_dir(loaded)}/RUN_ID/"))
    if plan.decision is not None:
        d = plan.decision
        steps.append(
            (
                "decision",
                f"adopt if schema adherence >= {d.min_schema_adherence:.0%}"
                + (" AND describe judged better" if d.describe_must_improve else "")
                + (" AND VRAM in band" if d.vram_in_band else "")
                + ": decided after the run; the describe judgment with `swapbench decide RUN_DIR`",
            )
        )
    return steps


# --- run ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    report: SwapReport
    run_dir: Path
    decision: DecisionOutcome | None = None
    report_md: Path | None = None
    comparison: Comparison | None = None


def baseline_service(plan: Plan) -> str | None:
    """The production service that serves the baseline: its health URL has the baseline's port."""
    if plan.baseline is None or plan.baseline.url is None:
        return None
    port = port_of(plan.baseline.url)
    return next((s.name for s in plan.services if s.health and port_of(s.health.url) == port), None)


def _fault_hook(host: RealHost, clock_offset: list[float]) -> Hook:
    """Test-only fault injection at a step boundary, armed by SWAPBENCH_TESTING=1 and SWAPBENCH_FAULT."""
    spec = os.environ.get(FAULT_ENV, "") if os.environ.get("SWAPBENCH_TESTING") == "1" else ""
    where, _, fault = spec.partition(":")

    def hook(at: str) -> None:
        if not spec or not at.startswith(where):
            return
        if fault == "exception":
            raise RuntimeError(f"injected fault at {at}")
        if fault in ("sigint", "sigterm", "sigkill"):
            os.kill(os.getpid(), getattr(signal, fault.upper()))
            time.sleep(0.2)  # let the handler run before the guard looks at the flag
        elif fault == "candidate-crash":
            for ops in host.candidates.values():
                for pid in ops.pids():
                    kill_group(pid, grace_s=0)
        elif fault == "timecap":
            clock_offset[0] = 1e9

    return hook


def run(
    loaded: LoadedPlan,
    on_phase: PhaseEvent,
    on_sample: OnSample | None = None,
    expect: Callable[[str, str, int], None] | None = None,
) -> RunOutcome:
    """Phase 0, then the swap; production is restored and verified on every path. Raises after reporting
    when the run did not complete (SwapFailed) or production is not verified (RestoreFailed)."""
    if loaded.path is None:
        raise PreflightFailed("`swapbench run` needs a plan file", hint="write the plan to a file")
    found = check(loaded)
    require_checks(found)
    run_id = app.new_run_id(loaded.plan.run.label)
    run_dir = output_dir(loaded) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(loaded.path, run_dir / "plan.toml")
    journal = Journal.begin(
        journal_path(loaded), run_id=run_id, plan=str(loaded.path), plan_sha256=loaded.sha256, pid=os.getpid()
    )
    sp = swap_plan(loaded, run_id)
    watchdog = Watchdog(loaded.path, journal.path, run_id, run_dir / "watchdog.log", sp.time_cap_s + 120)
    host = RealHost(loaded, run_id, run_dir, on_sample=on_sample, expect=expect)
    offset = [0.0]
    with SignalFlag() as flag:
        report = run_swap(
            sp,
            host,
            journal,
            lambda: time.monotonic() + offset[0],
            flag,
            found,
            hook=_fault_hook(host, offset),
            on_phase=on_phase,
        )
        gpu = host.gpu.summary(baseline_service(plan=loaded.plan), host.drain_seconds)
        report = report.model_copy(update={"results_files": [str(p) for p in host.results_files], "gpu": gpu})
        journal.end(report.status.value, archive_to=run_dir / "journal.jsonl")
    watchdog.disarm()
    (run_dir / "swap.json").write_text(report.model_dump_json(indent=2) + "\n")
    try:  # production is back and verified; a report that cannot be written must not hide that
        comparison, decision, report_md = verdict.write_report(verdict.RunFolder.open(run_dir))
    except SwapbenchError:
        comparison, decision, report_md = None, None, None
    return RunOutcome(report, run_dir, decision, report_md, comparison)


def raise_for(outcome: RunOutcome) -> None:
    report = outcome.report
    if report.status is SwapStatus.RESTORE_FAILED:
        bad = report.restore_failures + [f"{o.name}: {o.detail}" for o in failures(report.verify)]
        raise RestoreFailed(
            "PRODUCTION IS NOT VERIFIED:\n" + "\n".join(f"  - {b}" for b in bad),
            hint="fix the items above by hand now; `swapbench rollback PLAN` retries the restore",
        )
    if report.status is SwapStatus.ABORTED:
        raise SwapFailed(
            f"the swap stopped early: {report.error}\n  production was restored and verified",
            hint=f"see {outcome.run_dir}",
        )


# --- rollback and status ------------------------------------------------------------------------------------


def _rollback_journal(path: Path, state: JournalState | None, run_id: str) -> Journal:
    """Append to an unfinished journal; set a damaged one aside (kept for a person) and start a new one."""
    if state is None:
        damaged = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, damaged)
        return Journal.begin(path, run_id=run_id, rollback=True, damaged_journal=str(damaged))
    if state.records and not state.closed:
        return Journal.resume(path)
    return Journal.begin(path, run_id=run_id, rollback=True)


def do_rollback(loaded: LoadedPlan, if_unfinished: bool = False) -> SwapReport | None:
    """Converge on production from whatever state the host is in; close an unfinished journal."""
    path = journal_path(loaded)
    try:
        state: JournalState | None = read_journal(path)
    except JournalError:
        state = None  # damaged: converge on the plan alone
    unfinished = state is None or (bool(state.records) and not state.closed)
    if if_unfinished and not unfinished:
        return None
    run_id = (state.run_id if state else None) or app.new_run_id("rollback")
    run_dir = output_dir(loaded) / run_id
    host = RealHost(loaded, run_id, run_dir)
    for label, ops in host.candidates.items():
        done = state.done("launch", label) if state else None
        ops.pgid = done.get("pgid") if done else None
    journal = _rollback_journal(path, state, run_id)
    with SignalFlag() as flag:
        report = rollback(swap_plan(loaded, run_id), host, journal, time.monotonic, flag, list(host.candidates))
    archive = run_dir / "journal.jsonl"
    if archive.exists():  # the run closed its own journal: keep it, and this one beside it
        archive = run_dir / f"journal.rollback-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    journal.end(f"rollback-{report.status.value}", archive_to=archive)
    (run_dir / "rollback.json").write_text(report.model_dump_json(indent=2) + "\n")
    return report


def status(loaded: LoadedPlan) -> list[str]:
    """The last run's state, in lines: an unfinished journal first, else the latest run folder."""
    path = journal_path(loaded)
    try:
        state = read_journal(path)
    except JournalError as exc:
        return [f"journal {path} is damaged: {exc.message}", "run `swapbench rollback PLAN`"]
    if state.records and not state.closed:
        return [
            f"UNFINISHED run {state.run_id} (journal {path}):",
            *state.summary(),
            "production may be down: run `swapbench rollback PLAN`",
        ]
    runs = sorted(output_dir(loaded).glob("*/swap.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        return ["no run yet"]
    data = json.loads(runs[-1].read_text())
    lines = [f"last run {data['run_id']}: {data['status']}" + (f" ({data['error']})" if data.get("error") else "")]
    lines += [f"  verify {o['status']:<4} {o['name']}: {o['detail']}" for o in data["verify"]]
    return lines
