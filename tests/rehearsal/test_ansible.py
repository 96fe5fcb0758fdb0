"""The `swapbench.fleet.window` module driven by real ansible-core over real SSH (the rehearsal host's
ssh.service, the operator's key, host keys checked against a known_hosts of the test's own): check mode touches
nothing, a window runs and returns its record, and a rerun with the same session resumes, never starting a second
window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rehearsal.host import OPERATOR, SSH_PORT, RehearsalHost

from tests.rehearsal.conftest import Laptop, Production, assert_restored, run_folders

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")


def play(laptop: Laptop, tmp: Path, task: str) -> dict[str, object]:
    """One play on the box: `task` (YAML, registering `window`), its result written back on the controller."""
    inventory = tmp / "inventory.ini"
    common = f"-o UserKnownHostsFile={laptop.known_hosts} -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes"
    inventory.write_text(
        f"[gpu]\npanda ansible_host=127.0.0.1 ansible_port={SSH_PORT} ansible_user={OPERATOR} "
        f"ansible_ssh_private_key_file={laptop.key} ansible_ssh_common_args='{common}' "
        "ansible_python_interpreter=/usr/bin/python3\n"
    )
    result = tmp / "window.json"
    result.unlink(missing_ok=True)
    book = tmp / "play.yml"
    book.write_text(f"""- hosts: gpu
  gather_facts: false
  tasks:
{task}
    - name: the module's result, back on the controller
      ansible.builtin.copy:
        content: "{{{{ window | to_nice_json }}}}"
        dest: {result}
      delegate_to: localhost
""")
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO),
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=no",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible"),
    }  # no master left behind
    done = subprocess.run([str(PLAYBOOK), "-i", str(inventory), str(book)], capture_output=True, text=True,
                          timeout=900, env=env, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    found: dict[str, object] = json.loads(result.read_text())
    return found


def test_check_mode_touches_nothing(host: RehearsalHost, quick: Path, laptop: Laptop, tmp_path: Path,
                                    before: Production) -> None:  # fmt: skip
    folders = run_folders(host)
    task = f"""    - swapbench.fleet.window:
        plan: {quick}
      check_mode: true
      register: window
"""
    found = play(laptop, tmp_path, task)
    assert (found["changed"], found["outcome"], found["resumed"]) == (False, "checked", False)
    checks, steps = found["checks"], found["steps"]
    assert isinstance(checks, list) and checks and {c["status"] for c in checks} <= {"pass", "skip", "warn"}
    assert isinstance(steps, list) and any(s["phase"] == "stop" for s in steps)
    assert run_folders(host) == folders  # no run folder: nothing was touched
    assert_restored(host, before)


def test_a_window_runs_and_a_rerun_resumes_it(host: RehearsalHost, quick: Path, laptop: Laptop, tmp_path: Path,
                                              before: Production) -> None:  # fmt: skip
    host.root(f"rm -rf {host.home}/.swapbench/sessions")
    task = f"""    - swapbench.fleet.window:
        plan: {quick}
        session: e4b-rollout
      register: window
"""
    folders = run_folders(host)
    first = play(laptop, tmp_path, task)
    assert (first["changed"], first["outcome"], first["resumed"]) == (True, "complete", False), first
    run_dir = Path(str(first["run_dir"]))
    assert run_folders(host) - folders == {run_dir}
    # the session's marker, written by swapbench itself (run --note-run-dir) before the window's job started
    assert (host.home / ".swapbench" / "sessions" / "e4b-rollout").read_text() == f"{run_dir}\n"
    files = first["files"]
    assert isinstance(files, list) and "swap.json" in files and "report.md" in files
    record = first["record"]
    assert isinstance(record, dict) and record["run_dir"] == str(run_dir) and record["schema_version"] == 1
    again = play(laptop, tmp_path, task)  # the same session: the window it started, never a second one
    assert (again["outcome"], again["resumed"], again["run_dir"]) == ("complete", True, str(run_dir))
    assert run_folders(host) - folders == {run_dir}
    host.root(f"rm -rf {host.home}/.swapbench/sessions")
    assert_restored(host, before)
