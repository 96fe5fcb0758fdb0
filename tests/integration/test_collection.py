"""The Ansible collection in this repository, as ansible-core itself reads it: its module's documentation parses
(`ansible-doc`, in Ansible's own format) and says what the module returns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ansible_doc_reads_the_window_module() -> None:
    done = subprocess.run([str(Path(sys.executable).with_name("ansible-doc")), "-j", "swapbench.fleet.window"],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)["swapbench.fleet.window"]
    assert doc["doc"]["short_description"] == "Run one swapbench window on this host and return its outcome"
    assert sorted(doc["doc"]["options"]) == ["plan", "session", "swapbench"]
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert {"outcome", "decision", "run_dir", "files", "resumed", "record"} <= set(doc["return"])
