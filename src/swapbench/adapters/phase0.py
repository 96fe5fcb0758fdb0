"""Phase 0's checks of what the plan will run: every program, model file, secret and flag — reading only.

Whatever can fail before the window must fail here, named by its plan key: a start script that does not
exist would otherwise stop a service and never bring it back; an unknown llama-server flag would be found
only after production is down. Nothing here opens a file that is not regular (a FIFO would block).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from swapbench.adapters.checks import outcome
from swapbench.adapters.proc import run_argv
from swapbench.core.steps import Outcome
from swapbench.plan.load import LoadedPlan
from swapbench.plan.models import CommandService, DockerService, Launch, SystemdService, Target

GGUF_MAGIC = b"GGUF"
TEMPLATE_MAX_BYTES = 1 << 20
HELP_TIMEOUT_S = 30.0
DOCKER_HELP_TIMEOUT_S = 120.0
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def plan_preflight(loaded: LoadedPlan) -> list[Outcome]:
    """Programs, model files, secrets and flags of the whole plan."""
    return [*service_programs(loaded), *candidate_checks(loaded), *secret_files(loaded)]


# --- files and programs ---------------------------------------------------------------------------------------


def _not_regular(path: Path) -> str | None:
    """Why `path` cannot be used as a file (without opening it), or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        return f"is {kind}"
    return None if os.access(path, os.R_OK) else "is not readable by this user"


def check_program(name: str, cwd: Path, key: str) -> Outcome:
    """A program a command will run: a path (relative to `cwd`) that is an executable file, or a name on PATH."""
    if "/" not in name:
        found = shutil.which(name)
        return outcome(f"{key} {name}", found is not None, found or f"{name!r} is not on PATH; install it or fix {key}")
    path = Path(name) if Path(name).is_absolute() else cwd / name
    why = _not_regular(path) or (None if os.access(path, os.X_OK) else "is not executable (chmod +x it)")
    return outcome(f"{key} {path}", why is None, why or "executable")


def check_gguf(path: Path, key: str) -> Outcome:
    why = _not_regular(path)
    if why is None:
        with path.open("rb") as f:
            head = f.read(4)
        why = None if head == GGUF_MAGIC else f"is not a GGUF file (starts with {head!r})"
    return outcome(f"{key} {path}", why is None, why or f"GGUF, {path.stat().st_size} bytes")


def check_text_file(path: Path, key: str, max_bytes: int = TEMPLATE_MAX_BYTES) -> Outcome:
    why = _not_regular(path)
    if why is None and path.stat().st_size > max_bytes:
        why = f"is {path.stat().st_size} bytes (more than {max_bytes}): not a chat template"
    if why is None:
        try:
            text = path.read_bytes().decode("utf-8")
            why = None if text.strip() else "is empty"
        except UnicodeDecodeError as exc:
            why = f"is not UTF-8 text ({exc.reason} at byte {exc.start})"
    return outcome(f"{key} {path}", why is None, why or "readable UTF-8 text")


def check_secret(path: Path, key: str) -> Outcome:
    """Readable and not empty; its content never appears in any message."""
    why = _not_regular(path)
    if why is None and not path.read_bytes().strip():
        why = "is empty"
    return outcome(f"{key} {path}", why is None, why or "readable, not empty (content not shown)")


def service_programs(loaded: LoadedPlan) -> Iterator[Outcome]:
    for i, svc in enumerate(loaded.plan.services):
        key = f"services[{i}] ({svc.name})"
        match svc:
            case CommandService():
                cwd = loaded.resolve(svc.cwd) if svc.cwd else loaded.base_dir
                if svc.cwd is not None and not cwd.is_dir():
                    yield outcome(f"{key}.cwd {cwd}", False, "does not exist or is not a folder")
                    continue
                yield check_program(svc.start[0], cwd, f"{key}.start[0]")
                yield check_program(svc.stop[0], cwd, f"{key}.stop[0]")
            case SystemdService():
                yield check_program("systemctl", loaded.base_dir, f"{key}.manager")
                if svc.sudo:
                    yield check_program("sudo", loaded.base_dir, f"{key}.sudo")
            case DockerService():
                yield check_program("docker", loaded.base_dir, f"{key}.manager")


def secret_files(loaded: LoadedPlan) -> Iterator[Outcome]:
    for key, target in _targets(loaded):
        if target.api_key_file is not None:
            yield check_secret(loaded.resolve(target.api_key_file), f"{key}.api_key_file")


def _targets(loaded: LoadedPlan) -> Iterator[tuple[str, Target]]:
    plan = loaded.plan
    if plan.baseline is not None:
        yield "baseline", plan.baseline
    for i, target in enumerate(plan.candidates):
        yield f"candidates[{i}] ({target.label})", target


# --- the candidate: files and flags -------------------------------------------------------------------------


def candidate_checks(loaded: LoadedPlan) -> Iterator[Outcome]:
    for where, target in _targets(loaded):
        launch = target.launch
        if launch is None:
            continue
        key = f"{where}.launch"
        yield check_gguf(loaded.resolve(launch.model), f"{key}.model")
        if launch.mmproj is not None:
            yield check_gguf(loaded.resolve(launch.mmproj), f"{key}.mmproj")
        if launch.chat_template_file is not None:
            yield check_text_file(loaded.resolve(launch.chat_template_file), f"{key}.chat_template_file")
        if launch.kind == "native" and launch.binary is not None:
            binary = loaded.resolve(launch.binary)
            program = check_program(str(binary), loaded.base_dir, f"{key}.binary")
            yield program
            if not program.failed:
                yield check_flags(launch, native_options(str(binary)), f"{key}.flags", str(binary))
        elif launch.kind == "docker" and launch.image is not None:
            yield from docker_image_checks(launch, key)


def user_options(flags: list[str]) -> list[str]:
    """The options among a flags list: `-x`, `--long`, `--long=value` (as `--long`); not values like `-1`."""
    return [f.split("=", 1)[0] for f in flags if f.startswith("-") and len(f) > 1 and not re.match(r"^-\d", f)]


def check_flags(launch: Launch, options: frozenset[str] | str, key: str, source: str) -> Outcome:
    """Every option the candidate will get — the plan's and swapbench's own — is listed by `source --help`."""
    if isinstance(options, str):  # why --help could not be read
        return outcome(key, False, options)
    ours = ["--jinja" if launch.jinja else "--no-jinja", "--host", "--port", "-m"]
    ours += ["--mmproj"] if launch.mmproj else []
    ours += ["--chat-template-file"] if launch.chat_template_file else []
    unknown = [f for f in [*user_options(launch.flags), *ours] if f not in options]
    if unknown:
        return outcome(key, False, f"{', '.join(unknown)}: not an option of {source} (from its --help); fix {key}")
    return outcome(key, True, f"{len(user_options(launch.flags))} option(s) accepted by {source} --help")


def parse_options(help_text: str) -> frozenset[str]:
    return frozenset(_OPTION.findall(help_text))


@cache
def _help(argv: tuple[str, ...], timeout_s: float, stamp: tuple[int, int]) -> frozenset[str] | str:
    result = run_argv(list(argv), timeout_s)
    options = parse_options(result.stdout + result.stderr)
    if not result.ok and "--port" not in options:
        return f"cannot read the options: {result.describe()}"
    return options


def native_options(binary: str) -> frozenset[str] | str:
    """The options `binary --help` lists (cached per binary, its size and mtime), or why they cannot be read."""
    info = os.stat(binary)
    return _help((binary, "--help"), HELP_TIMEOUT_S, (info.st_size, int(info.st_mtime_ns)))


def docker_image_checks(launch: Launch, key: str) -> Iterator[Outcome]:
    """The image must be present before the window (a pull inside it stretches the downtime, or fails
    offline); its llama-server's --help must list the flags."""
    image = launch.image or ""
    inspect = run_argv(["docker", "image", "inspect", "--format", "{{.Id}}", image], 30.0)
    if not inspect.ok:
        yield outcome(f"{key}.image {image}", False, f"not present locally ({inspect.describe()}); run "
                      f"`docker pull {image}` before the window: swapbench never pulls inside it")  # fmt: skip
        return
    yield outcome(f"{key}.image {image}", True, f"present ({inspect.stdout.strip()[:19]})")
    argv = ("docker", "run", "--rm", "--pull=never", image, "--help")
    yield check_flags(launch, _help(argv, DOCKER_HELP_TIMEOUT_S, (0, 0)), f"{key}.flags", image)
