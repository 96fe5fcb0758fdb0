"""Production services: the exact argv to stop and start each kind, and what "up" and "ready" mean.

systemd and docker cannot run on every machine swapbench is tested on; their argv is built here and the
tests check it exactly. `command` and `process` services run for real in the sandbox host.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

from swapbench.errors import StepFailed
from swapbench.host.probes import ProbeResult, probe_http
from swapbench.host.proc import CommandResult, container_pid, pgrep, port_open, port_owner, run_argv, with_children
from swapbench.host.waiting import READY_POLL_S, wait_steady, wait_until
from swapbench.plan.models import (
    CommandService,
    DockerService,
    ProcessService,
    Service,
    SystemdService,
    port_of,
)

POLL_S = READY_POLL_S  # stops and restores are downtime: each look is cheap (health first, see is_up)


Runner = Callable[..., CommandResult]


def _systemctl(service: SystemdService, verb: str) -> list[str]:
    return (["sudo", "-n"] if service.sudo else []) + ["systemctl", verb, service.unit_name]


def docker_stop_grace(service: DockerService) -> int:
    """Seconds between `docker stop`'s SIGTERM and its SIGKILL: 10, well inside the service's stop timeout."""
    return int(min(10.0, max(1.0, service.stop_timeout_s / 2)))


def stop_argv(service: Service) -> list[str] | None:
    """The command that stops the service; None for an observed-only process."""
    match service:
        case SystemdService():
            return _systemctl(service, "stop")
        case DockerService():
            # Docker's default grace (10 s), said out loud: podman's Docker API defaults to 0 (SIGKILL at once).
            return ["docker", "stop", "-t", str(docker_stop_grace(service)), service.container]
        case CommandService():
            return list(service.stop)
        case ProcessService():
            return None


def start_argv(service: Service) -> list[str] | None:
    match service:
        case SystemdService():
            return _systemctl(service, "start")
        case DockerService():
            return ["docker", "start", service.container]
        case CommandService():
            return list(service.start)
        case ProcessService():
            return None


def privileged_argv(services: Sequence[Service]) -> list[list[str]]:
    """Every command the plan runs through sudo (Phase 0 checks `sudo -n -l` for each)."""
    found = []
    for svc in services:
        for argv in (stop_argv(svc), start_argv(svc)):
            if argv and argv[:2] == ["sudo", "-n"]:
                found.append(argv[2:])
    return found


class ServiceOps:
    """Stop, start and observe one service; every wait has a deadline."""

    def __init__(self, service: Service, resolve: Callable[[Path], Path], runner: Runner = run_argv) -> None:
        self.service = service
        self.resolve = resolve
        self.runner = runner

    @property
    def name(self) -> str:
        return self.service.name

    def _run(self, argv: list[str], timeout_s: float, what: str) -> CommandResult:
        # A relative start script resolves beside the plan (as Phase 0 checked it), not in swapbench's own cwd.
        cwd = self.resolve(self.service.cwd or Path(".")) if isinstance(self.service, CommandService) else None
        result = self.runner(argv, timeout_s, cwd=cwd)
        if not result.ok:
            raise StepFailed(
                f"{what} {self.name}: {result.describe()}",
                hint=f"run it by hand to see why: {' '.join(argv)}",
            )
        return result

    def is_up(self) -> bool:
        """Observed state: is the service running (and healthy, when it has a health check)? The health check
        is asked first: while it fails, no process table is read and no systemctl or docker runs (a fast poll)."""
        if self.service.health is not None and not probe_http(self.service.health).ok:
            return False
        return self.state().ok

    def state(self) -> ProbeResult:
        """Up or not, and why, for the check and verify tables: `NOT up: ` and the unit's state, the container,
        the missing process or the health check's answer (refused, a timeout, HTTP 503 and its body)."""
        seen = [self._running()]
        if seen[0].ok and self.service.health is not None:
            seen.append(probe_http(self.service.health))
        detail = "; ".join(s.detail for s in seen if s.detail)
        if not seen[-1].ok:
            return ProbeResult(False, f"NOT up: {seen[-1].detail}")
        return ProbeResult(True, "running and healthy" + (f" ({detail})" if detail else ""))

    def _running(self) -> ProbeResult:
        svc = self.service
        match svc:
            case SystemdService():
                result = self.runner(["systemctl", "is-active", svc.unit_name], 10.0)
                return ProbeResult(result.ok, f"{svc.unit_name} is {result.stdout.strip() or result.describe()}")
            case DockerService():
                result = self.runner(["docker", "inspect", "-f", "{{.State.Running}}", svc.container], 10.0)
                if not result.ok:
                    return ProbeResult(False, f"container {svc.container}: {result.describe()}")
                running = result.stdout.strip() == "true"
                return ProbeResult(running, f"container {svc.container} " + ("runs" if running else "is not running"))
            case CommandService() | ProcessService() if svc.pattern:
                pids = pgrep(svc.pattern)
                found = f"pid {', '.join(map(str, pids[:3]))}"
                return ProbeResult(bool(pids), found if pids else f"process missing: nothing matches {svc.pattern!r}")
        return ProbeResult(True, "")  # a command service without a pattern is judged by its health check alone

    def pids(self) -> list[int]:
        """The service's processes with their children (for its GPU footprint); empty when none are found."""
        svc = self.service
        roots: list[int] = []
        match svc:
            case SystemdService():
                out = self.runner(["systemctl", "show", "-p", "MainPID", "--value", svc.unit_name], 10.0).stdout.strip()
                roots = [int(out)] if out.isdigit() and out != "0" else []
            case DockerService():
                roots = [pid] if (pid := container_pid(svc.container, self.runner)) else []
            case CommandService() | ProcessService():
                roots = pgrep(svc.pattern) if svc.pattern else []
        if not roots and svc.health is not None and (port := port_of(svc.health.url)) and (owner := port_owner(port)):
            roots = [owner[0]]
        return with_children(roots)

    def start_in_flight(self) -> list[int]:
        """PIDs of this service's start command still running — a start begun by a run that died (its
        commands live in their own sessions and survive it). Starting again now would run two copies."""
        argv = start_argv(self.service)
        if not isinstance(self.service, CommandService) or not argv:
            return []
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if proc.info["pid"] != os.getpid() and len(cmdline) >= len(argv) and cmdline[-len(argv) :] == argv:
                found.append(int(proc.info["pid"]))
        return found

    def starting(self) -> str | None:
        """Why the service looks on its way up though not up yet (None: nothing of it is there)."""
        svc = self.service
        if pids := self.start_in_flight():
            return f"its start command is still running (pid {', '.join(map(str, pids))})"
        match svc:
            case SystemdService():
                state = self.runner(["systemctl", "is-active", svc.unit_name], 10.0).stdout.strip()
                return f"systemd says {state}" if state in ("activating", "reloading") else None
            case CommandService() if svc.pattern and (pids := pgrep(svc.pattern)):
                return f"its process runs (pid {', '.join(map(str, pids[:3]))}) but is not healthy yet"
        if svc.health is not None and (port := port_of(svc.health.url)) and port_open(port):
            return f"something answers on its port {port} but it is not healthy yet"
        return None

    def wait_start_command(self, timeout_s: float) -> None:
        """Let a start command in flight finish before judging the service."""
        wait_until(lambda: not self.start_in_flight(), timeout_s, poll_s=POLL_S)

    def _is_down(self) -> bool:
        svc = self.service
        if isinstance(svc, CommandService):
            if svc.health is not None and probe_http(svc.health).ok:
                return False
            return not pgrep(svc.pattern) if svc.pattern else True
        return not self.is_up()

    def _restarts(self) -> int | None:
        if not isinstance(self.service, SystemdService):
            return None
        result = self.runner(["systemctl", "show", "-p", "NRestarts", "--value", self.service.unit_name], 10.0)
        return int(result.stdout.strip()) if result.ok and result.stdout.strip().isdigit() else None

    def stop(self, timeout_s: float) -> None:
        argv = stop_argv(self.service)
        if argv is None:
            raise StepFailed(f"{self.name} is observed only; swapbench never stops it", hint="fix run.stop_order")
        deadline = time.monotonic() + timeout_s
        self._run(argv, min(timeout_s, self.service.stop_timeout_s), "stopping")
        if not wait_until(self._is_down, deadline - time.monotonic(), poll_s=POLL_S):
            raise StepFailed(f"{self.name} still answers after its stop command", hint="stop it by hand")

    def start(self, timeout_s: float) -> None:
        argv = start_argv(self.service)
        if argv is None:
            raise StepFailed(
                f"{self.name} is an observed process and is not running; swapbench cannot start it",
                hint=f"start it by hand (pattern {getattr(self.service, 'pattern', '')!r})",
            )
        self._run(argv, timeout_s, "starting")

    def wait_ready(self, timeout_s: float) -> float:
        """Up (and healthy) continuously for settle_s, with NRestarts unchanged for systemd. Seconds taken."""
        restarts = [self._restarts()]

        def not_restarted() -> bool:  # it restarted meanwhile (systemd's Restart=): settle again
            now = self._restarts()
            same = now == restarts[0]
            restarts[0] = now
            return same

        waited = wait_steady(self.is_up, self.service.settle_s, min(timeout_s, self.service.ready_timeout_s),
                             confirm=not_restarted, poll_s=POLL_S)  # fmt: skip
        if not waited.ok:
            now = self.state()
            why = now.detail if not now.ok else f"up now, but not for {self.service.settle_s:g} s in a row"
            raise StepFailed(
                f"{self.name} is not ready after {waited.seconds:.0f} s ({why})",
                hint="look at the service's logs; its start command was " + " ".join(start_argv(self.service) or []),
            )
        return waited.seconds
