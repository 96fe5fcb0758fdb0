"""Metrics are pure functions of recorded samples: checked against numpy and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from swapbench.core.metrics import latency_stats, workload_metrics
from swapbench.core.results import ADHERENCE, Exchange, ParseOutcome, Sample, ServerTimings, ThinkingLeak, Usage
from swapbench.core.stats import bootstrap_ci, percentile

VALUES = [18.4, 19.1, 17.9, 25.0, 18.8, 18.2, 40.3, 18.5, 18.6, 19.0, 18.3]


@pytest.mark.parametrize("q", [0, 1, 25, 50, 95, 99, 100])
def test_percentile_matches_numpy_linear(q: float) -> None:
    assert percentile(VALUES, q) == pytest.approx(float(np.percentile(VALUES, q)))


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_bootstrap_ci_is_repeatable_and_brackets_the_median() -> None:
    low, high = bootstrap_ci(VALUES) or (0.0, 0.0)
    assert bootstrap_ci(VALUES) == (low, high)
    assert low <= percentile(VALUES, 50) <= high
    assert bootstrap_ci([1.0]) is None


def test_latency_stats() -> None:
    stats = latency_stats(VALUES)
    assert stats is not None
    assert stats.n == len(VALUES)
    assert stats.min == 17.9 and stats.max == 40.3
    assert stats.mean == pytest.approx(sum(VALUES) / len(VALUES))
    assert stats.stdev == pytest.approx(float(np.std(VALUES, ddof=1)))
    assert latency_stats([]) is None


def sample(
    i: int,
    latency: float,
    *,
    error: str | None = None,
    strategy: int | None = 1,
    leak: bool = False,
    offset: float | None = None,
) -> Sample:
    ex = Exchange(
        latency_ms=latency,
        error=error,
        http_status=500 if error else 200,
        content="{}",
        timings=None if error else ServerTimings(prompt_ms=2.0, predicted_ms=latency - 4.0, predicted_n=20),
        usage=None if error else Usage(completion_tokens=20),
    )
    parse = ParseOutcome.model_validate({"strategy": strategy})
    if error:
        parse = ParseOutcome(strategy=None, error="request failed")
    return Sample(
        index=i,
        offset_ms=offset if offset is not None else i * latency,
        exchange=ex,
        parse=parse,
        thinking_leak=ThinkingLeak(marker="<think>", where="content") if leak else None,
    )


def test_workload_metrics_counts_failures_against_adherence() -> None:
    samples = [
        sample(0, 20.0),
        sample(1, 20.0, strategy=2),
        sample(2, 20.0, strategy=3),
        sample(3, 20.0, error="boom"),
        sample(4, 20.0, leak=True),
    ]
    m = workload_metrics(samples, [ADHERENCE])
    assert (m.samples, m.ok, m.errors) == (5, 4, 1)
    assert m.schema_adherence == pytest.approx(3 / 5)  # strategies 1, 2 and the leaky 1 adhere
    assert m.parse_strategies == {"1": 2, "2": 1, "3": 1, "none": 1}
    assert m.thinking_leaks == 1
    assert m.effective_hz == pytest.approx(50.0)
    assert m.decode_tok_s == pytest.approx(20 * 1000 / 16.0)
    assert m.e2e_tok_s == pytest.approx(1000.0)
    assert m.server_latency_ms is not None and m.server_latency_ms.p50 == pytest.approx(18.0)


def test_achieved_hz_uses_the_loop_span() -> None:
    # 3 requests of 10 ms, each started 50 ms apart: span 110 ms -> 27.3 Hz, though 1000/p50 = 100 Hz.
    samples = [sample(i, 10.0, offset=i * 50.0) for i in range(3)]
    m = workload_metrics(samples)
    assert m.achieved_hz == pytest.approx(3 * 1000 / 110)
    assert m.effective_hz == pytest.approx(100.0)
    assert m.schema_adherence is None


def test_no_successful_sample_gives_no_latency() -> None:
    m = workload_metrics([sample(0, 5.0, error="x")], [ADHERENCE])
    assert m.client_latency_ms is None and m.effective_hz is None and m.schema_adherence == 0.0
