"""The bench loop with a scripted in-memory client: warm-up exclusion, early stops, deadline."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from swapbench.core.bench import BenchSettings, BenchWorkload, run_workload, run_workloads
from swapbench.core.results import Exchange, WorkloadInfo
from swapbench.core.stats import relative_precision, relative_precision_of_sorted
from swapbench.errors import EndpointRequestFailed, EndpointUnreachable
from swapbench.workloads.nav import parse_nav

INFO = WorkloadInfo(
    name="nav",
    kind="nav",
    max_tokens=20,
    prompt="p",
    prompt_sha256="0" * 64,
    system=None,
    image=False,
    enable_thinking=False,
)
WORKLOAD = BenchWorkload(info=INFO, bodies=({"messages": []},), parse=parse_nav)
OK = Exchange(latency_ms=10.0, http_status=200, content='{"action": "left"}')
FAIL = Exchange(latency_ms=1.0, http_status=500, error="image input is not supported")


class ScriptedClient:
    """Answers from a script; an exception in the script is raised, like the real adapter does."""

    def __init__(self, script: list[Exchange | Exception]) -> None:
        self.script = iter(script)
        self.bodies: list[bytes] = []

    def complete(self, body: bytes, *, stream: bool = False) -> Exchange:
        self.bodies.append(body)
        item = next(self.script)
        if isinstance(item, Exception):
            raise item
        return item


def ticking(step_ns: int = 1_000_000) -> Iterator[int]:
    t = 0
    while True:
        yield t
        t += step_ns


def clock_of(it: Iterator[int]) -> Callable[[], int]:
    return lambda: next(it)


def test_warmup_is_excluded_and_samples_are_indexed() -> None:
    client = ScriptedClient([OK] * 5)
    run = run_workload(client, WORKLOAD, BenchSettings(warmup=2, samples=3), clock_of(ticking()))
    assert run.error is None
    assert len(run.warmup) == 2 and [s.index for s in run.samples] == [0, 1, 2]
    assert run.samples[0].offset_ms == 0.0 and run.samples[1].offset_ms > 0
    assert all(s.parse is not None and s.parse.strategy == 1 for s in run.samples)
    assert json.loads(client.bodies[0]) == {"messages": []}


def test_stream_adds_usage_option() -> None:
    client = ScriptedClient([OK])
    run_workload(client, WORKLOAD, BenchSettings(warmup=0, samples=1, stream=True), clock_of(ticking()))
    body = json.loads(client.bodies[0])
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_failed_warmup_stops_with_server_message() -> None:
    run = run_workload(ScriptedClient([FAIL]), WORKLOAD, BenchSettings(warmup=1, samples=5), clock_of(ticking()))
    assert isinstance(run.error, EndpointRequestFailed)
    assert "HTTP 500: image input is not supported" in run.error.message
    assert run.samples == [] and len(run.warmup) == 1


def test_three_failures_in_a_row_stop_but_keep_samples() -> None:
    script: list[Exchange | Exception] = [OK, FAIL, OK, FAIL, FAIL, FAIL, OK]
    run = run_workload(ScriptedClient(script), WORKLOAD, BenchSettings(warmup=0, samples=7), clock_of(ticking()))
    assert isinstance(run.error, EndpointRequestFailed) and "3 requests failed in a row" in run.error.message
    assert len(run.samples) == 6
    assert run.samples[1].parse is not None and run.samples[1].parse.error == "request failed"


def test_server_gone_mid_run_keeps_what_was_gathered() -> None:
    gone = EndpointUnreachable("nothing answers")
    runs = run_workloads(
        ScriptedClient([OK, OK, gone]), [WORKLOAD, WORKLOAD], BenchSettings(warmup=0, samples=5), clock_of(ticking())
    )
    assert len(runs) == 1 and runs[0].error is gone and len(runs[0].samples) == 2


def test_deadline_stops_between_samples() -> None:
    settings = BenchSettings(warmup=0, samples=10, deadline_ns=3_500_000)
    run = run_workload(ScriptedClient([OK] * 10), WORKLOAD, settings, clock_of(ticking()))
    assert run.error is not None and "time cap" in run.error.message
    assert 0 < len(run.samples) < 10


def test_on_sample_sees_every_request() -> None:
    seen: list[bool] = []
    run_workload(
        ScriptedClient([OK] * 4),
        WORKLOAD,
        BenchSettings(warmup=1, samples=3),
        clock_of(ticking()),
        on_sample=lambda run, sample, warm: seen.append(warm),
    )
    assert seen == [True, False, False, False]


@pytest.mark.parametrize("content", ['<think>go</think>{"action": "left"}'])
def test_leak_flagged_on_sample(content: str) -> None:
    ex = Exchange(latency_ms=1.0, http_status=200, content=content)
    run = run_workload(ScriptedClient([ex]), WORKLOAD, BenchSettings(warmup=0, samples=1), clock_of(ticking()))
    assert run.samples[0].thinking_leak is not None and run.samples[0].thinking_leak.marker == "<think>"


def test_frames_cycle_in_the_same_order_on_every_target_and_samples_record_them() -> None:
    framed = BenchWorkload(info=INFO, bodies=({"f": 0}, {"f": 1}, {"f": 2}), parse=parse_nav, framed=True)
    client = ScriptedClient([OK] * 7)
    run = run_workload(client, framed, BenchSettings(warmup=2, samples=5), clock_of(ticking()))
    sent = [json.loads(b)["f"] for b in client.bodies]
    assert sent == [0, 1, 0, 1, 2, 0, 1]  # warm-up from frame 0, then measured sample k sends frame k mod 3
    assert [s.frame for s in run.samples] == [0, 1, 2, 0, 1]


@pytest.mark.parametrize(
    ("exchange", "kind"),
    [
        (Exchange(latency_ms=5.0, http_status=200, content="", finish_reason="length"), "empty"),
        (Exchange(latency_ms=5.0, http_status=200, content=" \n\t ", finish_reason="length"), "empty"),
        (Exchange(latency_ms=5.0, http_status=200, content=None, finish_reason="stop"), "empty"),
        (Exchange(latency_ms=5.0, http_status=200, content='{"action": "le', finish_reason="length"), "cut"),
        (Exchange(latency_ms=5.0, http_status=200, content='{"action": "left"}', finish_reason="length"), None),
        (Exchange(latency_ms=5.0, http_status=200, content="I'd go left", finish_reason="stop"), None),  # strategy 3
        (FAIL, None),  # a transport error is an error, not a degenerate answer
    ],
)
def test_degenerate_answers_are_their_own_kind(exchange: Exchange, kind: str | None) -> None:
    run = run_workload(ScriptedClient([exchange]), WORKLOAD, BenchSettings(warmup=0, samples=1), clock_of(ticking()))
    sample = run.samples[0]
    assert sample.degenerate == kind
    assert sample.usable is (kind is None and exchange.error is None)


def test_degenerate_answers_never_stop_the_run() -> None:
    empty = Exchange(latency_ms=5.0, http_status=200, content="", finish_reason="length")
    run = run_workload(ScriptedClient([empty] * 6), WORKLOAD, BenchSettings(warmup=1, samples=5), clock_of(ticking()))
    assert run.error is None and len(run.samples) == 5 and all(s.degenerate == "empty" for s in run.samples)


def test_adaptive_sample_size_stops_the_extension_once_the_p50_is_precise_enough() -> None:
    answer = '{"action": "left"}'
    steady: list[Exchange | Exception] = [
        Exchange(latency_ms=10.0 + (i % 3) * 0.01, http_status=200, content=answer) for i in range(100)
    ]
    settings = BenchSettings(warmup=0, samples=10, extension=90, precision=0.02)
    run = run_workload(ScriptedClient(list(steady)), WORKLOAD, settings, clock_of(ticking()))
    assert len(run.samples) == 11  # the first look after N: the p50 is already known to well under +-2 %
    assert run.extension is not None and run.extension.startswith("extended")
    assert "stopped at 11 of 100 samples: p50 known to" in run.extension
    noisy: list[Exchange | Exception] = [
        Exchange(latency_ms=10.0 * (1 + (i * 7919 % 97) / 97), http_status=200, content=answer) for i in range(100)
    ]
    run = run_workload(ScriptedClient(noisy), WORKLOAD, settings, clock_of(ticking()))
    assert len(run.samples) == 100 and "stopped at" not in (run.extension or "")  # +-2 % never reached


def test_the_adaptive_check_reads_latencies_kept_sorted_as_they_arrive() -> None:
    """No sort per sample (that made a long extension quadratic): `ordered` holds exactly the usable latencies,
    sorted, and gives the same precision as computing it afresh from the samples."""
    answer = '{"action": "left"}'
    script: list[Exchange | Exception] = [
        Exchange(latency_ms=10.0 * (1 + (i * 7919 % 97) / 97), http_status=200, content=answer) for i in range(60)
    ]
    script[7] = Exchange(latency_ms=3.0, http_status=200, content="")  # degenerate: not usable, not kept
    run = run_workload(ScriptedClient(script), WORKLOAD, BenchSettings(warmup=0, samples=60), clock_of(ticking()))
    usable = [s.exchange.latency_ms for s in run.samples if s.usable]
    assert len(usable) == 59 and run.ordered == sorted(usable)
    assert relative_precision_of_sorted(run.ordered) == relative_precision(usable)
