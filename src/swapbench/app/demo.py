"""The built-in demo: the whole safe swap on a sandbox host of real processes on loopback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from swapbench.app import swap
from swapbench.demo.rig import BUILD_TIME, Rig, build_rig, find_rig
from swapbench.demo.sandbox import build_sandbox
from swapbench.errors import InputError, Interrupted
from swapbench.host.window.signals import SignalFlag
from swapbench.plan.load import load_plan


@dataclass(frozen=True)
class DemoRequest:
    samples: int = 10
    output_dir: Path = Path("swapbench-results")
    gpu: bool = False  # models on the GPU, a second GPU-holding process, a VRAM gate
    abort_gb: float = 4.0  # with gpu: the candidate's VRAM abort line
    setup_rig: bool = False  # build a missing rig without asking


Ask = Callable[[str], bool]  # a yes/no question to the person; never asked: no


def setup_rig(say: Callable[[str], None]) -> Rig:
    """`swapbench setup-rig`: build (or find cached) llama-server and the small models of the demo and tests."""
    say(f"setting up the test rig ({BUILD_TIME}); what is already built is kept")
    rig, took_s = build_rig(say)
    say(f"rig ready in {took_s:.0f} s: {rig.root}")
    return rig


def _rig(request: DemoRequest, display: swap.Display, flag: SignalFlag, ask: Ask) -> Rig:
    try:
        return find_rig()
    except InputError as missing:
        question = (f"{missing.message}. Build it now ({BUILD_TIME}; as root, missing build tools are installed "
                    "with apt-get)?")  # fmt: skip
        if not (request.setup_rig or ask(question)):
            raise
    # Signals are only noted here: a Ctrl-C at the question or during the build (which it kills: same terminal)
    # is honoured before the sandbox starts.
    stopped = Interrupted("the demo was stopped while the rig was set up",
                          hint="`swapbench setup-rig` goes on where it stopped; then run `swapbench demo`")  # fmt: skip
    if flag.requested:
        raise stopped
    try:
        rig = setup_rig(display.say)
    except InputError:
        if flag.requested:
            raise stopped from None
        raise
    if flag.requested:
        raise stopped
    return rig


def run_demo(
    request: DemoRequest, display: swap.Display, flag: SignalFlag, ask: Ask = lambda _: False
) -> swap.RunOutcome:
    """Build the sandbox (production: SmolLM2 llama-server, TTS, nav sidecar, phone daemon), swap in Gemma 3
    270M with `swapbench run`, and take the sandbox down again. Production is verified before and after.
    Inside `swap.signals_noted()`: a Ctrl-C while the sandbox starts ends the run in Phase 0. A missing rig is
    built if the request says so or `ask` says yes."""
    rig = _rig(request, display, flag, ask)
    folder = (request.output_dir / f"sandbox-{datetime.now(UTC):%Y%m%d-%H%M%S}").resolve()
    display.say(f"sandbox host in {folder}: starting production (llama-server, TTS, nav sidecar, phone daemon)")
    box = build_sandbox(folder, rig, samples=request.samples, extended=request.samples * 2, gpu=request.gpu,
                        abort_gb=request.abort_gb)  # fmt: skip
    try:
        display.say(f"plan: {box.plan_path}")
        loaded = load_plan(box.plan_path)
        display.on_cap(loaded.plan.run.time_cap_s)
        return swap.run(loaded, display.on_phase, display.on_sample, display.expect, flag)
    finally:
        box.teardown()
