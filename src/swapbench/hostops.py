"""The real host behind core.swap.Host: services, candidates, drain, smoke, bench and verify on this machine."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swapbench import app
from swapbench.adapters import gpu
from swapbench.adapters.candidate import CandidateOps
from swapbench.adapters.checks import outcome, run_verify_step
from swapbench.adapters.openai_client import ChatEndpoint
from swapbench.adapters.services import ServiceOps
from swapbench.core.bench import OnSample, interpret
from swapbench.core.steps import Outcome
from swapbench.errors import SmokeFailed, StepFailed
from swapbench.plan.load import LoadedPlan

POLL_S = 0.05


@dataclass
class RealHost:
    """Acts on this machine for one run. Bench results are written to `run_dir`."""

    loaded: LoadedPlan
    run_id: str
    run_dir: Path
    on_sample: OnSample | None = None
    expect: Callable[[str, str, int], None] | None = None
    services: dict[str, ServiceOps] = field(init=False)
    candidates: dict[str, CandidateOps] = field(init=False)
    results_files: list[Path] = field(default_factory=list)
    drain_seconds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        plan, resolve = self.loaded.plan, self.loaded.resolve
        self.services = {s.name: ServiceOps(s, resolve) for s in plan.services}
        self.candidates = {
            t.label: CandidateOps(t, self.run_id, resolve, self.run_dir / f"llama-server-{t.label}.log")
            for t in plan.candidates
            if t.launch is not None
        }

    # --- services ---------------------------------------------------------------------------------------------

    def stop_service(self, name: str, timeout_s: float) -> None:
        self.services[name].stop(timeout_s)

    def start_service(self, name: str, timeout_s: float) -> None:
        """Converge: start it only if it is not up, then wait until it is ready."""
        ops = self.services[name]
        if not ops.is_up():
            ops.start(timeout_s)
        ops.wait_ready(timeout_s)

    # --- candidates -------------------------------------------------------------------------------------------

    def launch(self, label: str, timeout_s: float) -> dict[str, Any]:
        ops = self.candidates[label]
        ops.launch()
        return {"pgid": ops.pgid, "port": ops.launch_spec.port, "container": ops.launch_spec.name}

    def wait_ready(self, label: str, timeout_s: float) -> None:
        self.candidates[label].wait_ready(timeout_s)

    def teardown(self, label: str, timeout_s: float) -> None:
        self.candidates[label].teardown(timeout_s)

    def drain(self, label: str | None, timeout_s: float) -> None:
        """Wait until freed memory is gone: the candidate's processes and port (and its NVML processes, when
        there is a GPU). A deadline, never a fixed sleep."""
        start = time.monotonic()
        deadline = start + timeout_s
        pids = set(self.candidates[label].pids()) if label else set()
        while True:
            reading = gpu.read_device()
            on_gpu = {p.pid for p in reading.processes} & pids if reading.error is None else set()
            gone = (self.candidates[label].is_gone() if label else True) and not on_gpu
            if gone:
                self.drain_seconds[label or "services"] = time.monotonic() - start
                return
            if time.monotonic() > deadline:
                raise StepFailed(f"{label or 'stopped services'}: memory not freed after {timeout_s:.0f} s",
                                 hint="look for a process still holding the GPU (nvidia-smi)")  # fmt: skip
            time.sleep(POLL_S)

    # --- measuring --------------------------------------------------------------------------------------------

    def smoke(self, label: str) -> None:
        """One request per workload (decision 9): nav must parse by strategy 1 or 2, nothing may leak thinking."""
        target = app.pick_target(self.loaded, label)
        _, workloads = app.prepare_workloads(self.loaded, target)
        url = target.endpoint or ""
        with ChatEndpoint(url, timeout_s=self.loaded.plan.run.request_timeout_s) as ep:
            for w in workloads:
                sample = interpret(0, 0.0, ep.complete(w.encoded(stream=False)), w)
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

    def bench(self, label: str, deadline: float, should_stop: Callable[[], bool]) -> None:
        deadline_ns = time.perf_counter_ns() + int(max(deadline - time.monotonic(), 0) * 1e9)
        outcome_ = app.bench(
            self.loaded, label, output_dir=self.run_dir.parent, run_id=self.run_id, on_sample=self.on_sample,
            expect=self.expect, deadline_ns=deadline_ns, should_stop=should_stop,
            extend=label in self.candidates,
        )  # fmt: skip
        self.results_files.append(outcome_.path)

    # --- verify -----------------------------------------------------------------------------------------------

    def verify(self) -> list[Outcome]:
        """Every service up and ready, every candidate gone with its port refused, then the plan's steps."""
        found = []
        for name, ops in self.services.items():
            up = ops.is_up()
            found.append(outcome(f"service {name} up", up, "running and healthy" if up else "NOT up"))
        for label, cand in self.candidates.items():
            gone = cand.is_gone()
            port = cand.launch_spec.port
            found.append(outcome(f"candidate {label} gone", gone, f"port {port} " + ("closed" if gone else "OPEN")))
        return found + [run_verify_step(step) for step in self.loaded.plan.verify]
