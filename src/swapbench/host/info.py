"""What machine the run happened on: host name, platform, and the GPU's name and driver."""

from __future__ import annotations

import platform
import socket

from swapbench.core.results import GpuInfo, HostInfo
from swapbench.host.gpu.device import read_device


def gpu_info(index: int = 0) -> GpuInfo:
    """Name and driver of GPU `index`; with no GPU, the reason instead (never a guess)."""
    reading = read_device(index)
    if reading.error:
        return GpuInfo(unavailable_reason=reading.error)
    return GpuInfo(name=reading.name, driver=reading.driver)


def host_info() -> HostInfo:
    return HostInfo(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        python=platform.python_version(),
        gpu=gpu_info(),
    )
