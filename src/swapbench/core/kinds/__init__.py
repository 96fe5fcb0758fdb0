"""The registry of workload kinds: one entry per kind, each a module of this package, and the one dispatch
from a kind's name to it. Every other module asks here; none names a kind.

A new kind is its plan model (a member of plan.models.Workload), its module here, and one case below.
"""

from __future__ import annotations

from typing import assert_never

from swapbench.core.kinds.base import PlanFacts, Prompts, ReadFile, RuleContext, Scorer, WorkloadKind
from swapbench.core.kinds.chat import CHAT
from swapbench.core.kinds.describe import DESCRIBE
from swapbench.core.kinds.nav import NAV
from swapbench.core.results import WorkloadResult
from swapbench.plan.models import KindName, Workload

__all__ = ["KINDS", "SCORE_LEGEND", "PlanFacts", "Prompts", "ReadFile", "RuleContext", "Scorer", "WorkloadKind",
           "first_score", "kind_of", "max_tokens"]  # fmt: skip


def kind_of(name: KindName) -> WorkloadKind:
    match name:
        case "nav":
            return NAV
        case "describe":
            return DESCRIBE
        case "chat":
            return CHAT
        case _:
            assert_never(name)


KINDS: tuple[WorkloadKind, ...] = (NAV, DESCRIBE, CHAT)


SCORE_LEGEND = "; ".join(f"{k.name} {s.label}" for k in KINDS for s in k.scores[:1])  # what a score column shows


def first_score(w: WorkloadResult) -> float | None:
    """The share of the workload kind's first score, as the results file names it (nav: schema adherence)."""
    figure = w.metrics.scores.get(w.workload.scores[0].key) if w.workload.scores else None
    return None if figure is None else figure.share


def max_tokens(workload: Workload) -> int:
    """The plan's max_tokens, or its kind's default."""
    return workload.max_tokens or kind_of(workload.kind).default_max_tokens
