"""The user's own plan, end to end on the rehearsal host: a real systemd unit stopped and started through real
sudo rules, the candidate in a real container, every verify step, the docs — and every way to fail."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from rehearsal.host import (
    LLAMA_IMAGE,
    NATIVE_CHANGES,
    OPERATOR,
    TWIN_CHANGES,
    RehearsalError,
    RehearsalHost,
    twin_plan_text,
)

from swapbench.host.processes.proc import container_pid
from swapbench.host.window.journal import active_journal_path, read_journal
from swapbench.plan.load import load_plan
from swapbench.plan.models import DockerLaunch, NativeLaunch
from tests.integration.test_swap import assert_recorded, expected_exit, fired_at, swap_records
from tests.rehearsal.conftest import (
    CANDIDATE_PORT,
    QUICK,
    Production,
    assert_restored,
    snapshot,
    variant,
    wait_window_closed,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "panda-gemma4-e4b.toml"
TESTING = {"SWAPBENCH_TESTING": "1"}


def latest_swap(host: RehearsalHost) -> dict[str, object]:
    path = max(host.results.glob("*/swap.json"), key=os.path.getmtime)
    data: dict[str, object] = json.loads(path.read_text())
    return data


def test_the_twin_plan_is_the_users_plan_with_the_listed_changes_only(tmp_path: Path) -> None:
    text = twin_plan_text()
    undone = text.split("\n", len(TWIN_CHANGES) + 1)[-1]  # without the header that lists the changes
    for change in reversed(TWIN_CHANGES):
        undone = undone.replace(change.new, change.old, 1) if change.new else undone
    example = EXAMPLE.read_text()
    removed = [c.old for c in TWIN_CHANGES if not c.new]
    for old in removed:
        example = example.replace(old, "")
    assert undone == example
    (tmp_path / "twin.toml").write_text(text)
    plan = load_plan(tmp_path / "twin.toml").plan  # a valid plan, with the user's services, ports and paths
    assert [s.name for s in plan.services] == ["panda-llamacpp", "chatterbox", "panda-nav", "phone"]
    launch = plan.candidates[0].launch
    assert isinstance(launch, DockerLaunch) and launch.gpus is None


def test_the_second_twins_plan_differs_only_by_its_native_candidate(tmp_path: Path) -> None:
    """The fleet's second twin (no container engine): the first twin's plan with NATIVE_CHANGES alone."""
    text = twin_plan_text(native=True)
    body = text.split("\n", len(TWIN_CHANGES) + len(NATIVE_CHANGES) + 1)[-1]
    for change in reversed(NATIVE_CHANGES):
        body = body.replace(change.new, change.old, 1) if change.new else body
    first = twin_plan_text().split("\n", len(TWIN_CHANGES) + 1)[-1]
    for change in NATIVE_CHANGES:
        if not change.new:
            first = first.replace(change.old, "", 1)
    assert body == first
    (tmp_path / "twin-b.toml").write_text(text)
    launch = load_plan(tmp_path / "twin-b.toml").plan.candidates[0].launch
    assert isinstance(launch, NativeLaunch) and str(launch.binary) == "/usr/local/bin/llama-server"
    assert (launch.host, launch.port) == ("127.0.0.1", 11437)


def test_a_state_folder_with_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(RehearsalError, match="has files that are not the rehearsal host's"):
        RehearsalHost(state=tmp_path).build()
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_whole_window_on_real_managers(host: RehearsalHost, before: Production) -> None:
    plan = variant(host, "whole", {k: v for k, v in QUICK.items() if "max_tokens" not in k})
    run = host.swapbench("run", str(plan))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    swap = latest_swap(host)
    assert swap["status"] == "complete"
    verify = swap["verify"]
    assert isinstance(verify, list)
    statuses = {v["name"]: v["status"] for v in verify}
    assert len(statuses) == 13 and statuses.pop("VRAM of GPU 0") == "skip", verify  # no GPU: skipped, as it says
    assert set(statuses.values()) == {"pass"}, verify
    run_id = str(swap["run_id"])
    assert run_id in (host.her_os / "docs" / "RESEARCH-GEMMA4-E4B-QUANTIZATIONS.md").read_text()
    assert run_id in (host.her_os / "docs" / "RESOURCE-REGISTRY.md").read_text()
    # the window: the models, production's stop and start, and under a second of swapbench's own between steps
    down = swap["downtime"]
    assert isinstance(down, dict) and down["own_s"] <= 1.0 and down["stop_s"] > 0, down
    prepare = swap["prepare"]
    assert isinstance(prepare, list) and len(prepare) == 1, prepare
    assert "(build 11434, " in prepare[0]["version"]  # `--version` of the image's llama-server, in a container
    assert prepare[0]["first_read"] is not None and prepare[0]["reread"] is not None
    # the operator neither owns nor may write the model files (root's): the kernel will not say what it caches
    assert prepare[0]["reread"]["cached_share"] is None
    # the unit was stopped and started for real, through sudo: a new main process, not a restart by systemd
    assert host.unit_property("MainPID") != before.main_pid
    assert_restored(host, before)


BOUNDARIES = ["baseline bench", "prepare", "stop chatterbox", "stop panda-llamacpp", "drain", "launch", "ready",
              "smoke", "bench", "teardown", "restore panda-llamacpp", "restore chatterbox"]  # fmt: skip
FAULTS = ["exception", "sigterm", "sigkill"]
MATRIX = [(b, f) for b in BOUNDARIES for f in FAULTS]


@pytest.mark.parametrize(("boundary", "fault"), MATRIX, ids=[f"{b}-{f}".replace(" ", "_") for b, f in MATRIX])
def test_fault_matrix_on_real_managers(
    host: RehearsalHost, quick: Path, before: Production, boundary: str, fault: str
) -> None:
    log = host.home / "fault.log"  # the same path inside the host, in the operator's home: theirs to write
    log.unlink(missing_ok=True)
    records = swap_records(host.results)
    env = {**TESTING, "SWAPBENCH_FAULT": f"{boundary}:{fault}", "SWAPBENCH_FAULT_LOG": str(log)}
    run = host.swapbench("run", str(quick), env=env)
    # SIGKILL kills the window's job; the attached terminal exits 7 once the watchdog restored production
    assert run.returncode == expected_exit(boundary, fault), run.stdout[-3000:] + run.stderr
    at = fired_at(log, boundary, fault)
    log.unlink()
    written = swap_records(host.results) - records
    if fault == "sigkill":
        assert written == set()  # killed where the fault fired: the run wrote no record of its own
        wait_window_closed(host)  # the watchdog's rollback
    else:
        assert "Traceback" not in run.stdout + run.stderr
        assert_recorded(written, run.returncode, at, fault, f"http://127.0.0.1:{CANDIDATE_PORT}")
    if run.returncode == 7:
        assert "production was restored and verified" in run.stderr
    assert_restored(host, before)


def test_candidate_container_exits_while_loading(host: RehearsalHost, quick: Path, before: Production) -> None:
    """A wrong mmproj (another model's projector): a valid GGUF, so Phase 0 passes; llama-server exits at load."""
    models = host.home / "models" / "gemma-4-E4B"
    wrong = models / "wrong-mmproj.gguf"
    shutil.copyfile(host.home / "models" / "gemma-4-E2B" / "mmproj-F16.gguf", wrong)
    try:
        plan = variant(host, "wrong-mmproj", {**QUICK, 'mmproj = "~/models/gemma-4-E4B/mmproj-F16.gguf"':
                                              'mmproj = "~/models/gemma-4-E4B/wrong-mmproj.gguf"'})  # fmt: skip
        run = host.swapbench("run", str(plan))
    finally:
        wrong.unlink()
    assert run.returncode == 7, run.stdout[-3000:] + run.stderr
    out = run.stdout + run.stderr
    assert "died while loading" in out and "container panda-llamacpp-e4b is not running" in out
    assert "failed to load multimodal model" in out  # the container's own last log lines
    assert_restored(host, before)


def test_unit_fails_to_start_once(host: RehearsalHost, quick: Path, before: Production) -> None:
    """The restore's `sudo -n systemctl start` fails once (ExecStartPre refuses). The unit has Restart=on-failure,
    so systemd retries it too (NRestarts + 1): swapbench's own retry joins that start instead of racing it, and
    production ends with one llama-server, active and verified."""
    (host.home / ".rehearsal" / "panda-llamacpp.fail-next-start").touch()
    run = host.swapbench("run", str(quick))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    run_dir = max(host.results.glob("*/swap.json"), key=os.path.getmtime).parent
    journal = read_journal(run_dir / "journal.jsonl")
    assert any(r["type"] == "failed" and r["target"] == "panda-llamacpp" for r in journal.records)
    assert not (host.home / ".rehearsal" / "panda-llamacpp.fail-next-start").exists()
    servers = host.exec(["pgrep", "-c", "-f", "llama-server .*--port 11435"]).stdout.strip()
    assert servers == "1"
    assert_restored(host, replace(before, restarts=str(int(before.restarts) + 1)))


def test_real_time_cap(host: RehearsalHost, before: Production) -> None:
    plan = variant(host, "cap", {**QUICK, "samples = 20 ": "samples = 500 ", "extended_samples = 100 ":
                                 "extended_samples = 500 ", "time_cap_s = 1500": "time_cap_s = 40",
                                 "restore_reserve_s = 300": "restore_reserve_s = 20"})  # fmt: skip
    started = time.monotonic()
    run = host.swapbench("run", str(plan))
    assert run.returncode == 7, run.stdout[-3000:] + run.stderr
    assert "time cap" in run.stdout + run.stderr
    assert time.monotonic() - started < 60
    assert_restored(host, before)


# --- Phase 0 fails for real and touches nothing -----------------------------------------------------------------


def assert_untouched(host: RehearsalHost, before: Production, unit_running: bool = True) -> None:
    after = snapshot(host)
    if unit_running:
        assert (after.restarts, after.main_pid) == (before.restarts, before.main_pid)
    else:  # stopped by the test (an explicit stop also zeroes NRestarts), and swapbench did not start it
        assert (host.unit_property("ActiveState"), after.main_pid) == ("inactive", "0")
    assert after.chatterbox_pid == before.chatterbox_pid
    assert host.labelled_containers() == []
    assert not active_journal_path_exists(host)


def active_journal_path_exists(host: RehearsalHost) -> bool:
    return active_journal_path(host.results).exists()


def test_check_fails_without_the_start_rule(host: RehearsalHost, quick: Path, before: Production) -> None:
    host.root(host.sudoers_script(verbs=("stop",)))
    run = host.swapbench("run", str(quick))
    assert run.returncode == 6, run.stdout[-3000:] + run.stderr
    assert "1 contract(s) failed; nothing was touched" in run.stderr
    assert "- sudo -k -n -l systemctl start panda-llamacpp.service: not allowed without a password" in run.stderr
    assert_untouched(host, before)


def test_check_fails_when_start_needs_a_password(host: RehearsalHost, quick: Path, before: Production) -> None:
    """The operator is in %sudo (everything, with a password) and has NOPASSWD for `stop` only: `sudo -n -l`
    says `start` is allowed (one NOPASSWD entry lets the listing through), but the restore would ask for a
    password. Phase 0 tries the start of the running unit (a no-op) and refuses the window."""
    host.root(host.sudoers_script(verbs=("stop",)) + f"\nusermod -aG sudo {OPERATOR}")
    run = host.swapbench("run", str(quick))
    assert run.returncode == 6, run.stdout[-3000:] + run.stderr
    assert "1 contract(s) failed; nothing was touched" in run.stderr
    assert "- sudo -k -n systemctl start panda-llamacpp.service: allowed only with a password" in run.stderr
    assert_untouched(host, before)


def test_check_names_a_rule_written_for_the_short_unit_name(
    host: RehearsalHost, quick: Path, before: Production
) -> None:
    host.root(host.sudoers_script(unit="panda-llamacpp"))
    run = host.swapbench("run", str(quick))
    assert run.returncode == 6, run.stdout[-3000:] + run.stderr
    assert "2 contract(s) failed; nothing was touched" in run.stderr
    assert "sudoers allows `systemctl stop panda-llamacpp` without `.service`" in run.stderr
    assert "sudoers allows `systemctl start panda-llamacpp` without `.service`" in run.stderr
    assert_untouched(host, before)


def test_check_fails_when_the_unit_is_inactive(host: RehearsalHost, quick: Path, before: Production) -> None:
    host.root("systemctl stop panda-llamacpp.service")
    run = host.swapbench("run", str(quick))
    assert run.returncode == 6, run.stdout[-3000:] + run.stderr
    assert "1 contract(s) failed; nothing was touched" in run.stderr
    assert "- service panda-llamacpp up now:" in run.stderr
    assert_untouched(host, before, unit_running=False)  # swapbench did not start it either


def test_check_fails_when_the_candidate_port_is_taken(host: RehearsalHost, quick: Path, before: Production) -> None:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", 11437))
        squatter.listen()
        run = host.swapbench("run", str(quick))
    assert run.returncode == 6, run.stdout[-3000:] + run.stderr
    assert "port 11437 is in use" in run.stderr
    assert_untouched(host, before)


def test_check_fails_when_the_image_is_not_present(host: RehearsalHost, quick: Path, before: Production) -> None:
    plan = variant(host, "no-image", {f'image = "{LLAMA_IMAGE}"': 'image = "localhost/llama.cpp:never-pulled"'})
    run = host.swapbench("run", str(plan))
    assert run.returncode == 6, run.stdout[-3000:] + run.stderr
    assert "localhost/llama.cpp:never-pulled is not present" in run.stdout + run.stderr
    assert "docker pull localhost/llama.cpp:never-pulled" in run.stdout + run.stderr
    assert_untouched(host, before)


# --- the engine's PIDs are not ours ---------------------------------------------------------------------------------


def test_a_container_pid_is_used_only_where_it_is_visible(host: RehearsalHost, monkeypatch: pytest.MonkeyPatch) -> None:
    """docker reports the engine's PIDs: outside (the engine's namespace) the pid is the container's; inside the
    rehearsal host it names nothing of ours, and swapbench must not signal or count it."""
    name = "swapbench-pid-probe"
    sleeper = host.exec(["docker", "run", "-d", "--name", name, "--label", "swapbench.rehearsal=service",
                         host.image_tag(), "sleep", "60"])  # fmt: skip
    assert sleeper.returncode == 0, sleeper.stderr
    monkeypatch.setenv("DOCKER_HOST", f"unix://{host.socket}")
    outside = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", name], capture_output=True, text=True,
                             check=True).stdout.strip()  # fmt: skip
    assert container_pid(name) == int(outside)
    probe = f"from swapbench.host.processes.proc import container_pid; print(container_pid({name!r}))"
    inside = host.exec(["/opt/swapbench/bin/python", "-c", probe])
    assert (inside.returncode, inside.stdout.strip()) == (0, "None"), inside.stderr
