"""Metrics as pure functions over recorded samples, so a results file can be re-analysed anywhere."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from swapbench.core.results import ADHERES, LatencyStats, Sample, ScoreFigure, ScoreSpec, WorkloadMetrics
from swapbench.core.stats import bootstrap_ci, percentile, relative_precision, spread


def latency_stats(values: Sequence[float]) -> LatencyStats | None:
    if not values:
        return None
    return LatencyStats(
        n=len(values),
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        p99=percentile(values, 99),
        mean=statistics.fmean(values),
        stdev=statistics.stdev(values) if len(values) > 1 else 0.0,
        min=min(values),
        max=max(values),
        p50_ci95=bootstrap_ci(values),
    )


def _median_or_none(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def decode_rates(samples: Sequence[Sample]) -> list[float]:
    rates = []
    for s in samples:
        t = s.exchange.timings
        if t and t.predicted_n and t.predicted_ms:
            rates.append(t.predicted_n * 1000.0 / t.predicted_ms)
    return rates


def e2e_rates(samples: Sequence[Sample]) -> list[float]:
    rates = []
    for s in samples:
        u = s.exchange.usage
        if u and u.completion_tokens and s.exchange.latency_ms > 0:
            rates.append(u.completion_tokens * 1000.0 / s.exchange.latency_ms)
    return rates


def achieved_hz(samples: Sequence[Sample]) -> float | None:
    """Completed requests per second over the measured loop, first send to last byte."""
    if len(samples) < 1:
        return None
    span_ms = max(s.offset_ms + s.exchange.latency_ms for s in samples) - min(s.offset_ms for s in samples)
    return len(samples) * 1000.0 / span_ms if span_ms > 0 else None


def strategy_counts(samples: Sequence[Sample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in samples:
        if s.parse is not None:
            key = str(s.parse.strategy) if s.parse.strategy else "none"
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def score_figures(samples: Sequence[Sample], specs: Sequence[ScoreSpec]) -> dict[str, ScoreFigure]:
    """Each score's share over the samples that carry it (a failed request carries it as false)."""
    found = {}
    for spec in specs:
        values = [s.scores[spec.key] for s in samples if spec.key in s.scores]
        passed = sum(values)
        found[spec.key] = ScoreFigure(n=len(values), passed=passed, share=passed / len(values) if values else None)
    return found


def cache_share(samples: Sequence[Sample]) -> float | None:
    """Share of prompt tokens the server took from its prompt cache rather than evaluating: llama-server's
    timings.cache_n over cache_n + prompt_n, summed. None when the server reports no such timings."""
    cached = evaluated = 0
    for s in samples:
        t = s.exchange.timings
        if s.ok and t is not None and t.cache_n is not None and t.prompt_n is not None:
            cached, evaluated = cached + t.cache_n, evaluated + t.prompt_n
    return cached / (cached + evaluated) if cached + evaluated else None


MOSTLY_CACHED = 0.5


def figure_warnings(samples: Sequence[Sample], cache_prompt: bool, share: float | None) -> list[str]:
    """What weakens this workload's figures, in words: degenerate answers, cache, spread, outliers."""
    found = []
    bad = [s for s in samples if s.degenerate is not None]
    if bad:
        found.append(f"{len(bad)} of {len(samples)} answers are degenerate ({_kinds(bad)}): not counted as latency")
    if cache_prompt and share is not None and share >= MOSTLY_CACHED:
        found.append(
            f"{share:.0%} of prompt tokens came from the server's cache: the latency is mostly decode, not what "
            "a new frame costs; set cache_prompt = false on the workload for the fresh figure"
        )
    if (found_spread := spread([s.exchange.latency_ms for s in samples if s.usable])) is not None:
        found += found_spread.warnings
    return found


def _kinds(bad: Sequence[Sample]) -> str:
    counts = degenerate_counts(bad)
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def degenerate_counts(samples: Sequence[Sample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in samples:
        if s.degenerate is not None:
            counts[s.degenerate] = counts.get(s.degenerate, 0) + 1
    return dict(sorted(counts.items()))


def workload_metrics(
    samples: Sequence[Sample], scores: Sequence[ScoreSpec] = (), cache_prompt: bool = True
) -> WorkloadMetrics:
    """All metrics of one workload; `scores` are the per-sample scores its kind records (nav: adherence to its
    parse contract). Latency, tok/s and Hz are over usable answers: a transport error or a degenerate answer is
    counted, not timed."""
    ok = [s for s in samples if s.usable]
    client = [s.exchange.latency_ms for s in ok]
    server = [t for s in ok if s.exchange.timings and (t := s.exchange.timings.total_ms) is not None]
    ttft = [s.exchange.ttft_ms for s in ok if s.exchange.ttft_ms is not None]
    prompt = [t for s in ok if s.exchange.timings and (t := s.exchange.timings.prompt_ms) is not None]
    decode = [t for s in ok if s.exchange.timings and (t := s.exchange.timings.predicted_ms) is not None]
    client_stats = latency_stats(client)
    share = cache_share(samples)
    figures = score_figures(samples, scores)
    return WorkloadMetrics(
        samples=len(samples),
        ok=len(ok),
        errors=sum(1 for s in samples if not s.ok),
        degenerate=sum(1 for s in samples if s.degenerate is not None),
        degenerate_kinds=degenerate_counts(samples),
        client_latency_ms=client_stats,
        server_latency_ms=latency_stats(server),
        ttft_ms=latency_stats(ttft),
        decode_tok_s=_median_or_none(decode_rates(ok)),
        e2e_tok_s=_median_or_none(e2e_rates(ok)),
        effective_hz=1000.0 / client_stats.p50 if client_stats and client_stats.p50 > 0 else None,
        achieved_hz=achieved_hz(ok),
        schema_adherence=figures[ADHERES].share if ADHERES in figures else None,
        parse_strategies=strategy_counts(samples),
        thinking_leaks=sum(1 for s in samples if s.thinking_leak is not None),
        cache_share=share,
        prompt_ms=latency_stats(prompt),
        decode_ms=latency_stats(decode),
        p50_precision=relative_precision(client),
        warnings=figure_warnings(samples, cache_prompt, share),
        scores=figures,
    )
