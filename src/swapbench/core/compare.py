"""A/B comparison of two results files: per workload and metric, both values, the difference, a bootstrap 95 % CI
of the difference where samples allow one, and a verdict in plain words. Refuses unlike runs unless forced."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict

from swapbench.core.metrics import decode_rates, percentile
from swapbench.core.results import Results, Sample, WorkloadResult

RESAMPLES = 2000
SEED = 20260414


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricDelta(Record):
    metric: str
    baseline: float | None
    candidate: float | None
    delta: float | None
    ci95: tuple[float, float] | None
    verdict: str


class WorkloadComparison(Record):
    workload: str
    rows: list[MetricDelta]


class Comparison(Record):
    baseline: str
    candidate: str
    workloads: list[WorkloadComparison]
    differences: list[str]  # what differed between the runs (empty unless forced)

    def row(self, workload: str, metric: str) -> MetricDelta | None:
        for w in self.workloads:
            if w.workload == workload:
                return next((r for r in w.rows if r.metric == metric), None)
        return None


def differences(a: Results, b: Results) -> list[str]:
    """Fields that make two runs unlike: the image, and per workload its prompt, max_tokens, system, thinking."""
    found = []
    if (a.image.sha256 if a.image else None) != (b.image.sha256 if b.image else None):
        found.append("image.sha256 (not the same camera image)")
    theirs = {w.workload.name: w.workload for w in b.workloads}
    for w in a.workloads:
        other = theirs.get(w.workload.name)
        if other is None:
            continue
        for field in ("prompt_sha256", "max_tokens", "system", "enable_thinking", "image"):
            if getattr(w.workload, field) != getattr(other, field):
                found.append(f"workloads.{w.workload.name}.{field}")
    return found


def _latencies(w: WorkloadResult) -> list[float]:
    return [s.exchange.latency_ms for s in w.samples if s.ok]


def bootstrap_diff(
    a: Sequence[float], b: Sequence[float], stat: Callable[[Sequence[float]], float]
) -> tuple[float, float] | None:
    """Percentile-bootstrap 95 % CI of stat(b) - stat(a), both resampled independently; seeded, repeatable."""
    if len(a) < 2 or len(b) < 2:
        return None
    rng = random.Random(SEED)  # noqa: S311 -- statistics, not secrets
    diffs = sorted(stat(rng.choices(b, k=len(b))) - stat(rng.choices(a, k=len(a))) for _ in range(RESAMPLES))
    return percentile(diffs, 2.5), percentile(diffs, 97.5)


def _verdict(ci: tuple[float, float] | None, lower_is_better: bool, better: str, worse: str) -> str:
    if ci is None:
        return "too few samples"
    if ci[1] < 0:
        return better if lower_is_better else worse
    if ci[0] > 0:
        return worse if lower_is_better else better
    return "no significant difference"


def _sampled(metric: str, a: list[float], b: list[float], stat: Callable[[Sequence[float]], float],
             lower_is_better: bool, better: str, worse: str) -> MetricDelta:  # fmt: skip
    va = stat(a) if a else None
    vb = stat(b) if b else None
    ci = bootstrap_diff(a, b, stat)
    delta = None if va is None or vb is None else vb - va
    return MetricDelta(metric=metric, baseline=va, candidate=vb, delta=delta, ci95=ci,
                       verdict=_verdict(ci, lower_is_better, better, worse))  # fmt: skip


def _plain(metric: str, va: float | None, vb: float | None, higher_is_better: bool) -> MetricDelta:
    delta = None if va is None or vb is None else vb - va
    if delta is None:
        verdict = "not measured"
    elif delta == 0:
        verdict = "same"
    else:
        verdict = "better" if (delta > 0) == higher_is_better else "worse"
    return MetricDelta(metric=metric, baseline=va, candidate=vb, delta=delta, ci95=None, verdict=verdict)


def _count(samples: Sequence[Sample], pred: Callable[[Sample], bool]) -> float:
    return float(sum(1 for s in samples if pred(s)))


def _pct(q: float) -> Callable[[Sequence[float]], float]:
    return lambda values: percentile(values, q)


def compare_workload(
    a: WorkloadResult, b: WorkloadResult, vram: tuple[float | None, float | None]
) -> WorkloadComparison:
    la, lb = _latencies(a), _latencies(b)
    rows = [_sampled(f"p{q} ms", la, lb, _pct(q), True, "faster", "slower") for q in (50, 95, 99)]
    rows.append(_sampled("decode tok/s", decode_rates(a.samples), decode_rates(b.samples), statistics.median,
                         False, "faster", "slower"))  # fmt: skip
    ha, hb = a.metrics.effective_hz, b.metrics.effective_hz
    rows.append(
        MetricDelta(
            metric="effective Hz",
            baseline=ha,
            candidate=hb,
            delta=None if ha is None or hb is None else hb - ha,
            ci95=None,
            verdict=rows[0].verdict,
        )
    )  # fmt: skip  -- 1000/p50: the p50 verdict
    rows.append(_plain("VRAM peak MiB", vram[0], vram[1], higher_is_better=False))
    if a.workload.kind == "nav":
        rows.append(_plain("schema adherence", a.metrics.schema_adherence, b.metrics.schema_adherence, True))
    rows.append(_plain("thinking leaks", _count(a.samples, lambda s: s.thinking_leak is not None),
                       _count(b.samples, lambda s: s.thinking_leak is not None), False))  # fmt: skip
    rows.append(_plain("errors", float(a.metrics.errors), float(b.metrics.errors), False))
    return WorkloadComparison(workload=a.workload.name, rows=rows)


def _vram_peak(r: Results) -> float | None:
    return r.vram.footprint.peak_mib if r.vram and r.vram.footprint else None


def compare(a: Results, b: Results, force: bool = False) -> Comparison:
    """Compare baseline `a` with candidate `b`. Raises ValueError naming the differing fields unless forced."""
    found = differences(a, b)
    if found and not force:
        raise ValueError(", ".join(found))
    theirs = {w.workload.name: w for w in b.workloads}
    vram = (_vram_peak(a), _vram_peak(b))
    workloads = [compare_workload(w, theirs[w.workload.name], vram) for w in a.workloads if w.workload.name in theirs]
    return Comparison(baseline=a.label, candidate=b.label, workloads=workloads, differences=found)
