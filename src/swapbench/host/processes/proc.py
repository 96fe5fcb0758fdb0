"""Run commands as argv lists with a deadline, each in its own process group (TERM, grace, KILL)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import psutil

from swapbench.host.processes.waiting import wait_until

KILL_GRACE_S = 3.0
EXIT_POLL_S = 0.02  # a stopped candidate's exit is the start of the restore: see it within 20 ms


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        """One line for an error message: the command, how it ended, the end of its stderr."""
        how = f"timed out after {self.duration_s:.1f} s" if self.timed_out else f"exited {self.returncode}"
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-3:]
        return f"`{' '.join(self.argv)}` {how}" + (f": {' | '.join(tail)}" if tail else "")


def kill_group(pgid: int, grace_s: float = KILL_GRACE_S) -> None:
    """TERM a process group, give it `grace_s`, then KILL whatever is left: the one way the host ends a process
    group. A member that is already a zombie counts as gone; reaping our own child is the caller's (`wait`)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    if wait_until(lambda: not _group_alive(pgid), grace_s, poll_s=EXIT_POLL_S):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies still count for killpg; look at the members' states
    members = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == pgid]
    return any(_status(p) != psutil.STATUS_ZOMBIE for p in members)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _status(proc: psutil.Process) -> str:
    try:
        return str(proc.status())
    except psutil.Error:
        return psutil.STATUS_ZOMBIE


def run_argv(
    argv: Sequence[str],
    timeout_s: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin_text: str | None = None,
) -> CommandResult:
    """Run argv (never through a shell) in a new process group; on timeout the whole group is killed.
    `stdin_text`: written to its standard input (else it reads /dev/null)."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL if stdin_text is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",  # a program's stray bytes must not turn its success into an exception
            start_new_session=True,
        )
    except OSError as exc:
        return CommandResult(tuple(argv), 127, "", f"cannot run: {exc.strerror or exc}", time.monotonic() - start)
    try:
        out, err = proc.communicate(input=stdin_text, timeout=max(timeout_s, 0.01))
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        out, err = proc.communicate()
        timed_out = True
    return CommandResult(tuple(argv), proc.returncode, out, err, time.monotonic() - start, timed_out)


def pgrep(pattern: str) -> list[int]:
    """PIDs whose full command line matches the regex, like `pgrep -f` (this process excluded)."""
    regex = re.compile(pattern)
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["pid"] == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline and regex.search(cmdline):
            found.append(int(proc.info["pid"]))
    return sorted(found)


def with_children(pids: list[int]) -> list[int]:
    """These processes and all their descendants (a server's workers hold GPU memory too)."""
    found = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            found |= {pid, *(c.pid for c in proc.children(recursive=True))}
        except psutil.Error:
            continue
    return sorted(found)


def port_owner(port: int) -> tuple[int, str] | None:
    """(pid, command line) of the process listening on a TCP port, or None when nothing listens."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return (0, "(a process swapbench may not inspect)")
            try:
                cmd = " ".join(psutil.Process(conn.pid).cmdline())
            except psutil.Error:
                cmd = "(gone)"
            return (conn.pid, cmd)
    return None


class PortState(StrEnum):
    REFUSED = "refused"  # ECONNREFUSED: nothing listens. The only state that counts as "closed".
    OPEN = "open"  # a connection was accepted
    NO_ANSWER = "no answer"  # the connect timed out: a listener that never accepts, or a dropped SYN
    ERROR = "error"  # any other failure (unreachable, reset): not proof that nothing listens


def port_state(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> PortState:
    """What a TCP connect to host:port finds. Only ECONNREFUSED means refused: a timeout is not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return PortState.OPEN
    except ConnectionRefusedError:
        return PortState.REFUSED
    except TimeoutError:
        return PortState.NO_ANSWER
    except OSError:
        return PortState.ERROR


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """Is the port anything but refused? (A listener that never accepts is still there.)"""
    return port_state(port, host, timeout_s) is not PortState.REFUSED


def port_holder(port: int) -> str:
    """Who holds a port, for a message: 'pid N (cmdline)', or why that cannot be told."""
    owner = port_owner(port)
    if owner is None:
        return "no listening process found"
    pid, cmd = owner
    return f"pid {pid} ({cmd[:80]})" if pid else cmd


def container_pid(name: str, runner: Callable[..., CommandResult] = run_argv) -> int | None:
    """The PID of a running container's main process, only where this process sees that very process.
    docker reports PIDs of the engine's PID namespace; where swapbench runs in another one (inside a container,
    as on the rehearsal host, or beside a remote engine) the number names some other process here, or none —
    signalling it would hit a stranger. Checked by the container's id in the PID's cgroup."""
    result = runner(["docker", "inspect", "-f", "{{.State.Pid}} {{.Id}}", name], 10.0)
    pid, _, container_id = result.stdout.strip().partition(" ")
    if not result.ok or not pid.isdigit() or pid == "0" or len(container_id) < 12:
        return None
    try:
        cgroups = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    return int(pid) if container_id in cgroups else None
