"""The one dispatch table: a service's plan model -> its manager's driver. A new manager is a model in
plan/models.py, a module beside this one, and a case here; mypy's assert_never fails the build if one is left
out."""

from __future__ import annotations

from typing import assert_never

from swapbench.host.processes.proc import run_argv
from swapbench.host.services.command import CommandDriver
from swapbench.host.services.docker import DockerDriver
from swapbench.host.services.driver import Resolve, Runner, ServiceDriver
from swapbench.host.services.process import ProcessDriver
from swapbench.host.services.supervisord import SupervisordDriver
from swapbench.host.services.systemd import SystemdDriver
from swapbench.plan.models import (
    CommandService,
    DockerService,
    ProcessService,
    Service,
    SupervisordService,
    SystemdService,
)


def driver_for(service: Service, resolve: Resolve, runner: Runner = run_argv) -> ServiceDriver:
    match service:
        case SystemdService():
            return SystemdDriver(service, resolve, runner)
        case DockerService():
            return DockerDriver(service, resolve, runner)
        case CommandService():
            return CommandDriver(service, resolve, runner)
        case ProcessService():
            return ProcessDriver(service, resolve, runner)
        case SupervisordService():
            return SupervisordDriver(service, resolve, runner)
        case _:
            assert_never(service)
