"""On a machine with an NVIDIA GPU (skipped elsewhere): the sandbox swap with both models on the GPU reports
footprints, drain times and the projected peak; a gate tight enough to abort makes production come back."""

from __future__ import annotations

from pathlib import Path

import pytest

from swapbench.app import swap
from swapbench.core.steps import SwapStatus
from swapbench.core.vram import Verdict
from swapbench.demo.rig import Rig
from swapbench.demo.sandbox import build_sandbox
from swapbench.host.gpu.device import read_device
from swapbench.plan.load import load_plan

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(read_device().error is not None, reason="no NVIDIA GPU readable through NVML here"),
]


def swap_on_gpu(rig: Rig, tmp_path: Path, abort_gb: float) -> swap.RunOutcome:
    box = build_sandbox(tmp_path / "box", rig, samples=3, extended=6, gpu=True, abort_gb=abort_gb)
    try:
        return swap.run(load_plan(box.plan_path), on_phase=lambda phase, target: None)
    finally:
        box.teardown()


def test_gpu_swap_reports_footprints_and_drain(rig: Rig, tmp_path: Path) -> None:
    report = swap_on_gpu(rig, tmp_path, abort_gb=4.0).report
    assert report.status is SwapStatus.COMPLETE, report.error
    gpu = report.gpu
    assert gpu is not None and gpu.unavailable_reason is None
    fp = gpu.candidates["gemma3-270m"]
    assert fp.resident_mib and fp.peak_mib and fp.peak_mib >= fp.resident_mib * 0.9
    assert fp.verdict in (Verdict.HEALTHY, Verdict.WARN)
    assert gpu.service_mib["llama-prod"] and gpu.projected_peak_mib["gemma3-270m"]
    assert set(gpu.drain_s) == {"services", "gemma3-270m"}


def test_abort_band_restores_production(rig: Rig, tmp_path: Path) -> None:
    outcome = swap_on_gpu(rig, tmp_path, abort_gb=0.05)
    assert outcome.report.status is SwapStatus.ABORTED
    assert "abort line" in (outcome.report.error or "")
    assert not [o for o in outcome.report.verify if o.status.value == "fail"]
