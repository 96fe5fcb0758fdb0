"""process: a production process swapbench only watches (found by a pgrep pattern), never stops or starts."""

from __future__ import annotations

from swapbench.host.processes.probes import ProbeResult
from swapbench.host.processes.proc import pgrep
from swapbench.host.services.driver import DriverBase, found_by_pattern
from swapbench.plan.models import ProcessService


class ProcessDriver(DriverBase[ProcessService]):
    def running(self) -> ProbeResult:
        return found_by_pattern(self.service.pattern)

    def main_pids(self) -> list[int]:
        return pgrep(self.service.pattern)
