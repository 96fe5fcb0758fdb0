"""Phase 0 contracts and post-restore verify steps, evaluated on the real host. Nothing here mutates it."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from swapbench.core.steps import Outcome, Status
from swapbench.host.gpu import device as gpu
from swapbench.host.processes.probes import probe_http, probe_wav
from swapbench.host.processes.proc import CommandResult, PortState, pgrep, port_holder, port_owner, port_state, run_argv
from swapbench.host.processes.programs import outcome
from swapbench.plan.models import (
    Check,
    DiskFreeCheck,
    FileCheck,
    FilePatternCheck,
    GpuCheck,
    HttpVerify,
    PgrepVerify,
    PortFreeCheck,
    PortOwnerCheck,
    PortRefusedVerify,
    SudoCheck,
    VerifyStep,
    VramCheck,
    VramVerify,
    WavVerify,
)

Resolve = Callable[[Path], Path]
Runner = Callable[..., CommandResult]


def check_sudo(privileged: list[list[str]], runner: Runner = run_argv) -> list[Outcome]:
    """Every command the plan runs through sudo, by its exact argv (sudoers matches argv exactly), with cached
    credentials ignored (`-k`: a sudo typed 10 minutes ago must not make Phase 0 pass and the restore fail).

    `sudo -n -l CMD` says the command is allowed, not that it is allowed without a password: one NOPASSWD entry
    lets `-l` through (sudoers' `listpw=any`), so a user in `%sudo` with a NOPASSWD rule for `stop` only would
    pass, and the restore's `start` would then ask for a password — production left down. A `systemctl start` of
    a unit that is running is a no-op, so that one is run for real to prove no password is needed. A
    least-privilege rule refuses `sudo -n true`: that is asked only of a plan that runs nothing through sudo."""
    if not privileged:
        result = runner(["sudo", "-k", "-n", "true"], 10.0)
        return [outcome("sudo -k -n true", result.ok, "passwordless sudo works" if result.ok else result.describe())]
    found = []
    for argv in privileged:
        allowed = runner(["sudo", "-k", "-n", "-l", *argv], 10.0)
        if not allowed.ok:
            found.append(outcome(f"sudo -k -n -l {' '.join(argv)}", False, _refused(argv, allowed, runner)))
            continue
        found.append(outcome(f"sudo -k -n -l {' '.join(argv)}", True, "allowed"))
        if argv[:2] == ["systemctl", "start"] and runner(["systemctl", "is-active", "--quiet", argv[2]], 10.0).ok:
            tried = runner(["sudo", "-k", "-n", *argv], 30.0)
            detail = "no password needed (a start of the running unit: nothing changed)"
            found.append(outcome(f"sudo -k -n {' '.join(argv)}", tried.ok, detail if tried.ok else (
                f"allowed only with a password: {tried.describe()}; the restore runs it unattended: give it "
                "NOPASSWD in sudoers")))  # fmt: skip
    return found


def _refused(argv: list[str], result: CommandResult, runner: Runner) -> str:
    """Why sudo refused, and the likeliest fix: a rule written for the short unit name."""
    detail = f"not allowed without a password: {result.describe()}"
    if argv[0] == "systemctl" and argv[-1].endswith(".service"):
        short = [*argv[:-1], argv[-1].removesuffix(".service")]
        if runner(["sudo", "-k", "-n", "-l", *short], 10.0).ok:
            detail += (
                f"; sudoers allows `{' '.join(short)}` without `.service`, but swapbench runs the full unit "
                "name and sudoers matches argv exactly: name the unit with `.service` in the rule"
            )
    return detail


def check_port_free(port: int, why: str = "") -> Outcome:
    state = port_state(port)
    if state is PortState.REFUSED and port_owner(port) is None:
        return outcome(f"port {port} free", True, f"nothing listens on {port}{why}")
    how = "is in use by" if state is not PortState.NO_ANSWER else "does not answer (connect timed out); held by"
    return outcome(f"port {port} free", False, f"port {port} {how} {port_holder(port)}{why}")


def check_port_owner(check: PortOwnerCheck) -> Outcome:
    owner = port_owner(check.port)
    name = f"port {check.port} owned by {check.process}"
    if owner is None:
        return outcome(name, False, f"nothing listens on {check.port}")
    pid, cmd = owner
    ok = check.process in cmd
    return outcome(name, ok, f"pid {pid}: {cmd[:100]}" + ("" if ok else f" (expected {check.process!r})"))


def check_file_pattern(check: FilePatternCheck, resolve: Resolve) -> Outcome:
    path = resolve(check.path)
    where = f" at lines {check.lines[0]}-{check.lines[1]}" if check.lines else ""
    name = f"{path.name}: /{check.pattern}/{where}"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return outcome(name, False, f"cannot read {path}: {exc.strerror}")
    regex = re.compile(check.pattern)
    hits = [i for i, line in enumerate(lines, start=1) if regex.search(line)]
    if check.lines:
        inside = [i for i in hits if check.lines[0] <= i <= check.lines[1]]
        if inside:
            return outcome(name, True, f"found at line {inside[0]}")
        moved = f"; found at line(s) {', '.join(map(str, hits[:5]))}: the assumption moved" if hits else ""
        return outcome(name, False, f"not at lines {check.lines[0]}-{check.lines[1]}{moved}")
    return outcome(name, bool(hits), f"found at line {hits[0]}" if hits else "not found")


def check_file(check: FileCheck, resolve: Resolve) -> Outcome:
    return check_path(resolve(check.path), sha256=check.sha256, min_bytes=check.min_bytes)


def check_path(
    path: Path, sha256: str | None = None, min_bytes: int | None = None, executable: bool = False
) -> Outcome:
    name = f"file {path}"
    if not path.is_file():
        return outcome(name, False, "does not exist" if not path.exists() else "is not a file")
    size = path.stat().st_size
    if min_bytes is not None and size < min_bytes:
        return outcome(name, False, f"{size} bytes, expected at least {min_bytes}")
    if executable and not shutil.which(str(path)):
        return outcome(name, False, "is not executable")
    if sha256:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha256.lower():
            return outcome(name, False, f"sha256 {digest[:16]}..., expected {sha256[:16]}...")
    return outcome(name, True, f"{size} bytes")


def check_disk(check: DiskFreeCheck, resolve: Resolve) -> Outcome:
    path = resolve(check.path)
    try:
        free_gb = shutil.disk_usage(path).free / 1e9
    except OSError as exc:
        return outcome(f"disk free at {path}", False, f"cannot stat: {exc.strerror}")
    return outcome(f"disk free at {path}", free_gb >= check.min_gb, f"{free_gb:.1f} GB free, need {check.min_gb} GB")


def check_gpu(index: int) -> Outcome:
    reading = gpu.read_device(index)
    if reading.error:
        return outcome(f"GPU {index} visible", False, reading.error)
    return outcome(f"GPU {index} visible", True, f"{reading.name}, driver {reading.driver}")


def vram_band(name: str, index: int, min_gb: float, max_gb: float, processes: int | None = None) -> Outcome:
    reading = gpu.read_device(index)
    if reading.error or reading.used_gb is None:
        return Outcome(name=name, status=Status.SKIP, detail=f"no GPU reading ({reading.error}); not checked")
    ok = min_gb <= reading.used_gb <= max_gb
    detail = f"{reading.used_gb:.2f} GB used, band {min_gb}-{max_gb} GB"
    if processes is not None:
        count = len(reading.processes)
        ok = ok and count == processes
        detail += f"; {count} compute processes (expected {processes})"
    return outcome(name, ok, detail)


def run_declared_check(check: Check, resolve: Resolve, privileged: list[list[str]]) -> list[Outcome]:
    match check:
        case SudoCheck():
            return check_sudo(privileged)
        case PortFreeCheck():
            return [check_port_free(check.port)]
        case PortOwnerCheck():
            return [check_port_owner(check)]
        case FilePatternCheck():
            return [check_file_pattern(check, resolve)]
        case FileCheck():
            return [check_file(check, resolve)]
        case DiskFreeCheck():
            return [check_disk(check, resolve)]
        case GpuCheck():
            return [check_gpu(check.index)]
        case VramCheck():
            return [vram_band(f"VRAM of GPU {check.index} now", check.index, check.min_gb, check.max_gb)]


def run_verify_step(step: VerifyStep) -> Outcome:
    match step:
        case HttpVerify():
            result = probe_http(step)
            return outcome(f"GET {step.url}", result.ok, result.detail.removeprefix(f"GET {step.url}: "))
        case PortRefusedVerify():
            state = port_state(step.port, step.host)
            refused = state is PortState.REFUSED
            detail = f"{step.host}:{step.port} " + (
                "refuses connections" if refused else f"{state.value}, not refused: {port_holder(step.port)}"
            )
            return outcome(f"port {step.port} refused", refused, detail)
        case WavVerify():
            result = probe_wav(step)
            return outcome(f"WAV smoke POST {step.url}", result.ok, result.detail.removeprefix(f"POST {step.url}: "))
        case PgrepVerify():
            pids = pgrep(step.pattern)
            detail = f"pid {', '.join(map(str, pids[:5]))}" if pids else "no process matches"
            return outcome(f"pgrep -f {step.pattern!r}", bool(pids), detail)
        case VramVerify():
            return vram_band(f"VRAM of GPU {step.index}", step.index, step.min_gb, step.max_gb, step.processes)
