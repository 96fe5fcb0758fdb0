"""Without NVML, readings come from `nvidia-smi --query-*`. No GPU exists here, so a stand-in nvidia-smi on PATH
records the exact argv swapbench runs and answers with output recorded from a real H200."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swapbench.host.gpu import read_device

FAKE = """#!/bin/sh
echo "$@" >> "{log}"
case "$*" in
  *--query-gpu*) echo "NVIDIA H200, 580.159.04, 143771, 1573" ;;
  *--query-compute-apps*) printf '4242, 854\\n4343, 742\\n4444, [N/A]\\n' ;;
esac
"""


@pytest.fixture
def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "argv.log"
    tool = tmp_path / "bin" / "nvidia-smi"
    tool.parent.mkdir()
    tool.write_text(FAKE.format(log=log))
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    return log


def test_reading_from_nvidia_smi(fake_smi: Path) -> None:
    reading = read_device(0)
    if reading.source == "nvml":
        pytest.skip("NVML works on this machine: the fallback is not used")
    assert reading.error is None and reading.source == "nvidia-smi"
    assert (reading.name, reading.driver, reading.total_mib, reading.used_mib) == (
        "NVIDIA H200",
        "580.159.04",
        143771.0,
        1573.0,
    )
    assert reading.memory_of({4242, 4343}) == 854.0 + 742.0
    assert reading.memory_of({4444}) is None  # [N/A] is unknown, never 0
    assert fake_smi.read_text().splitlines() == [
        "--id=0 --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader,nounits",
        "--id=0 --query-compute-apps=pid,used_memory --format=csv,noheader,nounits",
    ]


def test_no_gpu_at_all_gives_the_reason() -> None:
    reading = read_device(0)
    if reading.source == "nvml" and reading.error is None:
        pytest.skip("a GPU is readable here")
    assert reading.used_mib is None and reading.error
