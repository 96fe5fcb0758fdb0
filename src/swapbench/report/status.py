"""`swapbench status` as lines of text: the present first (owner, unfinished journal, services now), then the
last finished run, marked with when it ended."""

from __future__ import annotations

import shlex

from swapbench.core.command_json import HostStatus


def _ago(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{seconds:.0f} s ago"
    if minutes < 120:
        return f"{minutes} min ago"
    hours = minutes // 60
    return f"{hours} h ago" if hours < 48 else f"{hours // 24} days ago"


def status_lines(status: HostStatus) -> list[str]:
    lines: list[str] = []
    rollback = f"`swapbench rollback {shlex.quote(status.plan)}`"
    if status.owner is not None:
        lines.append(f"RUNNING: {status.owner} owns the window; it restores and verifies production itself")
    if status.journal_damaged is not None:
        lines += [f"journal {status.journal} is damaged: {status.journal_damaged}", f"run {rollback}"]
    if status.unfinished_run is not None:
        lines.append(f"{'live' if status.owner else 'UNFINISHED'} run {status.unfinished_run} "
                     f"(journal {status.journal}):")  # fmt: skip
        lines += status.journal_lines
        if status.owner is None:
            lines.append(f"no swapbench owns it: production may be down; run {rollback}")
    lines.append(f"now ({status.checked_at}):")
    lines += [f"  {o.name}: {o.detail}" for o in status.services_now] or ["  the plan names no service"]
    lines += [f"{d.path} is damaged ({d.why}); skipped" for d in status.damaged_records]
    last = status.last_run
    if last is None:
        return [*lines, "no finished run yet"]
    error = f" ({last.error})" if last.error else ""
    if last.kind == "rollback":
        lines.append(f"last run {last.run_id} was rolled back: {last.status.value}{error}; ended {last.ended_at} "
                     f"({_ago(last.ended_s_ago)})")  # fmt: skip
        lines.append(f"  {last.ended_by or 'by `swapbench rollback`'}")
    else:
        lines.append(f"last finished run {last.run_id}: {last.status.value}{error}; ended {last.ended_at} "
                     f"({_ago(last.ended_s_ago)})")  # fmt: skip
    lines.append(f"  run folder: {last.folder}")
    lines += [f"  at its verify: {o.status.value:<4} {o.name}: {o.detail}" for o in last.verify]
    return lines
