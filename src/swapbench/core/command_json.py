"""The records commands print with --json: what `swapbench status` found (who owns the window, an unfinished
journal, each service as it is now, the last finished run with the time it ended: its verify is then, not now),
and the records of `run`, `remote` and `history`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from swapbench.core.frozen import Frozen
from swapbench.core.steps import Outcome, SwapStatus

STATUS_SCHEMA_VERSION = 2  # 2: last_run.kind and last_run.ended_by


class LastRun(Frozen):
    run_id: str
    status: SwapStatus
    kind: Literal["run", "rollback"] = Field(
        "run",
        description="What ended it: the run itself (swap.json), or a rollback (rollback.json): the "
        "watchdog's after the run died or hung, or a person's.",
    )
    ended_by: str | None = Field(None, description="Who ended the window when the run could not, when and why.")
    error: str | None = None
    ended_at: str = Field(description="When its swap.json (or rollback.json) was written, ISO 8601 UTC.")
    ended_s_ago: float
    folder: str
    verify: list[Outcome] = Field(description="The verify at the end of that run: then, not now.")


class DamagedRecord(Frozen):
    path: str
    why: str = Field(description="What could not be read, e.g. JSONDecodeError.")


class HostStatus(Frozen):
    schema_version: int = STATUS_SCHEMA_VERSION
    checked_at: str = Field(description="When this status was taken, ISO 8601 UTC.")
    plan: str = Field(description="The plan file the status was taken for.")
    owner: str | None = Field(None, description="The swapbench that owns the window now, if any.")
    journal: str
    journal_damaged: str | None = None
    unfinished_run: str | None = Field(None, description="A run whose journal is still open.")
    journal_lines: list[str] = Field(default_factory=list)
    services_now: list[Outcome] = Field(description="Each service of the plan, probed now.")
    last_run: LastRun | None = None
    damaged_records: list[DamagedRecord] = Field(default_factory=list, description="swap.json files not readable.")


WINDOW_SCHEMA_VERSION = 1
REMOTE_SCHEMA_VERSION = 1
HISTORY_SCHEMA_VERSION = 1


class Headline(Frozen):
    """One workload's p50 and p95, baseline against candidate, with the verdicts (a fresh or only workload)."""

    workload: str
    p50_ms: tuple[float | None, float | None] = Field(description="(baseline, candidate)")
    p50_verdict: str
    p95_ms: tuple[float | None, float | None]
    p95_verdict: str


class WindowRecord(Frozen):
    """A window's outcome for machines (`run --json`, `attach --json`): what Ansible's module reads."""

    schema_version: int = WINDOW_SCHEMA_VERSION
    outcome: Literal["complete", "aborted-restored", "not-restored", "refused", "detached"] = Field(
        description="complete; aborted-restored (stopped early, production restored and verified); not-restored "
        "(production NOT verified: act now); refused (nothing was touched); detached (the window goes on)."
    )
    exit_code: int
    changed: bool = Field(description="Production was touched (a service stopped or a candidate launched).")
    run_id: str
    run_dir: str
    message: str = ""
    hint: str = ""
    ended_by: str | None = None
    decision: str | None = Field(None, description="adopt, reject, pending or inconclusive; None without one.")
    decision_reasons: list[str] = Field(default_factory=list)
    downtime_s: float | None = None
    headline: list[Headline] = Field(default_factory=list)
    report_md: str | None = None
    restore_failures: list[str] = Field(
        default_factory=list, description="Restore steps that failed (a service that did not come back)."
    )
    verify_failed: list[str] = Field(
        default_factory=list, description="Verify checks that failed after the restore, each as 'name: detail'."
    )


class RemoteRecord(Frozen):
    """`swapbench remote … --json`: the box's own WindowRecord, and what came back to this machine."""

    schema_version: int = REMOTE_SCHEMA_VERSION
    host: str
    exit_code: int
    link_lost: bool = Field(description="The link dropped before the window ended: it goes on there (attach).")
    window: WindowRecord | None = Field(None, description="The box's `attach --json`; None when it was not read.")
    local_dir: str | None = Field(None, description="The run folder as fetched here.")
    report_md: str | None = None
    installed: str | None = Field(None, description="The swapbench command `--install` put on the box.")


class HistoryEntry(Frozen):
    """One run in the history: where and what it ran, and the WindowRecord its folder gives."""

    run_dir: str
    run_id: str
    host: str = Field(description="The box it was fetched from (INTO/HOST/RUN_ID), else the hostname it recorded.")
    started_at: str | None = None
    ended_at: str | None = None
    label: str | None = None
    baseline: str | None = None
    candidates: list[str] = Field(default_factory=list)
    gpu: str | None = None
    build: str | None = Field(None, description="The llama.cpp build the candidate's server reported.")
    outcome: str
    decision: str | None = None
    downtime_s: float | None = None
    swapbench_version: str | None = None
    window: WindowRecord


class HistoryRecord(Frozen):
    """`swapbench history --json`: the runs found (newest first) and what was done to the database."""

    schema_version: int = HISTORY_SCHEMA_VERSION
    db: str
    total: int = Field(description="Runs in the database, before the filters.")
    notes: list[str] = Field(default_factory=list, description="A migration or rebuild, said once.")
    skipped: list[str] = Field(default_factory=list, description="Folders that look like runs but could not be read.")
    runs: list[HistoryEntry] = Field(default_factory=list)
