"""A/B comparison of two results files, Kayenta-style: per workload and metric, both values, the ratio
candidate/baseline with its 95 % interval, and a verdict against a tolerance — faster, slower, equivalent (the
whole interval within 1 ± tolerance) or inconclusive (the interval straddles an edge of it).

Latency and decode rate: the Hodges-Lehmann shift of log values (a ratio) with the Mann-Whitney interval;
p95 and p99: a bootstrap interval of the ratio of the percentiles. The baseline measured again after the window
(the drift) says whether the host stayed still enough for any of it to be trusted. Refuses unlike runs unless
forced."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import Field, model_validator

from swapbench.core.frozen import Frozen
from swapbench.core.metrics import decode_rates
from swapbench.core.results import Results, Sample, WorkloadResult
from swapbench.core.stats import ShiftVerdict, bootstrap_ratio, classify, hodges_lehmann_ratio, percentile

OLD_SHARES = ("schema adherence", "cache share")
DEFAULT_TOLERANCE = 0.05
TOO_FEW = "too few samples"
JUDGED_VERDICTS = ("faster", "slower", "equivalent", "inconclusive")


class MetricDelta(Frozen):
    metric: str
    baseline: float | None
    candidate: float | None
    delta: float | None = Field(description="candidate - baseline")
    ratio: float | None = Field(None, description="candidate / baseline: the estimate the verdict is judged on")
    ci95: tuple[float, float] | None = Field(None, description="95 % interval of the ratio")
    verdict: str
    method: str | None = None
    share: bool = Field(False, description="The values are shares (0 to 1): shown as percentages.")

    @model_validator(mode="before")
    @classmethod
    def _shares_of_old_files(cls, data: Any) -> Any:
        """Comparisons written before the kinds' scores knew two shares by name."""
        if isinstance(data, dict) and "share" not in data and data.get("metric") in OLD_SHARES:
            return {**data, "share": True}
        return data


class Drift(Frozen):
    """The baseline before the window against the baseline after it: how much the host moved meanwhile."""

    ratio: float
    ci95: tuple[float, float]
    n_before: int
    n_after: int
    trusted: bool = Field(description="|ratio - 1| within the tolerance")


class WorkloadComparison(Frozen):
    workload: str
    rows: list[MetricDelta]
    cache_mode: str = Field("cached", description="fresh: every prompt evaluated; cached: the server's cache allowed")
    judged: bool = Field(True, description="False for a cached workload shown beside a fresh one of its kind")
    drift: Drift | None = None
    warnings: list[str] = Field(default_factory=list)

    @property
    def trusted(self) -> bool:
        return self.drift is None or self.drift.trusted


class Comparison(Frozen):
    """comparison.json and `swapbench compare --json`."""

    schema_version: int = Field(1, description="The layout of this record; a file without one is version 1.")
    baseline: str
    candidate: str
    workloads: list[WorkloadComparison]
    differences: list[str]  # what differed between the runs (empty unless forced)
    tolerance: float = DEFAULT_TOLERANCE

    def row(self, workload: str, metric: str) -> MetricDelta | None:
        w = self.workload(workload)
        return next((r for r in w.rows if r.metric == metric), None) if w else None

    def workload(self, name: str) -> WorkloadComparison | None:
        return next((w for w in self.workloads if w.workload == name), None)


def _frame_set(r: Results) -> str | None:
    if r.frames_sha256 is not None:
        return r.frames_sha256
    return r.image.sha256 if r.image else None


def differences(a: Results, b: Results) -> list[str]:
    """Fields that make two runs unlike: the frames, and per workload its prompt, max_tokens, system, thinking,
    image and cache mode."""
    found = []
    if _frame_set(a) != _frame_set(b):
        found.append("frames (not the same camera frames, in the same order)")
    theirs = {w.workload.name: w.workload for w in b.workloads}
    for w in a.workloads:
        other = theirs.get(w.workload.name)
        if other is None:
            continue
        for field in ("prompt_sha256", "max_tokens", "system", "enable_thinking", "image", "cache_prompt"):
            if getattr(w.workload, field) != getattr(other, field):
                found.append(f"workloads.{w.workload.name}.{field}")
    return found


def _latencies(w: WorkloadResult) -> list[float]:
    return [s.exchange.latency_ms for s in w.samples if s.usable]


def _words(outcome: ShiftVerdict, better: str, worse: str) -> str:
    return {ShiftVerdict.BETTER: better, ShiftVerdict.WORSE: worse}.get(outcome, outcome.value)


def _shifted(metric: str, a: list[float], b: list[float], value: Callable[[Sequence[float]], float],
             tolerance: float, lower_is_better: bool) -> MetricDelta:  # fmt: skip
    """The Hodges-Lehmann ratio of two samples, judged against the tolerance."""
    va, vb = (value(a) if a else None), (value(b) if b else None)
    delta = None if va is None or vb is None else vb - va
    shift = hodges_lehmann_ratio(a, b)
    if shift is None:
        return MetricDelta(metric=metric, baseline=va, candidate=vb, delta=delta, verdict=TOO_FEW)
    outcome = classify(shift.ci95, tolerance, lower_is_better)
    return MetricDelta(metric=metric, baseline=va, candidate=vb, delta=delta, ratio=shift.ratio, ci95=shift.ci95,
                       verdict=_words(outcome, "faster", "slower"), method=shift.method)  # fmt: skip


def _tail(metric: str, a: list[float], b: list[float], q: float, tolerance: float) -> MetricDelta:
    """A latency percentile: the bootstrap interval of the ratio of the two percentiles."""
    va, vb = (percentile(a, q) if a else None), (percentile(b, q) if b else None)
    delta = None if va is None or vb is None else vb - va
    ci = bootstrap_ratio(a, b, q)
    if ci is None or va is None or vb is None or va == 0:
        return MetricDelta(metric=metric, baseline=va, candidate=vb, delta=delta, verdict=TOO_FEW)
    outcome = classify(ci, tolerance, lower_is_better=True)
    verdict = _words(outcome, "faster", "slower")
    return MetricDelta(metric=metric, baseline=va, candidate=vb, delta=delta, ratio=vb / va, ci95=ci,
                       verdict=verdict, method="bootstrap of the percentile ratio")  # fmt: skip


def _plain(metric: str, va: float | None, vb: float | None, higher_is_better: bool) -> MetricDelta:
    delta = None if va is None or vb is None else vb - va
    if delta is None:
        verdict = "not measured"
    elif delta == 0:
        verdict = "same"
    else:
        verdict = "better" if (delta > 0) == higher_is_better else "worse"
    ratio = None if va is None or vb is None or va == 0 else vb / va
    return MetricDelta(metric=metric, baseline=va, candidate=vb, delta=delta, ratio=ratio, verdict=verdict)


def _count(samples: Sequence[Sample], pred: Callable[[Sample], bool]) -> float:
    return float(sum(1 for s in samples if pred(s)))


def _median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def _server(w: WorkloadResult, field: str) -> list[float]:
    found = []
    for s in w.samples:
        t = s.exchange.timings
        if s.usable and t is not None and (v := getattr(t, field)) is not None:
            found.append(float(v))
    return found


def drift(before: WorkloadResult, after: WorkloadResult, tolerance: float) -> Drift | None:
    shift = hodges_lehmann_ratio(_latencies(before), _latencies(after))
    if shift is None:
        return None
    trusted = abs(shift.ratio - 1) <= tolerance
    return Drift(ratio=shift.ratio, ci95=shift.ci95, n_before=shift.n_a, n_after=shift.n_b, trusted=trusted)


def compare_workload(
    a: WorkloadResult,
    b: WorkloadResult,
    vram: tuple[float | None, float | None],
    tolerance: float = DEFAULT_TOLERANCE,
    after: WorkloadResult | None = None,
) -> WorkloadComparison:
    la, lb = _latencies(a), _latencies(b)
    p50 = _shifted("p50 ms", la, lb, _median, tolerance, lower_is_better=True)
    rows = [p50, _tail("p95 ms", la, lb, 95, tolerance), _tail("p99 ms", la, lb, 99, tolerance)]
    ra, rb = decode_rates([s for s in a.samples if s.usable]), decode_rates([s for s in b.samples if s.usable])
    rows.append(_shifted("decode tok/s", ra, rb, _median, tolerance, lower_is_better=False))
    ha, hb = a.metrics.effective_hz, b.metrics.effective_hz
    hz = _plain("effective Hz", ha, hb, higher_is_better=True)
    rows.append(hz.model_copy(update={"verdict": p50.verdict, "method": "1000 / p50: the p50 verdict"}))
    rows.append(_shifted("prefill ms (server)", _server(a, "prompt_ms"), _server(b, "prompt_ms"), _median,
                         tolerance, lower_is_better=True))  # fmt: skip
    share = _plain("cache share", a.metrics.cache_share, b.metrics.cache_share, higher_is_better=False)
    rows.append(share.model_copy(update={"verdict": "not judged", "method": "how much the server reused: context",
                                         "share": True}))  # fmt: skip
    rows.append(_plain("VRAM peak MiB", vram[0], vram[1], higher_is_better=False))
    for spec in a.workload.scores:  # the kind's scores, as the results file names them
        row = _plain(spec.label, _share(a, spec.key), _share(b, spec.key), spec.higher_is_better)
        rows.append(row.model_copy(update={"share": True}))
    rows.append(_plain("thinking leaks", _count(a.samples, lambda s: s.thinking_leak is not None),
                       _count(b.samples, lambda s: s.thinking_leak is not None), False))  # fmt: skip
    rows.append(_plain("degenerate answers", float(a.metrics.degenerate), float(b.metrics.degenerate), False))
    rows.append(_plain("errors", float(a.metrics.errors), float(b.metrics.errors), False))
    moved = drift(a, after, tolerance) if after is not None else None
    warnings = [f"baseline: {w}" for w in a.metrics.warnings] + [f"candidate: {w}" for w in b.metrics.warnings]
    if after is not None and moved is None:
        warnings.insert(0, "the baseline after the window has too few usable samples for a drift figure: whether "
                           "the host stayed steady is unknown")  # fmt: skip
    if moved is not None and not moved.trusted:
        moved_by = f"{moved.ratio - 1:+.1%} between before and after the window (beyond ±{tolerance:.0%})"
        warnings.insert(0, f"the baseline moved {moved_by}: the host was not steady, so no verdict here is trustworthy")
    mode = a.workload.cache_mode if a.workload.cache_mode == b.workload.cache_mode else "mixed"
    return WorkloadComparison(workload=a.workload.name, rows=rows, cache_mode=mode, drift=moved, warnings=warnings)


def _share(w: WorkloadResult, key: str) -> float | None:
    figure = w.metrics.scores.get(key)
    return None if figure is None else figure.share


def _vram_peak(r: Results) -> float | None:
    return r.vram.footprint.peak_mib if r.vram and r.vram.footprint else None


def _judged(workloads: list[WorkloadComparison], kinds: Mapping[str, str]) -> list[WorkloadComparison]:
    """A cached workload beside a fresh one of the same kind is shown, not judged: the fresh figure is what
    production pays for a frame it has never seen."""
    fresh_kinds = {kinds[w.workload] for w in workloads if w.cache_mode == "fresh"}
    return [
        w.model_copy(update={"judged": False}) if w.cache_mode != "fresh" and kinds[w.workload] in fresh_kinds else w
        for w in workloads
    ]


def compare(
    a: Results, b: Results, force: bool = False, tolerance: float = DEFAULT_TOLERANCE, after: Results | None = None
) -> Comparison:
    """Compare baseline `a` with candidate `b` (and `a` with `after`, the baseline measured again after the
    window, for the drift). Raises ValueError naming the differing fields unless forced."""
    found = differences(a, b)
    if found and not force:
        raise ValueError(", ".join(found))
    theirs = {w.workload.name: w for w in b.workloads}
    later = {w.workload.name: w for w in after.workloads} if after is not None else {}
    vram = (_vram_peak(a), _vram_peak(b))
    workloads = [
        compare_workload(w, theirs[w.workload.name], vram, tolerance, later.get(w.workload.name))
        for w in a.workloads
        if w.workload.name in theirs
    ]
    kinds = {w.workload.name: w.workload.kind for w in a.workloads}
    return Comparison(baseline=a.label, candidate=b.label, workloads=_judged(workloads, kinds), differences=found,
                      tolerance=tolerance)  # fmt: skip
