"""systemd and docker cannot run on this machine: the exact argv swapbench would run is checked instead (they run
for real on the rehearsal host). supervisord's argv is checked here too: it runs for real in test_supervisord."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from swapbench.host.candidate.ops import docker_run_argv, teardown_argv
from swapbench.host.services import privileged_argv, start_argv, stop_argv
from swapbench.host.ssh import Box
from swapbench.host.window.supervisor import UnitLimit, unit_argv
from swapbench.host.window.watchdog import systemd_backstop_argv, systemd_disarm_argv
from swapbench.plan.models import DockerLaunch, DockerService, SupervisordService, SystemdService, Target


def resolve(p: Path) -> Path:
    return Path(str(p).replace("~", "/home/panda"))


def test_systemd_service_argv() -> None:
    svc = SystemdService(name="e2b", manager="systemd", unit="panda-llamacpp")
    # sudoers matches argv exactly: always the full unit name (the rehearsal host's rule names .service)
    assert stop_argv(svc) == ["sudo", "-n", "systemctl", "stop", "panda-llamacpp.service"]
    assert start_argv(svc) == ["sudo", "-n", "systemctl", "start", "panda-llamacpp.service"]
    assert privileged_argv([svc]) == [
        ["systemctl", "stop", "panda-llamacpp.service"], ["systemctl", "start", "panda-llamacpp.service"]
    ]  # fmt: skip
    no_sudo = SystemdService(name="e2b", manager="systemd", unit="u.socket", sudo=False)
    assert stop_argv(no_sudo) == ["systemctl", "stop", "u.socket"] and privileged_argv([no_sudo]) == []


def test_docker_service_argv() -> None:
    svc = DockerService(name="tts", manager="docker", container="chatterbox")
    # the 10 s grace said out loud: podman's Docker API would SIGKILL at once
    assert (stop_argv(svc), start_argv(svc)) == (
        ["docker", "stop", "-t", "10", "chatterbox"], ["docker", "start", "chatterbox"]
    )  # fmt: skip
    quick = DockerService(name="tts", manager="docker", container="chatterbox", stop_timeout_s=4)
    assert stop_argv(quick) == ["docker", "stop", "-t", "2", "chatterbox"]


def test_supervisord_service_argv() -> None:
    svc = SupervisordService(name="tts", manager="supervisord", program="chatterbox", config=Path("~/sv.conf"))
    assert stop_argv(svc, resolve) == ["supervisorctl", "-c", "/home/panda/sv.conf", "stop", "chatterbox"]
    assert start_argv(svc, resolve) == ["supervisorctl", "-c", "/home/panda/sv.conf", "start", "chatterbox"]
    assert privileged_argv([svc], resolve) == []
    root = SupervisordService(name="tts", manager="supervisord", program="robot:tts", sudo=True,
                              supervisorctl="/usr/bin/supervisorctl")  # fmt: skip
    assert stop_argv(root) == ["sudo", "-n", "/usr/bin/supervisorctl", "stop", "robot:tts"]
    # the socket that refuses a stop refuses a status: sudo's rule must allow every verb swapbench runs
    assert privileged_argv([root]) == [["/usr/bin/supervisorctl", verb, "robot:tts"]
                                       for verb in ("stop", "start", "status", "pid")]  # fmt: skip


def test_a_supervisord_program_cannot_be_an_option() -> None:
    with pytest.raises(ValidationError, match="program"):
        SupervisordService(name="tts", manager="supervisord", program="-c/etc/evil.conf")


def test_docker_candidate_argv() -> None:
    target = Target.model_validate({"label": "e4b", "launch": {
        "kind": "docker", "name": "panda-llamacpp-e4b", "image": "ghcr.io/ggml-org/llama.cpp:server-cuda",
        "port": 11437, "models_dir": "~/models", "model": "~/models/e4b/m.gguf", "mmproj": "~/models/e4b/p.gguf",
        "flags": ["-ngl", "99"], "gpus": "all"}})  # fmt: skip
    launch = target.launch
    assert isinstance(launch, DockerLaunch)
    assert docker_run_argv("e4b", launch, "RUN1", resolve) == [
        "docker", "run", "-d", "--name", "panda-llamacpp-e4b", "--label", "swapbench.run=RUN1",
        "--label", "swapbench.candidate=e4b", "--restart", "no", "--gpus", "all", "-p", "127.0.0.1:11437:8080",
        "-v", "/home/panda/models:/models:ro", "ghcr.io/ggml-org/llama.cpp:server-cuda",
        "-m", "/models/e4b/m.gguf", "--mmproj", "/models/e4b/p.gguf", "--host", "0.0.0.0", "--port", "8080",
        "--jinja", "-ngl", "99",
    ]  # fmt: skip
    assert teardown_argv(launch) == ["docker", "rm", "-f", "panda-llamacpp-e4b"]
    cpu = launch.model_copy(update={"gpus": None})  # a CPU host
    assert "--gpus" not in docker_run_argv("e4b", cpu, "RUN1", resolve)


def test_systemd_backstop_argv() -> None:
    argv = systemd_backstop_argv("RUN1", Path("/p/plan.toml"), 1620.4)
    assert argv[:4] == ["systemd-run", "--unit=swapbench-rollback-RUN1", "--on-active=1620s",
                        "--description=swapbench rollback backstop"]  # fmt: skip
    assert argv[4:] == [
        sys.executable,
        "-m",
        "swapbench",
        "rollback",
        "/p/plan.toml",
        "--if-unfinished",
        "--take-over-hung",
    ]
    assert systemd_disarm_argv("RUN1") == ["systemctl", "stop", "swapbench-rollback-RUN1.timer"]
    user = systemd_backstop_argv("RUN1", Path("/p/plan.toml"), 60, ["--user"])
    assert user[:3] == ["systemd-run", "--user", "--unit=swapbench-rollback-RUN1"]
    assert systemd_disarm_argv("RUN1", ["--user"]) == ["systemctl", "--user", "stop", "swapbench-rollback-RUN1.timer"]


def test_the_gguf_type_sizes_are_ggmls() -> None:
    """Phase 0 measures a model's file against its tensors with ggml's own block sizes (the gguf package's)."""
    from gguf.constants import GGML_QUANT_SIZES

    from swapbench.host.candidate.gguf import TYPE_SIZES

    assert {int(t): size for t, size in GGML_QUANT_SIZES.items()} == TYPE_SIZES


def ssh_effective(box: Box) -> dict[str, str]:
    """What the real OpenSSH client would use for `box` (`ssh -G` resolves its options and connects nowhere)."""
    argv = box.ssh_argv(["true"])
    done = subprocess.run([argv[0], "-G", *argv[1:]], capture_output=True, text=True, check=True, timeout=30)
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def test_ssh_defaults_give_way_to_the_operators_own_options() -> None:
    """BatchMode always; keepalive and connect timeout by default; an operator's `-o` for a key replaces ours
    (ssh keeps the first value it reads, so theirs must come first, and ours must then be absent)."""
    ours = ssh_effective(Box("panda.example"))
    assert (ours["batchmode"], ours["connecttimeout"], ours["serveraliveinterval"], ours["serveralivecountmax"]) == (
        "yes", "15", "5", "3")  # fmt: skip
    theirs = ssh_effective(Box("panda.example", ("ConnectTimeout=3", "serveraliveinterval = 30", "BatchMode=no")))
    assert (theirs["batchmode"], theirs["connecttimeout"], theirs["serveraliveinterval"]) == ("yes", "3", "30")
    assert theirs["stricthostkeychecking"] == ours["stricthostkeychecking"]  # never touched by swapbench


def test_the_window_as_a_transient_unit(tmp_path: Path) -> None:
    """The job under systemd: its own service, the last limit, KillMode=process (the watchdog and restored
    services outlive a stop of it), output to window.log, and the handoff folder as its last argument."""
    run_dir = tmp_path / "20261207-120000-x-ab12"
    argv = unit_argv(["/py", "-m", "swapbench", "run", "p.toml"], run_dir, UnitLimit(1540.2), ["--user"],
                     tmp_path / "handoff")  # fmt: skip
    log = run_dir / "window.log"
    assert argv == [
        "systemd-run", "--user", "--unit=swapbench-window-20261207-120000-x-ab12.service",
        "--description=swapbench window 20261207-120000-x-ab12", "--quiet", "--collect", "--service-type=exec",
        f"--working-directory={Path.cwd()}", "--property=RuntimeMaxSec=1541", "--property=KillMode=process",
        "--property=TimeoutStopSec=10", "--property=SendSIGHUP=no", "--property=StandardInput=null",
        f"--property=StandardOutput=append:{log}", f"--property=StandardError=append:{log}",
        "--", "/py", "-m", "swapbench", "run", "p.toml", "--handoff", str(tmp_path / "handoff"),
    ]  # fmt: skip


def test_the_handoff_gives_a_unit_s_job_the_environment_and_the_events_pipe(tmp_path: Path) -> None:
    """What a transient unit's job takes from its handoff folder, in a real process with a real FIFO: the
    caller's environment in place of the unit's, a write end of the terminal's FIFO, and the folder gone."""
    folder = tmp_path / "handoff"
    folder.mkdir(mode=0o700)
    os.mkfifo(folder / "events", 0o600)
    reader = os.open(folder / "events", os.O_RDONLY | os.O_NONBLOCK)
    (folder / "environ.json").write_text(json.dumps({"PATH": os.environ["PATH"], "SWAPBENCH_X": "a b\n'c'"}))
    job = ("import os, sys; from pathlib import Path; from swapbench.host.window.supervisor import take_handoff; "
           "fd = take_handoff(Path(sys.argv[1])); os.write(fd, repr(sorted(os.environ.items())).encode())")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", job, str(folder)], env={"UNIT_ONLY": "1", "PATH": "/usr/bin"},
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    told = os.read(reader, 65536).decode()
    os.close(reader)
    assert told == repr(sorted({"PATH": os.environ["PATH"], "SWAPBENCH_X": "a b\n'c'"}.items()))
    assert not folder.exists()
