"""GPU readings: device name, driver, memory (NVML v2 info, as nvidia-smi shows it) and compute processes.

nvidia-ml-py first; `nvidia-smi --query-*` when NVML cannot be loaded but the tool exists (`sources` narrows
which are tried, so each path can be exercised on any machine). With no GPU every reading carries the reason
instead of numbers: never a guessed 0. NVML reports host PIDs; a process whose memory NVML does not know
(containers, some drivers) has `used_mib = None`.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pynvml  # provided by nvidia-ml-py

from swapbench.host.processes.proc import run_argv

MIB = 2**20
Source = Literal["nvml", "nvidia-smi"]
SOURCES: tuple[Source, ...] = ("nvml", "nvidia-smi")  # in the order tried


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    used_mib: float | None


@dataclass(frozen=True)
class DeviceReading:
    index: int
    name: str | None = None
    driver: str | None = None
    total_mib: float | None = None
    used_mib: float | None = None
    processes: list[GpuProcess] = field(default_factory=list)
    source: str = "nvml"
    error: str | None = None

    @property
    def used_gb(self) -> float | None:
        return None if self.used_mib is None else self.used_mib * MIB / 1e9

    @property
    def free_mib(self) -> float | None:
        return None if self.total_mib is None or self.used_mib is None else self.total_mib - self.used_mib

    def memory_of(self, pids: set[int]) -> float | None:
        """NVML memory of these PIDs together; None when one of them is on the GPU with an unknown figure."""
        found = [p for p in self.processes if p.pid in pids]
        if any(p.used_mib is None for p in found):
            return None
        return sum(p.used_mib or 0.0 for p in found)


def _nvml(index: int) -> DeviceReading:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    try:  # v2 leaves out memory the driver reserves, like nvidia-smi; v1 counts it as used
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
    except (pynvml.NVMLError, TypeError, AttributeError):
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
    procs = [
        GpuProcess(p.pid, None if p.usedGpuMemory is None else p.usedGpuMemory / MIB)
        for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    ]
    return DeviceReading(
        index, name=str(pynvml.nvmlDeviceGetName(handle)), driver=str(pynvml.nvmlSystemGetDriverVersion()),
        total_mib=mem.total / MIB, used_mib=mem.used / MIB, processes=procs,
    )  # fmt: skip


def read_smi(index: int = 0, why_not_nvml: str = "NVML not tried") -> DeviceReading:
    """nvidia-smi's CSV: what a reading falls back to when NVML cannot be loaded (`why_not_nvml` says why)."""
    gpu = run_argv(["nvidia-smi", f"--id={index}", "--query-gpu=name,driver_version,memory.total,memory.used",
                    "--format=csv,noheader,nounits"], 15.0)  # fmt: skip
    if not gpu.ok:
        return DeviceReading(index, error=f"{why_not_nvml}; nvidia-smi: {gpu.describe()}")
    name, driver, total, used = (x.strip() for x in gpu.stdout.strip().splitlines()[0].split(","))
    apps = run_argv(["nvidia-smi", f"--id={index}", "--query-compute-apps=pid,used_memory",
                     "--format=csv,noheader,nounits"], 15.0)  # fmt: skip
    procs = []
    for line in apps.stdout.strip().splitlines() if apps.ok else []:
        pid, mem = (x.strip() for x in line.split(","))
        procs.append(GpuProcess(int(pid), float(mem) if mem.replace(".", "").isdigit() else None))
    return DeviceReading(index, name=name, driver=driver, total_mib=float(total), used_mib=float(used),
                         processes=procs, source="nvidia-smi")  # fmt: skip


class GpuProbe:
    """NVML initialised once for many readings (the sampler reads every 100 ms)."""

    def __init__(self, index: int = 0, sources: Sequence[Source] = SOURCES) -> None:
        self.index = index
        self.sources = tuple(sources)
        self.nvml = False
        self.why_not = ""

    def __enter__(self) -> GpuProbe:
        if "nvml" not in self.sources:
            self.why_not = "NVML not tried"
            return self
        try:
            pynvml.nvmlInit()
            self.nvml = True
        except pynvml.NVMLError as exc:
            self.why_not = f"NVML unavailable: {exc}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.nvml:
            pynvml.nvmlShutdown()
            self.nvml = False

    def read(self) -> DeviceReading:
        if not self.nvml:
            why = self.why_not or "NVML not initialised"
            if "nvidia-smi" not in self.sources:
                return DeviceReading(self.index, error=why)
            if shutil.which("nvidia-smi"):
                return read_smi(self.index, why)
            return DeviceReading(self.index, error=f"{why}; no nvidia-smi on PATH")
        try:
            return _nvml(self.index)
        except pynvml.NVMLError as exc:
            return DeviceReading(self.index, error=f"GPU {self.index}: {exc}")


def read_device(index: int = 0, sources: Sequence[Source] = SOURCES) -> DeviceReading:
    """One reading of GPU `index`: NVML, else nvidia-smi, of those in `sources`; else why neither could."""
    with GpuProbe(index, sources) as probe:
        return probe.read()
