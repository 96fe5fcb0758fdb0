"""VRAM truth as pure functions over recorded readings: bands, the candidate's footprint, drift, the projected
steady-state peak. Readings come from NVML (adapters/gpu.py); a figure NVML does not know stays None."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pydantic import Field

from swapbench.core.frozen import Frozen
from swapbench.core.phases import LOADED, Phase
from swapbench.plan.models import Band

MIB_PER_GB = 1e9 / 2**20  # the plan's bands are in GB (10^9 bytes), as nvidia-smi users speak of them


class VramSample(Frozen):
    t_s: float = Field(description="Seconds since the sampler started.")
    phase: Phase
    device_used_mib: float
    candidate_mib: float | None = Field(description="NVML per-process memory of the candidate; None if unknown.")


class Verdict(StrEnum):
    HEALTHY = "healthy"
    WARN = "warn"
    ABORT = "abort"
    OUTSIDE = "outside"  # below the healthy band or between bands: recorded, not an abort
    UNKNOWN = "unknown"  # no reading (no GPU): shown, never counted as healthy


def classify(value_gb: float | None, band: Band) -> Verdict:
    if value_gb is None:
        return Verdict.UNKNOWN
    if band.abort_above is not None and value_gb > band.abort_above:
        return Verdict.ABORT
    if band.healthy[0] <= value_gb <= band.healthy[1]:
        return Verdict.HEALTHY
    if band.warn is not None and band.warn[0] <= value_gb <= band.warn[1]:
        return Verdict.WARN
    return Verdict.OUTSIDE


def candidate_mib(sample: VramSample, pre_launch_used_mib: float | None) -> float | None:
    """The candidate's memory: NVML's per-process figure, else the device's growth since before the launch."""
    if sample.candidate_mib is not None:
        return sample.candidate_mib
    if pre_launch_used_mib is None:
        return None
    return max(sample.device_used_mib - pre_launch_used_mib, 0.0)


class Footprint(Frozen):
    """The candidate's VRAM: resident after load, peak during the bench, and what the device holds in all."""

    resident_mib: float | None
    peak_mib: float | None
    device_total_mib: float | None
    pre_launch_used_mib: float | None
    source: str = Field(description="nvml-process (per-process figure) or device-delta (growth since launch)")
    verdict: Verdict = Verdict.UNKNOWN


def footprint(
    samples: Sequence[VramSample], pre_launch_used_mib: float | None, total_mib: float | None, band: Band | None
) -> Footprint:
    values = [(s.phase, candidate_mib(s, pre_launch_used_mib)) for s in samples]
    loaded = [v for p, v in values if p in ("ready", "smoke") and v is not None]
    during = [v for p, v in values if p == "bench" and v is not None]
    peak = max(during) if during else (max(loaded) if loaded else None)
    per_process = any(s.candidate_mib is not None for s in samples)
    return Footprint(
        resident_mib=loaded[-1] if loaded else None,
        peak_mib=peak,
        device_total_mib=total_mib,
        pre_launch_used_mib=pre_launch_used_mib,
        source="nvml-process" if per_process else "device-delta",
        verdict=classify(None if peak is None else peak / MIB_PER_GB, band) if band else Verdict.UNKNOWN,
    )


def in_band(samples: Sequence[VramSample], pre_launch_used_mib: float | None, band: Band | None) -> bool | None:
    """Since the model loaded (smoke, bench), did every reading stay healthy or warn? None when there is no band
    or no reading (the user plan's rule for the 20 -> 100 extension). While loading, memory ramps up through the
    bands: only the abort line counts."""
    if band is None:
        return None
    loaded = [s for s in samples if s.phase in LOADED]
    verdicts = [classify(None if (v := candidate_mib(s, pre_launch_used_mib)) is None else v / MIB_PER_GB, band)
                for s in loaded]  # fmt: skip
    known = [v for v in verdicts if v is not Verdict.UNKNOWN]
    if not known:
        return None
    return all(v in (Verdict.HEALTHY, Verdict.WARN) for v in known)


def projected_peak_mib(
    used_before_mib: float | None, baseline_mib: float | None, candidate_peak: float | None
) -> float | None:
    """The host's steady-state peak if the candidate replaced the baseline: what the device held before the
    window, less the baseline's own footprint, plus the candidate's peak."""
    if used_before_mib is None or baseline_mib is None or candidate_peak is None:
        return None
    return used_before_mib - baseline_mib + candidate_peak


class GpuSummary(Frozen):
    """The GPU side of a swap, for the report and the resource registry."""

    device: str | None
    driver: str | None
    unavailable_reason: str | None
    used_before_stop_mib: float | None
    service_mib: dict[str, float | None] = Field(description="Each production service's VRAM before the stop.")
    baseline_service: str | None
    candidates: dict[str, Footprint]
    drain_s: dict[str, float] = Field(description="Measured drain time per target ('services' for the stop).")
    projected_peak_mib: dict[str, float | None] = Field(
        description="Steady-state peak if the candidate replaced the baseline: before - baseline + candidate peak."
    )
