"""`swapbench remote` against a real OpenSSH server on loopback, with the real `ssh` and `scp`, a known_hosts of
the test's own and key login only: the plan runs remotely end to end, the client dies mid-window, an unknown
host key and another swapbench version are refused in ssh's and our own words."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from swapbench import __version__
from swapbench.demo.sandbox import CANDIDATE_LABEL, Sandbox
from swapbench.host.llama_server import free_port
from tests.helpers import Barrier, assert_production_up, started, wait_until

pytestmark = pytest.mark.rig
SWAPBENCH = str(Path(sys.executable).with_name("swapbench"))  # the box's own swapbench (this venv's)


@dataclass(frozen=True)
class SshServer:
    port: int
    folder: Path
    key: Path
    known_hosts: Path

    def options(self, known_hosts: Path | None = None) -> list[str]:
        """`-o` options for `swapbench remote`: the port, the key, our known_hosts, strict checking."""
        found = [f"Port={self.port}", f"IdentityFile={self.key}", "IdentitiesOnly=yes",
                 f"UserKnownHostsFile={known_hosts or self.known_hosts}", "StrictHostKeyChecking=yes",
                 "GlobalKnownHostsFile=/dev/null"]  # fmt: skip
        return [arg for option in found for arg in ("-o", option)]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """sshd on 127.0.0.1:PORT with a host key and an authorized key of its own; key login for root only (the
    sandbox's production runs as root), no password, and SWAPBENCH_* accepted from the client (the fault hook)."""
    folder = tmp_path_factory.mktemp("sshd")
    port = free_port()
    _keygen(folder / "host_key")
    _keygen(folder / "operator_key")
    (folder / "authorized_keys").write_text((folder / "operator_key.pub").read_text())
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {folder / 'host_key'}", f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", "StrictModes no",  # the key sits in a temp folder
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "AllowUsers root",
        "PermitRootLogin prohibit-password", "AcceptEnv SWAPBENCH_*", "Subsystem sftp /usr/lib/openssh/sftp-server",
        "ClientAliveInterval 1", "ClientAliveCountMax 3",
    ]) + "\n")  # fmt: skip
    Path("/run/sshd").mkdir(exist_ok=True)
    subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(config)], check=True)
    subprocess.run(["/usr/sbin/sshd", "-f", str(config), "-E", str(folder / "sshd.log")], check=True)
    host_key = (folder / "host_key.pub").read_text().split()
    known = folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    yield SshServer(port, folder, folder / "operator_key", known)
    pid = int((folder / "sshd.pid").read_text())
    os.kill(pid, signal.SIGTERM)  # the listener; a session's own sshd ends with its client
    wait_until("sshd to stop", lambda: not psutil.pid_exists(pid), 10)


def remote(sshd: SshServer, command: str, *args: str, into: Path | None = None, env: str = "") -> list[str]:
    argv = [sys.executable, "-m", "swapbench", "remote", command, "127.0.0.1", *args, *sshd.options(),
            "--swapbench", SWAPBENCH]  # fmt: skip
    if registry := os.environ.get("SWAPBENCH_REGISTRY"):  # a test run kept apart from other windows on this machine
        env = f'{env} "SWAPBENCH_REGISTRY={registry}"'.strip()
    if env:
        argv += ["-o", f"SetEnv={env}"]
    return argv + (["--into", str(into)] if into is not None else [])


def test_the_plan_runs_remotely_end_to_end(box: Sandbox, sshd: SshServer, tmp_path: Path) -> None:
    """From the laptop's side: the plan shipped, the window run on the box, every verify step passing there,
    the run folder and its report copied back, saying no figure crossed the network."""
    into = tmp_path / "laptop"
    t0 = time.monotonic()
    done = subprocess.run(remote(sshd, "run", str(box.plan_path), into=into), capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    print(f"[figure] remote run, whole: {time.monotonic() - t0:.1f} s; {done.stdout.splitlines()[-4:]}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    local = next((into / "127.0.0.1").iterdir())
    swap = json.loads((local / "swap.json").read_text())
    assert swap["status"] == "complete"
    assert {v["status"] for v in swap["verify"]} <= {"pass", "skip"} and len(swap["verify"]) >= 10
    assert f"fetched 127.0.0.1:{box.folder / 'results' / local.name} to {local} in " in done.stdout
    assert f"report: {local / 'report.md'} (and report.html beside it)" in done.stdout
    assert "Every figure was measured on 127.0.0.1 by its own client over loopback" in (local / "report.md").read_text()
    assert (local / f"results-{CANDIDATE_LABEL}.json").exists() and (local / "events.jsonl").exists()
    assert "from `swapbench remote` to the window started on the box: " in done.stdout
    assert_production_up(box)


def test_the_ssh_client_killed_mid_window(box: Sandbox, sshd: SshServer, tmp_path: Path) -> None:
    """SIGKILL of the laptop's ssh with the candidate up: the box's terminal detaches, the window completes
    there; `remote attach` shows it and fetches everything."""
    barrier = Barrier(tmp_path / "barrier", f"bench {CANDIDATE_LABEL}")
    env = " ".join(f'"{k}={v}"' for k, v in barrier.env.items())  # each VAR=value one quoted word
    into = tmp_path / "laptop"
    proc = subprocess.Popen(remote(sshd, "run", str(box.plan_path), into=into, env=env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    started.append(proc)
    barrier.reached(proc)
    client = next(p for p in psutil.Process(proc.pid).children() if p.name() == "ssh")
    client.kill()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 11, out + err  # the link is gone: remote says so and how to get back
    run_dir = json.loads((box.folder / "results" / "swapbench.lock").read_text())["run_id"]
    assert "the link to 127.0.0.1 was lost; the window goes on there: `swapbench remote 127.0.0.1 attach " in out
    barrier.go()
    shown = subprocess.run(remote(sshd, "attach", str(box.folder / "results" / run_dir), into=into),
                           capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr
    local = into / "127.0.0.1" / run_dir
    assert json.loads((local / "swap.json").read_text())["status"] == "complete"
    assert_production_up(box)


def test_an_unknown_host_key_is_refused(box: Sandbox, sshd: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    argv = remote(sshd, "check", str(box.plan_path))
    argv[argv.index(f"UserKnownHostsFile={sshd.known_hosts}")] = f"UserKnownHostsFile={empty}"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 11, done.stdout + done.stderr
    assert (f"No ED25519 host key is known for [127.0.0.1]:{sshd.port} and you have requested strict checking."
            in done.stderr and "Host key verification failed." in done.stderr)  # fmt: skip
    assert "swapbench never turns host-key checking off" in done.stderr


def test_another_version_on_the_box_is_refused_with_the_install_command(
    box: Sandbox, sshd: SshServer, tmp_path: Path
) -> None:
    other = tmp_path / "old-swapbench"
    other.write_text("#!/bin/sh\necho 'swapbench 0.0.1'\n")
    other.chmod(0o755)
    before = set((box.folder / "results").iterdir())
    argv = remote(sshd, "run", str(box.plan_path))
    argv[argv.index(SWAPBENCH)] = str(other)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 11, done.stdout + done.stderr
    assert f"127.0.0.1 runs swapbench 0.0.1, this laptop swapbench {__version__}: refused, nothing was touched" in (
        done.stderr
    )
    assert f"scp dist/swapbench-{__version__}-py3-none-any.whl 127.0.0.1:" in done.stderr
    assert set((box.folder / "results").iterdir()) == before  # no window was started
    assert_production_up(box)
