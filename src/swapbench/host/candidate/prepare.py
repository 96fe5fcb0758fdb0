"""The prepare step: what the window's candidates need before the first stop — their llama-server's version (for
the report), the memory to hold their model files in the page cache, and those files read into it: once before
the checks say go, again right before the first stop (the baseline bench may take minutes), so the load inside
the window reads memory, not disk.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from swapbench.core.steps import Outcome, PreparedCandidate, Status, WarmRead
from swapbench.errors import StepFailed
from swapbench.host.candidate.ops import DOCKER_INSPECT_TIMEOUT_S, launched
from swapbench.host.candidate.page_cache import WarmResult, warm
from swapbench.host.processes.proc import run_argv
from swapbench.host.processes.programs import executable_problem
from swapbench.plan.load import LoadedPlan
from swapbench.plan.models import DockerLaunch, Launch

VERSION_TIMEOUT_S = 30.0
DOCKER_VERSION_TIMEOUT_S = 120.0
PAGE_CACHE_CHECK = "page cache for the candidates' model files"
LOST_SHARE = 0.05  # a re-read that found more than this share missing: the page cache lost the files meanwhile
DISK_SPEED_BYTES_PER_S = 1 << 30  # slower than this, a read came from disk (where the cache cannot be asked)
_VERSIONS: dict[tuple[str, ...], str] = {}


def _mib(size_bytes: float) -> str:
    return f"{size_bytes / 2**20:,.0f} MiB"


# --- the candidate's version -------------------------------------------------------------------------------


def _version_text(argv: Sequence[str], timeout_s: float, cleanup: Sequence[str] = ()) -> str:
    """What `llama-server --version` says (on stderr): its non-empty lines joined. Raises StepFailed."""
    result = run_argv(argv, timeout_s)
    if result.timed_out and cleanup:
        run_argv(cleanup, DOCKER_INSPECT_TIMEOUT_S)
    if not result.ok:
        raise StepFailed(result.describe(), hint="run it by hand to see why")
    lines = [line.strip() for line in (result.stdout + "\n" + result.stderr).splitlines() if line.strip()]
    if not lines:
        raise StepFailed(f"`{' '.join(argv)}` printed nothing", hint="is it llama-server?")
    return "; ".join(lines[:3])


def candidate_version(loaded: LoadedPlan, launch: Launch) -> str:
    """`--version` of the llama-server the window will start (the binary, or the image's entrypoint), cached per
    binary file or image id. Raises StepFailed with why it cannot be read."""
    if isinstance(launch, DockerLaunch):
        return _image_version(launch.image)
    binary = loaded.resolve(launch.binary)
    if (why := executable_problem(binary)) is not None:
        raise StepFailed(f"{binary} {why}", hint="see the binary's own check")
    info = binary.stat()
    key = (str(binary), str(info.st_size), str(info.st_mtime_ns))
    if key not in _VERSIONS:
        _VERSIONS[key] = _version_text([str(binary), "--version"], VERSION_TIMEOUT_S)
    return _VERSIONS[key]


def _image_version(image: str) -> str:
    if shutil.which("docker") is None:
        raise StepFailed("docker is not on PATH", hint="install the docker CLI")
    inspect = run_argv(["docker", "image", "inspect", "--format", "{{.Id}}", image], DOCKER_INSPECT_TIMEOUT_S)
    if not inspect.ok:
        raise StepFailed(f"{image} cannot be inspected ({inspect.describe()})", hint="see the image's own check")
    key = ("docker", image, inspect.stdout.strip())
    if key not in _VERSIONS:
        name = f"swapbench-version-{secrets.token_hex(4)}"
        argv = ["docker", "run", "--rm", "--pull=never", "--network=none", "--name", name, image, "--version"]
        _VERSIONS[key] = _version_text(argv, DOCKER_VERSION_TIMEOUT_S, cleanup=["docker", "rm", "-f", name])
    return _VERSIONS[key]


def version_checks(loaded: LoadedPlan) -> list[Outcome]:
    """Each candidate's llama-server version, for the report; one that cannot be read is a warning (the flags
    check, from `--help` of the same binary or image, is what proves it will start)."""
    found = []
    for key, _, launch in launched(loaded):
        try:
            found.append(Outcome(name=f"{key}.version", status=Status.PASS, detail=candidate_version(loaded, launch)))
        except StepFailed as exc:
            detail = f"`--version` could not be read ({exc.message}); the report will not name the build"
            found.append(Outcome(name=f"{key}.version", status=Status.WARN, detail=detail))
    return found


# --- the page cache ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFiles:
    """One candidate's model files (model and mmproj): their paths, and their size as they are on disk now."""

    label: str
    key: str  # its plan key, for messages
    paths: tuple[Path, ...]
    size_bytes: int  # of those that are regular files now (Phase 0 names the others)
    missing: tuple[Path, ...] = ()


def model_files(loaded: LoadedPlan) -> list[ModelFiles]:
    """Every launched candidate's model and mmproj. One that is gone when it is read fails that read: a model
    deleted between Phase 0 and the first stop stops the swap before production is touched."""
    found = []
    for key, target, launch in launched(loaded):
        paths = tuple(loaded.resolve(p) for p in (launch.model, launch.mmproj) if p is not None)
        sizes = {p: _size(p) for p in paths}
        missing = tuple(p for p, size in sizes.items() if size is None)
        found.append(ModelFiles(target.label, key, paths, sum(size or 0 for size in sizes.values()), missing))
    return found


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def memory_available_bytes() -> int:
    """What the kernel can give without swapping (MemAvailable): page cache that may be dropped included."""
    return int(psutil.virtual_memory().available)


def why_not_read(loaded: LoadedPlan, files: Sequence[ModelFiles]) -> str | None:
    """Why the model files are not read before the window, or None when they are."""
    if not loaded.plan.run.warm_page_cache:
        return "not read before the window (run.warm_page_cache = false): the load reads what the page cache holds"
    total, available = sum(f.size_bytes for f in files), memory_available_bytes()
    if total > available:
        return (
            f"{_mib(total)} of model files, {_mib(available)} of memory available (MemAvailable): they do not fit, "
            "so they are not read before the window (that would only push other pages out, production's among "
            "them); the load inside the window reads them from disk: slower, not unsafe. Free memory to shorten "
            "the downtime"
        )
    return None


def page_cache_check(loaded: LoadedPlan) -> list[Outcome]:
    """The memory to hold every candidate's model files in the page cache: a warning when it is short."""
    files = model_files(loaded)
    if not files:
        return []
    why = why_not_read(loaded, files)
    if why is None:
        total, available = sum(f.size_bytes for f in files), memory_available_bytes()
        detail = f"{_mib(total)} to read before the window; {_mib(available)} available (MemAvailable)"
        return [Outcome(name=PAGE_CACHE_CHECK, status=Status.PASS, detail=detail)]
    status = Status.SKIP if not loaded.plan.run.warm_page_cache else Status.WARN
    return [Outcome(name=PAGE_CACHE_CHECK, status=status, detail=why)]


def prepare_checks(loaded: LoadedPlan) -> list[Outcome]:
    return version_checks(loaded) + page_cache_check(loaded)


@dataclass
class Preparer:
    """The candidates' model files in the page cache: read before the checks say go, again right before the first
    stop; what each read found is kept for the report."""

    loaded: LoadedPlan
    files: list[ModelFiles] = field(init=False)
    skipped: str | None = field(init=False)
    versions: dict[str, str | None] = field(init=False)
    first: dict[str, WarmResult] = field(default_factory=dict)
    again: dict[str, WarmResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.files = model_files(self.loaded)
        self.skipped = why_not_read(self.loaded, self.files)
        self.versions = candidate_versions(self.loaded)

    def first_read(self, should_stop: Callable[[], bool]) -> None:
        """Phase 0's read. Raises StepFailed when a file cannot be read to its end (the load would fail too)."""
        self._read(self.first, should_stop)

    def reread(self, should_stop: Callable[[], bool]) -> None:
        """Right before the first stop: what the baseline bench pushed out comes back now, not inside the window."""
        self._read(self.again, should_stop)

    def _read(self, into: dict[str, WarmResult], should_stop: Callable[[], bool]) -> None:
        if self.skipped is not None:
            return
        for files in self.files:
            if should_stop():
                return
            try:
                into[files.label] = warm(files.paths, should_stop)
            except OSError as exc:
                raise StepFailed(
                    f"{files.key}: reading {exc.filename or 'a model file'} into the page cache failed: "
                    f"{exc.strerror or exc}",
                    hint="check the file and its disk: the candidate could not load it either",
                ) from exc

    def records(self) -> list[PreparedCandidate]:
        return [self._record(f) for f in self.files]

    def _record(self, files: ModelFiles) -> PreparedCandidate:
        return PreparedCandidate(
            label=files.label, version=self.versions.get(files.label), files=[str(p) for p in files.paths],
            size_bytes=files.size_bytes, first_read=_read_of(self.first.get(files.label)),
            reread=_read_of(self.again.get(files.label)), note=self._note(files),
        )  # fmt: skip

    def _note(self, files: ModelFiles) -> str | None:
        again = self.again.get(files.label)
        if self.skipped is not None or again is None:
            return self.skipped
        if not again.complete:
            return "the re-read before the first stop was cut short (a stop was requested)"
        rate = again.size_bytes / again.seconds if again.seconds > 0 else float("inf")
        if again.cached_share is not None and 1 - again.cached_share > LOST_SHARE:
            return (
                f"the page cache had lost {1 - again.cached_share:.0%} of the files since Phase 0 (re-read in "
                f"{again.seconds:.1f} s at {_mib(rate)}/s): memory pressure or a proactive reclaim (DAMON, a VM's "
                "balloon) pushes cold pages out on this host. They were read again before the first stop, so the "
                "load still read memory"
            )
        if again.cached_share is None and again.seconds > 0.5 and rate < DISK_SPEED_BYTES_PER_S:
            return (
                f"the re-read ran at {_mib(rate)}/s, a disk's speed: the page cache had probably lost the files since "
                "Phase 0 (this file system cannot tell)"
            )
        return None


def _read_of(result: WarmResult | None) -> WarmRead | None:
    return None if result is None else WarmRead(seconds=result.seconds, cached_share=result.cached_share)


def candidate_versions(loaded: LoadedPlan) -> dict[str, str | None]:
    """Each launched candidate's version for the report (cached since Phase 0: its command does not run again)."""
    found: dict[str, str | None] = {}
    for _, target, launch in launched(loaded):
        try:
            found[target.label] = candidate_version(loaded, launch)
        except StepFailed:
            found[target.label] = None
    return found
