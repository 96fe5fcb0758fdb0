"""The bench loop: warm-up, then sequential samples per workload, interpreted into Samples.

Pure: it talks to the server through the ChatClient protocol and reads time from an injected clock, so it
runs the same against a real llama-server and against a recorded list of exchanges.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from swapbench.core.results import ADHERES, Degenerate, Exchange, ParseOutcome, Sample, WorkloadInfo
from swapbench.core.stats import relative_precision_of_sorted
from swapbench.core.thinking import detect_thinking
from swapbench.errors import EndpointRequestFailed, Interrupted, SwapbenchError, TimeCapReached

MAX_CONSECUTIVE_ERRORS = 3


class ChatClient(Protocol):
    def complete(self, body: bytes, *, stream: bool = False) -> Exchange: ...


@dataclass(frozen=True)
class BenchWorkload:
    """A workload ready to send: its description, one request body per frame or per prompt (one with a single
    image or none), its parse contract (nav: its outcome scores `adheres`) and its kind's scorer. Request k
    sends body k mod len(bodies), on every target alike."""

    info: WorkloadInfo
    bodies: tuple[dict[str, Any], ...]
    parse: Callable[[str | None], ParseOutcome] | None
    framed: bool = False  # the bodies carry the run's frames: samples record which one they sent
    score: Callable[[int, str | None], dict[str, bool]] | None = None  # (body index, answer or None) -> scores
    itemised: bool = False  # the bodies carry different prompts: samples record which one they sent

    @property
    def body(self) -> dict[str, Any]:
        """The first frame's body (the smoke test sends it)."""
        return self.bodies[0]

    def encoded_all(self, stream: bool) -> list[bytes]:
        extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
        return [json.dumps(body | extra, separators=(",", ":")).encode() for body in self.bodies]

    def encoded(self, stream: bool) -> bytes:
        return self.encoded_all(stream)[0]

    def frame(self, k: int) -> int | None:
        return k % len(self.bodies) if self.framed else None

    def item(self, k: int) -> int | None:
        return k % len(self.bodies) if self.itemised else None


@dataclass
class WorkloadRun:
    """What one workload gathered, and why it stopped early if it did."""

    workload: BenchWorkload
    warmup: list[Sample] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    error: SwapbenchError | None = None
    extension: str | None = None
    ordered: list[float] = field(default_factory=list)  # usable latencies (> 0, finite), sorted as they arrive

    def keep(self, sample: Sample) -> None:
        """A measured sample: kept, and its latency placed in `ordered` when usable."""
        self.samples.append(sample)
        latency = sample.exchange.latency_ms
        if sample.usable and 0 < latency < math.inf:
            bisect.insort(self.ordered, latency)


@dataclass(frozen=True)
class BenchSettings:
    warmup: int
    samples: int
    stream: bool = False
    deadline_ns: int | None = None  # on the injected clock; reached -> stop between samples
    should_stop: Callable[[], bool] | None = None  # a stop was requested (SIGINT/SIGTERM): stop between samples
    extension: int = 0  # more samples after `samples`, if `extend_if` allows (the user plan's 20 -> 100)
    extend_if: Callable[[Sequence[Sample]], tuple[bool, str]] | None = None
    precision: float | None = None  # adaptive: stop the extension once the p50 is known to +- this (relative)


def extension_verdict(samples: Sequence[Sample], vram_in_band: bool | None = None) -> tuple[bool, str]:
    """The user plan's rule for the 20 -> 100 extension: extend unless a thinking marker tripped or VRAM left its
    band. Never gated on latency."""
    leaks = sum(1 for s in samples if s.thinking_leak is not None)
    if leaks:
        return False, f"not extended: a thinking marker tripped in {leaks} of {len(samples)} samples"
    if vram_in_band is False:
        return False, "not extended: VRAM drifted out of its band"
    note = "" if vram_in_band is not None else " (VRAM band not evaluated: no GPU reading)"
    return True, f"extended: no thinking marker in {len(samples)} samples{note}"


OnSample = Callable[[WorkloadRun, Sample, bool], None]  # (run, sample, is_warmup)


def degenerate(exchange: Exchange, parse: ParseOutcome | None) -> Degenerate | None:
    """An answer with nothing usable in it: no text at all (or whitespace only), or a nav answer that
    max_tokens cut before it met its contract. A describe answer cut by max_tokens is usable: its text is there."""
    if exchange.error is not None:
        return None
    if not (exchange.content or "").strip():
        return "empty"
    if exchange.finish_reason == "length" and parse is not None and not parse.adheres:
        return "cut"
    return None


def interpret(
    index: int, offset_ms: float, exchange: Exchange, workload: BenchWorkload, frame: int | None = None
) -> Sample:
    """Attach the parse outcome (nav), the kind's scores, the thinking-leak verdict and what makes the answer
    degenerate. A failed request scores false on every score its kind gives the request."""
    parse, scores = None, dict[str, bool]()
    answer = exchange.content if exchange.error is None else None
    if workload.parse is not None:
        failed = ParseOutcome(strategy=None, error="request failed")
        parse = workload.parse(answer) if exchange.error is None else failed
        scores[ADHERES] = parse.adheres
    if workload.score is not None:
        scores |= workload.score(index % len(workload.bodies), answer)
    leak = detect_thinking(exchange.content, exchange.reasoning_content) if exchange.error is None else None
    return Sample(index=index, offset_ms=offset_ms, exchange=exchange, parse=parse, thinking_leak=leak,
                  frame=frame, degenerate=degenerate(exchange, parse), scores=scores,
                  item=workload.item(index))  # fmt: skip


def _failure(run: WorkloadRun, sample: Sample, why: str) -> EndpointRequestFailed:
    ex = sample.exchange
    status = f"HTTP {ex.http_status}: " if ex.http_status else ""
    return EndpointRequestFailed(
        f"workload {run.workload.info.name!r}: {why}: {status}{ex.error}",
        hint="the server's message is above; e.g. 'image input is not supported' means start it with --mmproj",
        status=ex.http_status,
    )


def _request(client: ChatClient, body: bytes, stream: bool, run: WorkloadRun) -> Exchange | SwapbenchError:
    """One request; the server going away or Ctrl-C come back as the error that stops the run."""
    try:
        return client.complete(body, stream=stream)
    except SwapbenchError as exc:
        return exc
    except KeyboardInterrupt:
        return Interrupted(
            f"interrupted during workload {run.workload.info.name!r} after {len(run.samples)} samples",
            hint="run it again for the full count; the samples so far are kept",
        )


def _stop_reason(run: WorkloadRun, sample: Sample, is_warmup: bool, consecutive: int) -> SwapbenchError | None:
    if sample.exchange.error is None:
        return None
    if is_warmup:
        return _failure(run, sample, "the warm-up request failed")
    if consecutive >= MAX_CONSECUTIVE_ERRORS:
        return _failure(run, sample, f"{consecutive} requests failed in a row")
    return None


def _halt(run: WorkloadRun, settings: BenchSettings, clock: Callable[[], int]) -> SwapbenchError | None:
    """Checked before every request: a stop request or the deadline ends the workload, samples kept."""
    name, done = run.workload.info.name, len(run.samples)
    if settings.should_stop is not None and settings.should_stop():
        return Interrupted(f"stop requested during workload {name!r} after {done} samples", hint="samples are kept")
    if settings.deadline_ns is not None and clock() >= settings.deadline_ns:
        return TimeCapReached(
            f"time cap reached during workload {name!r} after {done} samples",
            hint="raise [run].time_cap_s or lower [run].samples",
        )
    return None


def _extension(run: WorkloadRun, settings: BenchSettings) -> int:
    """After the first N samples: how many more (the user plan's 20 -> 100), noted on the run."""
    if not settings.extension or run.error is not None:
        return 0
    allowed, note = settings.extend_if(run.samples) if settings.extend_if else (True, "extended")
    run.extension = note
    return settings.extension if allowed else 0


def _precise_enough(run: WorkloadRun, settings: BenchSettings, planned: int) -> bool:
    """Adaptive sample size: during the extension, stop as soon as the p50 is known to the asked precision."""
    if settings.precision is None or planned <= settings.warmup + settings.samples:
        return False
    reached = relative_precision_of_sorted(run.ordered)
    if reached is None or reached > settings.precision:
        return False
    total = settings.samples + settings.extension
    run.extension = (f"{run.extension}; " if run.extension else "") + (
        f"stopped at {len(run.samples)} of {total} samples: p50 known to +-{reached:.1%} at 95 % "
        f"(asked +-{settings.precision:.1%})"
    )
    return True


def run_workload(
    client: ChatClient,
    workload: BenchWorkload,
    settings: BenchSettings,
    clock: Callable[[], int],
    on_sample: OnSample | None = None,
) -> WorkloadRun:
    """Warm-up requests (excluded), then `settings.samples` sequential requests, then the extension if allowed.

    Stops early, keeping what it gathered, when: a warm-up request fails (the server cannot serve this
    workload at all), MAX_CONSECUTIVE_ERRORS measured requests fail in a row, the server goes away, a stop
    is requested, or the deadline passes. Anything unexpected (a bug, Ctrl-C outside a request) stops it the
    same way: the samples gathered are always returned, never lost with an exception."""
    run = WorkloadRun(workload)
    try:
        _gather(run, client, workload, settings, clock, on_sample)
    except KeyboardInterrupt:
        run.error = Interrupted(
            f"interrupted during workload {workload.info.name!r} after {len(run.samples)} samples",
            hint="run it again for the full count; the samples so far are kept",
        )
    except Exception as exc:
        run.error = EndpointRequestFailed(
            f"workload {workload.info.name!r} stopped after {len(run.samples)} samples: {type(exc).__name__}: {exc}",
            hint="the samples so far are kept; this is a bug in swapbench or in a plug-in: please report it",
        )
    return run


def _gather(
    run: WorkloadRun,
    client: ChatClient,
    workload: BenchWorkload,
    settings: BenchSettings,
    clock: Callable[[], int],
    on_sample: OnSample | None,
) -> None:
    bodies = workload.encoded_all(settings.stream)
    origin: int | None = None
    consecutive, i = 0, 0
    planned = settings.warmup + settings.samples
    while True:
        if i == settings.warmup + settings.samples and planned == i:
            planned += _extension(run, settings)
        if settings.warmup + settings.samples < i < planned and _precise_enough(run, settings, planned):
            break
        if i >= planned:
            break
        run.error = _halt(run, settings, clock)
        if run.error is not None:
            break
        is_warmup = i < settings.warmup
        k = i if is_warmup else i - settings.warmup  # measured sample k sends frame k mod count on every target
        started = clock()
        origin = started if origin is None and not is_warmup else origin
        exchange = _request(client, bodies[k % len(bodies)], settings.stream, run)
        if isinstance(exchange, SwapbenchError):
            run.error = exchange
            break
        offset_ms = 0.0 if origin is None else (started - origin) / 1e6
        try:
            sample = interpret(k, offset_ms, exchange, workload, workload.frame(k))
        except SwapbenchError as exc:  # a user parser broke its contract
            run.error = exc
            break
        if is_warmup:
            run.warmup.append(sample)
        else:
            run.keep(sample)
        if on_sample is not None:
            on_sample(run, sample, is_warmup)
        consecutive = 0 if exchange.error is None else consecutive + 1
        run.error = _stop_reason(run, sample, is_warmup, consecutive)
        if run.error is not None:
            break
        i += 1


def run_workloads(
    client: ChatClient,
    workloads: Sequence[BenchWorkload],
    settings: BenchSettings,
    clock: Callable[[], int],
    on_sample: OnSample | None = None,
) -> list[WorkloadRun]:
    """Each workload in turn; after one stops on an error, the rest are not started."""
    runs: list[WorkloadRun] = []
    for workload in workloads:
        run = run_workload(client, workload, settings, clock, on_sample)
        runs.append(run)
        if run.error is not None:
            break
    return runs
