"""The built-in demo: two real llama-servers on loopback, benchmarked on the bundled camera image."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from swapbench import app
from swapbench.adapters.llama_server import LlamaServer, LlamaServerSpec, free_port
from swapbench.plan.load import LoadedPlan, validate_plan
from swapbench.report.terminal import BenchProgress
from swapbench.rig import Rig, find_rig

BASELINE, CANDIDATE = "smollm2-135m", "gemma3-270m"


def demo_servers(rig: Rig, logs: Path) -> tuple[LlamaServerSpec, LlamaServerSpec]:
    """Production stand-in (SmolLM2) and candidate (Gemma 3 270M with a Gemma 3 chat template)."""
    baseline = LlamaServerSpec(
        binary=rig.llama_server,
        model=rig.smollm2,
        mmproj=rig.mmproj(rig.smollm2),
        port=free_port(),
        log_path=logs / f"llama-server-{BASELINE}.log",
    )
    candidate = LlamaServerSpec(
        binary=rig.llama_server,
        model=rig.gemma3,
        mmproj=rig.mmproj(rig.gemma3),
        port=free_port(),
        chat_template_file=rig.gemma3_template,
        log_path=logs / f"llama-server-{CANDIDATE}.log",
    )
    return baseline, candidate


def demo_plan(baseline_url: str, candidate_url: str, samples: int, output_dir: Path) -> LoadedPlan:
    data = {
        "run": {"label": "demo", "samples": samples, "extended_samples": None, "output_dir": str(output_dir)},
        "image": {"path": str(app.bundled_image())},
        "baseline": {"label": BASELINE, "url": baseline_url},
        "candidates": [{"label": CANDIDATE, "url": candidate_url}],
    }
    return LoadedPlan(plan=validate_plan(data, "demo plan"), path=None, sha256=None)


def run_demo(samples: int, output_dir: Path, console: Console) -> list[app.BenchOutcome]:
    """Start both servers, bench each in turn (one at a time, as on a real box), stop them."""
    rig = find_rig()
    run_id = app.new_run_id("demo")
    specs = demo_servers(rig, output_dir / run_id / "logs")
    loaded = demo_plan(specs[0].url, specs[1].url, samples, output_dir)
    outcomes = []
    for spec, target in zip(specs, ("baseline", CANDIDATE), strict=True):
        with LlamaServer(spec) as server:
            console.print(f"started {spec.model.name} on {spec.url} (pid {server.pid})")
            server.wait_ready()
            label = app.pick_target(loaded, target).label
            with BenchProgress(console, label) as progress:
                outcomes.append(app.bench(loaded, target, run_id=run_id, on_sample=progress, expect=progress.expect))
    return outcomes
