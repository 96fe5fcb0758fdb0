"""A decision rule's outcome: one of five states and its reason in words. Its own module so the workload kinds
(core/kinds/) can state their rules without importing the decision that gathers them."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from swapbench.core.frozen import Frozen


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


def worst(found: Sequence[Rule]) -> Rule:
    """Of several answers to one rule: NOT met, then INCONCLUSIVE, then met."""
    order = (RuleState.NOT_MET, RuleState.INCONCLUSIVE, RuleState.MET)
    return next(r for state in order for r in found if r.state is state)
