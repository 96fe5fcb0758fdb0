"""The nav kind: the robot's next move as a JSON object, held to a three-strategy parse contract and a schema.

Its parse contract (workloads/nav.py, or the user's own parser run isolated) scores each answer `adheres`;
its rules are schema adherence and, where the plan asks, the latency gate and no regression. Its p50 is the
registry document's row: the figure the robot's loop lives by.
"""

from __future__ import annotations

from typing import Any, ClassVar

from swapbench.core.kinds.base import PlanFacts, RuleContext, WorkloadKind, usable_latencies
from swapbench.core.results import ADHERENCE, ScoreSpec, WorkloadResult
from swapbench.core.rules import Rule, RuleState, worst
from swapbench.core.stats import median_ci
from swapbench.plan.models import Decision, NavWorkload, Workload

ACTIONS = ("forward", "left", "right", "back", "stop")
DEFAULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["action"],
    "properties": {"action": {"enum": list(ACTIONS)}},
}
MIN_GATE_SAMPLES = 6  # the smallest n whose order statistics give a 95 % interval of the median


def build_prompt(goal: str = "something interesting") -> str:
    """The built-in nav prompt, for users without a prompt builder of their own."""
    choices = ", ".join(f'"{a}"' for a in ACTIONS)
    return (
        "You drive a small robot car. The image is its front camera view. "
        f"Goal: find {goal}. Decide the next move. "
        f'Reply with only a JSON object {{"action": A}} where A is one of {choices}. No other text.'
    )


class Nav(WorkloadKind):
    name = "nav"
    default_max_tokens = 20
    scores: ClassVar[tuple[ScoreSpec, ...]] = (ADHERENCE,)
    headline = True

    def default_prompt(self) -> str:
        return build_prompt()

    def default_schema(self, workload: Workload) -> dict[str, Any] | None:
        """The built-in prompt asks for exactly DEFAULT_SCHEMA; a prompt of the user's is held to its own file."""
        own_prompt = isinstance(workload, NavWorkload) and (workload.prompt or workload.prompt_builder)
        return None if own_prompt else DEFAULT_SCHEMA

    def rules(self, ctx: RuleContext) -> list[tuple[str, Rule]]:
        found = [("min_schema_adherence", _adherence(ctx.workloads, ctx.rule))]
        if ctx.rule.latency_gate_p50_ms is not None:
            found.append(("latency_gate_p50_ms", _latency_gate(ctx.judged, ctx.rule.latency_gate_p50_ms)))
        if ctx.rule.latency_must_not_regress:
            found.append(("latency_must_not_regress", _no_regression(ctx)))
        return found

    def rule_warnings(self, rule: Decision, facts: PlanFacts) -> list[tuple[str, str]]:
        found = []
        if not facts.present:
            found.append(("min_schema_adherence", "min_schema_adherence: no nav workload, so it is not applicable"))
        latency = rule.latency_gate_p50_ms is not None or rule.latency_must_not_regress
        if latency and not facts.present:
            found.append(("latency_gate_p50_ms", "latency rules: no nav workload, so they are not applicable"))
        if rule.latency_gate_p50_ms is not None and facts.present and facts.samples < MIN_GATE_SAMPLES:
            found.append(("latency_gate_p50_ms", "latency_gate_p50_ms can never be met: the p50's 95 % interval "
                          f"needs {MIN_GATE_SAMPLES} samples, the plan takes {facts.samples}"))  # fmt: skip
        if rule.latency_must_not_regress and facts.present and not facts.has_baseline:
            found.append(("latency_must_not_regress", "latency_must_not_regress can never be met: the plan "
                          "measures no baseline to compare with"))  # fmt: skip
        return found


def _adherence(navs: list[WorkloadResult], rule: Decision) -> Rule:
    """Every nav workload, cached or fresh: the contract is met or not whatever the cache did."""
    if not navs:
        return Rule(state=RuleState.NOT_APPLICABLE, detail="schema adherence: the plan has no nav workload")
    empty = [w.workload.name for w in navs if not w.metrics.samples]
    if empty:
        return Rule(state=RuleState.INCONCLUSIVE, detail=f"schema adherence: no sample of {', '.join(empty)}")
    worst_one = min(navs, key=lambda w: w.metrics.schema_adherence or 0.0)
    share = worst_one.metrics.schema_adherence or 0.0
    ok = share >= rule.min_schema_adherence
    detail = (f"schema adherence {share:.0%} {'>=' if ok else '<'} {rule.min_schema_adherence:.0%} "
              f"({worst_one.workload.name}, {worst_one.metrics.samples} samples)")  # fmt: skip
    return Rule(state=RuleState.MET if ok else RuleState.NOT_MET, detail=detail)


def _latency_gate(navs: list[WorkloadResult], gate_ms: float) -> Rule:
    """The candidate's p50 against a line in ms, judged on the p50's distribution-free 95 % interval; every nav
    workload is judged, and the worst state decides (NOT met, then INCONCLUSIVE, then met)."""
    if not navs:
        return Rule(state=RuleState.NOT_APPLICABLE, detail="nav p50 gate: the plan has no nav workload")
    found = []
    for w in navs:
        values = usable_latencies(w)
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
    return worst(found)


def _no_regression(ctx: RuleContext) -> Rule:
    navs, comparison = ctx.judged, ctx.comparison
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
    return worst(states)


NAV = Nav()
