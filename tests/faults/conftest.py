"""Fault injection from outside, as a hostile day would: real mounts, real signals, real races."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from swapbench.demo.rig import Rig
from swapbench.demo.sandbox import Sandbox, build_sandbox
from swapbench.host.processes.proc import pgrep
from swapbench.host.services import ServiceOps
from swapbench.plan.load import load_plan
from tests.helpers import end_started, swapbench, wait_until


@pytest.fixture(scope="module")
def box(rig: Rig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox host of real processes; every test must leave its production up."""
    sandbox = build_sandbox(tmp_path_factory.mktemp("faults"), rig, samples=1, extended=2)
    yield sandbox
    sandbox.teardown()


def _run(*argv: str) -> str:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if result.returncode != 0:  # these tests are the point: a machine that cannot mount fails them loudly
        pytest.fail(f"{' '.join(argv)}: {result.stderr.strip()} (the fault suite needs root, mount and e2fsprogs)")
    return result.stdout


def _mount(*argv: str) -> None:
    _run("mount", *argv)


def _options(point: Path) -> str:
    return _run("findmnt", "-n", "-o", "OPTIONS", str(point)).strip()


@pytest.fixture(autouse=True)
def leave_no_window_open(box: Sandbox) -> Iterator[None]:
    """Whatever a scenario did or failed to do: its swapbench processes end, their watchdogs finish, and
    production is put back before the next scenario (a failed test must not cascade)."""
    yield
    end_started()
    wait_until("the watchdogs to finish", lambda: not pgrep(r"-m swapbench watchdog "), 180)
    if not all(ServiceOps(s, load_plan(box.plan_path).resolve).is_up() for s in load_plan(box.plan_path).plan.services):
        swapbench("rollback", str(box.plan_path))


class Mounts:
    """Real mounts for one test, unmounted (lazily, whatever is still open on them) afterwards."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.points: list[Path] = []
        self.images: dict[Path, Path] = {}

    def tmpfs(self, size_mib: int) -> Path:
        point = self.folder / f"tmpfs-{len(self.points)}"
        point.mkdir()
        _mount("-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(point))
        self.points.append(point)
        return point

    def read_only_view(self, source: Path) -> Path:
        point = self.folder / f"ro-{len(self.points)}"
        point.mkdir()
        _mount("--bind", str(source), str(point))
        self.points.append(point)
        _mount("-o", "remount,ro,bind", str(point))
        return point

    def ext4(self, size_mib: int) -> Path:
        """An ext4 filesystem on a loop device, mounted errors=remount-ro: `fail` makes it turn read-only the
        way a failing disk does (the kernel's emergency read-only), with swapbench's files open on it."""
        image = self.folder / f"disk-{len(self.points)}.img"
        with image.open("wb") as f:
            f.truncate(size_mib << 20)
        _run("mkfs.ext4", "-q", "-F", str(image))
        point = self.folder / f"ext4-{len(self.points)}"
        point.mkdir()
        _mount("-o", "loop,errors=remount-ro", str(image), str(point))
        self.points.append(point)
        self.images[point] = image
        return point

    def fail(self, point: Path) -> None:
        """The disk errs: the kernel turns it read-only under every open file."""
        device = Path(_run("findmnt", "-n", "-o", "SOURCE", str(point)).strip()).name
        Path(f"/sys/fs/ext4/{device}/trigger_fs_error").write_text("1")
        wait_until("the disk to turn read-only", lambda: "emergency_ro" in _options(point) or "ro" in
                   _options(point).split(","), 10)  # fmt: skip

    def repair(self, point: Path) -> None:
        """What a person does after: unmount, fsck, mount again (writable)."""
        _run("umount", str(point))
        subprocess.run(["e2fsck", "-fy", str(self.images[point])], capture_output=True, check=False)
        _mount("-o", "loop,errors=remount-ro", str(self.images[point]), str(point))

    def unmount_all(self) -> None:
        for point in reversed(self.points):
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    m = Mounts(tmp_path)
    yield m
    m.unmount_all()


def fill(folder: Path) -> None:
    """Write until the disk says ENOSPC."""
    with contextlib.suppress(OSError), (folder / "filler").open("wb") as f:
        while True:
            f.write(b"\0" * (1 << 20))
            f.flush()
