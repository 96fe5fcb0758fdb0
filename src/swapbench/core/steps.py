"""Outcomes of the swap's steps: contract checks, verify steps, the phase timeline and the swap report."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from swapbench.core.frozen import Frozen
from swapbench.core.phases import LOADED, RESTORING, Phase
from swapbench.core.vram import GpuSummary


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 -- a status, not a password
    FAIL = "fail"
    SKIP = "skip"  # could not be evaluated here (e.g. no GPU): shown, never counted as a pass
    WARN = "warn"  # holds, at a cost the operator should know (the window is slower, not unsafe): never blocks


class Outcome(Frozen):
    """One check or verify step."""

    name: str
    status: Status
    detail: str
    exit_code: int | None = Field(None, description="An input that failed: the exit code of its own error (3, 4).")

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.failed]


class PhaseSpan(Frozen):
    """One phase of the swap on the monotonic clock, seconds from the start of the run."""

    phase: Phase
    target: str | None = None
    start_s: float
    end_s: float
    ok: bool = True
    detail: str | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class DowntimeSplit(Frozen):
    """Production downtime (first stop -> last verify) split into what filled it:
    total = load + bench + restore + stop + own (overhead = stop + own)."""

    total_s: float
    load_s: float = Field(description="launch + ready of the candidates")
    bench_s: float = Field(description="smoke + bench")
    restore_s: float = Field(description="teardown, drain, restore, verify")
    overhead_s: float = Field(description="everything else: stop, drain, swapbench itself (stop_s + own_s)")
    stop_s: float | None = Field(
        None, description="stop + drain of production's services; None in a file written before it was split out"
    )
    own_s: float | None = Field(
        None,
        description="swapbench's own time: the gaps between its steps (journal writes, the checks between steps, "
        "the display), which the report calls other; None in a file written before it was split out",
    )


def downtime_split(spans: list[PhaseSpan]) -> DowntimeSplit | None:
    stops = [s for s in spans if s.phase is Phase.STOP]
    verifies = [s for s in spans if s.phase is Phase.VERIFY]
    if not stops or not verifies:
        return None
    start, end = min(s.start_s for s in stops), max(s.end_s for s in verifies)
    inside = [s for s in spans if s.start_s >= start and s.end_s <= end]

    def total(*phases: Phase) -> float:
        return sum(s.duration_s for s in inside if s.phase in phases)

    load, bench = total(Phase.LAUNCH, Phase.READY), total(*LOADED)
    restore, stop = total(*RESTORING), total(Phase.STOP, Phase.DRAIN)
    whole = end - start
    overhead = max(whole - load - bench - restore, 0)
    return DowntimeSplit(total_s=whole, load_s=load, bench_s=bench, restore_s=restore, overhead_s=overhead,
                         stop_s=stop, own_s=max(overhead - stop, 0))  # fmt: skip


class WarmRead(Frozen):
    """One read of a candidate's model files into the page cache."""

    seconds: float
    cached_share: float | None = Field(
        None,
        description="Share of the bytes already in the page cache when the read began (mincore(2) over the "
        "file); None where the kernel cannot tell (mincore answers truly only for root and the file's owner).",
    )


class PreparedCandidate(Frozen):
    """The prepare step for one candidate: its llama-server's version and its model files in the page cache."""

    label: str
    version: str | None = Field(
        None, description="`--version` of the candidate's llama-server (its binary or image), read in Phase 0."
    )
    files: list[str] = Field(default_factory=list, description="The model files read: model and mmproj.")
    size_bytes: int = 0
    first_read: WarmRead | None = Field(
        None,
        description="Before the checks said go; None when the files were not read (they do not fit in the memory "
        "available, or run.warm_page_cache = false).",
    )
    reread: WarmRead | None = Field(None, description="Right before the first stop, after the baseline bench.")
    note: str | None = Field(None, description="What the operator should know about it, when anything.")


class SwapStatus(StrEnum):
    COMPLETE = "complete"  # swap done, production restored and verified
    ABORTED = "aborted"  # a step failed or a stop was requested; production restored and verified
    RESTORE_FAILED = "restore-failed"  # production is not verified: a person must act


class SwapReport(Frozen):
    """What `swapbench run` did, for the terminal and the run folder (swap.json, rollback.json)."""

    schema_version: int = Field(
        3,
        description="The layout of this record; a file without one is version 1. 2 added downtime.stop_s, "
        "downtime.own_s and prepare; 3 added ended_by.",
    )
    run_id: str
    status: SwapStatus
    error: str | None = None
    checks: list[Outcome]
    verify: list[Outcome]
    restore_failures: list[str] = Field(default_factory=list)
    spans: list[PhaseSpan]
    downtime: DowntimeSplit | None
    results_files: list[str] = Field(default_factory=list)
    drift_files: list[str] = Field(
        default_factory=list, description="The baseline measured again after verify (production up): the drift."
    )
    drift_note: str | None = Field(None, description="Why the drift was not measured, or stopped early.")
    gpu: GpuSummary | None = None
    prepare: list[PreparedCandidate] = Field(
        default_factory=list, description="Each launched candidate's version and model files read before the window."
    )
    write_failures: list[str] = Field(
        default_factory=list, description="Files that could not be written where they belong (disk full or read-only)."
    )
    ended_by: str | None = Field(
        None,
        description="Who ended the window when the run itself could not: the watchdog after the run died or hung "
        "(past its time cap, or no heartbeat), with when and why.",
    )
