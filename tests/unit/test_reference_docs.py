"""docs/reference is generated from the code (the commands' help, the plan's and the results' JSON Schemas, the
exception tree): it must match what the code says now, and the check must catch a page that does not."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "scripts" / "gen_reference.py"


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(GENERATOR), *args], capture_output=True, text=True, timeout=120,
                          check=False, cwd=REPO)  # fmt: skip


def test_the_reference_matches_the_code() -> None:
    done = generate("--check")
    assert done.returncode == 0, done.stderr  # stale: run `python scripts/gen_reference.py` and commit docs/


def test_a_stale_page_is_named(tmp_path: Path) -> None:
    pages = tmp_path / "reference"
    shutil.copytree(REPO / "docs" / "reference", pages)
    cli = pages / "cli.md"
    cli.write_text(cli.read_text().replace("## `swapbench demo`", "## `swapbench demo-old`"))
    done = generate("--check", "--out", str(pages))
    assert done.returncode == 1
    assert done.stderr == f"{pages} is stale: cli.md; run `python scripts/gen_reference.py`\n"
    assert generate("--out", str(pages)).returncode == 0 and generate("--check", "--out", str(pages)).returncode == 0


def test_every_command_every_plan_section_and_every_exit_code_is_there() -> None:
    cli = (REPO / "docs" / "reference" / "cli.md").read_text()
    for command in ("bench", "summary", "demo", "setup-rig", "check", "run", "compare", "decide", "judge", "report",
                    "rollback", "status", "export", "results-schema", "plan-schema", "version"):  # fmt: skip
        assert f"## `swapbench {command}`" in cli, command
    assert "watchdog" not in cli  # internal
    plan = (REPO / "docs" / "reference" / "plan.md").read_text()
    assert "| `time_cap_s` | number | `1500.0` | > 0, ≤ 86400 | Hard cap on the whole session, seconds. |" in plan
    codes = (REPO / "docs" / "reference" / "exit-codes.md").read_text()
    assert "| &nbsp;&nbsp;`RestoreFailed` | 8 |" in codes and "| REJECT | 20 |" in codes
