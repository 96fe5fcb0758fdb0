"""What a workload kind supplies, in one place: the seam a new kind plugs into.

A kind is its plan model (plan/models.py: a member of the `Workload` union) and one module here holding a
`WorkloadKind`: its defaults, what it reads and sends, how it scores each answer, the figures its scores give,
its decision rules and when they apply, and what the reports show of it. The bench, the metrics, the
comparison, the decision, the export and the reports ask the registry (core/kinds/__init__.py); none of them
names a kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from swapbench.core.compare import Comparison
from swapbench.core.judgment import Judgment
from swapbench.core.results import Results, ScoreSpec, WorkloadResult
from swapbench.core.rules import Rule
from swapbench.plan.models import Decision, PlanPath, Workload

MAX_PROMPT_BYTES = 100_000  # one prompt, whichever way it was given
# (path as the plan gave it, the TOML key it came from) -> the file's bytes; the caller resolves, caps and reads
ReadFile = Callable[[PlanPath, str], bytes]
# (index of the prompt sent, the answer's text or None for a failed request) -> the sample's scores
Scorer = Callable[[int, str | None], dict[str, bool]]


@dataclass(frozen=True)
class Prompts:
    """What a kind sends, when it is not one prompt: the texts (one request each, in turn), how the results
    file names them (`text`, hashed to refuse comparing unlike runs), and the scorer of each answer."""

    texts: tuple[str, ...]
    text: str
    sha256: str
    score: Scorer | None = None
    systems: tuple[str | None, ...] = ()  # a system message per text, where it gives its own


@dataclass(frozen=True)
class RuleContext:
    """What a kind's rules are judged on: the candidate's workloads of that kind (`judged`: those its
    verdicts count, a cached one beside a fresh one aside), the comparison with the baseline, a judgment."""

    rule: Decision
    candidate: Results
    workloads: list[WorkloadResult]
    judged: list[WorkloadResult]
    judgment: Judgment | None
    comparison: Comparison | None
    run_dir: str


@dataclass(frozen=True)
class PlanFacts:
    """What `check --dry-run` knows of the plan when it warns about rules that cannot apply."""

    present: bool  # the plan has a workload of this kind
    samples: int
    has_baseline: bool


class WorkloadKind:
    """The defaults are those of a kind with nothing special: one prompt, no scores, no rules of its own."""

    name: ClassVar[str]
    default_max_tokens: ClassVar[int]
    scores: ClassVar[tuple[ScoreSpec, ...]] = ()
    shows_answers: ClassVar[bool] = False  # the report quotes its first answers
    judged_by_person: ClassVar[bool] = False  # a blinded A/B page and `decide --describe`
    headline: ClassVar[bool] = False  # its p50 and adherence are the registry document's row

    def default_prompt(self) -> str | None:
        """The prompt when the plan gives none; None: this kind needs the plan to say what to send."""
        return None

    def default_schema(self, workload: Workload) -> dict[str, Any] | None:
        """The JSON Schema its answers are held to when the plan names none."""
        return None

    def prompts(self, workload: Workload, where: str, read: ReadFile) -> Prompts | None:
        """What to send when it is not one prompt (chat: a file of them); None: one prompt."""
        return None

    def section(self, w: WorkloadResult) -> tuple[str, list[str]] | None:
        """What the reports add for one target's workload of this kind: a title and its lines; None: nothing."""
        return None

    def rules(self, ctx: RuleContext) -> list[tuple[str, Rule]]:
        """Its rules, each under the `[decision]` key it carries out (the decision lists them in that order)."""
        return []

    def rule_warnings(self, rule: Decision, facts: PlanFacts) -> list[tuple[str, str]]:
        """For the dry run: its rules that cannot apply to the plan, or can never be met, by `[decision]` key."""
        return []


def workloads_of(candidate: Results, kind: str) -> list[WorkloadResult]:
    return [w for w in candidate.workloads if w.workload.kind == kind]


def usable_latencies(w: WorkloadResult) -> Sequence[float]:
    return [s.exchange.latency_ms for s in w.samples if s.usable]
