"""systemd: `[sudo -n] systemctl stop|start UNIT`; running is `systemctl is-active`, restarts are NRestarts.

systemd cannot run on every machine swapbench is tested on: its argv is tested exactly, and it runs for real on
the rehearsal host (systemd as PID 1 of a container, with real sudo rules)."""

from __future__ import annotations

from pathlib import Path

from swapbench.core.steps import Outcome
from swapbench.host.processes.probes import ProbeResult
from swapbench.host.processes.programs import check_program
from swapbench.host.services.driver import DriverBase
from swapbench.plan.models import SystemdService


class SystemdDriver(DriverBase[SystemdService]):
    def _systemctl(self, verb: str) -> list[str]:
        return (["sudo", "-n"] if self.service.sudo else []) + ["systemctl", verb, self.service.unit_name]

    def stop_argv(self) -> list[str]:
        return self._systemctl("stop")

    def start_argv(self) -> list[str]:
        return self._systemctl("start")

    def _show(self, prop: str) -> str:
        return self.runner(["systemctl", "show", "-p", prop, "--value", self.service.unit_name], 10.0).stdout.strip()

    def running(self) -> ProbeResult:
        unit = self.service.unit_name
        result = self.runner(["systemctl", "is-active", unit], 10.0)
        return ProbeResult(result.ok, f"{unit} is {result.stdout.strip() or result.describe()}")

    def main_pids(self) -> list[int]:
        out = self._show("MainPID")
        return [int(out)] if out.isdigit() and out != "0" else []

    def starting(self) -> str | None:
        """systemd knows: activating or reloading is on its way up; anything else on its port is not the unit."""
        state = self.runner(["systemctl", "is-active", self.service.unit_name], 10.0).stdout.strip()
        return f"systemd says {state}" if state in ("activating", "reloading") else None

    def restarts(self) -> int | None:
        out = self._show("NRestarts")
        return int(out) if out.isdigit() else None

    def checks(self, key: str, base_dir: Path) -> list[Outcome]:
        found = [check_program("systemctl", base_dir, f"{key}.manager")]
        return found + ([check_program("sudo", base_dir, f"{key}.sudo")] if self.service.sudo else [])

    def claims(self) -> set[str]:
        return {f"unit {self.service.unit}"}
