"""`swapbench check|run PLAN --dry-run`: every check and command of a window, in order, and the exact request
each workload will send; nothing is run, nothing touched."""

from __future__ import annotations

import json
from pathlib import Path

from swapbench.adapters.openai_client import CHAT_PATH
from swapbench.app.swap import journal_path, output_dir, swap_plan
from swapbench.core.decision import rule_warnings
from swapbench.core.phases import Phase
from swapbench.errors import SwapbenchError
from swapbench.host.candidate.ops import launch_argv, teardown_argv
from swapbench.host.candidate.prepare import model_files
from swapbench.host.gpu.device import read_device
from swapbench.host.services import privileged_argv, start_argv, stop_argv
from swapbench.plan.load import LoadedPlan, load_plan
from swapbench.plan.models import Decision, Plan, Target
from swapbench.workloads.requests import prepare_workloads

Steps = list[tuple[Phase, str]]


def dry_run_plan(path: Path) -> Steps:
    """`swapbench check|run PLAN --dry-run`."""
    return dry_run(load_plan(path))


def _describe_check(c: object) -> str:
    fields = {k: v for k, v in vars(c).items() if k != "kind" and v is not None}
    return f"{getattr(c, 'kind', '?')} " + " ".join(f"{k}={v}" for k, v in fields.items())


def dry_run(loaded: LoadedPlan) -> Steps:
    """Every check and command of a run, in order, without running any: (phase, what)."""
    plan = loaded.plan
    sp = swap_plan(loaded, "RUN_ID")
    steps = _check_steps(loaded)
    if sp.baseline and plan.baseline:
        steps.append((Phase.BASELINE_BENCH, f"baseline {plan.baseline.label} live at {plan.baseline.url}, "
                      "before any stop"))  # fmt: skip
    steps += _prepare_steps(loaded)
    for name in plan.run.stop_order:
        steps.append((Phase.STOP, f"{name}: {' '.join(stop_argv(plan.service(name), loaded.resolve) or [])}"))
    if plan.run.stop_order:
        steps.append((Phase.DRAIN, f"until the stopped services' processes leave NVML's list (deadline "
                      f"{plan.run.drain_timeout_s:.0f} s; with no GPU: their stop confirmed them down)"))  # fmt: skip
    for number, t in enumerate(plan.candidates):
        steps += _candidate_steps(loaded, t, with_bodies=number == 0)
    steps += _restore_steps(loaded)
    if sp.baseline and sp.drift_check and plan.baseline:
        again = f"baseline {plan.baseline.label} measured again after verify (production is up: no downtime)"
        steps.append((Phase.DRIFT_BENCH, again + "; the before/after drift says whether the verdicts can be trusted"))
    steps.append((Phase.REPORT, f"results, swap report and journal under {output_dir(loaded)}/RUN_ID/"))
    return steps + _decision_steps(plan)


def _check_steps(loaded: LoadedPlan) -> Steps:
    plan = loaded.plan
    steps: Steps = [(Phase.CHECK, "no unfinished journal at " + str(journal_path(loaded)))]
    privileged = privileged_argv(plan.services, loaded.resolve)
    for argv in privileged:
        steps.append((Phase.CHECK, f"sudo -k -n -l {' '.join(argv)}"))
        if argv[:2] == ["systemctl", "start"]:
            steps.append((Phase.CHECK, f"sudo -k -n {' '.join(argv)} (the unit runs: a no-op that proves no password)"))
    steps += [(Phase.CHECK, f"service {s.name} is up now ({s.manager})") for s in plan.services]
    steps += [(Phase.CHECK, f"{t.label}: --version of its llama-server, for the report") for t in plan.candidates
              if t.launch is not None]  # fmt: skip
    return steps + [(Phase.CHECK, _describe_check(c)) for c in plan.checks if not (privileged and c.kind == "sudo")]


def _prepare_steps(loaded: LoadedPlan) -> Steps:
    """Phase 0 reads the candidates' model files into the page cache; they are read again right before the stop."""
    plan = loaded.plan
    if not (plan.run.stop_order or any(t.launch for t in plan.candidates)):
        return []
    steps: Steps = []
    if plan.run.warm_page_cache:
        for files in model_files(loaded):
            names = ", ".join(str(p) + (" (not there now)" if p in files.missing else "") for p in files.paths)
            what = f"{files.label}: {names}, {files.size_bytes / 2**20:,.0f} MiB, read into the page cache in Phase 0"
            steps.append((Phase.PREPARE, what + " and again here, unless they do not fit in MemAvailable"))
    return [*steps, (Phase.PREPARE, "what production holds on the GPU, service by service")]


def _candidate_steps(loaded: LoadedPlan, t: Target, with_bodies: bool) -> Steps:
    """Launch to drain of one candidate swapbench starts (and, for the first, the request of each workload)."""
    plan, launch = loaded.plan, t.launch
    if launch is None:
        return []
    log = output_dir(loaded) / "RUN_ID" / f"llama-server-{t.label}.log"
    n, n2 = plan.run.samples, plan.run.extended_samples
    more = f", extended to {n2} unless a thinking marker trips or VRAM leaves its band" if n2 and n2 > n else ""
    if more and plan.run.p50_precision is not None:
        more += f", stopping as soon as the p50 is known to ±{plan.run.p50_precision:.1%} at 95 %"
    down = teardown_argv(launch)
    return [
        (Phase.LAUNCH, f"{t.label}: {' '.join(launch_argv(t.label, launch, 'RUN_ID', loaded.resolve, log))}"),
        *_gate_steps(plan),
        (Phase.READY, f"{t.endpoint}/health 200 for {launch.settle_s} s (timeout {launch.ready_timeout_s:.0f} s)"),
        (Phase.SMOKE, f"{t.label}: one request per workload; nav by strategy 1 or 2, no thinking marker"),
        (Phase.BENCH, f"{t.label}: {plan.run.warmup} warm-up + {n} samples per workload ({len(plan.workloads)} "
                      f"workloads){more}"),
        *(_request_steps(loaded, t) if with_bodies else []),
        (Phase.TEARDOWN, f"{t.label}: " + (" ".join(down) if down else "TERM its process group, KILL after 5 s")),
        (Phase.DRAIN_CANDIDATE, f"until {t.label}'s processes and port {launch.port} are gone and device memory is "
                                f"back within {plan.run.drain_tolerance_mib:.0f} MiB of its pre-launch level"),
    ]  # fmt: skip


def elide_data(value: object) -> object:
    """The body as a reviewer reads it: each inline image (a data: URL) replaced by its type and size."""
    if isinstance(value, str) and value.startswith("data:") and ";base64," in value:
        kind, data = value.split(";base64,", 1)
        size = len(data) * 3 // 4 - (len(data) - len(data.rstrip("=")))  # base64's padding carries no byte
        return f"<{kind.removeprefix('data:')} image, {size:,} bytes, elided>"
    if isinstance(value, dict):
        return {key: elide_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [elide_data(item) for item in value]
    return value


def _request_steps(loaded: LoadedPlan, t: Target) -> Steps:
    """What each workload will send, exactly (the first candidate's; other targets' differ only in `model`)."""
    try:
        _, workloads = prepare_workloads(loaded, t)
    except SwapbenchError as exc:  # the check reports it in full; the dry run still shows every command
        return [(Phase.BENCH, f"request bodies not shown: {exc.message} (`swapbench check` lists what to fix)")]
    steps: Steps = []
    for w in workloads:
        frames = f" (one body per frame: {len(w.bodies)}, alike but for the image)" if len(w.bodies) > 1 else ""
        body = elide_data(w.bodies[0])
        assert isinstance(body, dict)
        keys = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in body.items())
        body = "{\n" + keys + "\n}"  # a key a line: valid JSON, short enough to read
        steps.append((Phase.BENCH, f"{w.info.name}: POST {t.endpoint}{CHAT_PATH}{frames}\n{body}"))
    return steps


def _gate_steps(plan: Plan) -> Steps:
    if plan.gates is None or plan.gates.candidate_vram_gb is None:
        return []
    band = plan.gates.candidate_vram_gb
    return [(Phase.LAUNCH, f"candidate VRAM sampled every {plan.run.vram_sample_ms:.0f} ms from launch to the end of "
             f"the bench: healthy {band.healthy}, warn {band.warn}, above {band.abort_above} GB -> abort: teardown, "
             "restore, verify")]  # fmt: skip


def _restore_steps(loaded: LoadedPlan) -> Steps:
    plan, steps = loaded.plan, []
    for name in plan.effective_restore_order:
        svc = plan.service(name)
        ready = f"health {svc.health.url}" if svc.health else "running"
        start = " ".join(start_argv(svc, loaded.resolve) or [])
        steps.append((Phase.RESTORE, f"{name}: {start}; ready = {ready} for {svc.settle_s} s"))
    steps += [(Phase.VERIFY, f"service {s.name} up") for s in plan.services]
    steps += [(Phase.VERIFY, f"candidate {t.label} gone, port {t.launch.port} refused")
              for t in plan.candidates if t.launch]  # fmt: skip
    return steps + [(Phase.VERIFY, _describe_check(v)) for v in plan.verify]


def _decision_steps(plan: Plan) -> Steps:
    """The decision rule in words, and a warning for each rule that cannot apply or can never be met."""
    d = plan.decision or Decision()
    source = "[decision]" if plan.decision is not None else "the default rule (no [decision] in the plan)"
    parts = [f"schema adherence >= {d.min_schema_adherence:.0%}"]
    parts += ["describe judged better"] if d.describe_must_improve else []
    parts += ["VRAM in band"] if d.vram_in_band else []
    parts += [f"nav p50 <= {d.latency_gate_p50_ms:g} ms (its 95 % interval)"] if d.latency_gate_p50_ms else []
    parts += [f"nav latency not slower (±{d.tolerance:.0%})"] if d.latency_must_not_regress else []
    parts.append(f"at most {d.max_degenerate_share:.0%} degenerate answers per workload")
    when = "decided after the run, the describe judgment with `swapbench decide RUN_DIR`"
    rule = f"{source}: adopt if " + " AND ".join(parts) + f"; verdicts against ±{d.tolerance:.0%}; {when}"
    steps = [(Phase.REPORT, rule)]
    kinds: set[str] = {w.kind for w in plan.workloads}
    has_baseline = plan.baseline is not None and (plan.baseline.results is not None or plan.run.bench_baseline)
    gpu_read = read_device(plan.run.gpu_index).error is None
    has_band = plan.gates is not None and plan.gates.candidate_vram_gb is not None
    warnings = rule_warnings(d, kinds, gpu_read=gpu_read, has_band=has_band, has_baseline=has_baseline,
                             samples=plan.run.extended_samples or plan.run.samples)  # fmt: skip
    return steps + [(Phase.REPORT, f"WARNING: {w}") for w in warnings]
