"""The built-in demo: the whole safe swap on a sandbox host of real processes on loopback."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from swapbench.app import swap
from swapbench.demo.rig import find_rig
from swapbench.demo.sandbox import build_sandbox
from swapbench.host.signals import SignalFlag
from swapbench.plan.load import load_plan
from swapbench.report.terminal import BenchProgress, PhasePrinter


def run_demo(
    samples: int,
    output_dir: Path,
    console: Console,
    gpu: bool = False,
    abort_gb: float = 4.0,
    flag: SignalFlag | None = None,
) -> swap.RunOutcome:
    """Build the sandbox (production: SmolLM2 llama-server, TTS, nav sidecar, phone daemon), swap in Gemma 3
    270M with `swapbench run`, and take the sandbox down again. Production is verified before and after."""
    rig = find_rig()
    folder = (output_dir / f"sandbox-{datetime.now(UTC):%Y%m%d-%H%M%S}").resolve()
    console.print(f"sandbox host in {folder}: starting production (llama-server, TTS, nav sidecar, phone daemon)")
    box = build_sandbox(folder, rig, samples=samples, extended=samples * 2, gpu=gpu, abort_gb=abort_gb)
    try:
        console.print(f"plan: {box.plan_path}")
        loaded = load_plan(box.plan_path)
        with BenchProgress(console, "bench") as progress:
            return swap.run(loaded, PhasePrinter(console), on_sample=progress, expect=progress.expect, flag=flag)
    finally:
        box.teardown()
