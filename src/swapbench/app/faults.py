"""Test-only fault injection at the swap's step boundaries, armed by SWAPBENCH_TESTING=1 and SWAPBENCH_FAULT.

SWAPBENCH_FAULT = "WHERE:FAULT": at each step boundary whose name starts with WHERE, raise an exception,
send this process a signal, kill the candidate, jump the clock past the time cap, or wait at a barrier.
With SWAPBENCH_FAULT_LOG naming a file, each injection first appends "BOUNDARY FAULT" to it: the test's proof
that the fault fired, and where (a swallowed exception or a SIGKILL leaves no other trace).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from swapbench.core.swap import Hook
from swapbench.host.processes.proc import kill_group, port_open
from swapbench.host.processes.waiting import wait_until
from swapbench.host.real import RealHost

FAULT_ENV = "SWAPBENCH_FAULT"
FAULT_LOG_ENV = "SWAPBENCH_FAULT_LOG"


def fault_hook(host: RealHost, clock_offset: list[float]) -> Hook:
    """Test-only fault injection at a step boundary, armed by SWAPBENCH_TESTING=1 and SWAPBENCH_FAULT."""
    spec = os.environ.get(FAULT_ENV, "") if os.environ.get("SWAPBENCH_TESTING") == "1" else ""
    where, _, fault = spec.partition(":")

    def hook(at: str) -> None:
        if not spec or not at.startswith(where):
            return
        _record(at, fault)
        if fault == "exception":
            raise RuntimeError(f"injected fault at {at}")
        if fault == "barrier":  # tell the test where we are, then wait for its go (it acts from outside)
            _barrier(Path(os.environ["SWAPBENCH_BARRIER"]), at)
        elif fault in ("sigint", "sigterm", "sighup", "sigkill"):
            os.kill(os.getpid(), getattr(signal, fault.upper()))
            time.sleep(0.2)  # let the handler run before the guard looks at the flag
        elif fault == "candidate-crash":
            _crash_candidates(host)
        elif fault == "timecap":
            clock_offset[0] = 1e9

    return hook


def _crash_candidates(host: RealHost, timeout_s: float = 10.0) -> None:
    """Kill every candidate and wait until none is left and no candidate port answers: the next step meets a
    dead candidate (connection refused), never a dying one (a reset, or a refusal, as the race falls)."""
    for ops in host.candidates.values():
        for pid in ops.pids():
            kill_group(pid, grace_s=0)
    candidates = list(host.candidates.values())
    wait_until(lambda: all(not c.pids() and not port_open(c.launch_spec.port) for c in candidates), timeout_s)


def _record(at: str, fault: str) -> None:
    """Appended and closed (so in the kernel's hands) before the fault acts: a SIGKILL cannot lose it."""
    log = os.environ.get(FAULT_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(f"{at} {fault}\n")


def _barrier(folder: Path, at: str, timeout_s: float = 120.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reached").write_text(at)
    wait_until((folder / "go").exists, timeout_s, poll_s=0.02)
