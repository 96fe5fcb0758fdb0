"""What the GPU held during one run: production before the stop, each candidate's samples and drain."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from swapbench.core.results import VramReport
from swapbench.core.vram import Footprint, GpuSummary, VramSample, footprint, projected_peak_mib
from swapbench.host.gpu.device import DeviceReading, read_device
from swapbench.plan.models import Band


def _cached(pids: Callable[[], list[int]], ttl_s: float = 2.0) -> Callable[[], set[int]]:
    """PIDs looked up at most every ttl_s (a docker inspect per 100 ms sample would be too much)."""
    memo: dict[str, tuple[float, set[int]]] = {}

    def get() -> set[int]:
        now = time.monotonic()
        if "v" not in memo or now - memo["v"][0] > ttl_s:
            memo["v"] = (now, set(pids()))
        return memo["v"][1]

    return get


@dataclass
class GpuLedger:
    index: int
    band: Band | None
    before_stop: DeviceReading | None = None
    service_pids: dict[str, set[int]] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    pre_launch: dict[str, DeviceReading] = field(default_factory=dict)
    samples: dict[str, list[VramSample]] = field(default_factory=dict)
    sampler_errors: dict[str, str | None] = field(default_factory=dict)
    candidate_pids: dict[str, set[int]] = field(default_factory=dict)

    def note_production(self, pids_by_service: dict[str, list[int]]) -> None:
        self.before_stop = read_device(self.index)
        self.service_pids = {name: set(pids) for name, pids in pids_by_service.items()}

    def service_mib(self) -> dict[str, float | None]:
        reading = self.before_stop
        if reading is None or reading.error:
            return {}
        return {name: reading.memory_of(pids) for name, pids in self.service_pids.items()}

    def services_drained(self, reading: DeviceReading) -> bool:
        if reading.error:
            return True  # nothing to measure: the services were confirmed down by their stop
        stopped = set().union(*(self.service_pids.get(n, set()) for n in self.stopped)) if self.stopped else set()
        return not ({p.pid for p in reading.processes} & stopped)

    def candidate_drained(self, label: str, reading: DeviceReading, tolerance_mib: float) -> bool:
        if reading.error:
            return True
        on_gpu = {p.pid for p in reading.processes} & self.candidate_pids.get(label, set())
        pre = self.pre_launch.get(label)
        back = pre is None or pre.used_mib is None or (reading.used_mib or 0.0) <= pre.used_mib + tolerance_mib
        return not on_gpu and back

    def footprint(self, label: str) -> Footprint | None:
        samples, pre = self.samples.get(label, []), self.pre_launch.get(label)
        if not samples or pre is None:
            return None
        return footprint(samples, pre.used_mib, pre.total_mib, self.band)

    def report(self, label: str) -> VramReport:
        samples = self.samples.get(label, [])
        why = None if samples else (self.sampler_errors.get(label) or "no VRAM sample taken")
        return VramReport(footprint=self.footprint(label), samples=samples, unavailable_reason=why)

    def summary(self, baseline_service: str | None, drain_s: dict[str, float]) -> GpuSummary:
        reading = self.before_stop or read_device(self.index)
        services = self.service_mib()
        baseline = services.get(baseline_service) if baseline_service else None
        prints = {label: fp for label in self.samples if (fp := self.footprint(label)) is not None}
        return GpuSummary(
            device=reading.name, driver=reading.driver, unavailable_reason=reading.error,
            used_before_stop_mib=reading.used_mib, service_mib=services, baseline_service=baseline_service,
            candidates=prints, drain_s=drain_s,
            projected_peak_mib={label: projected_peak_mib(reading.used_mib, baseline, fp.peak_mib)
                                for label, fp in prints.items()},
        )  # fmt: skip
