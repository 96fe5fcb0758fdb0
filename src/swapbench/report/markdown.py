"""report.md: the numbers in the user plan's terms, the comparison, the decision and the swap — a pure renderer."""

from __future__ import annotations

from collections.abc import Sequence

from jinja2 import Environment, PackageLoader, StrictUndefined

from swapbench.core.compare import Comparison
from swapbench.core.decision import DecisionResult
from swapbench.core.kinds import SCORE_LEGEND, first_score, kind_of
from swapbench.core.results import Results
from swapbench.core.steps import SwapReport


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _ci(value: tuple[float, float] | None) -> str:
    return "—" if value is None else f"{value[0]:.1f} to {value[1]:.1f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _gib(value: float | None) -> str:
    return "unknown" if value is None else f"{value / 1024:.2f} GiB"


# Markdown, not HTML: nothing to escape.
_ENV = Environment(loader=PackageLoader("swapbench.report"), undefined=StrictUndefined, autoescape=False)  # noqa: S701


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"x{value:.3f}"


def _interval(value: tuple[float, float] | None) -> str:
    return "—" if value is None else f"x{value[0]:.3f} to x{value[1]:.3f}"


_ENV.globals.update(
    num=_num,
    ci=_ci,
    pct=_pct,
    gib=_gib,
    ratio=_ratio,
    interval=_interval,
    kind=kind_of,
    first_score=first_score,
    scores=SCORE_LEGEND,
)


def render_markdown(
    results: Sequence[Results],
    comparison: Comparison | None = None,
    decision: DecisionResult | None = None,
    swap: SwapReport | None = None,
) -> str:
    template = _ENV.get_template("report.md.j2")
    text = template.render(results=results, comparison=comparison, decision=decision, swap=swap)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip() + "\n"
