"""`swapbench bench` against real llama-server processes with real GGUF models on loopback."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from swapbench.adapters.openai_client import ChatEndpoint, Health
from swapbench.app import bench
from swapbench.core.kinds.chat import ChatLine
from swapbench.core.kinds.nav import DEFAULT_SCHEMA
from swapbench.core.results import Results, RunStatus, Sample
from swapbench.demo.rig import Rig
from swapbench.errors import EndpointLoading, EndpointRequestFailed, EndpointUnreachable, InputError, WorkloadError
from swapbench.host.candidate.llama_server import LlamaServer, free_port
from swapbench.plan.load import LoadedPlan, validate_plan
from swapbench.report.results_file import read_results, reanalysed
from swapbench.workloads.bench_call import BenchCall
from tests.conftest import DEMO_IMAGE, ServerFactory
from tests.helpers import swapbench, wait_until

pytestmark = pytest.mark.rig


def make_plan(
    url: str,
    tmp_path: Path,
    workloads: list[dict[str, Any]] | None = None,
    image: Path | None = DEMO_IMAGE,
    frames: Path | None = None,
    samples: int = 3,
    warmup: int = 1,
    **run: Any,
) -> LoadedPlan:
    data: dict[str, Any] = {
        "run": {"samples": samples, "warmup": warmup, "output_dir": str(tmp_path / "out"), **run},
        "baseline": {"label": "base", "url": url},
    }
    if workloads is not None:
        data["workloads"] = workloads
    if image is not None:
        data["image"] = {"path": str(image)}
    if frames is not None:
        data["image"] = {"frames": str(frames)}
    plan = validate_plan(data, "test plan")
    return LoadedPlan(plan=plan, path=tmp_path / "plan.toml", sha256=None)


def measure(loaded: LoadedPlan, target: str, **call: Any) -> bench.BenchOutcome:
    """One bench, as the bench command and the window make it: one BenchCall."""
    return bench.measure(BenchCall(loaded, target, **call))


def nav(**extra: Any) -> dict[str, Any]:
    return {"name": "nav", "kind": "nav", **extra}


def test_cached_and_fresh_modes_on_frames_the_server_reports(smol: LlamaServer, tmp_path: Path) -> None:
    """llama-server serves a repeated prompt from its cache (images too, and earlier prompts from host memory):
    the cached figure is decode; `cache_prompt = false` makes it evaluate every prompt, image included."""
    frames = DEMO_IMAGE.parent / "frames"
    grammar = {"response_format": {"type": "json_schema", "json_schema": {"name": "nav", "schema": DEFAULT_SCHEMA}}}
    workloads = [
        nav(name="nav-cached", extra_body=grammar),
        nav(name="nav-fresh", extra_body=grammar, cache_prompt=False),
    ]
    plan = make_plan(smol.spec.url, tmp_path, workloads, image=None, frames=frames, samples=8, warmup=4)
    res = measure(plan, "baseline").results
    cached, fresh = res.workloads
    assert [s.frame for s in fresh.samples] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert len(res.frames) == 4 and res.frames_sha256 is not None
    assert json.loads(json.dumps(fresh.workload.model_dump()))["cache_prompt"] is False
    assert all(s.exchange.timings and s.exchange.timings.cache_n == 0 for s in fresh.samples)
    assert fresh.metrics.cache_share == 0.0 and fresh.workload.cache_mode == "fresh"
    assert cached.metrics.cache_share is not None and cached.metrics.cache_share > 0.9  # warmed: all 4 frames cached
    assert any("came from the server's cache" in w for w in cached.metrics.warnings)
    assert cached.metrics.degenerate == fresh.metrics.degenerate == 0  # the grammar: whole answers
    assert cached.metrics.prompt_ms and fresh.metrics.prompt_ms
    assert fresh.metrics.prompt_ms.p50 > 3 * cached.metrics.prompt_ms.p50  # the image encode, paid every time


def test_both_workloads_on_the_image(smol: LlamaServer, tmp_path: Path) -> None:
    outcome = measure(make_plan(smol.spec.url, tmp_path), "baseline")
    res = outcome.results
    assert res.status is RunStatus.COMPLETE and res.error is None
    assert [w.workload.name for w in res.workloads] == ["nav", "describe"]
    for w in res.workloads:
        assert len(w.warmup) == 1 and len(w.samples) == 3
        for s in w.samples:
            ex = s.exchange
            assert ex.error is None and ex.http_status == 200 and ex.content
            assert ex.timings is not None and ex.timings.predicted_n and ex.timings.predicted_ms
            assert ex.timings.prompt_n is not None and ex.timings.cache_n is not None
            assert ex.usage is not None and ex.usage.completion_tokens == ex.timings.predicted_n
            # the client waited at least as long as the server worked
            assert ex.latency_ms >= (ex.timings.total_ms or 0)
        assert w.metrics.client_latency_ms is not None and w.metrics.decode_tok_s
    nav_result = res.workloads[0]
    assert all(s.parse is not None for s in nav_result.samples)
    assert nav_result.metrics.schema_adherence is not None
    assert res.workloads[1].metrics.schema_adherence is None
    assert res.image is not None and res.image.sha256 == hashlib.sha256(DEMO_IMAGE.read_bytes()).hexdigest()
    assert res.server.build_info is not None and "11434" in res.server.build_info
    assert res.server.models_meta is not None and res.server.models_meta["n_embd"] == 576
    assert res.server.modalities == {"vision": True, "video": True, "audio": False}
    assert res.host.gpu.name or res.host.gpu.unavailable_reason


def test_results_file_round_trips_and_reanalyses(smol: LlamaServer, tmp_path: Path) -> None:
    outcome = measure(make_plan(smol.spec.url, tmp_path, [nav()]), "baseline")
    loaded = read_results(outcome.path)
    assert loaded == outcome.results
    assert reanalysed(loaded).workloads[0].metrics == outcome.results.workloads[0].metrics
    data = json.loads(outcome.path.read_text())
    assert data["schema_version"] == 3 and data["provenance"]["swapbench_version"]


def samples_of(results: Results, name: str = "nav") -> list[Sample]:
    return next(w for w in results.workloads if w.workload.name == name).samples


def test_strategy_1_on_a_schema_constrained_answer(smol: LlamaServer, tmp_path: Path) -> None:
    constrained = {"response_format": {"type": "json_schema", "json_schema": {"name": "nav", "schema": DEFAULT_SCHEMA}}}
    res = measure(make_plan(smol.spec.url, tmp_path, [nav(extra_body=constrained)]), "baseline").results
    assert {s.parse.strategy for s in samples_of(res) if s.parse} == {1}
    assert res.workloads[0].metrics.schema_adherence == 1.0


def test_strategy_2_on_smollm2s_own_answer(smol: LlamaServer, tmp_path: Path) -> None:
    # SmolLM2-135M answers the built-in prompt with the object followed by more text.
    res = measure(make_plan(smol.spec.url, tmp_path, [nav()]), "baseline").results
    assert {s.parse.strategy for s in samples_of(res) if s.parse} == {2}


def test_strategy_3_counts_as_failure(smol: LlamaServer, tmp_path: Path) -> None:
    loose = {"grammar": 'root ::= "I would turn left now."'}
    res = measure(make_plan(smol.spec.url, tmp_path, [nav(extra_body=loose)]), "baseline").results
    assert {s.parse.strategy for s in samples_of(res) if s.parse} == {3}
    assert res.workloads[0].metrics.schema_adherence == 0.0


def test_leak_detector_on_a_real_answer(smol: LlamaServer, tmp_path: Path) -> None:
    leaky = {"grammar": 'root ::= "<think>the road is clear</think>{\\"action\\": \\"forward\\"}"'}
    res = measure(make_plan(smol.spec.url, tmp_path, [nav(extra_body=leaky, max_tokens=40)]), "baseline").results
    for s in samples_of(res):
        assert s.thinking_leak is not None and s.thinking_leak.marker == "<think>"
        assert s.parse is not None and s.parse.strategy == 2
    assert res.workloads[0].metrics.thinking_leaks == 3


def test_enable_thinking_reaches_the_template(start_server: ServerFactory, rig: Rig, tmp_path: Path) -> None:
    """With Gemma 4's template, enable_thinking=true adds a <|think|> turn: the prompt grows."""
    server = start_server(mmproj=False, chat_template_file=rig.gemma4_template)
    prompt_tokens = {}
    for thinking in (False, True):
        wl = {"name": "d", "kind": "describe", "image": False, "max_tokens": 4, "enable_thinking": thinking}
        res = measure(make_plan(server.spec.url, tmp_path, [wl], image=None, samples=1), "baseline").results
        usage = res.workloads[0].samples[0].exchange.usage
        assert usage is not None
        prompt_tokens[thinking] = usage.prompt_tokens
        assert res.workloads[0].workload.enable_thinking is thinking
    assert prompt_tokens[True] != prompt_tokens[False]


def test_stream_measures_time_to_first_token_and_reconnects(smol: LlamaServer, tmp_path: Path) -> None:
    res = measure(make_plan(smol.spec.url, tmp_path, [nav()], stream=True), "baseline").results
    samples = samples_of(res)
    for s in samples:
        ex = s.exchange
        assert ex.ttft_ms is not None and 0 < ex.ttft_ms <= ex.latency_ms
        assert ex.timings is not None and ex.usage is not None and ex.finish_reason in ("length", "stop")
        # llama-server closes the connection after every stream: each request needed a new one
        assert ex.reconnects == 1
    assert res.workloads[0].metrics.ttft_ms is not None


def closed_by_the_server(port: int) -> bool:
    """Our kept-alive connection to `port` got the server's FIN: it waits in CLOSE_WAIT for us to close it."""
    ours = [c for c in psutil.Process().net_connections(kind="tcp") if c.raddr and c.raddr.port == port]
    return bool(ours) and all(c.status == psutil.CONN_CLOSE_WAIT for c in ours)


def test_keep_alive_reused_then_reconnect_after_idle(smol: LlamaServer) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()
    with ChatEndpoint(smol.spec.url) as ep:
        first, second = ep.complete(body), ep.complete(body)
        assert (first.reconnects, second.reconnects) == (0, 0)
        assert not closed_by_the_server(smol.spec.port)
        # llama-server closes a connection idle for its keep-alive timeout (5 s): wait for that, not for 5.5 s
        wait_until("llama-server to close the idle connection", lambda: closed_by_the_server(smol.spec.port), 30)
        third = ep.complete(body)
    assert third.error is None and third.reconnects == 1


def test_user_prompt_builder_and_parser(smol: LlamaServer, tmp_path: Path) -> None:
    repo = tmp_path / "her-os"
    (repo / "services" / "panda_nav").mkdir(parents=True)
    (repo / "services" / "__init__.py").write_text("")
    (repo / "services" / "panda_nav" / "__init__.py").write_text("")
    (repo / "services" / "panda_nav" / "server.py").write_text(
        "def build_vlm_prompt(goal):\n"
        "    return f'Goal: {goal}. Answer with a JSON object with key action (left or right).'\n"
    )
    (repo / "my_parser.py").write_text(
        "def parse(content, strict=True):\n    return ({'raw': content}, 2 if strict else 3)\n"
    )
    builder = {
        "callable": "services.panda_nav.server:build_vlm_prompt",
        "kwargs": {"goal": "something interesting"},
        "python_path": [str(repo)],
    }
    parser = {"callable": "my_parser:parse", "kwargs": {"strict": True}, "python_path": [str(repo)]}
    res = measure(make_plan(smol.spec.url, tmp_path, [nav(prompt_builder=builder, parser=parser)]), "baseline").results
    info = res.workloads[0].workload
    assert info.prompt == "Goal: something interesting. Answer with a JSON object with key action (left or right)."
    assert {s.parse.strategy for s in res.workloads[0].samples if s.parse} == {2}


# --- errors: each a clear message, nothing lost -------------------------------------------------------------


def test_not_listening(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EndpointUnreachable) as info:
        measure(make_plan(url, tmp_path), "baseline")
    assert url in info.value.message and "ConnectError" in info.value.message
    assert "start the server" in info.value.hint


def test_loading_server_is_not_benchmarked(start_server: ServerFactory, rig: Rig, tmp_path: Path) -> None:
    """Catch a real llama-server in its 503 'Loading model' window (Gemma 3 takes ~1.5 s to load here)."""
    for _ in range(5):
        server = start_server(model=rig.gemma3, wait=False)
        with ChatEndpoint(server.spec.url, timeout_s=5) as ep:
            state = None
            deadline = time.monotonic() + 30
            while state is not Health.LOADING and time.monotonic() < deadline:
                try:
                    state = ep.health().state
                except EndpointUnreachable:
                    state = None
                if state is Health.OK:
                    break
        try:
            if state is Health.LOADING:
                with pytest.raises(EndpointLoading) as info:
                    measure(make_plan(server.spec.url, tmp_path), "baseline")
                assert "Loading model" in info.value.message and "--wait-ready" in info.value.hint
                # ... and --wait-ready waits it out
                outcome = measure(make_plan(server.spec.url, tmp_path, [nav()], samples=1), "baseline", wait_ready_s=60)
                assert outcome.results.status is RunStatus.COMPLETE
                return
        finally:
            server.stop()
    pytest.fail("never caught the server while it answered 503 (loading was too fast 5 times)")


def test_image_to_a_server_without_mmproj(smol_text_only: LlamaServer, tmp_path: Path) -> None:
    with pytest.raises(EndpointRequestFailed) as info:
        measure(make_plan(smol_text_only.spec.url, tmp_path), "baseline")
    assert "HTTP 500" in info.value.message and "image input is not supported" in info.value.message
    saved = next((tmp_path / "out").rglob("results-base.json"))
    assert f"saved in {saved}" in info.value.message
    partial = read_results(saved)
    assert partial.status is RunStatus.PARTIAL and partial.error and "image input" in partial.error
    assert partial.workloads[0].warmup[0].exchange.http_status == 500


def test_server_dies_mid_run_samples_saved(start_server: ServerFactory, tmp_path: Path) -> None:
    server = start_server(mmproj=False)

    def kill_after_three(run: Any, sample: Sample, warmup: bool) -> None:
        if len(run.samples) == 3:
            server.stop(grace_s=0.1)

    plan = make_plan(
        server.spec.url,
        tmp_path,
        [{"name": "d", "kind": "describe", "image": False, "max_tokens": 4}],
        image=None,
        samples=20,
        warmup=0,
    )
    with pytest.raises(EndpointUnreachable) as info:
        measure(plan, "baseline", on_sample=kill_after_three)
    assert "3 samples gathered so far are saved" in info.value.message
    saved = read_results(next((tmp_path / "out").rglob("results-base.json")))
    assert saved.status is RunStatus.PARTIAL and len(saved.workloads[0].samples) == 3


@pytest.mark.parametrize(
    ("make_image", "expected"),
    [
        (lambda d: d / "missing.jpg", "does not exist"),
        (lambda d: d, "is a directory"),
        (lambda d: (d / "notes.jpg", (d / "notes.jpg").write_text("not a picture"))[0], "is not a readable image"),
    ],
    ids=["missing", "directory", "not-an-image"],
)
def test_bad_image_stops_before_any_request(tmp_path: Path, make_image: Any, expected: str) -> None:
    """The target is a listening socket of the test's own: any request, even a health probe, would be a
    connection waiting on it."""
    image = make_image(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(InputError, match=expected):
            measure(make_plan(url, tmp_path, image=image), "baseline")
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):  # nothing connected: not one request was sent
            listener.accept()
    assert not (tmp_path / "out").exists()


def test_image_hash_mismatch_is_refused(smol: LlamaServer, tmp_path: Path) -> None:
    data = {
        "run": {"output_dir": str(tmp_path)},
        "image": {"path": str(DEMO_IMAGE), "sha256": "0" * 64},
        "baseline": {"label": "b", "url": smol.spec.url},
    }
    loaded = LoadedPlan(plan=validate_plan(data, "t"), path=None, sha256=None)
    with pytest.raises(InputError, match="the plan expects"):
        measure(loaded, "baseline")


BUILDERS = {
    "syntax-error": ("def build(:\n", "cannot import 'broken': SyntaxError"),
    "missing-import": ("import not_a_module_anywhere\ndef build(): return 'x'\n", "ModuleNotFoundError"),
    "no-function": ("def other(): return 'x'\n", "has no function 'build'"),
    "raises": ("def build(goal): raise RuntimeError('no camera')\n", "raised RuntimeError: no camera"),
    "wrong-kwargs": ("def build(): return 'x'\n", "raised TypeError"),
    "returns-none": ("def build(goal): return None\n", "returned NoneType, not a non-empty prompt string"),
}


@pytest.mark.parametrize("case", BUILDERS, ids=list(BUILDERS))
def test_prompt_builder_errors(smol: LlamaServer, tmp_path: Path, case: str) -> None:
    source, expected = BUILDERS[case]
    module = f"broken_{case.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(source)
    builder = {
        "callable": f"{module}:build",
        "kwargs": {"goal": "x"} if case != "no-function" else {},
        "python_path": [str(tmp_path)],
    }
    expected = expected.replace("'broken'", repr(module))
    with pytest.raises(WorkloadError, match=expected.replace("(", r"\(").replace(":", ":")) as info:
        measure(make_plan(smol.spec.url, tmp_path, [nav(prompt_builder=builder)]), "baseline")
    assert info.value.message.startswith("workloads[0].prompt_builder")
    assert not (tmp_path / "out").exists()


CHAT_LINES = [
    {"prompt": "What is 2+2? Answer with the digit only.", "expected": "4"},
    {"prompt": "Name a colour.", "regex": "(?i)[a-z]"},
    {"prompt": "Say hello."},
]


def test_a_chat_workload_from_bench_url_sends_text_and_scores_each_line(
    smol_text_only: LlamaServer, tmp_path: Path
) -> None:
    """`swapbench bench --url --prompts FILE`: one request per JSONL line, in turn, to a server without --mmproj
    (which answers HTTP 500 to any image: every request here must be text only); each answer scored against the
    line it was sent for."""
    prompts = tmp_path / "qa.jsonl"
    prompts.write_text("".join(json.dumps(line) + "\n" for line in CHAT_LINES))
    run = swapbench("bench", "--url", smol_text_only.spec.url, "--prompts", str(prompts), "-n", "6", "--warmup", "1",
                    "--output-dir", str(tmp_path / "out"), "--label", "smol")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    results = read_results(next((tmp_path / "out").glob("*/results-smol.json")))
    [chat] = results.workloads
    assert (chat.workload.name, chat.workload.kind, chat.workload.image) == ("chat", "chat", False)
    assert [s.item for s in chat.samples] == [0, 1, 2, 0, 1, 2] and all(s.ok for s in chat.samples)
    lines = [ChatLine.model_validate(line) for line in CHAT_LINES]
    for s in chat.samples:
        passed = lines[s.item or 0].passed(s.exchange.content)
        assert s.scores == ({} if passed is None else {"passed": passed}), s
    figure = chat.metrics.scores["passed"]
    assert figure.n == 4 and figure.passed == sum(s.scores.get("passed", False) for s in chat.samples)
    assert "chat" in run.stdout and f"{figure.share:.0%}" in run.stdout  # the summary's score column
    assert reanalysed(results).workloads[0].metrics == chat.metrics


def test_bench_url_chat_needs_its_prompts(tmp_path: Path) -> None:
    run = swapbench("bench", "--url", "http://127.0.0.1:9", "--workload", "chat")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "error: --workload chat needs --prompts FILE.jsonl" in run.stderr
