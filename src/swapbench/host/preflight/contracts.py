"""Phase 0's checks of what the plan will run: programs, model files, secrets and the candidate's flags.

Whatever can be known before the window is checked here, each outcome named by its plan key: a start script
that cannot be executed would stop a service and never bring it back; a flag llama-server refuses is found
only after production is down. Reads only: no file that is not regular is ever opened (a FIFO blocks), and
the one thing started, `llama-server --help`, runs with a deadline in its own process group.
"""

from __future__ import annotations

import difflib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from swapbench.core.steps import Outcome, Status
from swapbench.errors import StepFailed
from swapbench.host.candidate.gguf import GgufDamaged, read_layout
from swapbench.host.candidate.ops import DOCKER_INSPECT_TIMEOUT_S, launch_argv, launched
from swapbench.host.processes.proc import CommandResult, run_argv
from swapbench.host.processes.programs import Unusable, check_program, executable_problem, outcome, read_head
from swapbench.host.services import driver_for
from swapbench.plan.load import LoadedPlan
from swapbench.plan.models import DockerLaunch, Launch, NativeLaunch, Target

GGUF_MAGIC = b"GGUF"
TEMPLATE_MAX_BYTES = 1 << 20
SECRET_MAX_BYTES = 64 << 10
HELP_TIMEOUT_S = 30.0
DOCKER_HELP_TIMEOUT_S = 120.0
# What a file starts with when it is not the GGUF it claims to be, and what usually went wrong.
NOT_GGUF_HINTS = {
    b"version https://git-lfs": "a Git LFS pointer: run `git lfs pull` where it was cloned",
    b"<": "an HTML or XML page: the download failed; fetch the file again",
    b"{": "JSON: the download failed or this is a config file; fetch the .gguf itself",
}
# One option column of `--help`: `-ngl,  --gpu-layers, --n-gpu-layers N   description...`
_SPEC = re.compile(r"^ {0,4}(?P<names>--?[A-Za-z][\w.-]*(?:,\s*--?[A-Za-z][\w.-]*)*)(?P<rest>.*)$")
_METAVAR = re.compile(r"^ (\S.*?)(?: {2,}|$)")


def check_gguf(path: Path, key: str) -> Outcome:
    """A model or projector: a regular, readable file that starts with the GGUF magic."""
    try:
        head = read_head(path, 32)
    except Unusable as exc:
        return outcome(key, False, f"{path} {exc}; fix {key}")
    if not head.startswith(GGUF_MAGIC):
        hint = next((h for prefix, h in NOT_GGUF_HINTS.items() if head.startswith(prefix)), f"fix {key}")
        return outcome(key, False, f"{path} is not a GGUF file (starts with {head[:4]!r}): {hint}")
    try:
        layout = read_layout(path)
    except GgufDamaged as exc:
        return outcome(key, False, f"{path} starts like a GGUF but is not a whole one: {exc}; download it again "
                       f"or fix {key}")  # fmt: skip
    except OSError as exc:
        return outcome(key, False, f"{path} cannot be read ({exc.strerror}); fix {key}")
    unsized = f"; {layout.unknown_types} of a type not sized here" if layout.unknown_types else ""
    return outcome(key, True, f"{path}: GGUF v{layout.version}, {layout.tensors} tensors whole in "
                   f"{layout.file_size / 2**20:.1f} MiB{unsized}")  # fmt: skip


def check_template(path: Path, key: str, max_bytes: int = TEMPLATE_MAX_BYTES) -> Outcome:
    """A chat template: a regular, readable, non-empty UTF-8 file under `max_bytes`."""
    try:
        data = read_head(path, max_bytes + 1)
        if len(data) > max_bytes:
            raise Unusable(f"is larger than {max_bytes >> 10} KiB: not a chat template")
        text = data.decode("utf-8")
    except Unusable as exc:
        return outcome(key, False, f"{path} {exc}; fix {key}")
    except UnicodeDecodeError as exc:
        return outcome(key, False, f"{path} is not UTF-8 text (at byte {exc.start}); fix {key}")
    if not text.strip():
        return outcome(key, False, f"{path} is empty; fix {key}")
    return outcome(key, True, f"{path}: UTF-8, {len(data)} bytes")


def check_secret(path: Path, key: str) -> Outcome:
    """An API key file: readable, one non-empty line an HTTP header can carry. Its content is never shown."""
    try:
        data = read_head(path, SECRET_MAX_BYTES + 1)
        if len(data) > SECRET_MAX_BYTES:
            raise Unusable(f"is larger than {SECRET_MAX_BYTES >> 10} KiB: not a key file")
        token = data.decode("utf-8").strip()
    except Unusable as exc:
        return outcome(key, False, f"{path} {exc}; fix {key}")
    except UnicodeDecodeError:
        return outcome(key, False, f"{path} is not UTF-8 text (content not shown); fix {key}")
    if not token:
        return outcome(key, False, f"{path} is empty; write the key into it")
    if not (token.isascii() and token.isprintable()):
        why = "holds more than one line, or a character an HTTP header cannot carry"
        return outcome(key, False, f"{path} {why} (content not shown); keep only the key in it")
    return outcome(key, True, f"{path}: readable, not empty (content not shown)")


def _service_checks(loaded: LoadedPlan) -> list[Outcome]:
    found: list[Outcome] = []
    for i, svc in enumerate(loaded.plan.services):
        found += driver_for(svc, loaded.resolve).checks(f"services[{i}] ({svc.name})", loaded.base_dir)
    return found


def program_checks(loaded: LoadedPlan) -> list[Outcome]:
    """Every program a service or a candidate runs exists and can be executed by this user."""
    found = _service_checks(loaded)
    for key, _, launch in launched(loaded):
        if isinstance(launch, NativeLaunch):
            found.append(check_program(str(loaded.resolve(launch.binary)), loaded.base_dir, f"{key}.binary"))
        else:
            found.append(check_program("docker", loaded.base_dir, f"{key}.kind"))
    for i, step in enumerate(loaded.plan.notify):  # told after the window: a broken one would go unheard
        found.append(check_program(step.command[0], loaded.base_dir, f"notify[{i}].command[0]"))
    return found


# --- model files and secrets -------------------------------------------------------------------------------


def _files(launch: Launch) -> list[tuple[str, Path]]:
    named = [("model", launch.model), ("mmproj", launch.mmproj), ("chat_template_file", launch.chat_template_file)]
    return [(name, path) for name, path in named if path is not None]


def _mount_problem(path: Path, models_dir: Path) -> str | None:
    """Why a docker candidate would not see `path` under /models, or None."""
    if not models_dir.is_dir():
        return f"launch.models_dir {models_dir} is not a folder"
    if not path.is_relative_to(models_dir):
        return f"{path} is not under launch.models_dir {models_dir}: the container sees only that folder"
    real, real_dir = Path(os.path.realpath(path)), Path(os.path.realpath(models_dir))
    if path.exists() and not real.is_relative_to(real_dir):
        return f"{path} is a symlink to {real}, outside models_dir: inside the container the link is broken"
    return None


def model_file_checks(loaded: LoadedPlan) -> list[Outcome]:
    """model and mmproj are GGUF files, the chat template is UTF-8 text; a container sees them under /models."""
    found: list[Outcome] = []
    for key, _, launch in launched(loaded):
        for name, path in _files(launch):
            resolved = loaded.resolve(path)
            check = check_template if name == "chat_template_file" else check_gguf
            found.append(check(resolved, f"{key}.{name}"))
            if isinstance(launch, DockerLaunch):
                why = _mount_problem(resolved, loaded.resolve(launch.models_dir))
                if why is not None:
                    found.append(outcome(f"{key}.{name}", False, f"{why}; move it there or change models_dir"))
    return found


def secret_checks(loaded: LoadedPlan) -> list[Outcome]:
    """Every target's api_key_file: readable, one line, not empty; never shown."""
    plan = loaded.plan
    keyed = [("baseline", plan.baseline)] if plan.baseline is not None else []
    keyed += [(f"candidates[{i}] ({t.label})", t) for i, t in enumerate(plan.candidates)]
    return [
        check_secret(loaded.resolve(t.api_key_file), f"{where}.api_key_file")
        for where, t in keyed
        if t.api_key_file is not None
    ]


# --- the candidate's flags ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HelpOption:
    """One option line of `llama-server --help`: its names and how many entries follow it as values."""

    names: tuple[str, ...]
    values: int
    spec: str


Options = Mapping[str, HelpOption]
_HELP_CACHE: dict[tuple[str, ...], Options] = {}


def parse_help(text: str) -> dict[str, HelpOption]:
    """Every option name the help lists, from its option column only (prose that mentions a flag is not a
    listing). `-c,    --ctx-size N` takes one value; `START END`, two; `--jinja, --no-jinja`, none."""
    options: dict[str, HelpOption] = {}
    for line in text.splitlines():
        match = _SPEC.match(line)
        if match is None:
            continue
        names = tuple(n.strip() for n in match["names"].split(","))
        metavar = _METAVAR.match(match["rest"])
        values = len(re.sub(r"<[^>]*>", "X", metavar[1]).split()) if metavar else 0
        option = HelpOption(names, values, f"{', '.join(names)}{' ' + metavar[1] if metavar else ''}")
        options.update({name: option for name in names})
    return options


def is_option(entry: str) -> bool:
    """`-x`, `--long`, `--long=value`; not a value such as `-1`, `-0.5` or `-`."""
    return re.match(r"^--?[A-Za-z]", entry) is not None


def _unknown(entry: str, options: Options, source: str) -> str:
    name = entry.split("=", 1)[0]
    if "=" in entry and name in options:
        return f'{entry}: {source} takes no --option=value form; write "{name}", "{entry[len(name) + 1 :]}"'
    close = difflib.get_close_matches(entry, list(options), n=1, cutoff=0.75)
    return f"{entry} is not an option of {source} (from its --help)" + (f"; did you mean {close[0]}?" if close else "")


def argv_problems(args: Sequence[str], options: Options, source: str) -> list[str]:
    """What llama-server's parser would refuse in `args`: unknown options, missing values, stray entries."""
    problems, i = [], 0
    while i < len(args):
        entry, i = args[i], i + 1
        option = options.get(entry)
        if not is_option(entry):
            problems.append(f"{entry!r} is not the value of any option ({source} takes no positional arguments)")
        elif option is None:
            problems.append(_unknown(entry, options, source))
        else:
            taken = args[i : i + option.values]
            # llama-server would swallow `-c --jinja` as "-c = --jinja" and fail: an option is never a value
            given = next((n for n, a in enumerate(taken) if is_option(a)), len(taken))
            if given < option.values:
                problems.append(f"{entry} expects {option.values} value(s) after it (`{option.spec}`)")
            i += given
    return problems


def read_help(
    argv: Sequence[str], timeout_s: float, cache_key: tuple[str, ...], cleanup: Sequence[str] = ()
) -> Options | str:
    """The options `argv` (a `--help` command) lists, cached per `cache_key`; or why they cannot be read.
    `cleanup` runs when the command outlives its deadline (a container its killed CLI leaves behind)."""
    if cache_key in _HELP_CACHE:
        return _HELP_CACHE[cache_key]
    try:
        result: CommandResult = run_argv(argv, timeout_s)
    except ValueError as exc:  # output that is not text
        return f"`{' '.join(argv)}` printed something that is not text ({exc})"
    if result.timed_out and cleanup:
        run_argv(cleanup, DOCKER_INSPECT_TIMEOUT_S)
    if not result.ok:
        return f"cannot read its options: {result.describe()}"
    options = parse_help(result.stdout + "\n" + result.stderr)
    if "--port" not in options:
        return f"`{' '.join(argv)}` lists no --port option: is it llama-server? (output ends: {_tail(result)})"
    _HELP_CACHE[cache_key] = options
    return options


def _tail(result: CommandResult) -> str:
    return " | ".join((result.stdout + result.stderr).strip().splitlines()[-3:])


def _split_argv(target: Target, launch: Launch, resolve: Callable[[Path], Path]) -> tuple[list[str], list[str]]:
    """The arguments swapbench passes to llama-server itself, and the plan's flags (always last), from the very
    argv builders the window uses. Raises StepFailed when a docker candidate's file is outside models_dir."""
    argv = launch_argv(target.label, launch, "preflight", resolve, Path(os.devnull))
    # native: after the binary; docker: after the image, whose entrypoint is llama-server
    start = len(argv) - argv[::-1].index(launch.image) if isinstance(launch, DockerLaunch) else 1
    tail = argv[start:]
    own = len(tail) - len(launch.flags)
    return tail[:own], tail[own:]


def _flag_outcomes(
    key: str, runs: str, source: str, argv: tuple[list[str], list[str]], options: Options
) -> list[Outcome]:
    """One outcome for what swapbench passes (named by `runs`: the binary or the image), one for the plan's flags."""
    own, flags = argv
    mine, theirs = argv_problems(own, options, source), argv_problems(flags, options, source)
    passed = " ".join(a for a in own if is_option(a))
    own_detail = f"{'; '.join(mine)}; use a llama-server that takes them" if mine else f"takes {passed}"
    flags_detail = f"{'; '.join(theirs)}; fix {key}.flags" if theirs else f"{len(flags)} entries accepted by {source}"
    return [outcome(f"{key}.{runs}", not mine, own_detail), outcome(f"{key}.flags", not theirs, flags_detail)]


def _checked_argv(
    loaded: LoadedPlan, key: str, target: Target, launch: Launch, runs: str, source: str, options: Options
) -> list[Outcome]:
    try:
        argv = _split_argv(target, launch, loaded.resolve)
    except StepFailed as exc:  # a file outside models_dir: model_file_checks names it
        return [Outcome(name=f"{key}.flags", status=Status.SKIP, detail=f"no argv can be built: {exc.message}")]
    return _flag_outcomes(key, runs, source, argv, options)


def native_flag_checks(
    loaded: LoadedPlan, key: str, target: Target, launch: NativeLaunch, timeout_s: float
) -> list[Outcome]:
    """`BINARY --help` lists every option swapbench and the plan pass, each followed by its values."""
    binary = loaded.resolve(launch.binary)
    if executable_problem(binary) is not None:
        return [Outcome(name=f"{key}.flags", status=Status.SKIP, detail=f"{binary} cannot run: see {key}.binary")]
    info = binary.stat()
    options = read_help([str(binary), "--help"], timeout_s, (str(binary), str(info.st_size), str(info.st_mtime_ns)))
    if isinstance(options, str):
        return [outcome(f"{key}.binary", False, f"{binary}: {options}; fix the binary (run it by hand to see why)")]
    return _checked_argv(loaded, key, target, launch, "binary", str(binary), options)


def docker_flag_checks(
    loaded: LoadedPlan, key: str, target: Target, launch: DockerLaunch, timeout_s: float
) -> list[Outcome]:
    """The image is present before the window (a pull inside it stretches the downtime, or fails offline), and
    the llama-server inside lists every option swapbench and the plan pass."""
    image = launch.image
    if shutil.which("docker") is None:
        return [Outcome(name=f"{key}.image", status=Status.SKIP, detail=f"docker is not on PATH: see {key}.kind")]
    inspect = run_argv(["docker", "image", "inspect", "--format", "{{.Id}}", image], DOCKER_INSPECT_TIMEOUT_S)
    if not inspect.ok:
        why = "is not present here" if "No such image" in inspect.stderr + inspect.stdout else "cannot be inspected"
        detail = f"{image} {why} ({inspect.describe()}); run `docker pull {image}` before the window"
        return [outcome(f"{key}.image", False, detail)]
    image_id = inspect.stdout.strip()
    found = [outcome(f"{key}.image", True, f"{image} is present ({image_id[:19]})")]
    options = _docker_help(image, image_id, timeout_s)
    if isinstance(options, str):
        return [*found, outcome(f"{key}.image", False, f"{image}: {options}")]
    return found + _checked_argv(loaded, key, target, launch, "image", image, options)


def _docker_help(image: str, image_id: str, timeout_s: float) -> Options | str:
    """`docker run ... IMAGE --help` in a named, networkless container, removed if it outlives its deadline."""
    name = f"swapbench-help-{secrets.token_hex(4)}"
    argv = ["docker", "run", "--rm", "--pull=never", "--network=none", "--name", name, image, "--help"]
    return read_help(argv, timeout_s, ("docker", image, image_id), cleanup=["docker", "rm", "-f", name])


def flag_checks(
    loaded: LoadedPlan, help_timeout_s: float = HELP_TIMEOUT_S, docker_timeout_s: float = DOCKER_HELP_TIMEOUT_S
) -> list[Outcome]:
    """The candidate's llama-server (native binary, or the image's) takes every flag it will be given."""
    found: list[Outcome] = []
    for key, target, launch in launched(loaded):
        if isinstance(launch, NativeLaunch):
            found += native_flag_checks(loaded, key, target, launch, help_timeout_s)
        else:
            found += docker_flag_checks(loaded, key, target, launch, docker_timeout_s)
    return found


def plan_preflight(loaded: LoadedPlan) -> list[Outcome]:
    """Programs, model files, secrets and flags of the whole plan, each outcome named by its plan key."""
    return [*program_checks(loaded), *model_file_checks(loaded), *secret_checks(loaded), *flag_checks(loaded)]
