"""Production services, one driver per manager (systemd, docker, command, process, supervisord), and `ServiceOps`,
which stops, starts and watches any of them the same way."""

from swapbench.host.services.drivers import driver_for
from swapbench.host.services.ops import ServiceOps, privileged_argv, start_argv, stop_argv

__all__ = ["ServiceOps", "driver_for", "privileged_argv", "start_argv", "stop_argv"]
