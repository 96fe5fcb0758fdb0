"""A thread that reads the GPU every period while the candidate launches, loads, answers and is measured."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from swapbench.core.phases import Phase
from swapbench.core.vram import MIB_PER_GB, Verdict, VramSample, candidate_mib, classify
from swapbench.host.gpu.device import DeviceReading, GpuProbe
from swapbench.plan.models import Band


class VramSampler:
    """Start after launch, set `phase` as the swap moves on, stop after the bench. With no GPU it records the
    reason and no samples. A reading above the band's abort line sets `abort_reason` at once."""

    def __init__(
        self,
        index: int,
        period_s: float,
        pids: Callable[[], set[int]],
        band: Band | None,
        pre_launch: DeviceReading,
    ) -> None:
        self.index, self.period_s, self.pids, self.band, self.pre_launch = index, period_s, pids, band, pre_launch
        self.phase = Phase.LAUNCH
        self.samples: list[VramSample] = []
        self.error: str | None = pre_launch.error
        self.abort_reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vram-sampler", daemon=True)

    def start(self) -> VramSampler:
        if self.error is None:
            self._thread.start()
        return self

    def stop(self) -> list[VramSample]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        return list(self.samples)

    def _loop(self) -> None:
        t0 = time.monotonic()
        with GpuProbe(self.index) as probe:
            while not self._stop.is_set():
                reading = probe.read()
                if reading.error or reading.used_mib is None:
                    self.error = reading.error or "no memory figure"
                    return
                sample = VramSample(t_s=time.monotonic() - t0, phase=self.phase, device_used_mib=reading.used_mib,
                                    candidate_mib=reading.memory_of(self.pids()))  # fmt: skip
                self.samples.append(sample)
                self._check(sample)
                self._stop.wait(self.period_s)

    def _check(self, sample: VramSample) -> None:
        if self.band is None or self.abort_reason is not None:
            return
        mib = candidate_mib(sample, self.pre_launch.used_mib)
        gb = None if mib is None else mib / MIB_PER_GB
        if classify(gb, self.band) is Verdict.ABORT:
            self.abort_reason = (
                f"candidate VRAM {gb:.2f} GB is above the abort line {self.band.abort_above} GB "
                f"(during {sample.phase}; gates.candidate_vram_gb)"
            )
