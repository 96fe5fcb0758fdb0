"""`swapbench remote HOST COMMAND`: drive the window on a GPU box from a laptop, over the operator's own OpenSSH.

Thin by design: the plan is copied to the box (its paths are the box's paths), the box's own swapbench starts
the supervised window there and the laptop attaches to it through `ssh -t` (the live status line is drawn by
the box, in this terminal), then copies the run folder back. The measuring client, the journal, the lock and
the watchdog stay on the box: no figure ever crosses the network. A dropped link only detaches.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swapbench import __version__
from swapbench.errors import RemoteFailed, SwapbenchError, error_for
from swapbench.host.ssh import SSH_FAILED, Box

REMOTE_PLANS = ".swapbench/plans"  # on the box, under the login's home (ssh runs commands there)
REMOTE_NOTE = "REMOTE.md"


@dataclass(frozen=True)
class RemoteRequest:
    """Where the box is and how to reach it; `swapbench`: the command that runs swapbench there."""

    host: str
    ssh_options: tuple[str, ...] = ()
    swapbench: str = "swapbench"
    into: Path = Path("swapbench-remote")
    tty: bool = False

    @property
    def box(self) -> Box:
        return Box(self.host, self.ssh_options)


@dataclass(frozen=True)
class RemoteOutcome:
    """What the box's command ended with, and what came back."""

    exit_code: int
    run_dir: str | None = None  # on the box
    local_dir: Path | None = None
    report: Path | None = None
    lines: list[str] = field(default_factory=list)  # what to tell the operator, in order

    def error(self) -> SwapbenchError | None:
        return None if self.exit_code == 0 else error_for(self.exit_code)(
            f"the window on the box ended with exit {self.exit_code}", hint="its own lines above say why"
        )  # fmt: skip


def install_command(request: RemoteRequest) -> str:
    """What makes the box run this very swapbench: the same wheel, in a user venv there."""
    wheel = f"swapbench-{__version__}-py3-none-any.whl"
    return (f"pip wheel --no-deps -w dist . && scp dist/{wheel} {request.host}: && ssh {request.host} "
            f"'python3 -m venv ~/.swapbench/venv && ~/.swapbench/venv/bin/pip install ~/{wheel}'; then pass "
            "--swapbench ~/.swapbench/venv/bin/swapbench (or put it on the box's PATH)")  # fmt: skip


def check_version(request: RemoteRequest) -> None:
    """The box must run this very version: the window's records and its options are this version's."""
    found = request.box.run([request.swapbench, "--version"], 60.0)
    said = found.stdout.strip()
    if found.returncode != 0 or said != f"swapbench {__version__}":
        what = said or f"no swapbench ({' '.join(found.stderr.split())[-200:] or f'exit {found.returncode}'})"
        why = f"{request.host} runs {what}, this laptop swapbench {__version__}: refused, nothing was touched"
        raise RemoteFailed(why, hint=f"install the same version there: {install_command(request)}")


def ship_plan(request: RemoteRequest, plan: Path) -> str:
    """Copy the plan to the box; the path there (relative to the login's home, as ssh runs commands)."""
    if not plan.is_file():
        raise RemoteFailed(f"{plan} is not a plan file on this laptop", hint="give the plan's path here")
    remote = f"{REMOTE_PLANS}/{plan.name}"
    request.box.run(["mkdir", "-p", REMOTE_PLANS], 60.0)
    request.box.copy_to(plan, remote)
    return remote


def run(request: RemoteRequest, plan: Path) -> RemoteOutcome:
    """`swapbench remote HOST run PLAN`: check the version, ship the plan, start the window, attach, fetch."""
    started = time.monotonic()
    check_version(request)
    remote_plan = ship_plan(request, plan)
    detached = request.box.run([request.swapbench, "run", "--detach", "--json", remote_plan], 120.0)
    record = _record(detached.stdout)
    if detached.returncode != 0 or record is None:
        return RemoteOutcome(detached.returncode or 1, lines=[detached.stderr.strip()])
    launched_s = time.monotonic() - started
    outcome = attach(request, str(record["run_dir"]))
    note = f"from `swapbench remote` to the window started on the box: {launched_s:.2f} s"
    return RemoteOutcome(outcome.exit_code, outcome.run_dir, outcome.local_dir, outcome.report,
                         [note, *outcome.lines])  # fmt: skip


def attach(request: RemoteRequest, target: str) -> RemoteOutcome:
    """`swapbench remote HOST attach RUN_DIR`: the window's live status here, then its run folder fetched."""
    code = request.box.stream([request.swapbench, "attach", target], tty=request.tty)
    if code == SSH_FAILED or code < 0:  # ssh's own failure (the link), or ssh itself killed
        return RemoteOutcome(RemoteFailed.exit_code, target, lines=[
            f"the link to {request.host} was lost; the window goes on there: "
            f"`swapbench remote {request.host} attach {target}` shows it again and fetches it"])  # fmt: skip
    found = request.box.run([request.swapbench, "attach", "--json", target], 120.0)
    record = _record(found.stdout)
    if record is None or record.get("outcome") == "refused":
        return RemoteOutcome(code, target)
    run_dir = str(record["run_dir"])
    fetched = fetch(request, run_dir)
    return RemoteOutcome(code, run_dir, fetched.local_dir, fetched.report, fetched.lines)


def fetch(request: RemoteRequest, run_dir: str) -> RemoteOutcome:
    """`swapbench remote HOST fetch RUN_DIR`: the box's run folder copied whole to INTO/HOST/RUN_ID (again)."""
    started = time.monotonic()
    name = Path(run_dir).name
    local = request.into / request.host / name
    partial = local.with_name(f".{name}.partial")  # a fetch cut short never passes for a whole folder
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    request.box.copy_from(run_dir, partial)
    shutil.rmtree(local, ignore_errors=True)
    (partial / name).rename(local)
    partial.rmdir()
    (local / REMOTE_NOTE).write_text(_note(request, run_dir))
    report = local / "report.md"
    if report.exists():
        with report.open("a") as f:
            f.write("\n" + _note(request, run_dir))
    lines = [f"fetched {request.host}:{run_dir} to {local} in {time.monotonic() - started:.2f} s"]
    if report.exists():
        lines.append(f"report: {report} (and report.html beside it)")
    return RemoteOutcome(0, run_dir, local, report if report.exists() else None, lines)


def _note(request: RemoteRequest, run_dir: str) -> str:
    return (f"## Driven remotely\n\nThis window was driven from another machine over SSH (`swapbench remote "
            f"{request.host}`) and copied back from `{request.host}:{run_dir}`. Every figure was measured on "
            f"{request.host} by its own client over loopback: no figure crossed the network.\n")  # fmt: skip


def passthrough(request: RemoteRequest, command: str, plan: Path, extra: Sequence[str] = ()) -> RemoteOutcome:
    """`remote HOST check|status|rollback PLAN`: the plan shipped, the box's own command run with this terminal."""
    check_version(request)
    remote_plan = ship_plan(request, plan)
    code = request.box.stream([request.swapbench, command, *extra, remote_plan], tty=request.tty)
    if code == SSH_FAILED or code < 0:
        raise RemoteFailed(f"the link to {request.host} was lost during `{command}`", hint="run it again")
    return RemoteOutcome(code)


def _record(text: str) -> dict[str, Any] | None:
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        return data if isinstance(data, dict) else None
    return None


def is_terminal() -> bool:
    return sys.stdout.isatty()
