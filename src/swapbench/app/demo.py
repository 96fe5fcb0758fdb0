"""The built-in demo: the whole safe swap on a sandbox host of real processes on loopback."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from swapbench.app import swap
from swapbench.demo.rig import find_rig
from swapbench.demo.sandbox import build_sandbox
from swapbench.host.signals import SignalFlag
from swapbench.plan.load import load_plan


@dataclass(frozen=True)
class DemoRequest:
    samples: int = 10
    output_dir: Path = Path("swapbench-results")
    gpu: bool = False  # models on the GPU, a second GPU-holding process, a VRAM gate
    abort_gb: float = 4.0  # with gpu: the candidate's VRAM abort line


def run_demo(request: DemoRequest, display: swap.Display, flag: SignalFlag) -> swap.RunOutcome:
    """Build the sandbox (production: SmolLM2 llama-server, TTS, nav sidecar, phone daemon), swap in Gemma 3
    270M with `swapbench run`, and take the sandbox down again. Production is verified before and after.
    Inside `swap.signals_noted()`: a Ctrl-C while the sandbox starts ends the run in Phase 0."""
    rig = find_rig()
    folder = (request.output_dir / f"sandbox-{datetime.now(UTC):%Y%m%d-%H%M%S}").resolve()
    display.say(f"sandbox host in {folder}: starting production (llama-server, TTS, nav sidecar, phone daemon)")
    box = build_sandbox(folder, rig, samples=request.samples, extended=request.samples * 2, gpu=request.gpu,
                        abort_gb=request.abort_gb)  # fmt: skip
    try:
        display.say(f"plan: {box.plan_path}")
        return swap.run(load_plan(box.plan_path), display.on_phase, display.on_sample, display.expect, flag)
    finally:
        box.teardown()
