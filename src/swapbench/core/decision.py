"""The adopt/reject decision: the plan's `[decision]` rule over the candidate's results and a person's judgment.

The user plan's rule by default: adopt only if schema adherence >= 95 % AND the describe outputs are judged
materially better AND the VRAM footprint is inside its band. Latency is not a gate unless the plan makes it one.
A rule that needs a person leaves the decision PENDING until the judgment is recorded.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from swapbench.core.results import Results
from swapbench.core.vram import Verdict
from swapbench.plan.models import Decision


class Judgment(StrEnum):
    BETTER = "better"
    SAME = "same"
    WORSE = "worse"


class Status(StrEnum):
    ADOPT = "adopt"
    REJECT = "reject"
    PENDING = "pending"


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Status
    reasons: list[str]  # every rule, met or not, in words
    judgment: Judgment | None = None
    note: str | None = None


def _adherence(candidate: Results, rule: Decision) -> tuple[bool, str]:
    navs = [w for w in candidate.workloads if w.workload.kind == "nav"]
    if not navs:
        return False, "no nav workload: schema adherence cannot be checked"
    worst = min((w.metrics.schema_adherence or 0.0) for w in navs)
    ok = worst >= rule.min_schema_adherence
    return ok, f"schema adherence {worst:.0%} {'>=' if ok else '<'} {rule.min_schema_adherence:.0%}"


def _vram(candidate: Results) -> tuple[bool | None, str]:
    fp = candidate.vram.footprint if candidate.vram else None
    if fp is None or fp.verdict is Verdict.UNKNOWN:
        why = candidate.vram.unavailable_reason if candidate.vram else "no VRAM report"
        return None, f"VRAM footprint unknown ({why})"
    ok = fp.verdict is Verdict.HEALTHY
    return ok, f"VRAM peak {((fp.peak_mib or 0) / 1024):.2f} GiB: {fp.verdict.value}"


def _latency(candidate: Results, rule: Decision) -> tuple[bool, str] | None:
    if rule.latency_gate_p50_ms is None:
        return None
    navs = [w for w in candidate.workloads if w.workload.kind == "nav" and w.metrics.client_latency_ms]
    p50 = max((w.metrics.client_latency_ms.p50 for w in navs if w.metrics.client_latency_ms), default=None)
    if p50 is None:
        return False, "nav p50 not measured"
    ok = p50 <= rule.latency_gate_p50_ms
    return ok, f"nav p50 {p50:.1f} ms {'<=' if ok else '>'} {rule.latency_gate_p50_ms:.1f} ms"


def decide(rule: Decision, candidate: Results, judgment: Judgment | None = None, note: str | None = None) -> Outcome:
    """Every rule evaluated and listed; REJECT if one fails, PENDING if one cannot be decided yet, else ADOPT."""
    checks: list[tuple[bool | None, str]] = [_adherence(candidate, rule)]
    if rule.describe_must_improve:
        if judgment is None:
            checks.append(
                (None, "describe outputs not judged yet: `swapbench decide RUN --describe better|same|worse`")
            )
        else:
            ok = judgment is Judgment.BETTER
            checks.append(
                (ok, f"describe judged {judgment.value}" + ("" if ok else " (materially better is required)"))
            )
    if rule.vram_in_band:
        checks.append(_vram(candidate))
    if (latency := _latency(candidate, rule)) is not None:
        checks.append(latency)
    reasons = [("met: " if ok else "NOT met: " if ok is False else "open: ") + why for ok, why in checks]
    if any(ok is False for ok, _ in checks):
        status = Status.REJECT
    elif any(ok is None for ok, _ in checks):
        status = Status.PENDING
    else:
        status = Status.ADOPT
    return Outcome(status=status, reasons=reasons, judgment=judgment, note=note)
