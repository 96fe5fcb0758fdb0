"""The adopt/reject decision: the plan's `[decision]` rule over the candidate's results, the comparison and a
person's judgment.

The user plan's rule by default: adopt only if schema adherence >= 95 % AND the describe outputs are judged
materially better AND the VRAM footprint is inside its band — and, always, no workload answers nothing in more
than 5 % of its samples. Latency is not a gate unless the plan makes it one.

Each rule ends in one of five states. A rule that cannot apply to this plan or host (no nav workload, no GPU)
is NOT APPLICABLE, never NOT met. The outcome: REJECT if a rule is not met; else INCONCLUSIVE if the data cannot
support a rule's answer (an interval straddling its line, a baseline that drifted); else PENDING while a
person's judgment is missing; else ADOPT — and INCONCLUSIVE too when no rule applied at all (every rule not
applicable: a plan with no workload the rules know).
"""

from __future__ import annotations

from enum import StrEnum

from swapbench.core.compare import Comparison
from swapbench.core.frozen import Frozen
from swapbench.core.judgment import Judgment as Judgment  # noqa: PLC0414  re-exported: the decision speaks of it
from swapbench.core.kinds import KINDS, PlanFacts, RuleContext
from swapbench.core.kinds.base import workloads_of
from swapbench.core.results import Results, WorkloadResult
from swapbench.core.rules import Rule as Rule  # noqa: PLC0414  re-exported with its states
from swapbench.core.rules import RuleState as RuleState  # noqa: PLC0414
from swapbench.core.vram import Verdict
from swapbench.errors import DecisionExit
from swapbench.plan.models import Decision

RULE_ORDER = tuple(Decision.model_fields)  # the rules are listed in the order of the [decision] table


class Status(StrEnum):
    ADOPT = "adopt"
    REJECT = "reject"
    PENDING = "pending"
    INCONCLUSIVE = "inconclusive"

    @property
    def exit_code(self) -> int:
        return int(DecisionExit[self.name])


class DecisionResult(Frozen):
    status: Status
    reasons: list[
        str
    ]  # every rule, in words: "met: …", "NOT met: …", "INCONCLUSIVE: …", "open: …", "not applicable: …"
    judgment: Judgment | None = None
    note: str | None = None


def judged_workloads(candidate: Results, comparison: Comparison | None, kind: str) -> list[WorkloadResult]:
    """The candidate's workloads of a kind that verdicts are judged on (a cached nav beside a fresh one is not)."""
    found = workloads_of(candidate, kind)
    if comparison is None:
        return found
    shown_only = {w.workload for w in comparison.workloads if not w.judged}
    return [w for w in found if w.workload.name not in shown_only]


def _degenerate(candidate: Results, rule: Decision) -> list[Rule]:
    rules = []
    for w in candidate.workloads:
        m = w.metrics
        if not m.samples:
            rules.append(Rule(state=RuleState.INCONCLUSIVE, detail=f"{w.workload.name}: no answer was measured"))
            continue
        share = m.degenerate / m.samples
        ok = share <= rule.max_degenerate_share
        kinds = ", ".join(f"{n} {k}" for k, n in m.degenerate_kinds.items())
        detail = (f"{w.workload.name}: {m.degenerate} of {m.samples} answers degenerate ({kinds}) "
                  f"{'<=' if ok else '>'} {rule.max_degenerate_share:.0%}" if m.degenerate
                  else f"{w.workload.name}: no degenerate answer in {m.samples}")  # fmt: skip
        rules.append(Rule(state=RuleState.MET if ok else RuleState.NOT_MET, detail=detail))
    return rules


def _vram(candidate: Results) -> Rule:
    if candidate.host.gpu.name is None:
        why = candidate.host.gpu.unavailable_reason or "no GPU reading"
        return Rule(state=RuleState.NOT_APPLICABLE, detail=f"VRAM in band: no GPU on this host ({why})")
    fp = candidate.vram.footprint if candidate.vram else None
    if fp is None:
        reason = (candidate.vram.unavailable_reason if candidate.vram else None) or "no VRAM report"
        return Rule(state=RuleState.INCONCLUSIVE, detail=f"VRAM footprint not measured ({reason})")
    if fp.peak_mib is None:
        return Rule(state=RuleState.INCONCLUSIVE, detail="VRAM footprint not read: no peak was measured")
    if fp.verdict is Verdict.UNKNOWN:
        return Rule(state=RuleState.NOT_APPLICABLE,
                    detail="VRAM in band: the plan has no [gates] candidate_vram_gb band to judge against")  # fmt: skip
    ok = fp.verdict is Verdict.HEALTHY
    detail = f"VRAM peak {((fp.peak_mib or 0) / 1024):.2f} GiB: {fp.verdict.value}"
    return Rule(state=RuleState.MET if ok else RuleState.NOT_MET, detail=detail)


def _drift_notes(comparison: Comparison | None) -> list[str]:
    """One line naming every workload whose baseline moved beyond the tolerance during the window."""
    if comparison is None:
        return []
    moved = [f"{w.workload} ({w.drift.ratio - 1:+.1%})" for w in comparison.workloads if w.drift and not w.trusted]
    if not moved:
        return []
    return [f"note: the baseline drifted beyond ±{comparison.tolerance:.0%} during the window in {', '.join(moved)}: "
            "its latency verdicts are not trustworthy"]  # fmt: skip


def decide(
    rule: Decision,
    candidate: Results,
    judgment: Judgment | None = None,
    note: str | None = None,
    comparison: Comparison | None = None,
    run_dir: str = "RUN_DIR",
) -> DecisionResult:
    """Every rule evaluated and listed, in the order of the plan's [decision] table; `run_dir` is the run folder
    as a shell reads it (quoted), for the command that records a missing judgment."""
    keyed: list[tuple[str, Rule]] = []
    for kind in KINDS:
        judged = judged_workloads(candidate, comparison, kind.name)
        ctx = RuleContext(rule, candidate, workloads_of(candidate, kind.name), judged, judgment, comparison, run_dir)
        keyed += kind.rules(ctx)
    if rule.vram_in_band:
        keyed.append(("vram_in_band", _vram(candidate)))
    rules = [r for _, r in sorted(keyed, key=lambda kr: RULE_ORDER.index(kr[0]))]
    rules += _degenerate(candidate, rule)
    return DecisionResult(status=_status(rules), reasons=[str(r) for r in rules] + _drift_notes(comparison),
                   judgment=judgment, note=note)  # fmt: skip


def _status(rules: list[Rule]) -> Status:
    states = {r.state for r in rules}
    if RuleState.NOT_MET in states:
        return Status.REJECT
    if RuleState.INCONCLUSIVE in states or not states - {RuleState.NOT_APPLICABLE}:
        return Status.INCONCLUSIVE
    if RuleState.OPEN in states:
        return Status.PENDING
    return Status.ADOPT


def rule_warnings(
    rule: Decision, kinds: set[str], *, gpu_read: bool, has_band: bool, has_baseline: bool, samples: int
) -> list[str]:
    """For `check --dry-run`: each rule that cannot apply to this plan (reported as not applicable), or that
    can never be met (its answer would always be INCONCLUSIVE)."""
    found: list[tuple[str, str]] = []
    for kind in KINDS:
        found += kind.rule_warnings(rule, PlanFacts(kind.name in kinds, samples, has_baseline))
    if rule.vram_in_band and not has_band:
        found.append(("vram_in_band", "vram_in_band: no [gates] candidate_vram_gb band, so it is not applicable"))
    elif rule.vram_in_band and not gpu_read:
        found.append(("vram_in_band", "vram_in_band: no GPU is read on this host now, so it would not be applicable"))
    return [text for _, text in sorted(found, key=lambda kt: RULE_ORDER.index(kt[0]))]
