"""What machine the run happened on: host name, platform, and the GPU's name and driver via NVML."""

from __future__ import annotations

import platform
import socket

import pynvml  # provided by nvidia-ml-py

from swapbench.core.results import GpuInfo, HostInfo


def gpu_info(index: int = 0) -> GpuInfo:
    """Name and driver of GPU `index`; with no GPU, the reason instead (never a guess)."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return GpuInfo(unavailable_reason=f"NVML unavailable: {exc}")
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
        driver = pynvml.nvmlSystemGetDriverVersion()
        return GpuInfo(name=str(name), driver=str(driver))
    except pynvml.NVMLError as exc:
        return GpuInfo(unavailable_reason=f"GPU {index}: {exc}")
    finally:
        pynvml.nvmlShutdown()


def host_info() -> HostInfo:
    return HostInfo(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        python=platform.python_version(),
        gpu=gpu_info(),
    )
