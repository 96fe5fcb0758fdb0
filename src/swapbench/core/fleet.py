"""A fleet's windows side by side: one row per host, hosts grouped by GPU and llama.cpp build (never averaged
together), and one verdict for the fleet that is never stronger than its weakest host."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from swapbench.core.frozen import Frozen

FLEET_SCHEMA_VERSION = 1
FleetVerdict = Literal["adopt", "reject", "pending", "inconclusive"]
Pair = tuple[float | None, float | None]  # (baseline, candidate)


class FleetWorkload(Frozen):
    workload: str
    p50_ms: Pair
    p50_verdict: str
    p95_ms: Pair
    p95_verdict: str
    adherence: Pair = (None, None)


class FleetHost(Frozen):
    """One host's newest window in the folders given."""

    host: str
    run_id: str
    run_dir: str
    started_at: str | None = None
    gpu: str | None = Field(None, description="GPU name and driver the candidate's results recorded.")
    build: str | None = Field(None, description="The llama.cpp build the candidate's server reported.")
    baseline: str | None = None
    candidates: list[str] = Field(default_factory=list)
    outcome: str
    decision: str | None = None
    decision_reasons: list[str] = Field(default_factory=list)
    downtime_s: float | None = None
    vram_peak_mib: float | None = Field(None, description="The candidate's VRAM peak (None: no GPU figure).")
    workloads: list[FleetWorkload] = Field(default_factory=list)
    earlier_runs: list[str] = Field(default_factory=list, description="Older windows of this host, not shown.")


class FleetGroup(Frozen):
    """Hosts that share a GPU and a build: only their figures are comparable with each other."""

    gpu: str | None
    build: str | None
    hosts: list[str]


class FleetReport(Frozen):
    schema_version: int = FLEET_SCHEMA_VERSION
    verdict: FleetVerdict
    reasons: list[str]
    groups: list[FleetGroup]
    hosts: list[FleetHost]
    missing: list[str] = Field(
        default_factory=list, description="Hosts expected (--expect) that have no window in the folders given."
    )


def fleet_verdict(hosts: Sequence[FleetHost], missing: Sequence[str] = ()) -> tuple[FleetVerdict, list[str]]:
    """Adopt only when every host completed its window and its own decision is adopt. A host not restored, or one
    whose decision is reject, rejects; a host awaiting a human judgment keeps the fleet pending; anything else
    (a window stopped early, no decision, an expected host with no window) is inconclusive."""
    if not hosts:
        return "inconclusive", ["no host's window was found"]
    reasons = []
    for h in hosts:
        said = f"{h.host}: {h.outcome}, decision {h.decision or 'none'}"
        reasons.append(said)
    reasons += [f"{name}: no window" for name in missing]
    if bad := [h.host for h in hosts if h.outcome == "not-restored"]:
        return "reject", [f"production was NOT restored on {', '.join(bad)}", *reasons]
    if bad := [h.host for h in hosts if h.decision == "reject"]:
        return "reject", [f"rejected on {', '.join(bad)}", *reasons]
    if bad := [h.host for h in hosts if h.outcome != "complete"]:
        return "inconclusive", [f"the window did not complete on {', '.join(bad)}", *reasons]
    if missing:
        return "inconclusive", [f"no window from {', '.join(missing)} (the rollout stopped before it?)", *reasons]
    if bad := [h.host for h in hosts if h.decision == "pending"]:
        return "pending", [f"awaiting a judgment on {', '.join(bad)}", *reasons]
    if bad := [h.host for h in hosts if h.decision != "adopt"]:
        return "inconclusive", [f"no adopt decision on {', '.join(bad)}", *reasons]
    return "adopt", [f"adopt on every host ({len(hosts)})", *reasons]


def groups_of(hosts: Sequence[FleetHost]) -> list[FleetGroup]:
    """Hosts by (GPU, build), in order of first appearance."""
    found: dict[tuple[str | None, str | None], list[str]] = {}
    for h in hosts:
        found.setdefault((h.gpu, h.build), []).append(h.host)
    return [FleetGroup(gpu=gpu, build=build, hosts=names) for (gpu, build), names in found.items()]


def fleet_report(hosts: Sequence[FleetHost], expected: Sequence[str] = ()) -> FleetReport:
    ordered = sorted(hosts, key=lambda h: h.host)
    missing = sorted(set(expected) - {h.host for h in hosts})
    verdict, reasons = fleet_verdict(ordered, missing)
    return FleetReport(verdict=verdict, reasons=reasons, groups=groups_of(ordered), hosts=ordered, missing=missing)
