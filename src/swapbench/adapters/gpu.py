"""NVML readings (nvidia-ml-py): device name, driver, memory (v2 info, as nvidia-smi shows it) and the
compute processes. With no GPU every reading carries the reason instead of numbers: never a guessed 0."""

from __future__ import annotations

from dataclasses import dataclass, field

import pynvml  # provided by nvidia-ml-py

GB = 1e9


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    used_mib: float | None  # None: NVML does not know (it happens in containers and on some drivers)


@dataclass(frozen=True)
class DeviceReading:
    index: int
    name: str | None = None
    driver: str | None = None
    total_gb: float | None = None
    used_gb: float | None = None
    processes: list[GpuProcess] = field(default_factory=list)
    error: str | None = None


def _memory(handle: object) -> tuple[float, float]:
    try:  # v2 excludes memory the driver reserves, matching nvidia-smi; v1 counts it as used
        info = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
    except (pynvml.NVMLError, TypeError, AttributeError):
        info = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return info.total / GB, info.used / GB


def read_device(index: int = 0) -> DeviceReading:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return DeviceReading(index, error=f"NVML unavailable: {exc}")
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        total, used = _memory(handle)
        procs = [
            GpuProcess(p.pid, None if p.usedGpuMemory is None else p.usedGpuMemory / 2**20)
            for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
        ]
        return DeviceReading(
            index, name=str(pynvml.nvmlDeviceGetName(handle)), driver=str(pynvml.nvmlSystemGetDriverVersion()),
            total_gb=total, used_gb=used, processes=procs,
        )  # fmt: skip
    except pynvml.NVMLError as exc:
        return DeviceReading(index, error=f"GPU {index}: {exc}")
    finally:
        pynvml.nvmlShutdown()
