"""command: the user's own start and stop scripts (argv, run beside the plan or in `cwd`); up is the health check
or a pgrep pattern. The sandbox's production is made of these: they run for real in the tests."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from swapbench.core.steps import Outcome
from swapbench.host.processes.probes import ProbeResult, probe_http
from swapbench.host.processes.proc import pgrep
from swapbench.host.processes.programs import check_program, outcome
from swapbench.host.services.driver import DriverBase, found_by_pattern
from swapbench.plan.models import CommandService


class CommandDriver(DriverBase[CommandService]):
    def stop_argv(self) -> list[str]:
        return list(self.service.stop)

    def start_argv(self) -> list[str]:
        return list(self.service.start)

    def cwd(self) -> Path:
        # A relative start script resolves beside the plan (as Phase 0 checked it), not in swapbench's own cwd.
        return self.resolve(self.service.cwd or Path("."))

    def running(self) -> ProbeResult:
        if not self.service.pattern:
            return ProbeResult(True, "")  # judged by its health check alone
        return found_by_pattern(self.service.pattern)

    def is_down(self) -> bool:
        """Its stop script returned: down once the health check stops answering and no process matches."""
        if self.service.health is not None and probe_http(self.service.health).ok:
            return False
        return not pgrep(self.service.pattern) if self.service.pattern else True

    def main_pids(self) -> list[int]:
        return pgrep(self.service.pattern) if self.service.pattern else []

    def start_in_flight(self) -> list[int]:
        """Its start command's processes still running: those live in sessions of their own and outlive the run
        that began them, and starting again now would run two copies."""
        argv = self.start_argv()
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if proc.info["pid"] != os.getpid() and len(cmdline) >= len(argv) and cmdline[-len(argv) :] == argv:
                found.append(int(proc.info["pid"]))
        return found

    def starting(self) -> str | None:
        if self.service.pattern and (pids := pgrep(self.service.pattern)):
            return f"its process runs (pid {', '.join(map(str, pids[:3]))}) but is not healthy yet"
        return super().starting()

    def checks(self, key: str, base_dir: Path) -> list[Outcome]:
        svc = self.service
        cwd = self.resolve(svc.cwd) if svc.cwd is not None else base_dir
        if not cwd.is_dir():
            return [outcome(f"{key}.cwd", False, f"{cwd} does not exist or is not a folder; fix {key}.cwd")]
        return [check_program(svc.start[0], cwd, f"{key}.start[0]"), check_program(svc.stop[0], cwd, f"{key}.stop[0]")]
