"""The statistics of long runs stay near-linear in memory: the order statistics of the m * n pairwise differences
are selected without forming them all, and the bootstrap resamples in small chunks — with the very same figures as
forming everything at once (bench/scaling.py measures the whole tool)."""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from swapbench.core import stats

MIB = 2**20


def every_pair(a: list[float], b: list[float]) -> tuple[float, tuple[float, float]]:
    """The Hodges-Lehmann ratio and interval from every pairwise difference, formed and fully sorted."""
    x, y = np.log(np.asarray(a)), np.log(np.asarray(b))
    m, n = x.size, y.size
    lower, _ = stats.rank_bounds(m, n)
    if m * n > stats.MAX_PAIRS:  # thinned as hodges_lehmann_ratio thins
        x, y = stats._thin(x), stats._thin(y)
        lower = max(1, min(round(lower * x.size * y.size / (m * n)), x.size * y.size // 2))
    diffs = np.sort(np.subtract.outer(y, x).ravel())
    median = (float(diffs[(diffs.size - 1) // 2]) + float(diffs[diffs.size // 2])) / 2
    return math.exp(median), (math.exp(float(diffs[lower - 1])), math.exp(float(diffs[diffs.size - lower])))


def lognormal(n: int, seed: int, scale: float = 1.0) -> list[float]:
    return list(np.random.default_rng(seed).lognormal(6.0, 0.1, n) * scale)


def whole_ms(n: int, seed: int) -> list[float]:
    """Latencies rounded to the millisecond: many ties."""
    return list(np.round(np.random.default_rng(seed).lognormal(6.0, 0.03, n)))


def four_values(n: int, seed: int) -> list[float]:
    return list(np.random.default_rng(seed).choice([100.0, 101.0, 102.0, 250.0], n))


SAMPLES: dict[str, Callable[[], tuple[list[float], list[float]]]] = {
    "600 x 600 lognormal": lambda: (lognormal(600, 1), lognormal(600, 2, 1.04)),
    "700 x 1500 whole ms": lambda: (whole_ms(700, 3), whole_ms(1500, 4)),
    "2100 x 900 four values": lambda: (four_values(2100, 5), four_values(900, 6)),
    "1000 x 1000 all equal": lambda: ([250.0] * 1000, [250.0] * 1000),
    "1000 x 1000 the same sample": lambda: (lognormal(1000, 7), lognormal(1000, 7)),
    "2100 x 2100 thinned": lambda: (lognormal(2100, 8), lognormal(2100, 9, 0.9)),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_hodges_lehmann_is_the_one_every_pair_gives(name: str) -> None:
    a, b = SAMPLES[name]()
    assert len(a) * len(b) > stats.PAIRS_AT_ONCE  # the selection, not the partition of every pair
    shift = stats.hodges_lehmann_ratio(a, b)
    assert shift is not None
    assert (shift.ratio, shift.ci95) == every_pair(a, b)


def test_selection_finds_every_order_statistic_through_many_rounds() -> None:
    """Small matrices, few draws and a small last window: many rounds, brackets that miss, ties everywhere."""
    rng = np.random.default_rng(11)
    for trial in range(120):
        m, n = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        if trial % 3 == 0:
            x, y = rng.normal(size=m), rng.normal(size=n)
        elif trial % 3 == 1:
            x, y = np.round(rng.normal(size=m), 1), np.round(rng.normal(size=n), 1)
        else:
            x, y = rng.choice([0.0, 1.0], m), rng.choice([0.0, 1.0, 2.0], n)
        ordered = np.sort(np.subtract.outer(y, x).ravel())
        for k in {0, m * n // 2, m * n - 1, int(rng.integers(m * n))}:
            found = stats._pair_order_statistic(np.sort(y), np.sort(x)[::-1], k, np.random.default_rng(k),
                                                at_once=4, draws=16)  # fmt: skip
            assert found == ordered[k], (m, n, k)


@contextmanager
def peak_mib() -> Iterator[list[float]]:
    """The peak of traced memory (numpy's arrays included) in the block, in MiB."""
    found: list[float] = []
    tracemalloc.start()
    try:
        yield found
    finally:
        found.append(tracemalloc.get_traced_memory()[1] / MIB)
        tracemalloc.stop()


def test_hodges_lehmann_of_long_samples_holds_no_matrix_of_pairs() -> None:
    a, b = lognormal(2000, 12), lognormal(2000, 13, 1.02)
    stats.rank_bounds(2000, 2000)  # cached: not part of the peak
    with peak_mib() as peak:
        stats.hodges_lehmann_ratio(a, b)
    assert peak[0] < 16  # every pair formed: 4M differences, 61 MiB


def test_bootstrap_of_a_long_sample_resamples_in_small_chunks() -> None:
    values = lognormal(3000, 14)
    with peak_mib() as peak:
        stats.bootstrap_ci(values)
    assert peak[0] < 16  # 4M resampled values at once: 92 MiB


@pytest.mark.parametrize("n", [7, 130, 1000, 3000])
def test_chunks_draw_what_one_draw_would(n: int) -> None:
    """The generator gives the same indices in chunks as all at once: the chunk size changes no figure."""
    values = np.asarray(lognormal(n, 15))
    at_once = np.random.default_rng(stats.SEED).integers(0, n, size=(2000, n))
    expected = np.percentile(values[at_once], 95, axis=1, method="linear")
    found = stats._resampled_percentiles(values, 95, 2000, np.random.default_rng(stats.SEED))
    assert np.array_equal(found, expected)
