"""The Ansible collection in this repository, as ansible-core itself reads it: its module's and its role's
documentation parses (`ansible-doc`, in Ansible's own format), the canary playbook passes `--syntax-check`, and
the module's stop rules say exactly which rule a window's record meets."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collections" / "swapbench" / "fleet"
ENV = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO), "ANSIBLE_NOCOLOR": "1"}


def ansible(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name(tool)), *args], capture_output=True, text=True,
                          timeout=120, check=False, env=ENV)  # fmt: skip


def test_ansible_doc_reads_the_window_module() -> None:
    done = ansible("ansible-doc", "-j", "swapbench.fleet.window")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)["swapbench.fleet.window"]
    assert doc["doc"]["short_description"] == "Run one swapbench window on this host and return its outcome"
    assert sorted(doc["doc"]["options"]) == ["plan", "session", "stop_on", "swapbench"]
    assert doc["doc"]["options"]["stop_on"]["default"] == ["not-restored", "verify-failed", "aborted", "reject",
                                                           "inconclusive"]  # fmt: skip
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert {"outcome", "decision", "run_dir", "files", "resumed", "record", "stop", "stop_reasons"} <= set(
        doc["return"]
    )


def test_ansible_doc_reads_the_rollout_role() -> None:
    done = ansible("ansible-doc", "-t", "role", "-j", "swapbench.fleet.rollout")
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)["swapbench.fleet.rollout"]["entry_points"]
    assert sorted(entries) == ["check", "main"]
    options = entries["main"]["options"]
    assert sorted(k for k, v in options.items() if v.get("required")) == ["swapbench_plan", "swapbench_session"]
    assert options["swapbench_stop_on"]["choices"] == MODULE.STOP_RULES


def test_the_canary_playbook_passes_syntax_check(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[swapbench]\npanda\nrobot-1\n")
    done = ansible("ansible-playbook", "--syntax-check", "-i", str(inventory), "swapbench.fleet.canary")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"playbook: {COLLECTION / 'playbooks' / 'canary.yml'}" in done.stdout


def load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("swapbench_window", COLLECTION / "plugins" / "modules" / "window.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MODULE = load_module()
DEFAULT = MODULE.DEFAULT_STOP_ON
MET, NOT_MET, OPEN = "met: schema adherence 100% >= 95%", "NOT met: nav p50 above 20 ms", "open: describe not judged"


@pytest.mark.parametrize(("record", "stop_on", "reasons"), [
    ({"outcome": "complete", "decision": "adopt"}, DEFAULT, []),
    ({"outcome": "complete", "decision": "pending", "decision_reasons": [MET, OPEN]}, DEFAULT, []),
    ({"outcome": "complete", "decision": "pending", "decision_reasons": [MET, OPEN]}, [*DEFAULT, "pending"],
     ["the decision on H is PENDING: open: describe not judged"]),
    ({"outcome": "complete", "decision": "reject", "decision_reasons": [OPEN, MET, NOT_MET]}, DEFAULT,
     ["the decision on H is REJECT: NOT met: nav p50 above 20 ms; open: describe not judged"]),
    ({"outcome": "complete", "decision": "reject", "decision_reasons": [NOT_MET]}, ["not-restored"], []),
    ({"outcome": "aborted-restored", "message": "VRAM gate"}, DEFAULT,
     ["the window on H stopped early (production restored): VRAM gate"]),
    ({"outcome": "not-restored", "message": "chatterbox down", "restore_failures": ["chatterbox"]}, DEFAULT,
     ["production was NOT restored on H: chatterbox down"]),
    ({"outcome": "not-restored", "message": "m", "verify_failed": ["vram: 14.1 GB"]}, DEFAULT,
     ["production was NOT restored on H: m", "verify failed on H: vram: 14.1 GB"]),
    ({"outcome": "not-restored", "message": "m", "verify_failed": ["vram: 14.1 GB"]}, ["not-restored"],
     ["production was NOT restored on H: m"]),
    ({"outcome": "not-restored", "message": "m", "verify_failed": ["vram: 14.1 GB"]}, ["verify-failed"],
     ["verify failed on H: vram: 14.1 GB"]),
    ({"outcome": "not-restored", "message": "watchdog"}, ["not-restored"],
     ["production was NOT restored on H: watchdog"]),
])  # fmt: skip
def test_the_module_stop_rules(record: dict[str, object], stop_on: list[str], reasons: list[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(MODULE, "HOST", "H")
    assert MODULE.stop_reasons(record, stop_on) == reasons
