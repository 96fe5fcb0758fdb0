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
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from pydantic import ValidationError

from swapbench import __version__
from swapbench.core.command_json import RemoteRecord, WindowRecord
from swapbench.errors import RemoteFailed, SwapbenchError, error_for
from swapbench.host.processes.proc import run_argv
from swapbench.host.ssh import SSH_FAILED, Box

# On the box, under the login's home (ssh runs commands there).
REMOTE_PLANS = ".swapbench/plans"
USER_VENV = ".swapbench/venv"  # where `--install` puts this swapbench, tried before the PATH's
USER_SWAPBENCH = f"{USER_VENV}/bin/swapbench"
REMOTE_WHEELS = ".swapbench/wheels"
REMOTE_NOTE = "REMOTE.md"
NOT_FOUND = 127  # the shell's exit code for a command that is not there


@dataclass(frozen=True)
class RemoteRequest:
    """Where the box is and how to reach it; `swapbench`: the command that runs swapbench there."""

    host: str
    ssh_options: tuple[str, ...] = ()
    swapbench: str | None = None  # None: ~/.swapbench/venv's (where --install puts it), else `swapbench` on PATH
    into: Path = Path("swapbench-remote")
    tty: bool = False
    install: bool = False  # copy this swapbench's wheel to the box and install it there if the box runs another
    wheel: Path | None = None  # the wheel --install copies; None: this swapbench's own (built from its source)
    live_to_stderr: bool = False  # the box's live status on this stderr (stdout is for --json)

    @property
    def box(self) -> Box:
        return Box(self.host, self.ssh_options, live_to_stderr=self.live_to_stderr)


@dataclass(frozen=True)
class RemoteOutcome:
    """What the box's command ended with, and what came back."""

    exit_code: int
    run_dir: str | None = None  # on the box
    local_dir: Path | None = None
    report: Path | None = None
    lines: list[str] = field(default_factory=list)  # what to tell the operator, in order
    window: WindowRecord | None = None  # the box's own record of the window, when it was read
    link_lost: bool = False
    installed: str | None = None

    def error(self) -> SwapbenchError | None:
        return None if self.exit_code == 0 else error_for(self.exit_code)(
            f"the window on the box ended with exit {self.exit_code}", hint="its own lines above say why"
        )  # fmt: skip

    def record(self, host: str) -> RemoteRecord:
        return RemoteRecord(
            host=host, exit_code=self.exit_code, link_lost=self.link_lost, window=self.window,
            local_dir=str(self.local_dir) if self.local_dir else None,
            report_md=str(self.report) if self.report else None, installed=self.installed,
        )  # fmt: skip


def install_command(request: RemoteRequest) -> str:
    """What makes the box run this very swapbench: the same wheel, in a user venv there."""
    return f"swapbench remote {request.host} check PLAN --install (or by hand: {_by_hand(request.host)})"


def _by_hand(host: str) -> str:
    wheel = f"swapbench-{__version__}-py3-none-any.whl"
    return (f"pip wheel --no-deps -w dist . && scp dist/{wheel} {host}: && ssh {host} "
            f"'python3 -m venv ~/{USER_VENV} && ~/{USER_VENV}/bin/pip install ~/{wheel}'")  # fmt: skip


def check_version(request: RemoteRequest) -> RemoteRequest:
    """The box must run this very version: the window's records and its options are this version's. Returns the
    request with the swapbench command found there; with `install`, puts this version there first if needed."""
    said, command = _box_version(request)
    if said == f"swapbench {__version__}":
        return replace(request, swapbench=command)
    why = f"{request.host} runs {said}, this laptop swapbench {__version__}"
    if not request.install:
        raise RemoteFailed(f"{why}: refused, nothing was touched",
                           hint=f"install the same version there: {install_command(request)}")  # fmt: skip
    installed = install(request)
    said, command = _box_version(replace(request, swapbench=installed))
    if said != f"swapbench {__version__}":
        raise RemoteFailed(f"{why}; after --install, {installed} there says {said}: refused, nothing was touched",
                           hint=f"install it by hand: {_by_hand(request.host)}")  # fmt: skip
    return replace(request, swapbench=command)


def _box_version(request: RemoteRequest) -> tuple[str, str]:
    """What `swapbench --version` says on the box, and the command that said it (given, else the user venv's,
    else PATH's)."""
    commands = [request.swapbench] if request.swapbench else [USER_SWAPBENCH, "swapbench"]
    for command in commands:
        found = request.box.run([command, "--version"], 60.0)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip(), command
        if found.returncode != NOT_FOUND:
            break
    what = " ".join(found.stderr.split())[-200:] or f"exit {found.returncode}"
    return f"no swapbench ({what})", commands[-1]


def install(request: RemoteRequest) -> str:
    """`--install`: this swapbench's wheel copied to the box and installed in ~/.swapbench/venv there (its
    dependencies from the box's own pip index or wheelhouse); the swapbench command it put there."""
    with _own_wheel(request.wheel) as wheel:
        request.box.run(["mkdir", "-p", REMOTE_WHEELS], 60.0)
        request.box.copy_to(wheel, f"{REMOTE_WHEELS}/{wheel.name}")
        steps = [["python3", "-m", "venv", USER_VENV],
                 [f"{USER_VENV}/bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  "--force-reinstall", "--no-deps", f"{REMOTE_WHEELS}/{wheel.name}"],
                 [f"{USER_VENV}/bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  f"{REMOTE_WHEELS}/{wheel.name}"]]  # fmt: skip
        for words in steps:  # this very wheel, even over an older build of the same version; then what it needs
            done = request.box.run(words, 900.0)
            if done.returncode != 0:
                said = " / ".join(done.stderr.strip().splitlines()[-3:]) or f"exit {done.returncode}"
                step = " ".join(words[:4])
                raise RemoteFailed(
                    f"installing swapbench on {request.host} failed at `{step}`: {said}",
                    hint=f"nothing else was touched; install it by hand: {_by_hand(request.host)}",
                )
    return USER_SWAPBENCH


@contextlib.contextmanager
def _own_wheel(given: Path | None) -> Iterator[Path]:
    """The wheel of this very swapbench: the one given, the one it was installed from, or one built from the
    source folder it runs from (an editable install) with pip."""
    if given is not None:
        if not given.is_file() or not given.name.startswith(f"swapbench-{__version__}-"):
            raise RemoteFailed(
                f"--wheel {given} is not a swapbench {__version__} wheel on this machine",
                hint=f"give swapbench-{__version__}-py3-none-any.whl (pip wheel --no-deps .)",
            )
        yield given
        return
    origin = _installed_from()
    if origin is not None and origin.is_file() and origin.suffix == ".whl":
        yield origin
        return
    if origin is None or not (origin / "pyproject.toml").is_file():
        raise RemoteFailed(f"cannot find the wheel this swapbench {__version__} was installed from",
                           hint=f"pass --wheel PATH (pip download --no-deps swapbench=={__version__})")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="swapbench-wheel-") as folder:
        argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", folder, str(origin)]
        built = run_argv(argv, 600.0)
        wheels = sorted(Path(folder).glob(f"swapbench-{__version__}-*.whl"))
        if not built.ok or not wheels:
            said = " / ".join(built.stderr.strip().splitlines()[-3:]) or f"exit {built.returncode}"
            raise RemoteFailed(f"building this swapbench's wheel from {origin} failed: {said}",
                               hint="pass --wheel PATH to a swapbench wheel of this version")  # fmt: skip
        yield wheels[0]


def _installed_from() -> Path | None:
    """Where pip installed this swapbench from (PEP 610's direct_url.json): a wheel file or a source folder."""
    with contextlib.suppress(metadata.PackageNotFoundError, ValueError, TypeError, AttributeError):
        text = metadata.distribution("swapbench").read_text("direct_url.json")
        url = urlparse(str(json.loads(text or "{}").get("url", "")))
        if url.scheme == "file":
            return Path(unquote(url.path))
    return None


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
    request = check_version(request)
    remote_plan = ship_plan(request, plan)
    detached = request.box.run([_command(request), "run", "--detach", "--json", remote_plan], 120.0)
    record = _window(detached.stdout)
    if detached.returncode != 0 or record is None:
        return RemoteOutcome(detached.returncode or 1, lines=[detached.stderr.strip()], window=record)
    launched_s = time.monotonic() - started
    outcome = _attached(request, record.run_dir)
    note = f"from `swapbench remote` to the window started on the box: {launched_s:.2f} s"
    return replace(outcome, lines=[note, *outcome.lines], installed=_installed(request))


def attach(request: RemoteRequest, target: str) -> RemoteOutcome:
    """`swapbench remote HOST attach RUN_DIR`: the window's live status here, then its run folder fetched."""
    request = check_version(request)
    return replace(_attached(request, target), installed=_installed(request))


def _attached(request: RemoteRequest, target: str) -> RemoteOutcome:
    code = request.box.stream([_command(request), "attach", target], tty=request.tty)
    if code == SSH_FAILED or code < 0:  # ssh's own failure (the link), or ssh itself killed
        line = (f"the link to {request.host} was lost; the window goes on there: "
                f"`swapbench remote {request.host} attach {target}` shows it again and fetches it")  # fmt: skip
        tell_laptop(request.host, None, line)
        return RemoteOutcome(RemoteFailed.exit_code, target, lines=[line], link_lost=True)
    found = request.box.run([_command(request), "attach", "--json", target], 120.0)
    record = _window(found.stdout)
    if record is None or record.outcome == "refused":
        return RemoteOutcome(code, target, window=record)
    fetched = fetch(request, record.run_dir)
    tell_laptop(request.host, record, f"swapbench on {request.host}: {record.outcome} (exit {record.exit_code})")
    return replace(fetched, exit_code=code, window=record)


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
    request = check_version(request)
    remote_plan = ship_plan(request, plan)
    code = request.box.stream([_command(request), command, *extra, remote_plan], tty=request.tty)
    if code == SSH_FAILED or code < 0:
        raise RemoteFailed(f"the link to {request.host} was lost during `{command}`", hint="run it again")
    return RemoteOutcome(code, installed=_installed(request))


def _command(request: RemoteRequest) -> str:
    return request.swapbench or "swapbench"


def _installed(request: RemoteRequest) -> str | None:
    return request.swapbench if request.install and request.swapbench == USER_SWAPBENCH else None


def _window(text: str) -> WindowRecord | None:
    """The box's `--json` record; None for anything else (its own lines said why)."""
    with contextlib.suppress(ValidationError, ValueError):
        return WindowRecord.model_validate_json(text)
    return None


LAPTOP_NOTIFY_S = 5.0


def tell_laptop(host: str, record: WindowRecord | None, line: str) -> None:
    """The window's end (or the link's loss) shown on this machine as well: a desktop notification through
    `notify-send` where there is one, else the terminal's bell and the line on stderr. Never raises."""
    urgent = record is None or record.outcome == "not-restored"
    title = f"swapbench on {host}: " + ("ACT NOW" if record is not None and record.outcome == "not-restored"
                                         else "link lost" if record is None else record.outcome)  # fmt: skip
    body = line if record is None else " ".join(filter(None, [record.message, record.hint])) or line
    sender = shutil.which("notify-send")
    if sender is not None:
        argv = [sender, "--app-name=swapbench", f"--urgency={'critical' if urgent else 'normal'}", "--", title, body]
        if run_argv(argv, LAPTOP_NOTIFY_S).ok:
            return
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"\a{title}: {body}\n")
        sys.stderr.flush()


def is_terminal() -> bool:
    return sys.stdout.isatty()
