"""What a service manager must tell swapbench: the `ServiceDriver` protocol, and `DriverBase`, the answers most
managers share (a health check that fails means down; something on the health port means on its way up).

A manager is one module of this package (systemd, docker, command, process, supervisord): its driver reads the
plan's model of it and nothing else does. `ServiceOps` (ops.py) does the waiting, the deadlines and the errors,
the same for every manager.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Generic, Protocol, TypeVar

from swapbench.core.steps import Outcome
from swapbench.host.processes.probes import ProbeResult, probe_http
from swapbench.host.processes.proc import CommandResult, pgrep, port_open
from swapbench.plan.models import ServiceBase, port_of

Runner = Callable[..., CommandResult]
Resolve = Callable[[Path], Path]
ServiceT = TypeVar("ServiceT", bound=ServiceBase)


class ServiceDriver(Protocol):
    """One manager's view of one service. Every method answers at once (each command it runs has a short
    deadline of its own); none raises for a service that is down: that is an answer, not an error."""

    uses_docker_engine: ClassVar[bool]  # Phase 0 checks the engine answers (once, for services and candidates)

    def stop_argv(self) -> list[str] | None:
        """The command that stops it; None for a service swapbench only observes."""

    def start_argv(self) -> list[str] | None:
        """The command that starts it; None for a service swapbench only observes."""

    def privileged(self) -> list[list[str]]:
        """Every argv it runs through `sudo -n`, without the `sudo -n` (Phase 0 asks `sudo -n -l` of each)."""

    def cwd(self) -> Path | None:
        """Where its commands run (None: swapbench's own working folder)."""

    def running(self) -> ProbeResult:
        """The manager's own answer: is it running, and in its words why (the health check is asked apart)."""

    def is_down(self) -> bool:
        """After its stop command: is it gone (so its memory and port are free)?"""

    def main_pids(self) -> list[int]:
        """Its main processes as the manager knows them (children and the health port's owner are added)."""

    def starting(self) -> str | None:
        """Why it looks on its way up though not up yet; None when nothing of it is there."""

    def start_in_flight(self) -> list[int]:
        """PIDs of its start command still running (a start begun by a run that died)."""

    def restarts(self) -> int | None:
        """How often the manager restarted it (systemd's NRestarts); None where the manager keeps no count."""

    def checks(self, key: str, base_dir: Path) -> list[Outcome]:
        """Its Phase 0 checks, each named after the plan key to fix (`key` is `services[i] (NAME)`)."""

    def claims(self) -> set[str]:
        """What two windows must not both touch, beyond its name and health port (a unit, a container...)."""


def found_by_pattern(pattern: str) -> ProbeResult:
    """Running = a process matches the pgrep -f pattern (the first three PIDs named)."""
    pids = pgrep(pattern)
    found = f"pid {', '.join(map(str, pids[:3]))}"
    return ProbeResult(bool(pids), found if pids else f"process missing: nothing matches {pattern!r}")


class DriverBase(Generic[ServiceT]):
    """The shared answers; a manager's driver overrides what its manager knows better."""

    uses_docker_engine: ClassVar[bool] = False

    def __init__(self, service: ServiceT, resolve: Resolve, runner: Runner) -> None:
        self.service = service
        self.resolve = resolve
        self.runner = runner

    def stop_argv(self) -> list[str] | None:
        return None

    def start_argv(self) -> list[str] | None:
        return None

    def privileged(self) -> list[list[str]]:
        return [argv[2:] for argv in (self.stop_argv(), self.start_argv()) if argv and argv[:2] == ["sudo", "-n"]]

    def cwd(self) -> Path | None:
        return None

    def running(self) -> ProbeResult:
        return ProbeResult(True, "")

    def is_down(self) -> bool:
        health = self.service.health
        return (health is not None and not probe_http(health).ok) or not self.running().ok

    def main_pids(self) -> list[int]:
        return []

    def starting(self) -> str | None:
        health = self.service.health
        if health is not None and (port := port_of(health.url)) and port_open(port):
            return f"something answers on its port {port} but it is not healthy yet"
        return None

    def start_in_flight(self) -> list[int]:
        return []

    def restarts(self) -> int | None:
        return None

    def checks(self, key: str, base_dir: Path) -> list[Outcome]:
        return []

    def claims(self) -> set[str]:
        return set()
