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
from swapbench.core.results import Results, WorkloadResult
from swapbench.core.stats import median_ci
from swapbench.core.vram import Verdict
from swapbench.errors import DecisionExit
from swapbench.plan.models import Decision

MIN_GATE_SAMPLES = 6  # the smallest n whose order statistics give a 95 % interval of the median


class Status(StrEnum):
    ADOPT = "adopt"
    REJECT = "reject"
    PENDING = "pending"
    INCONCLUSIVE = "inconclusive"

    @property
    def exit_code(self) -> int:
        return int(DecisionExit[self.name])


class RuleState(StrEnum):
    MET = "met"
    NOT_MET = "NOT met"
    INCONCLUSIVE = "INCONCLUSIVE"
    OPEN = "open"
    NOT_APPLICABLE = "not applicable"


class Rule(Frozen):
    state: RuleState
    detail: str

    def __str__(self) -> str:
        return f"{self.state.value}: {self.detail}"


class DecisionResult(Frozen):
    status: Status
    reasons: list[
        str
    ]  # every rule, in words: "met: …", "NOT met: …", "INCONCLUSIVE: …", "open: …", "not applicable: …"
    judgment: Judgment | None = None
    note: str | None = None


def judged_workloads(candidate: Results, comparison: Comparison | None, kind: str) -> list[WorkloadResult]:
    """The candidate's workloads of a kind that verdicts are judged on (a cached nav beside a fresh one is not)."""
    found = [w for w in candidate.workloads if w.workload.kind == kind]
    if comparison is None:
        return found
    shown_only = {w.workload for w in comparison.workloads if not w.judged}
    return [w for w in found if w.workload.name not in shown_only]


def _adherence(navs: list[WorkloadResult], rule: Decision) -> Rule:
    """Every nav workload, cached or fresh: the contract is met or not whatever the cache did."""
    if not navs:
        return Rule(state=RuleState.NOT_APPLICABLE, detail="schema adherence: the plan has no nav workload")
    empty = [w.workload.name for w in navs if not w.metrics.samples]
    if empty:
        return Rule(state=RuleState.INCONCLUSIVE, detail=f"schema adherence: no sample of {', '.join(empty)}")
    worst = min(navs, key=lambda w: w.metrics.schema_adherence or 0.0)
    share = worst.metrics.schema_adherence or 0.0
    ok = share >= rule.min_schema_adherence
    detail = (f"schema adherence {share:.0%} {'>=' if ok else '<'} {rule.min_schema_adherence:.0%} "
              f"({worst.workload.name}, {worst.metrics.samples} samples)")  # fmt: skip
    return Rule(state=RuleState.MET if ok else RuleState.NOT_MET, detail=detail)


def _describe(candidate: Results, judgment: Judgment | None, run_dir: str) -> Rule:
    if not any(w.workload.kind == "describe" for w in candidate.workloads):
        return Rule(state=RuleState.NOT_APPLICABLE, detail="describe judgment: the plan has no describe workload")
    if judgment is None:
        how = f"`swapbench decide {run_dir} --describe better` (or same, or worse)"
        return Rule(state=RuleState.OPEN, detail=f"describe outputs not judged yet: {how}")
    ok = judgment is Judgment.BETTER
    detail = f"describe judged {judgment.value}" + ("" if ok else " (materially better is required)")
    return Rule(state=RuleState.MET if ok else RuleState.NOT_MET, detail=detail)


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


def _latency_gate(navs: list[WorkloadResult], gate_ms: float) -> Rule:
    """The candidate's p50 against a line in ms, judged on the p50's distribution-free 95 % interval; every nav
    workload is judged, and the worst state decides (NOT met, then INCONCLUSIVE, then met)."""
    if not navs:
        return Rule(state=RuleState.NOT_APPLICABLE, detail="nav p50 gate: the plan has no nav workload")
    found = []
    for w in navs:
        values = [s.exchange.latency_ms for s in w.samples if s.usable]
        ci = median_ci(values)
        if ci is None:
            found.append(Rule(state=RuleState.INCONCLUSIVE,
                              detail=f"nav p50 gate {gate_ms:.1f} ms: {len(values)} usable samples of "
                                     f"{w.workload.name} are too few for an interval"))  # fmt: skip
            continue
        text = f"nav p50 ({w.workload.name}) 95 % interval {ci[0]:.1f}-{ci[1]:.1f} ms"
        if ci[0] > gate_ms:
            found.append(Rule(state=RuleState.NOT_MET, detail=f"{text} > {gate_ms:.1f} ms"))
        elif ci[1] > gate_ms:
            found.append(Rule(state=RuleState.INCONCLUSIVE, detail=f"{text} straddles the gate {gate_ms:.1f} ms"))
        else:
            found.append(Rule(state=RuleState.MET, detail=f"{text} <= {gate_ms:.1f} ms"))
    return _worst(found)


def _worst(found: list[Rule]) -> Rule:
    order = (RuleState.NOT_MET, RuleState.INCONCLUSIVE, RuleState.MET)
    return next(r for state in order for r in found if r.state is state)


def _no_regression(navs: list[WorkloadResult], comparison: Comparison | None) -> Rule:
    if not navs:
        return Rule(state=RuleState.NOT_APPLICABLE, detail="latency regression: the plan has no nav workload")
    if comparison is None:
        return Rule(state=RuleState.INCONCLUSIVE, detail="latency regression: no baseline to compare with")
    states = []
    for w in navs:
        wc, row = comparison.workload(w.workload.name), comparison.row(w.workload.name, "p50 ms")
        if wc is None or row is None:
            states.append(Rule(state=RuleState.INCONCLUSIVE, detail=f"{w.workload.name}: the baseline lacks it"))
            continue
        ratio = f"x{row.ratio:.3f} ({row.ci95[0]:.3f}-{row.ci95[1]:.3f})" if row.ratio and row.ci95 else ""
        text = f"{w.workload.name} latency {row.verdict} {ratio} within ±{comparison.tolerance:.0%}"
        if not wc.trusted and wc.drift is not None:
            text += f", but the baseline drifted {wc.drift.ratio - 1:+.1%}: not trustworthy"
            states.append(Rule(state=RuleState.INCONCLUSIVE, detail=text))
        elif row.verdict in ("faster", "equivalent"):
            states.append(Rule(state=RuleState.MET, detail=text))
        elif row.verdict == "slower":
            states.append(Rule(state=RuleState.NOT_MET, detail=text))
        else:
            states.append(Rule(state=RuleState.INCONCLUSIVE, detail=text))
    return _worst(states)


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
    navs = judged_workloads(candidate, comparison, "nav")
    rules = [_adherence([w for w in candidate.workloads if w.workload.kind == "nav"], rule)]
    if rule.describe_must_improve:
        rules.append(_describe(candidate, judgment, run_dir))
    if rule.vram_in_band:
        rules.append(_vram(candidate))
    if rule.latency_gate_p50_ms is not None:
        rules.append(_latency_gate(navs, rule.latency_gate_p50_ms))
    if rule.latency_must_not_regress:
        rules.append(_no_regression(navs, comparison))
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
    found = []
    if "nav" not in kinds:
        found.append("min_schema_adherence: no nav workload, so it is not applicable")
    if rule.describe_must_improve and "describe" not in kinds:
        found.append("describe_must_improve: no describe workload, so it is not applicable")
    if rule.vram_in_band and not has_band:
        found.append("vram_in_band: no [gates] candidate_vram_gb band, so it is not applicable")
    elif rule.vram_in_band and not gpu_read:
        found.append("vram_in_band: no GPU is read on this host now, so it would not be applicable")
    latency = rule.latency_gate_p50_ms is not None or rule.latency_must_not_regress
    if latency and "nav" not in kinds:
        found.append("latency rules: no nav workload, so they are not applicable")
    if rule.latency_gate_p50_ms is not None and "nav" in kinds and samples < MIN_GATE_SAMPLES:
        found.append(f"latency_gate_p50_ms can never be met: the p50's 95 % interval needs {MIN_GATE_SAMPLES} "
                     f"samples, the plan takes {samples}")  # fmt: skip
    if rule.latency_must_not_regress and "nav" in kinds and not has_baseline:
        found.append("latency_must_not_regress can never be met: the plan measures no baseline to compare with")
    return found
