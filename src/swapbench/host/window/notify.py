"""`[[notify]]`: the user's commands told a window's outcome, after production is restored and verified.

Each gets the outcome as JSON on stdin and as SWAPBENCH_* variables, runs in its own process group with its own
deadline, and has its exit code and output appended to RUN_DIR/notify.log. A notifier that fails or hangs
costs its own deadline, no more: it is run once the window's outcome is decided, and it never raises.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from swapbench.host.processes.proc import run_argv
from swapbench.plan.models import Notify

LOG_NAME = "notify.log"


def notify(steps: list[Notify], outcome: str, record_json: str, variables: Mapping[str, str], run_dir: Path,
           cwd: Path) -> list[str]:  # fmt: skip
    """Run every notifier for `outcome`; return one line per notifier (also in notify.log)."""
    lines = []
    env = {**os.environ, **variables}
    for index, step in enumerate(steps):
        if outcome not in step.on:
            continue
        result = run_argv(step.command, step.timeout_s, cwd=cwd, env=env, stdin_text=record_json)
        how = f"timed out after {step.timeout_s:g} s (killed)" if result.timed_out else f"exit {result.returncode}"
        tail = " ".join((result.stdout + result.stderr).split())[-300:]
        lines.append(f"notify[{index}] {step.command[0]}: {how}" + (f": {tail}" if tail else ""))
    if lines:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with contextlib.suppress(OSError), (run_dir / LOG_NAME).open("a") as log:
            log.write("".join(f"{stamp} {line}\n" for line in lines))
    return lines
