"""VRAM logic on recorded readings (no GPU needed): bands, footprint and attribution, drift, projected peak."""

from __future__ import annotations

import pytest

from swapbench.core.bench import extension_verdict
from swapbench.core.vram import MIB_PER_GB, Verdict, VramSample, classify, footprint, in_band, projected_peak_mib
from swapbench.host.gpu.device import DeviceReading, GpuProcess
from swapbench.plan.models import Band

PANDA = Band(healthy=(5.5, 7.5), warn=(7.5, 8.0), abort_above=8.0)  # the user plan's VRAM band for E4B


@pytest.mark.parametrize(
    ("gb", "verdict"),
    [(6.9, Verdict.HEALTHY), (5.5, Verdict.HEALTHY), (7.8, Verdict.WARN), (8.0, Verdict.WARN),
     (8.01, Verdict.ABORT), (4.0, Verdict.OUTSIDE), (None, Verdict.UNKNOWN)],
)  # fmt: skip
def test_bands(gb: float | None, verdict: Verdict) -> None:
    assert classify(gb, PANDA) is verdict


def gb(x: float) -> float:
    return x * MIB_PER_GB


def samples(per_process: bool) -> list[VramSample]:
    rows = [("launch", 1.0, 0.2), ("ready", 7.0, 6.0), ("smoke", 7.1, 6.1), ("bench", 7.4, 6.4), ("bench", 7.2, 6.2)]
    return [VramSample(t_s=i * 0.1, phase=p, device_used_mib=gb(dev), candidate_mib=gb(c) if per_process else None)
            for i, (p, dev, c) in enumerate(rows)]  # fmt: skip


def test_footprint_from_nvml_per_process() -> None:
    fp = footprint(samples(True), pre_launch_used_mib=gb(1.0), total_mib=80_000, band=PANDA)
    assert fp.source == "nvml-process"
    assert fp.resident_mib == pytest.approx(gb(6.1)) and fp.peak_mib == pytest.approx(gb(6.4))
    assert fp.verdict is Verdict.HEALTHY


def test_footprint_from_device_delta_when_per_process_is_unknown() -> None:
    fp = footprint(samples(False), pre_launch_used_mib=gb(1.0), total_mib=80_000, band=PANDA)
    assert fp.source == "device-delta"
    assert fp.peak_mib == pytest.approx(gb(6.4)) and fp.resident_mib == pytest.approx(gb(6.1))


def test_unknown_process_memory_is_not_zero() -> None:
    reading = DeviceReading(0, used_mib=1000.0, processes=[GpuProcess(10, 500.0), GpuProcess(11, None)])
    assert reading.memory_of({10}) == 500.0
    assert reading.memory_of({10, 11}) is None
    assert reading.memory_of({99}) == 0.0


def test_drift_out_of_band_stops_the_extension() -> None:
    drifted = [*samples(True), VramSample(t_s=1.0, phase="bench", device_used_mib=gb(9), candidate_mib=gb(8.5))]
    assert in_band(samples(True), gb(1.0), PANDA) is True
    assert in_band(drifted, gb(1.0), PANDA) is False
    assert in_band(drifted, gb(1.0), None) is None
    assert extension_verdict([], vram_in_band=False) == (False, "not extended: VRAM drifted out of its band")


def test_projected_steady_state_peak() -> None:
    # Panda: 13.4 GB used with E2B (say 4.0 GB) loaded; E4B peaks at 6.4 GB -> 15.8 GB.
    assert projected_peak_mib(gb(13.4), gb(4.0), gb(6.4)) == pytest.approx(gb(15.8))
    assert projected_peak_mib(gb(13.4), None, gb(6.4)) is None
