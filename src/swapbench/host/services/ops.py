"""Stop, start and observe one production service, whatever its manager: every wait has a deadline, every
failure says what to run by hand. What the manager itself knows comes from its driver (drivers.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from swapbench.errors import StepFailed
from swapbench.host.processes.probes import ProbeResult, probe_http
from swapbench.host.processes.proc import CommandResult, port_owner, run_argv, with_children
from swapbench.host.processes.waiting import READY_POLL_S, wait_steady, wait_until
from swapbench.host.services.driver import Resolve, Runner
from swapbench.host.services.drivers import driver_for
from swapbench.plan.models import Service, port_of

POLL_S = READY_POLL_S  # stops and restores are downtime: each look is cheap (health first, see is_up)


def _as_is(path: Path) -> Path:
    return path


def stop_argv(service: Service, resolve: Resolve = _as_is) -> list[str] | None:
    """The command that stops the service; None for an observed-only process."""
    return driver_for(service, resolve).stop_argv()


def start_argv(service: Service, resolve: Resolve = _as_is) -> list[str] | None:
    return driver_for(service, resolve).start_argv()


def privileged_argv(services: Sequence[Service], resolve: Resolve = _as_is) -> list[list[str]]:
    """Every command the plan runs through sudo (Phase 0 checks `sudo -n -l` for each)."""
    return [argv for svc in services for argv in driver_for(svc, resolve).privileged()]


class ServiceOps:
    """Stop, start and observe one service; every wait has a deadline."""

    def __init__(self, service: Service, resolve: Resolve, runner: Runner = run_argv) -> None:
        self.service = service
        self.resolve = resolve
        self.runner = runner
        self.driver = driver_for(service, resolve, runner)

    @property
    def name(self) -> str:
        return self.service.name

    def _run(self, argv: list[str], timeout_s: float, what: str) -> CommandResult:
        result = self.runner(argv, timeout_s, cwd=self.driver.cwd())
        if not result.ok:
            raise StepFailed(
                f"{what} {self.name}: {result.describe()}",
                hint=f"run it by hand to see why: {' '.join(argv)}",
            )
        return result

    def is_up(self) -> bool:
        """Observed state: is the service running (and healthy, when it has a health check)? The health check
        is asked first: while it fails, no process table is read and no manager command runs (a fast poll)."""
        if self.service.health is not None and not probe_http(self.service.health).ok:
            return False
        return self.state().ok

    def state(self) -> ProbeResult:
        """Up or not, and why, for the check and verify tables: `NOT up: ` and the manager's answer (the unit's
        state, the container, the missing process) or the health check's (refused, a timeout, HTTP 503)."""
        seen = [self.driver.running()]
        if seen[0].ok and self.service.health is not None:
            seen.append(probe_http(self.service.health))
        detail = "; ".join(s.detail for s in seen if s.detail)
        if not seen[-1].ok:
            return ProbeResult(False, f"NOT up: {seen[-1].detail}")
        return ProbeResult(True, "running and healthy" + (f" ({detail})" if detail else ""))

    def pids(self) -> list[int]:
        """The service's processes with their children (for its GPU footprint); empty when none are found."""
        roots = self.driver.main_pids()
        health = self.service.health
        if not roots and health is not None and (port := port_of(health.url)) and (owner := port_owner(port)):
            roots = [owner[0]]
        return with_children(roots)

    def start_in_flight(self) -> list[int]:
        """PIDs of this service's start command still running — a start begun by a run that died (its
        commands live in their own sessions and survive it). Starting again now would run two copies."""
        return self.driver.start_in_flight()

    def starting(self) -> str | None:
        """Why the service looks on its way up though not up yet (None: nothing of it is there)."""
        if pids := self.start_in_flight():
            return f"its start command is still running (pid {', '.join(map(str, pids))})"
        return self.driver.starting()

    def wait_start_command(self, timeout_s: float) -> None:
        """Let a start command in flight finish before judging the service."""
        wait_until(lambda: not self.start_in_flight(), timeout_s, poll_s=POLL_S)

    def stop(self, timeout_s: float) -> None:
        argv = self.driver.stop_argv()
        if argv is None:
            raise StepFailed(f"{self.name} is observed only; swapbench never stops it", hint="fix run.stop_order")
        deadline = time.monotonic() + timeout_s
        self._run(argv, min(timeout_s, self.service.stop_timeout_s), "stopping")
        if not wait_until(self.driver.is_down, deadline - time.monotonic(), poll_s=POLL_S):
            raise StepFailed(f"{self.name} still answers after its stop command", hint="stop it by hand")

    def start(self, timeout_s: float) -> None:
        argv = self.driver.start_argv()
        if argv is None:
            raise StepFailed(
                f"{self.name} is an observed process and is not running; swapbench cannot start it",
                hint=f"start it by hand (pattern {getattr(self.service, 'pattern', '')!r})",
            )
        self._run(argv, timeout_s, "starting")

    def wait_ready(self, timeout_s: float) -> float:
        """Up (and healthy) continuously for settle_s, with the manager's restart count unchanged where it keeps
        one (systemd's NRestarts). Seconds taken."""
        restarts = [self.driver.restarts()]

        def not_restarted() -> bool:  # it restarted meanwhile (systemd's Restart=): settle again
            now = self.driver.restarts()
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
                hint="look at the service's logs; its start command was " + " ".join(self.driver.start_argv() or []),
            )
        return waited.seconds
