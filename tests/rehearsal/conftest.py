"""The rehearsal host for these tests: booted once per session, checked for the systemd hazard before and after.

Every test here runs swapbench inside it as the operator, against the real unit, the real sudo rules and the
real engine, and asserts production as the user would see it afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rehearsal.host import OPERATOR, OPERATOR_UID, SSH_PORT, RehearsalHost, cgroups

from swapbench.demo.rig import Rig
from swapbench.host.window.journal import active_journal_path

CANDIDATE_PORT = 11437


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.rehearsal)


def _same_cgroups(before: tuple[str, str], when: str) -> None:
    after = cgroups()
    if after != before:
        pytest.fail(
            f"HAZARD {when}: the cgroup of PID 1 or of the test process changed — a systemd manager may have "
            f"moved this machine's processes (see shared/notes/real-managers.md).\nbefore: {before}\nafter: {after}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def host(rig: Rig) -> Iterator[RehearsalHost]:
    before = cgroups()
    box = RehearsalHost(rig=rig.root)
    box.up()
    _same_cgroups(before, "after booting the rehearsal host")
    yield box
    box.down()
    _same_cgroups(before, "after removing the rehearsal host")


@pytest.fixture(autouse=True)
def _repaired(host: RehearsalHost) -> Iterator[None]:
    """Each test starts from a healthy twin; a failed one does not leave the next a broken box."""
    yield
    host.repair()


@dataclass(frozen=True)
class Production:
    """What production looked like before the test: the unit's NRestarts and main PID, Chatterbox's PID."""

    restarts: str
    main_pid: str
    chatterbox_pid: str


def snapshot(host: RehearsalHost) -> Production:
    pid_file = host.her_os / "services" / "chatterbox" / "chatterbox.pid"
    return Production(host.unit_property("NRestarts"), host.unit_property("MainPID"), pid_file.read_text().strip())


@pytest.fixture
def before(host: RehearsalHost) -> Production:
    return snapshot(host)


def wait_window_closed(host: RehearsalHost, timeout_s: float = 180.0) -> None:
    """Until no swapbench owns the window and the journal is closed (a watchdog's rollback, after SIGKILL)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = host.swapbench("status", str(host.plan)).stdout
        if not active_journal_path(host.results).exists() and "RUNNING" not in status:
            return
        time.sleep(0.5)
    pytest.fail(f"the window did not close in {timeout_s:.0f} s: {host.swapbench('status', str(host.plan)).stdout}")


def run_folders(host: RehearsalHost) -> set[Path]:
    """The run folders in the twin's output folder (its lock and journal files come and go with windows)."""
    return {p for p in host.results.iterdir() if p.is_dir()}


def assert_restored(host: RehearsalHost, before: Production) -> None:
    """The unit active with NRestarts unchanged, no swapbench container left (`docker ps -a` inside, where the
    twin has an engine), the candidate port refused, the journal closed, every production service healthy."""
    assert host.unit_property("ActiveState") == "active"
    assert host.unit_property("NRestarts") == before.restarts, "systemd restarted the unit on its own"
    if host.link is None:
        assert host.labelled_containers() == []
    assert host.port_refused(CANDIDATE_PORT)
    assert not active_journal_path(host.results).exists(), "journal left open"
    assert host.unhealthy() == []


def variant(host: RehearsalHost, name: str, changes: dict[str, str]) -> Path:
    """The twin's plan with exact text changes (each `old` must occur exactly once), written into the operator's
    home. Returns its path (the same inside and out)."""
    text = host.plan.read_text()
    for old, new in changes.items():
        assert text.count(old) == 1, f"{old!r} in the twin's plan"
        text = text.replace(old, new)
    path = host.home / f"{name}.toml"
    path.write_text(text)
    os.chown(path, OPERATOR_UID, OPERATOR_UID)
    return path


# Few samples and short answers: the window and every step of it, in seconds rather than minutes. The settles
# (health 200 this long before ready) are 1 s instead of the user's 2 and 3: each window waits 3 s for them, not
# 8; what settling does is tests/unit/test_waiting.py's to prove, not these.
QUICK = {
    "samples = 20 ": "samples = 2 ",
    "extended_samples = 100 ": "extended_samples = 2 ",
    "warmup = 3": "warmup = 1",
    "max_tokens = 128": "max_tokens = 16",
    "settle_s = 2\n": "settle_s = 1\n",
    '/health" }\nready_timeout_s = 180\nsettle_s = 3\n': '/health" }\nready_timeout_s = 180\nsettle_s = 1\n',
    "true }\nready_timeout_s = 180\nsettle_s = 3\n": "true }\nready_timeout_s = 180\nsettle_s = 1\n",
}


@pytest.fixture(scope="session")
def quick(host: RehearsalHost) -> Path:
    return variant(host, "quick", QUICK)


BOX = f"{OPERATOR}@127.0.0.1"


@dataclass(frozen=True)
class Laptop:
    """The laptop's side of the link: its key, its known_hosts and where fetched runs go."""

    folder: Path
    key: Path
    known_hosts: Path

    def options(self, known_hosts: Path | None = None) -> list[str]:
        found = [f"Port={SSH_PORT}", f"IdentityFile={self.key}", "IdentitiesOnly=yes",
                 f"UserKnownHostsFile={known_hosts or self.known_hosts}", "StrictHostKeyChecking=yes",
                 "GlobalKnownHostsFile=/dev/null"]  # fmt: skip
        return [arg for option in found for arg in ("-o", option)]

    def remote(
        self, command: str, *args: str, env: dict[str, str] | None = None, known: Path | None = None
    ) -> list[str]:
        """`swapbench remote COMMAND BOX ARGS`, the SWAPBENCH_* hooks passed by ssh's SetEnv (sshd accepts them)."""
        argv = [sys.executable, "-m", "swapbench", "remote", command, BOX, *args, *self.options(known)]
        if env:
            argv += ["-o", "SetEnv=" + " ".join(f'"{k}={v}"' for k, v in env.items())]  # one quoted word each
        return argv


@pytest.fixture(scope="module")
def laptop(host: RehearsalHost, tmp_path_factory: pytest.TempPathFactory) -> Laptop:
    folder = tmp_path_factory.mktemp("laptop")
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    host.authorize((folder / "id_ed25519.pub").read_text())
    known = folder / "known_hosts"
    known.write_text(host.known_hosts_line())
    return Laptop(folder, key, known)
