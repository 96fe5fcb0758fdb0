"""The real host behind core.swap.Host: services, candidates, drain, smoke, bench and verify on this machine."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from swapbench.adapters.openai_client import ChatEndpoint
from swapbench.core.bench import OnSample, interpret
from swapbench.core.phases import Phase
from swapbench.core.results import VramReport
from swapbench.core.steps import Outcome, Status
from swapbench.core.swap import Launched
from swapbench.core.vram import in_band
from swapbench.errors import SmokeFailed, StepFailed
from swapbench.host.candidate.ops import CandidateOps
from swapbench.host.candidate.prepare import Preparer
from swapbench.host.gpu.device import read_device
from swapbench.host.gpu.ledger import GpuLedger, _cached
from swapbench.host.gpu.sampler import VramSampler
from swapbench.host.preflight.checks import run_verify_step
from swapbench.host.processes.programs import outcome
from swapbench.host.processes.waiting import wait_until
from swapbench.host.services import ServiceOps
from swapbench.host.window.files import SafeWriter, write_atomic
from swapbench.plan.load import LoadedPlan, pick_target
from swapbench.plan.models import DockerLaunch
from swapbench.workloads.bench_call import BenchCall
from swapbench.workloads.requests import prepare_workloads

Measure = Callable[[BenchCall], object]  # `app.bench.measure`, handed in: the host never calls up into app


@dataclass
class RealHost:
    """Acts on this machine for one run. Bench results are written to `run_dir`."""

    loaded: LoadedPlan
    run_id: str
    run_dir: Path
    measure: Measure  # the bench use case, handed in: the host never calls up into app
    on_sample: OnSample | None = None
    expect: Callable[[str, str, int], None] | None = None
    services: dict[str, ServiceOps] = field(init=False)
    candidates: dict[str, CandidateOps] = field(init=False)
    results_files: list[Path] = field(default_factory=list)
    drift_files: list[Path] = field(default_factory=list)
    drain_seconds: dict[str, float] = field(default_factory=dict)
    gpu: GpuLedger = field(init=False)
    sampler: VramSampler | None = None
    writer: SafeWriter | None = None  # writes inside the window: never raise (full or read-only disk)
    preparer: Preparer | None = None  # the candidates' model files, read in Phase 0: read again before the stop

    def __post_init__(self) -> None:
        plan, resolve = self.loaded.plan, self.loaded.resolve
        self.gpu = GpuLedger(plan.run.gpu_index, plan.gates.candidate_vram_gb if plan.gates else None)
        self.services = {s.name: ServiceOps(s, resolve) for s in plan.services}
        self.candidates = {
            t.label: CandidateOps(t, self.run_id, resolve, self.run_dir / f"llama-server-{t.label}.log")
            for t in plan.candidates
            if t.launch is not None
        }

    # --- services ---------------------------------------------------------------------------------------------

    def prepare(self, should_stop: Callable[[], bool]) -> None:
        """Right before the first stop, so none of it is downtime: the candidates' model files read into the page
        cache again (the baseline bench may have pushed them out), then what production holds on the GPU."""
        if self.preparer is not None:
            self.preparer.reread(should_stop)
        self._note_production()

    def _note_production(self) -> None:
        """What production holds on the GPU, service by service, before the first stop."""
        if self.gpu.before_stop is None:
            self.gpu.note_production({n: ops.pids() for n, ops in self.services.items()})

    def stop_service(self, name: str, timeout_s: float) -> None:
        self._note_production()  # already done by prepare, unless it was skipped
        self.services[name].stop(timeout_s)
        self.gpu.stopped.append(name)

    def start_service(self, name: str, timeout_s: float) -> None:
        """Converge: start it only if nothing of it is there, then wait until it is ready. A service already
        on its way up (a start in flight from a run that died) is waited for, never started twice."""
        ops = self.services[name]
        if ops.is_up():
            ops.wait_ready(timeout_s)
            return
        if (why := ops.starting()) is not None:
            ops.wait_start_command(timeout_s)
            try:
                ops.wait_ready(timeout_s)
            except StepFailed as exc:
                raise StepFailed(f"{name}: {why}, and {exc.message}; swapbench does not start it a second time",
                                 hint=exc.hint) from exc  # fmt: skip
            return
        ops.start(timeout_s)
        ops.wait_ready(timeout_s)

    # --- candidates -------------------------------------------------------------------------------------------

    def launch(self, label: str, timeout_s: float) -> Launched:
        ops = self.candidates[label]
        pre_launch = read_device(self.gpu.index)
        ops.launch()
        period = self.loaded.plan.run.vram_sample_ms / 1000
        self.sampler = VramSampler(self.gpu.index, period, _cached(ops.pids), self.gpu.band, pre_launch).start()
        self.gpu.pre_launch[label] = pre_launch
        spec = ops.launch_spec
        return Launched(pgid=ops.pgid, port=spec.port, container=spec.name if isinstance(spec, DockerLaunch) else None)

    def _phase(self, phase: Phase) -> None:
        if self.sampler is not None:
            self.sampler.phase = phase

    def gate_abort(self) -> str | None:
        return self.sampler.abort_reason if self.sampler is not None else None

    def wait_ready(self, label: str, timeout_s: float) -> None:
        self._phase(Phase.READY)
        self.candidates[label].wait_ready(timeout_s)

    def teardown(self, label: str, timeout_s: float) -> None:
        pids = self.candidates[label].pids()
        self._finish_sampling(label)
        self.gpu.candidate_pids[label] = set(pids)
        self.candidates[label].teardown(timeout_s)

    def _finish_sampling(self, label: str) -> None:
        if self.sampler is not None:
            self.gpu.samples[label] = self.sampler.stop()
            self.gpu.sampler_errors[label] = self.sampler.error
            self.sampler = None

    def drain(self, label: str | None, timeout_s: float) -> None:
        """Wait, with a deadline (never a fixed sleep), until freed memory is gone. Services: their processes
        leave NVML's list. A candidate: its processes and port are gone, NVML no longer lists them, and the
        device's used memory is back within drain_tolerance_mib of its pre-launch level."""
        start = time.monotonic()
        tolerance = self.loaded.plan.run.drain_tolerance_mib

        def drained() -> bool:
            reading = read_device(self.gpu.index)
            if label is None:
                return self.gpu.services_drained(reading)
            return self.candidates[label].is_gone() and self.gpu.candidate_drained(label, reading, tolerance)

        if not wait_until(drained, timeout_s):
            raise StepFailed(f"{label or 'stopped services'}: memory not freed after {timeout_s:.0f} s",
                             hint="look for a process still holding the GPU (nvidia-smi)")  # fmt: skip
        self.drain_seconds[label or "services"] = time.monotonic() - start

    # --- measuring --------------------------------------------------------------------------------------------

    def smoke(self, label: str) -> None:
        """The smoke test, one request per workload before any measurement: nav must parse by strategy 1 or 2,
        nothing may leak thinking."""
        self._phase(Phase.SMOKE)
        target = pick_target(self.loaded, label)
        _, workloads = prepare_workloads(self.loaded, target)
        url = target.endpoint or ""
        empty: list[str] = []
        with ChatEndpoint(url, timeout_s=self.loaded.plan.run.request_timeout_s) as ep:
            for w in workloads:
                sample = interpret(0, 0.0, ep.complete(w.encoded(stream=False)), w, w.frame(0))
                if sample.degenerate == "empty":
                    empty.append(f"{w.info.name} (finish_reason {sample.exchange.finish_reason})")
                ex = sample.exchange
                shown = repr((ex.content or "")[:120])
                if ex.error:
                    raise SmokeFailed(f"smoke {label}/{w.info.name}: request failed: {ex.error}", hint="see the log")
                if sample.thinking_leak:
                    raise SmokeFailed(
                        f"smoke {label}/{w.info.name}: thinking marker {sample.thinking_leak.marker!r} in {shown}",
                        hint="is the candidate started with --jinja and a template that honours enable_thinking?",
                    )
                if sample.parse is not None and not sample.parse.adheres:
                    strategy = sample.parse.strategy or "none"
                    raise SmokeFailed(
                        f"smoke {label}/{w.info.name}: the nav answer {shown} parsed by strategy {strategy} "
                        f"({sample.parse.error or 'loose fallback'}); strategy 1 or 2 is required",
                        hint="the model does not follow the nav contract; check the prompt and the template",
                    )
        if empty and len(empty) == len(workloads):
            raise SmokeFailed(
                f"smoke {label}: every answer was empty: {', '.join(empty)}",
                hint="the candidate produces no text: check its chat template (--jinja, chat_template_file) and model",
            )

    def bench(self, label: str, deadline: float, should_stop: Callable[[], bool]) -> None:
        self._phase(Phase.BENCH)
        deadline_ns = time.perf_counter_ns() + int(max(deadline - time.monotonic(), 0) * 1e9)
        sampler = self.sampler if label in self.candidates else None
        pre = self.gpu.pre_launch.get(label)

        def vram_ok() -> bool | None:  # the 20 -> 100 extension needs VRAM in its band
            return in_band(sampler.samples, pre.used_mib if pre else None, self.gpu.band) if sampler else None

        def vram() -> VramReport:  # the bench is over: the sampler's readings go into the one results write
            self._finish_sampling(label)
            return self.gpu.report(label)

        try:
            self.measure(BenchCall(
                self.loaded, label, output_dir=self.run_dir.parent, run_id=self.run_id, on_sample=self.on_sample,
                expect=self.expect, deadline_ns=deadline_ns, should_stop=should_stop,
                extend=label in self.candidates, vram_in_band=vram_ok, vram=vram if label in self.candidates else None,
                save=self._save_results,
            ))  # fmt: skip
        finally:
            if label in self.candidates:
                self._finish_sampling(label)  # the bench failed before its results: stop sampling all the same

    def bench_drift(self, label: str, deadline: float, should_stop: Callable[[], bool]) -> None:
        """The baseline again, after verify: same workloads and sample count as before the window."""
        deadline_ns = time.perf_counter_ns() + int(max(deadline - time.monotonic(), 0) * 1e9)

        def expect(target: str, workload: str, total: int) -> None:
            if self.expect is not None:
                self.expect(f"{target} (after)", workload, total)

        self.measure(BenchCall(
            self.loaded, label, output_dir=self.run_dir.parent, run_id=self.run_id, on_sample=self.on_sample,
            expect=expect, deadline_ns=deadline_ns, should_stop=should_stop,
            save=functools.partial(self._save_results, listed=self.drift_files),
            file_name=f"results-{label}.after.json",
        ))  # fmt: skip

    def _save_results(self, path: Path, text: str, listed: list[Path] | None = None) -> Path | None:
        """Results go where they belong or to a rescue folder; either way the run lists them, partial or not."""
        listed = self.results_files if listed is None else listed
        written = self.writer.write_text(path, text) if self.writer is not None else write_atomic(path, text.encode())
        if written is not None and written not in listed:
            listed.append(written)
        return written

    # --- verify -----------------------------------------------------------------------------------------------

    def verify(self) -> list[Outcome]:
        """Every service up and ready, every candidate gone with its port refused, then the plan's steps. A
        step that cannot be evaluated is a failed step, never an exception: verify always reports."""
        found = [_safely(f"service {name} up", functools.partial(_up, ops)) for name, ops in self.services.items()]
        found += [
            _safely(f"candidate {label} gone", functools.partial(_gone, c)) for label, c in self.candidates.items()
        ]
        found += [_safely(f"verify {s.kind}", functools.partial(run_verify_step, s)) for s in self.loaded.plan.verify]
        return [self._stranger_said(o) for o in found]

    def _stranger_said(self, step: Outcome) -> Outcome:
        """A declared `port N refused` on a candidate's port that a stranger holds now: the candidate is gone
        (its own check says so); the stranger is named, as a warning, not taken for the candidate."""
        for label, cand in self.candidates.items():
            port = cand.launch_spec.port
            if step.name == f"port {port} refused" and step.failed and cand.is_gone():
                return step.model_copy(update={"status": Status.WARN, "detail": f"{step.detail}: a stranger, not "
                                               f"candidate {label} (gone)"})  # fmt: skip
        return step


def _up(ops: ServiceOps) -> Outcome:
    state = ops.state()
    return outcome(f"service {ops.name} up", state.ok, state.detail)


def _gone(cand: CandidateOps) -> Outcome:
    gone, spec = cand.is_gone(), cand.launch_spec
    what = f"port {spec.port} closed"
    if isinstance(spec, DockerLaunch):
        what = f"container {spec.name} removed, {what}"
    name = f"candidate {cand.target.label} gone"
    if not gone:
        return outcome(name, False, f"NOT gone: expected {what}")
    if (stranger := cand.stranger()) is not None:  # not the candidate: its process is gone
        detail = f"gone (no process of it left), but port {spec.port} is held by a stranger: {stranger}"
        return Outcome(name=name, status=Status.WARN, detail=detail)
    return outcome(name, True, what)


def _safely(name: str, step: Callable[[], Outcome]) -> Outcome:
    try:
        return step()
    except Exception as exc:
        return outcome(name, False, f"could not be checked: {type(exc).__name__}: {exc}")
