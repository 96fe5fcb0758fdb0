"""The describe kind: free text about the image, kept whole for blinded side-by-side judging.

It has no score of its own: a person judges the candidate's answers against production's on the same frames
(`swapbench judge`, then `decide --describe`), and the report quotes its first answers.
"""

from __future__ import annotations

from swapbench.core.judgment import Judgment
from swapbench.core.kinds.base import PlanFacts, RuleContext, WorkloadKind
from swapbench.core.rules import Rule, RuleState
from swapbench.plan.models import Decision

DEFAULT_PROMPT = (
    "Describe what you see in this camera image in two or three sentences: "
    "the scene, the objects in it and anything in the way."
)


class Describe(WorkloadKind):
    name = "describe"
    default_max_tokens = 128
    shows_answers = True
    judged_by_person = True

    def default_prompt(self) -> str:
        return DEFAULT_PROMPT

    def rules(self, ctx: RuleContext) -> list[tuple[str, Rule]]:
        if not ctx.rule.describe_must_improve:
            return []
        return [("describe_must_improve", _judged(ctx))]

    def rule_warnings(self, rule: Decision, facts: PlanFacts) -> list[tuple[str, str]]:
        if rule.describe_must_improve and not facts.present:
            return [("describe_must_improve", "describe_must_improve: no describe workload, so it is not applicable")]
        return []


def _judged(ctx: RuleContext) -> Rule:
    if not ctx.workloads:
        return Rule(state=RuleState.NOT_APPLICABLE, detail="describe judgment: the plan has no describe workload")
    if ctx.judgment is None:
        how = f"`swapbench decide {ctx.run_dir} --describe better` (or same, or worse)"
        return Rule(state=RuleState.OPEN, detail=f"describe outputs not judged yet: {how}")
    ok = ctx.judgment is Judgment.BETTER
    detail = f"describe judged {ctx.judgment.value}" + ("" if ok else " (materially better is required)")
    return Rule(state=RuleState.MET if ok else RuleState.NOT_MET, detail=detail)


DESCRIBE = Describe()
