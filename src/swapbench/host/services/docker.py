"""docker: `docker stop -t GRACE NAME` and `docker start NAME`; running is `docker inspect`'s State.Running.

Runs for real on the rehearsal host (podman's Docker API, the user's production containers)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from swapbench.core.steps import Outcome
from swapbench.host.processes.probes import ProbeResult
from swapbench.host.processes.proc import container_pid
from swapbench.host.processes.programs import check_program
from swapbench.host.services.driver import DriverBase
from swapbench.plan.models import DockerService


def docker_stop_grace(service: DockerService) -> int:
    """Seconds between `docker stop`'s SIGTERM and its SIGKILL: 10, well inside the service's stop timeout."""
    return int(min(10.0, max(1.0, service.stop_timeout_s / 2)))


class DockerDriver(DriverBase[DockerService]):
    uses_docker_engine: ClassVar[bool] = True

    def stop_argv(self) -> list[str]:
        # Docker's default grace (10 s), said out loud: podman's Docker API defaults to 0 (SIGKILL at once).
        return ["docker", "stop", "-t", str(docker_stop_grace(self.service)), self.service.container]

    def start_argv(self) -> list[str]:
        return ["docker", "start", self.service.container]

    def running(self) -> ProbeResult:
        name = self.service.container
        result = self.runner(["docker", "inspect", "-f", "{{.State.Running}}", name], 10.0)
        if not result.ok:
            return ProbeResult(False, f"container {name}: {result.describe()}")
        running = result.stdout.strip() == "true"
        return ProbeResult(running, f"container {name} " + ("runs" if running else "is not running"))

    def main_pids(self) -> list[int]:
        return [pid] if (pid := container_pid(self.service.container, self.runner)) else []

    def checks(self, key: str, base_dir: Path) -> list[Outcome]:
        return [check_program("docker", base_dir, f"{key}.manager")]

    def claims(self) -> set[str]:
        return {f"container {self.service.container}"}
