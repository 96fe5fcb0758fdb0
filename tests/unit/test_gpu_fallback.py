"""Without NVML, readings come from `nvidia-smi --query-*`. These tests leave NVML out (`sources`), so they take
the same path on a GPU machine as in CI; a stand-in nvidia-smi first on PATH records the exact argv swapbench
runs and answers with output recorded from a real H200."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swapbench.host.gpu.device import read_device, read_smi

FAKE = """#!/bin/sh
echo "$@" >> "{log}"
case "$*" in
  *--query-gpu*) echo "NVIDIA H200, 580.159.04, 143771, 1573" ;;
  *--query-compute-apps*) printf '4242, 854\\n4343, 742\\n4444, [N/A]\\n' ;;
esac
"""
NO_DRIVER = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."


@pytest.fixture
def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "argv.log"
    tool = tmp_path / "bin" / "nvidia-smi"
    tool.parent.mkdir()
    tool.write_text(FAKE.format(log=log))
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    return log


ARGV = [
    "--id=0 --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader,nounits",
    "--id=0 --query-compute-apps=pid,used_memory --format=csv,noheader,nounits",
]


def test_reading_from_nvidia_smi(fake_smi: Path) -> None:
    reading = read_smi(0)
    assert reading.error is None and reading.source == "nvidia-smi"
    assert (reading.name, reading.driver, reading.total_mib, reading.used_mib) == (
        "NVIDIA H200",
        "580.159.04",
        143771.0,
        1573.0,
    )
    assert reading.memory_of({4242, 4343}) == 854.0 + 742.0
    assert reading.memory_of({4444}) is None  # [N/A] is unknown, never 0
    assert fake_smi.read_text().splitlines() == ARGV


def test_without_nvml_a_reading_falls_back_to_nvidia_smi(fake_smi: Path) -> None:
    reading = read_device(0, sources=("nvidia-smi",))
    assert (reading.error, reading.source, reading.name, reading.used_mib) == (
        None,
        "nvidia-smi",
        "NVIDIA H200",
        1573.0,
    )
    assert fake_smi.read_text().splitlines() == ARGV


def test_nvidia_smi_that_fails_gives_its_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "nvidia-smi"
    tool.write_text(f'#!/bin/sh\necho "{NO_DRIVER}" >&2\nexit 9\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    reading = read_device(0, sources=("nvidia-smi",))
    assert (reading.name, reading.total_mib, reading.used_mib, reading.processes) == (None, None, None, [])
    assert reading.error == f"NVML not tried; nvidia-smi: `nvidia-smi {ARGV[0]}` exited 9: {NO_DRIVER}"


def test_no_gpu_at_all_gives_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi here
    reading = read_device(0, sources=("nvidia-smi",))
    assert (reading.name, reading.total_mib, reading.used_mib, reading.processes) == (None, None, None, [])
    assert reading.error == "NVML not tried; no nvidia-smi on PATH"
