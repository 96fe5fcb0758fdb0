"""A production service under a real supervisord (PyPI's `supervisor`, a daemon of the test's own on a unix socket
in a temp folder): the sandbox's TTS is its program. Phase 0 asks supervisord about it, a window stops and
restores it with `supervisorctl`, and the fault matrix's exception, SIGTERM and SIGKILL leave it running."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from swapbench.app import swap
from swapbench.core.steps import Status
from swapbench.demo.rig import Rig
from swapbench.demo.sandbox import SANDBOX, Sandbox, build_sandbox
from swapbench.host.processes.proc import run_argv
from swapbench.host.window.journal import read_journal
from tests.helpers import assert_production_up, latest_run_dir, loaded_of, swapbench, wait_until
from tests.integration.test_swap import expected_exit, fired_at, wait_for_rollback

pytestmark = pytest.mark.rig
SUPERVISORCTL = Path(sys.executable).parent / "supervisorctl"


@dataclass
class Supervised:
    box: Sandbox
    conf: Path
    plan: Path

    def ctl(self, *words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SUPERVISORCTL), "-c", str(self.conf), *words], capture_output=True, text=True,
                              timeout=30, check=False)  # fmt: skip

    def tts_pid(self) -> int:
        """The TTS's PID as supervisord says it (0: not running)."""
        return int(self.ctl("pid", "tts").stdout.strip())

    def variant(self, folder: Path, old: str, new: str) -> Path:
        text = self.plan.read_text()
        assert old in text, old
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "plan.toml").write_text(text.replace(old, new))
        return folder / "plan.toml"


def supervisord_conf(folder: Path, port: int) -> str:
    """A homelab's supervisord.conf, in miniature: its own socket, the TTS as a program that restarts on a crash."""
    tts = " ".join([*SANDBOX, "tts", "--port", str(port), "--load-s", "0.5"])
    return f"""[unix_http_server]
file={folder}/supervisor.sock
[supervisord]
pidfile={folder}/supervisord.pid
logfile={folder}/supervisord.log
childlogdir={folder}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{folder}/supervisor.sock
[program:tts]
command={tts}
startsecs=1
autorestart=unexpected
stopasgroup=true
killasgroup=true
"""


@pytest.fixture(scope="module")
def sv(rig: Rig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervised]:
    """The sandbox, its TTS moved under supervisord: the plan's tts service becomes `manager = "supervisord"`."""
    box = build_sandbox(tmp_path_factory.mktemp("sandbox"), rig, samples=1, extended=2)
    folder = tmp_path_factory.mktemp("supervisord")
    conf = folder / "supervisord.conf"
    conf.write_text(supervisord_conf(folder, box.ports["tts"]))
    run_argv([*SANDBOX, "stop", "--dir", str(box.folder), "tts"], 30.0)
    started = run_argv([str(SUPERVISORCTL.parent / "supervisord"), "-c", str(conf)], 30.0)
    assert started.ok, started.describe()
    text, count = re.subn(
        r'name = "tts"\nmanager = "command"\nstart = .*\nstop = .*\n',
        f'name = "tts"\nmanager = "supervisord"\nprogram = "tts"\nconfig = "{conf}"\n'
        f'supervisorctl = "{SUPERVISORCTL}"\n',
        box.plan_path.read_text(),
    )
    assert count == 1
    plan = folder / "plan.toml"
    plan.write_text(text)
    supervised = Supervised(box, conf, plan)
    wait_until("the TTS under supervisord", lambda: "RUNNING" in supervised.ctl("status", "tts").stdout, 30.0)
    assert_production_up(box, plan)
    yield supervised
    supervised.ctl("shutdown")
    wait_until("supervisord to end", lambda: not (folder / "supervisord.pid").exists(), 30.0)
    box.teardown()


def test_phase_0_asks_supervisord_for_the_program(sv: Supervised) -> None:
    found = {o.name: o for o in swap.check(loaded_of(sv.box, sv.plan))}
    assert not [o for o in found.values() if o.status is Status.FAIL], found
    known = found["services[1] (tts).program"]
    assert known.detail.startswith(f"supervisord knows tts: RUNNING pid {sv.tts_pid()}, uptime "), known.detail
    assert found["services[1] (tts).supervisorctl"].detail == f"{SUPERVISORCTL}: executable"


def test_an_unknown_program_is_refused_and_nothing_is_touched(sv: Supervised, tmp_path: Path) -> None:
    plan = sv.variant(tmp_path, 'program = "tts"', 'program = "chatterbox"')
    pid = sv.tts_pid()
    run = swapbench("run", str(plan))
    assert run.returncode == 6, run.stdout[-2000:] + run.stderr
    assert "services[1] (tts).program" in run.stderr
    assert "supervisord has no program 'chatterbox' (chatterbox: ERROR (no such process)); fix " in run.stderr
    assert "nothing was touched" in run.stderr
    assert sv.tts_pid() == pid


def test_an_unreachable_supervisord_is_refused(sv: Supervised, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.conf"
    other.write_text(sv.conf.read_text().replace(str(sv.conf.parent / "supervisor.sock"), str(tmp_path / "no.sock")))
    plan = sv.variant(tmp_path, f'config = "{sv.conf}"', f'config = "{other}"')
    run = swapbench("run", str(plan))
    assert run.returncode == 6, run.stdout[-2000:] + run.stderr
    assert f"supervisorctl cannot reach supervisord (unix://{tmp_path}/no.sock no such file); start " in run.stderr


def test_a_window_stops_and_restores_it_with_supervisorctl(sv: Supervised) -> None:
    pid = sv.tts_pid()
    run = swapbench("run", str(sv.plan))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    folder = latest_run_dir(sv.box.folder / "results")
    assert json.loads((folder / "swap.json").read_text())["status"] == "complete"
    done = [(r["step"], r["target"]) for r in read_journal(folder / "journal.jsonl").records if r["type"] == "done"]
    assert ("stop", "tts") in done and ("restore", "tts") in done, done
    assert sv.tts_pid() not in (0, pid)  # supervisord ran a new one: stopped and started, not left alone
    assert "RUNNING" in sv.ctl("status", "tts").stdout
    assert_production_up(sv.box, sv.plan)


@pytest.mark.parametrize("fault", ["exception", "sigterm", "sigkill"])
@pytest.mark.parametrize("boundary", ["bench", "restore llama-prod"])
def test_faults_leave_it_running(sv: Supervised, tmp_path: Path, boundary: str, fault: str) -> None:
    """At the bench (the TTS stopped, the candidate up) and while restoring (llama-prod first, the TTS still
    stopped): restore and verify start it again through supervisorctl; after SIGKILL, the watchdog does."""
    log = tmp_path / "faults.log"
    env = {"SWAPBENCH_TESTING": "1", "SWAPBENCH_FAULT": f"{boundary}:{fault}", "SWAPBENCH_FAULT_LOG": str(log)}
    run = swapbench("run", str(sv.plan), env=env)
    assert run.returncode == expected_exit(boundary, fault), run.stdout[-2000:] + run.stderr
    fired_at(log, boundary, fault)
    if fault == "sigkill":
        wait_for_rollback(sv.box)
        assert "the watchdog rolled back at " in run.stderr
    else:
        assert "Traceback" not in run.stdout + run.stderr
    assert "RUNNING" in sv.ctl("status", "tts").stdout
    assert_production_up(sv.box, sv.plan)
