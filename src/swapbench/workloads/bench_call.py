"""One bench of one target, as one frozen object: what `app.bench.measure` is asked to do.

Its caller builds it once: the `bench` command from its options, the window (through its host) with its
deadline, its stop request, the extension and the candidate's VRAM. Nothing else is passed beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from swapbench.core.bench import OnSample
from swapbench.core.results import VramReport
from swapbench.plan.load import LoadedPlan

Expect = Callable[[str, str, int], None]  # (target, workload, requests to come): announced before the first
Save = Callable[[Path, str], Path | None]  # (path, text) -> where it was written (a rescue folder), or None


@dataclass(frozen=True)
class BenchCall:
    loaded: LoadedPlan
    target: str  # "baseline" or a candidate's label
    only: tuple[str, ...] = ()  # the workloads to run, by name; empty: every one
    wait_ready_s: float = 0.0  # how long to wait while the server answers 503 loading
    output_dir: Path | None = None  # the results go in OUTPUT_DIR/RUN_ID/; default the plan's [run].output_dir
    run_id: str | None = None  # default a new one
    file_name: str | None = None  # default results-LABEL.json
    extend: bool = False  # the N -> N2 extension of `swapbench run`
    deadline_ns: int | None = None  # on time.perf_counter_ns: stop between samples once reached
    should_stop: Callable[[], bool] | None = None  # a stop was requested: stop between samples
    vram_in_band: Callable[[], bool | None] | None = None  # the extension needs VRAM in its band
    vram: Callable[[], VramReport] | None = None  # the candidate's VRAM once its bench ended: in the one write
    on_sample: OnSample | None = None
    expect: Expect | None = None
    save: Save | None = None  # the window's writer (never raises); default a direct write
