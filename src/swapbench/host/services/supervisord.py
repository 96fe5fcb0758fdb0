"""supervisord: `[sudo -n] supervisorctl [-c CONFIG] stop|start PROGRAM`; running is its status word RUNNING.

What supervisorctl answers (4.2 and 4.3, measured): `status NAME` prints `NAME  RUNNING  pid 123, uptime ...` and
exits 0, 3 when the program is not running (STOPPED, STARTING, BACKOFF, EXITED, FATAL), and 4 both for a name it
does not know (`NAME: ERROR (no such process)`) and when it cannot reach the daemon (`unix:///… no such file`,
`… refused connection`). `pid NAME` prints the PID, or 0 (exit 7) when it is not running. `stop` and `start`
exit 0, also when there was nothing to do; a start that fails to spawn exits 7. supervisord keeps no restart
count: a restart is told by its PID changing, which the settle window's health check sees as well.
"""

from __future__ import annotations

from pathlib import Path

from swapbench.core.steps import Outcome
from swapbench.host.processes.probes import ProbeResult
from swapbench.host.processes.programs import check_program, not_a_file, outcome
from swapbench.host.services.driver import DriverBase
from swapbench.plan.models import SupervisordService

STATUS_TIMEOUT_S = 10.0
ON_ITS_WAY = ("STARTING", "BACKOFF")


class SupervisordDriver(DriverBase[SupervisordService]):
    def _ctl(self, verb: str) -> list[str]:
        svc = self.service
        config = ["-c", str(self.resolve(svc.config))] if svc.config is not None else []
        return (["sudo", "-n"] if svc.sudo else []) + [svc.supervisorctl, *config, verb, svc.program]

    def stop_argv(self) -> list[str]:
        return self._ctl("stop")

    def start_argv(self) -> list[str]:
        return self._ctl("start")

    def privileged(self) -> list[list[str]]:
        """status and pid go through sudo too: the socket that refuses a stop refuses a status."""
        argvs = [self._ctl(verb) for verb in ("stop", "start", "status", "pid")]
        return [argv[2:] for argv in argvs if argv[:2] == ["sudo", "-n"]]

    def _status(self) -> tuple[str | None, str]:
        """(the status word, or None when supervisorctl gave none; what it said)."""
        result = self.runner(self._ctl("status"), STATUS_TIMEOUT_S)
        words = result.stdout.split()
        if len(words) >= 2 and words[0] == self.service.program and result.returncode in (0, 3):
            return words[1], " ".join(words[1:])
        said = " ".join((result.stdout + " " + result.stderr).split())
        return None, said or result.describe()

    def running(self) -> ProbeResult:
        state, said = self._status()
        return ProbeResult(state == "RUNNING", f"supervisord: {self.service.program} {said}")

    def main_pids(self) -> list[int]:
        out = self.runner(self._ctl("pid"), STATUS_TIMEOUT_S).stdout.strip()
        return [int(out)] if out.isdigit() and out != "0" else []

    def starting(self) -> str | None:
        state, _ = self._status()
        return f"supervisord says {state}" if state in ON_ITS_WAY else super().starting()

    def checks(self, key: str, base_dir: Path) -> list[Outcome]:
        """supervisorctl can be run, its config exists, and supervisord answers for the program."""
        svc = self.service
        found = [check_program(svc.supervisorctl, base_dir, f"{key}.supervisorctl")]
        found += [check_program("sudo", base_dir, f"{key}.sudo")] if svc.sudo else []
        if svc.config is not None and (why := not_a_file(self.resolve(svc.config))) is not None:
            found.append(outcome(f"{key}.config", False, f"{self.resolve(svc.config)} {why}; fix {key}.config"))
        if any(o.failed for o in found):
            return found
        state, said = self._status()
        if state is not None:
            found.append(outcome(f"{key}.program", True, f"supervisord knows {svc.program}: {said}"))
        elif "no such process" in said:
            found.append(outcome(f"{key}.program", False, f"supervisord has no program {svc.program!r} ({said}); "
                                 f"fix {key}.program (`supervisorctl status` lists them)"))  # fmt: skip
        else:
            found.append(outcome(f"{key}.config", False, f"supervisorctl cannot reach supervisord ({said}); start "
                                 f"supervisord, or fix {key}.config to name its supervisord.conf"))  # fmt: skip
        return found

    def claims(self) -> set[str]:
        return {f"supervisord program {self.service.program}"}
