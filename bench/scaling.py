"""Scale of the work: how swapbench's own time and memory grow with samples, frames, workloads and candidates.

One axis at a time grows from a base point (samples 100 per workload, frames 10, workloads 2, candidates 1):
  samples per workload 20 -> 100 -> 300 -> 1000, then 3000 -> 10000 (where caps inside the statistics bite);
  frames 1 -> 10 -> 30 -> 100; workloads 1 -> 2 -> 4 -> 8 (nav fresh, describe, nav cached, in turn);
  candidates 1 -> 2 -> 4; adaptive: `run` extending one workload from 20 samples to 300 -> 1000 -> 3000 -> 10000,
  without and with `[run] p50_precision` (set beyond reach, so that it is checked before every sample).

(a) bench: `swapbench bench --plan` (one target), and `swapbench run` (every target in one process) for candidates
    and adaptive, as child processes; their peak RSS and CPU time (wait4: ru_maxrss, ru_utime + ru_stime) are the
    harness's own (for `run`, ru_maxrss is the largest of it and the processes it started and reaped, which are
    smaller). They talk to a replay server, in another process, that answers every request with the body the real
    llama-server of the rig (SmolLM2-135M, synthetic mmproj) gave to that workload; `run` launches its candidates
    as a llama-server that replays the same. What the harness holds per sample is what it parsed from that body,
    so the server's speed does not enter its memory; `--check-real` shows it: one workload's samples axis (to
    1000) against the real llama-server (text only, max_tokens 2, prompt cached: ~40 ms a request) and against
    its replay, side by side.
(b) compare / report: `swapbench compare` (two results files) and `swapbench report` (a run folder: the baseline,
    every candidate and swap.json) as child processes on synthetic results of that size, built through
    swapbench's own models (Results, Sample, workload_metrics) like a demo run's: lognormal latencies with 1 % slow
    outliers, server timings, usage, nav parse outcomes, the frames sent in turn. compare reads two files: the
    candidates axis does not enter it.

Each row: the work, wall time, CPU time, peak RSS, and per step (on CPU time: the machine may be shared, and the
wall time of `bench` is mostly the server's):
  growth = (cost ratio) / (work ratio): 1.0 is linear, below 1 a fixed cost still dominates, above 1 worse;
  marginal = the cost added per unit of work in this step over the one added in the step before: 1.0 is linear
  whatever the fixed cost (interpreter, imports), ~(w2 + w1) / (w1 + w0) quadratic; left out ("—") where the step
  before added less than the noise (0.05 s, 1 MiB).

    .venv/bin/python bench/scaling.py [--axes samples,frames,workloads,candidates,adaptive]
        [--parts bench,compare,report] [--check-real] [--recording answers.json] [--keep DIR] [--out scaling.json]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing import Process
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageDraw

from swapbench.adapters.image import load_frames
from swapbench.adapters.openai_client import CHAT_PATH
from swapbench.core.kinds import describe, nav
from swapbench.core.metrics import workload_metrics
from swapbench.core.phases import Phase
from swapbench.core.results import (
    Exchange,
    GpuInfo,
    HostInfo,
    ParseOutcome,
    Provenance,
    Results,
    RunStatus,
    Sample,
    ServerInfo,
    ServerTimings,
    Usage,
    VramReport,
    WorkloadInfo,
    WorkloadResult,
)
from swapbench.core.steps import Outcome, PhaseSpan, Status, SwapReport, SwapStatus, downtime_split
from swapbench.demo.rig import find_rig
from swapbench.host.candidate.llama_server import LlamaServer, LlamaServerSpec, free_port
from swapbench.plan.models import DescribeWorkload, NavWorkload
from swapbench.workloads.requests import request_body

Axis = Literal["samples", "frames", "workloads", "candidates", "adaptive"]
Part = Literal["bench", "compare", "report"]
AXES: tuple[Axis, ...] = ("samples", "frames", "workloads", "candidates", "adaptive")
PARTS: tuple[Part, ...] = ("bench", "compare", "report")
STEPS: dict[Axis, tuple[int, ...]] = {
    "samples": (20, 100, 300, 1000, 3000, 10000),
    "frames": (1, 10, 30, 100),
    "workloads": (1, 2, 4, 8),
    "candidates": (1, 2, 4),
    "adaptive": (300, 1000, 3000, 10000),  # `run`: one workload extended from 20 samples to this many
}
NOISE = {"cpu": 0.05, "rss": 1.0}  # s, MiB: a step that adds less is not read for a marginal ratio
SWAPBENCH = [sys.executable, "-m", "swapbench"]
WARMUP = 3
NO_GPU = "NVML unavailable: scaling bench (synthetic results)"
KINDS: tuple[tuple[Literal["nav", "describe"], bool], ...] = (("nav", False), ("describe", True), ("nav", True))


@dataclass(frozen=True)
class Work:
    """One point of the work: what a run measures."""

    samples: int = 100
    frames: int = 10
    workloads: int = 2
    candidates: int = 1

    def along(self, axis: Axis, value: int) -> Work:
        return replace(self, **{axis: value})


BASE = Work()


@dataclass(frozen=True)
class Cost:
    wall_s: float
    cpu_s: float
    peak_rss_mib: float


# --- measuring a child process -----------------------------------------------------------------------------------


# Linux keeps a process's peak RSS across exec: a child forked from this (large) process would report this
# process's RSS as its own. So a small interpreter forks the measured child and reports its wait4 figures.
SPAWNER = """
import json, os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - start
print(json.dumps([os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss]))
"""


def measured(argv: Sequence[str], cwd: Path | None = None) -> Cost:
    """Run argv to its end; its wall time, CPU time and peak RSS (its own, from wait4)."""
    spawner = [sys.executable, "-I", "-S", "-c", SPAWNER, *argv]
    done = subprocess.run(spawner, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the spawner of {argv} failed:\n{done.stderr[-3000:]}")
    code, wall, cpu, maxrss_kib = json.loads(done.stdout.strip().splitlines()[-1])
    if code != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {code}:\n{done.stderr[-3000:]}")
    return Cost(wall_s=wall, cpu_s=cpu, peak_rss_mib=maxrss_kib / 1024)


# --- frames and synthetic results --------------------------------------------------------------------------------


def make_frames(count: int, folder: Path) -> Path:
    """`count` distinct small camera-like JPEGs (a gradient, a horizon, a numbered box) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(count)
    for i in range(count):
        image = Image.new("RGB", (320, 240), (90 + i % 100, 120, 160 - i % 100))
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, 140, 320, 240), fill=(70, 70 + i % 60, 60))
        for _ in range(12):
            x, y = rng.randrange(300), rng.randrange(220)
            draw.rectangle((x, y, x + 20, y + 20), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        draw.text((10, 10), f"frame {i + 1}", fill=(255, 255, 255))
        image.save(folder / f"frame-{i + 1:04d}.jpg", quality=80)
    return folder


NAV_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["action"],
    "properties": {"action": {"enum": ["forward", "left", "right", "back", "stop"]}},
}
NAV_EXTRA = {"response_format": {"type": "json_schema", "json_schema": {"name": "nav", "schema": NAV_SCHEMA}}}
NAV_EXTRA_TOML = (  # the demo's: the server holds the answer to the nav contract
    'extra_body = { response_format = { type = "json_schema", json_schema = { name = "nav", schema = { type = '
    '"object", required = ["action"], properties = { action = { enum = ["forward", "left", "right", "back", "stop"] '
    "} } } } } }"
)
DESCRIBE_ANSWER = (
    "The image shows a road ahead with a grassy verge on the right, a low wall on the left and a parked car in "
    "the distance; the sky is overcast and the light is even."
)


def workload_infos(count: int) -> list[WorkloadInfo]:
    """nav (fresh), describe (cached), nav (cached), in turn: the demo's workloads, named apart."""
    infos = []
    for i in range(count):
        kind, cached = KINDS[i % len(KINDS)]
        prompt = nav.build_prompt() if kind == "nav" else describe.DEFAULT_PROMPT
        infos.append(WorkloadInfo(
            name=f"{kind}-{i + 1}", kind=kind, max_tokens=20 if kind == "nav" else 128, prompt=prompt,
            prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest(), system=None, image=True,
            enable_thinking=False, json_schema=NAV_SCHEMA if kind == "nav" else None, cache_prompt=cached,
        ))  # fmt: skip
    return infos


@dataclass(frozen=True)
class Speed:
    """A target's latency: the median ms of a fresh nav request, and its spread."""

    nav_ms: float
    sigma: float = 0.08


def _exchange(info: WorkloadInfo, speed: Speed, rng: random.Random) -> Exchange:
    base = speed.nav_ms * (1.0 if info.kind == "nav" else 2.4) * (0.55 if info.cache_prompt else 1.0)
    latency = base * math.exp(rng.gauss(0, speed.sigma)) * (rng.uniform(2, 4) if rng.random() < 0.01 else 1.0)
    prompt_n = 88 if info.kind == "nav" else 60
    cache_n = prompt_n - 8 if info.cache_prompt else 0
    predicted_n = 9 if info.kind == "nav" else 32
    prompt_ms = latency * (0.12 if info.cache_prompt else 0.45)
    predicted_ms = latency * 0.97 - prompt_ms
    action = rng.choice(("forward", "left", "right"))
    content = f'{{"action": "{action}"}}' if info.kind == "nav" else DESCRIBE_ANSWER
    return Exchange(
        latency_ms=latency, http_status=200, content=content, finish_reason="stop" if info.kind == "nav" else "length",
        usage=Usage(prompt_tokens=prompt_n, completion_tokens=predicted_n, total_tokens=prompt_n + predicted_n,
                    cached_tokens=cache_n),
        timings=ServerTimings(cache_n=cache_n, prompt_n=prompt_n - cache_n, prompt_ms=prompt_ms,
                              predicted_n=predicted_n, predicted_ms=predicted_ms),
    )  # fmt: skip


def _samples(info: WorkloadInfo, count: int, frames: int, speed: Speed, rng: random.Random) -> list[Sample]:
    found, offset = [], 0.0
    for k in range(count):
        ex = _exchange(info, speed, rng)
        parse = None
        if info.kind == "nav":
            value = json.loads(ex.content or "null")
            parse = ParseOutcome(strategy=1, value=value, schema_ok=True)
        found.append(Sample(index=k, offset_ms=offset, exchange=ex, parse=parse, frame=k % frames))
        offset += ex.latency_ms + rng.uniform(0.2, 0.6)
    return found


def synthetic_results(label: str, work: Work, frames_dir: Path, speed: Speed, seed: int) -> Results:
    """One target's results file of the given size, through swapbench's own models and metrics."""
    rng = random.Random(seed)
    loaded = load_frames(None, frames_dir, None, lambda p: p)
    workloads = []
    for info in workload_infos(work.workloads):
        warmup = _samples(info, WARMUP, work.frames, speed, rng)
        samples = _samples(info, work.samples, work.frames, speed, rng)
        metrics = workload_metrics(samples, info.scores, info.cache_prompt)
        workloads.append(WorkloadResult(workload=info, warmup=warmup, samples=samples, metrics=metrics))
    started = "2026-11-29T13:02:57.590763+00:00"
    return Results(
        run_id="20261129-130247-scaling-0001", label=label, status=RunStatus.COMPLETE,
        provenance=Provenance(swapbench_version="0.1.0", plan_path=None, plan_sha256=None, seed=42, warmup=WARMUP,
                              samples=work.samples, stream=False, started_at=started, ended_at=started),
        host=HostInfo(hostname="vm", platform="Linux", python="3.11.7", gpu=GpuInfo(unavailable_reason=NO_GPU)),
        server=ServerInfo(url="http://127.0.0.1:41191", build_info="b11434-unknown",
                          model_path=f"/models/{label}.gguf", modalities={"vision": True}, total_slots=1),
        image=loaded.frames[0].info, frames=loaded.infos, frames_sha256=loaded.digest, workloads=workloads,
        vram=VramReport(unavailable_reason=NO_GPU),
    )  # fmt: skip


def _spans(labels: Sequence[str]) -> list[PhaseSpan]:
    """A window's timeline: check, baseline bench, stop, then per candidate launch .. drain, then restore."""
    spans, t = [], 0.0

    def add(phase: Phase, seconds: float, target: str | None = None) -> None:
        nonlocal t
        spans.append(PhaseSpan(phase=phase, target=target, start_s=t, end_s=t + seconds))
        t += seconds

    add(Phase.CHECK, 1.2)
    add(Phase.BASELINE_BENCH, 30.0, labels[0])
    add(Phase.STOP, 2.0)
    add(Phase.DRAIN, 0.5)
    for label in labels[1:]:
        for phase, seconds in ((Phase.LAUNCH, 0.2), (Phase.READY, 1.6), (Phase.SMOKE, 0.7), (Phase.BENCH, 30.0),
                               (Phase.TEARDOWN, 0.5), (Phase.DRAIN_CANDIDATE, 0.5)):  # fmt: skip
            add(phase, seconds, label)
    add(Phase.RESTORE, 4.0)
    add(Phase.VERIFY, 1.0)
    add(Phase.REPORT, 0.5)
    return spans


def write_run_folder(folder: Path, work: Work, frames_dir: Path) -> list[Path]:
    """A run folder as `swapbench run` leaves it (baseline and each candidate's results, swap.json); the results
    files, baseline first."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = ["smollm2-135m"] + [f"candidate-{i + 1}" for i in range(work.candidates)]
    paths = []
    for i, label in enumerate(labels):
        results = synthetic_results(label, work, frames_dir, Speed(nav_ms=600.0 * (1 + 0.07 * i)), seed=i)
        path = folder / f"results-{label}.json"
        path.write_text(results.model_dump_json(indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    spans = _spans(labels)
    swap = SwapReport(
        run_id="20261129-130247-scaling-0001", status=SwapStatus.COMPLETE,
        checks=[Outcome(name="window free", status=Status.PASS, detail="no live owner, no unfinished journal")],
        verify=[Outcome(name="service llama-prod up", status=Status.PASS, detail="running and healthy")],
        spans=spans, downtime=downtime_split(spans), results_files=[str(p) for p in paths],
    )  # fmt: skip
    (folder / "swap.json").write_text(swap.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return paths


# --- servers: the real llama-server of the rig, and a replay of what it answered -------------------------------


@dataclass(frozen=True)
class Recording:
    """What a real llama-server answered: /props, /v1/models and one chat answer per max_tokens asked."""

    props: str
    models: str
    answers: dict[str, str]  # by max_tokens, as text: the recording travels as JSON

    def answer(self, max_tokens: object) -> str:
        return self.answers.get(str(max_tokens)) or next(iter(self.answers.values()))


@contextmanager
def real_server(folder: Path) -> Iterator[str]:
    """The rig's llama-server with SmolLM2-135M and its synthetic mmproj (image input), until the block ends."""
    rig = find_rig()
    spec = LlamaServerSpec(binary=rig.llama_server, model=rig.smollm2, port=free_port(),
                           log_path=folder / "llama-server.log", mmproj=rig.mmproj(rig.smollm2))  # fmt: skip
    with LlamaServer(spec) as server:
        server.wait_ready()
        yield spec.url


def _http(url: str, path: str, body: dict[str, Any] | None = None) -> str:
    host, port = url.removeprefix("http://").split(":")
    conn = HTTPConnection(host, int(port), timeout=300)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request("GET" if body is None else "POST", path, data, {"Content-Type": "application/json"})
        answer = conn.getresponse()
        text = answer.read().decode()
        if answer.status != 200:
            raise RuntimeError(f"{path}: HTTP {answer.status}: {text[:300]}")
        return text
    finally:
        conn.close()


def record(url: str, frames_dir: Path, max_tokens: Sequence[int]) -> Recording:
    """One real answer per max_tokens: a nav request with the first frame (describe answers are longer: the
    largest max_tokens is asked as describe)."""
    image = load_frames(None, frames_dir, None, lambda p: p).frames[0].data_url
    answers = {}
    for n in sorted(set(max_tokens)):
        as_nav = not (n == max(max_tokens) and n > 20)
        prompt = nav.build_prompt() if as_nav else describe.DEFAULT_PROMPT
        workload = (NavWorkload(name="nav", kind="nav", max_tokens=n, extra_body=NAV_EXTRA) if as_nav
                    else DescribeWorkload(name="describe", kind="describe", max_tokens=n))  # fmt: skip
        body = request_body(workload, prompt, image, 42, None)
        answers[str(n)] = _http(url, CHAT_PATH, body)
    return Recording(props=_http(url, "/props"), models=_http(url, "/v1/models"), answers=answers)


class _Replay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as llama-server for non-streamed answers
    disable_nagle_algorithm = True  # head and body are two writes: with Nagle, each answer waits ~40 ms for an ACK
    recording: Recording

    def _send(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        pages = {"/health": '{"status":"ok"}', "/props": self.recording.props, "/v1/models": self.recording.models}
        self._send(200, pages[self.path]) if self.path in pages else self._send(404, '{"error":"not found"}')

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send(200, self.recording.answer(body.get("max_tokens")))

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(recording: Recording, port: int) -> None:
    handler = type("Replay", (_Replay,), {"recording": recording})
    ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()


@contextmanager
def replay_server(recording: Recording) -> Iterator[str]:
    """A server in its own process that answers like the recorded llama-server, at once."""
    port = free_port()
    process = Process(target=_serve, args=(recording, port), daemon=True)
    process.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                _http(f"http://127.0.0.1:{port}", "/health")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.join()


FAKE_SERVER = """#!{python}
# llama-server for `swapbench run`: --help is the real one's; otherwise the replay, on --port
import json, os, sys
if "--help" in sys.argv:
    os.execv({real!r}, [{real!r}, "--help"])
sys.path.insert(0, {bench!r})
from scaling import Recording, _serve
_serve(Recording(**json.loads(open({recording!r}).read())), int(sys.argv[sys.argv.index("--port") + 1]))
"""


def fake_llama_server(folder: Path, recording: Recording) -> Path:
    """An executable that `swapbench run` launches as a candidate's llama-server and that answers as the replay."""
    data = folder / "recording.json"
    data.write_text(json.dumps(asdict(recording)), encoding="utf-8")
    binary = folder / "llama-server"
    binary.write_text(FAKE_SERVER.format(python=sys.executable, real=str(find_rig().llama_server),
                                         bench=str(Path(__file__).resolve().parent), recording=str(data)))  # fmt: skip
    binary.chmod(0o755)
    return binary


# --- (a) the bench: plans, and the child that runs them -----------------------------------------------------------


@dataclass(frozen=True)
class BenchShape:
    """How the workloads of a bench plan ask: max_tokens of nav and describe, and whether they send the frames."""

    nav_tokens: int = 20
    describe_tokens: int = 128
    image: bool = True
    all_cached: bool = False  # every workload may use the server's prompt cache (a fresh one re-reads its prompt)
    nav_schema: bool = True  # nav asks for json_schema output (the server then compiles a grammar per request)


def _toml(value: object) -> str:
    return json.dumps(value) if isinstance(value, str | bool | int | float) else str(value)


def write_plan(path: Path, work: Work, url: str, frames_dir: Path, shape: BenchShape, run: dict[str, object],
               binary: Path | None = None) -> Path:  # fmt: skip
    """A plan of `work.workloads` workloads (nav fresh, describe, nav cached in turn), the baseline at `url` and
    `work.candidates` candidates: launched from `binary` (for `run`), else at `url` too."""
    run = {"output_dir": str(path.parent / "out"), "samples": work.samples, "warmup": WARMUP,
           "extended_samples": work.samples} | run  # fmt: skip  # `bench` never extends; `run` says how far
    lines = ["[run]"] + [f"{k} = {_toml(v)}" for k, v in run.items()]
    if shape.image:
        lines += ["", "[image]", f"frames = {_toml(str(frames_dir))}"]
    for info in workload_infos(work.workloads):
        tokens = shape.nav_tokens if info.kind == "nav" else shape.describe_tokens
        schema = [NAV_EXTRA_TOML] if info.kind == "nav" and shape.nav_schema else []
        lines += ["", "[[workloads]]", f"name = {_toml(info.name)}", f'kind = "{info.kind}"',
                  f"max_tokens = {tokens}", f"cache_prompt = {_toml(info.cache_prompt or shape.all_cached)}",
                  f"image = {_toml(shape.image)}", *schema]  # fmt: skip
    lines += ["", "[baseline]", 'label = "smollm2-135m"', f"url = {_toml(url)}"]
    for i in range(work.candidates):
        lines += ["", "[[candidates]]", f'label = "candidate-{i + 1}"']
        if binary is None:
            lines.append(f"url = {_toml(url)}")
        else:
            lines += ["[candidates.launch]", 'kind = "native"', f"binary = {_toml(str(binary))}",
                      f"model = {_toml(str(find_rig().smollm2))}", f"port = {free_port()}", "ready_timeout_s = 30.0",
                      "settle_s = 0.1"]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def bench_cost(work: Work, url: str, frames_dir: Path, folder: Path, shape: BenchShape = BenchShape()) -> Cost:
    """`swapbench bench --plan` on the baseline: the bench loop, the metrics and the results file of one target."""
    plan = write_plan(folder / "plan.toml", work, url, frames_dir, shape, {})
    return measured([*SWAPBENCH, "bench", "--plan", str(plan), "--target", "baseline"], cwd=folder)


def run_cost(work: Work, url: str, binary: Path, frames_dir: Path, folder: Path, **extra: object) -> Cost:
    """`swapbench run`: every target benched in one process (the baseline, each candidate launched from `binary`,
    the drift), then the report; the user plan's extension: a fifth of `work.samples`, then up to all of them."""
    run = {"label": "scaling", "extended_samples": work.samples, "time_cap_s": 3600.0} | extra
    plan = write_plan(folder / "plan.toml", replace(work, samples=max(work.samples // 5, 1)), url, frames_dir,
                      BenchShape(), run, binary)  # fmt: skip
    return measured([*SWAPBENCH, "run", str(plan)], cwd=folder)


ADAPTIVE = Work(samples=100, frames=10, workloads=1, candidates=1)
UNREACHABLE_PRECISION = 1e-6  # the p50 is never known this well: every extension sample checks, none stops


def adaptive_cost(work: Work, url: str, binary: Path, frames_dir: Path, folder: Path, p50: bool) -> Cost:
    """`swapbench run` whose one candidate extends one workload from 20 samples to `work.samples`, with
    `[run] p50_precision` set (the precision is checked before every extension sample) or not; no drift bench."""
    run = {"label": "scaling", "samples": 20, "extended_samples": work.samples, "time_cap_s": 3600.0,
           "drift_check": False} | ({"p50_precision": UNREACHABLE_PRECISION} if p50 else {})  # fmt: skip
    plan = write_plan(folder / "plan.toml", work, url, frames_dir, BenchShape(), run, binary)
    return measured([*SWAPBENCH, "run", str(plan)], cwd=folder)


# --- (b) compare and report --------------------------------------------------------------------------------------


def compare_cost(paths: Sequence[Path]) -> Cost:
    return measured([*SWAPBENCH, "compare", str(paths[0]), str(paths[-1])])


def report_cost(folder: Path) -> Cost:
    return measured([*SWAPBENCH, "report", str(folder)])


# --- the grid and its table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    part: str
    axis: Axis
    work: int
    cost: Cost
    growth_time: float | None = None  # (CPU time ratio) / (work ratio) from the step before
    growth_rss: float | None = None
    marginal_time: float | None = None  # cost added per unit of work, over the step before's
    marginal_rss: float | None = None


def _ratio(after: float, before: float) -> float | None:
    return after / before if before > 0 else None


def _cpu_s(row: Row) -> float:
    return row.cost.cpu_s


def _rss_mib(row: Row) -> float:
    return row.cost.peak_rss_mib


def _marginal(rows: Sequence[Row], i: int, of: Callable[[Row], float], noise: float) -> float | None:
    """The cost added per unit of work from row i-1 to row i, over the same from row i-2 to row i-1; None where
    the step before added less than the noise."""
    if i < 2 or of(rows[i - 1]) - of(rows[i - 2]) < noise:
        return None
    now = (of(rows[i]) - of(rows[i - 1])) / (rows[i].work - rows[i - 1].work)
    then = (of(rows[i - 1]) - of(rows[i - 2])) / (rows[i - 1].work - rows[i - 2].work)
    return now / then


def _growth(rows: Sequence[Row], i: int, of: Callable[[Row], float]) -> float | None:
    """(cost ratio) / (work ratio) from row i-1 to row i."""
    if i < 1 or of(rows[i - 1]) <= 0:
        return None
    return (of(rows[i]) / of(rows[i - 1])) / (rows[i].work / rows[i - 1].work)


def with_growth(rows: Sequence[Row]) -> list[Row]:
    """Each row's growth against the row before it (one part along one axis), on CPU time (the machine is shared:
    its wall time carries the others' load) and peak RSS."""
    return [
        replace(row, growth_time=_growth(rows, i, _cpu_s), growth_rss=_growth(rows, i, _rss_mib),
                marginal_time=_marginal(rows, i, _cpu_s, NOISE["cpu"]),
                marginal_rss=_marginal(rows, i, _rss_mib, NOISE["rss"]))
        for i, row in enumerate(rows)
    ]  # fmt: skip


def _f(value: float | None, fmt: str = ".2f") -> str:
    return "—" if value is None else format(value, fmt)


def table(rows: Sequence[Row]) -> str:
    head = ("part", "axis", "work", "wall s", "cpu s", "peak RSS MiB", "growth cpu", "growth RSS", "marginal cpu",
            "marginal RSS")  # fmt: skip
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        lines.append(" | ".join((r.part, r.axis, str(r.work), _f(r.cost.wall_s), _f(r.cost.cpu_s),
                                 _f(r.cost.peak_rss_mib, ".1f"), _f(r.growth_time), _f(r.growth_rss),
                                 _f(r.marginal_time), _f(r.marginal_rss))))  # fmt: skip
    return "\n".join(lines)


Measure = Callable[[Work, Path], Cost]


def sweep(part: str, axis: Axis, measure: Measure, folder: Path, say: Callable[[str], None],
          base: Work = BASE, steps: Sequence[int] = ()) -> list[Row]:  # fmt: skip
    """One part along one axis, every other figure of the work at `base`."""
    rows = []
    for value in steps or STEPS[axis]:
        work = base.along("samples" if axis == "adaptive" else axis, value)
        where = folder / f"{part}-{axis}-{value}"
        where.mkdir(parents=True)
        cost = measure(work, where)
        say(f"{part:8s} {axis:10s} {value:5d}: {cost.wall_s:6.2f} s wall, {cost.cpu_s:6.2f} s cpu, "
            f"{cost.peak_rss_mib:7.1f} MiB")  # fmt: skip
        rows.append(Row(part, axis, value, cost))
    return with_growth(rows)


# --- the whole measurement ---------------------------------------------------------------------------------------


class Frames:
    """A folder of N distinct frames per N asked, made once."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, count: int) -> Path:
        folder = self.root / f"frames-{count}"
        return folder if folder.is_dir() else make_frames(count, folder)


def _adaptive(work: Work, where: Path, *, url: str, binary: Path, frames: Frames, p50: bool) -> Cost:
    return adaptive_cost(work, url, binary, frames(work.frames), where, p50)


def bench_rows(axes: Sequence[Axis], recording: Recording, frames: Frames, root: Path,
               say: Callable[[str], None]) -> list[Row]:  # fmt: skip
    """`bench` along samples, frames and workloads; `run` along candidates; `run` with and without the adaptive
    sample size along the extension."""
    rows = []
    binary = fake_llama_server(root, recording)
    with replay_server(recording) as url:
        for axis in axes:
            if axis == "candidates":
                rows += sweep("run", axis, lambda w, at: run_cost(w, url, binary, frames(w.frames), at), root, say)
            elif axis == "adaptive":
                for part, p50 in (("run", False), ("run+p50", True)):
                    measure = functools.partial(_adaptive, url=url, binary=binary, frames=frames, p50=p50)
                    rows += sweep(part, axis, measure, root, say, ADAPTIVE)
            else:
                rows += sweep("bench", axis, lambda w, at: bench_cost(w, url, frames(w.frames), at), root, say)
    return rows


def results_rows(parts: Sequence[Part], axes: Sequence[Axis], frames: Frames, root: Path,
                 say: Callable[[str], None]) -> list[Row]:  # fmt: skip
    """compare and report on synthetic run folders of each size (compare: not along candidates)."""
    rows = []

    def measure(part: Part) -> Measure:
        def one(work: Work, where: Path) -> Cost:
            paths = write_run_folder(where / "run", work, frames(work.frames))
            return compare_cost(paths) if part == "compare" else report_cost(where / "run")

        return one

    for part in (p for p in parts if p != "bench"):
        for axis in (a for a in axes if a != "adaptive" and not (part == "compare" and a == "candidates")):
            rows += sweep(part, axis, measure(part), root, say)
    return rows


CHECK = (20, 100, 300, 1000)  # samples against the real server


def check_real(url_real: str, recording: Recording, frames: Frames, root: Path,
               say: Callable[[str], None]) -> list[Row]:  # fmt: skip
    """The samples axis of one nav workload, text only, max_tokens 2, prompt cached, no json_schema (~40 ms a
    request on 2 busy cores), against the real llama-server and against its replay."""
    shape = BenchShape(nav_tokens=2, describe_tokens=2, image=False, all_cached=True, nav_schema=False)

    def measure(url: str) -> Measure:
        return lambda work, where: bench_cost(work, url, frames(1), where, shape)

    base = replace(BASE, workloads=1)
    real = sweep("real", "samples", measure(url_real), root, say, base, steps=CHECK)
    with replay_server(recording) as url:
        return real + sweep("replay", "samples", measure(url), root, say, base, steps=CHECK)


def _recording(path: Path | None, root: Path, frames: Frames, check: list[Row] | None,
               say: Callable[[str], None]) -> Recording:  # fmt: skip
    """The real llama-server's answers (recorded now, or read from `path`); with `check`, the samples axis against
    the real server and its replay is appended to it."""
    if path is not None and path.exists() and check is None:
        return Recording(**json.loads(path.read_text(encoding="utf-8")))
    with real_server(root) as url_real:
        recording = record(url_real, frames(1), [2, 20, 128])
        if check is not None:
            check += check_real(url_real, recording, frames, root, say)
    if path is not None:
        path.write_text(json.dumps(asdict(recording), indent=2) + "\n", encoding="utf-8")
    return recording


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--axes", default=",".join(AXES), help="comma-separated: " + ", ".join(AXES))
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS))
    parser.add_argument("--check-real", action="store_true", help="the samples axis against the real server too")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    parser.add_argument("--recording", type=Path, help="the real server's answers: read from here if there, else "
                        "recorded and written here")  # fmt: skip
    parser.add_argument("--keep", type=Path, help="work in this folder and leave it (plans, results, reports)")
    args = parser.parse_args()
    axes = [a for a in AXES if a in args.axes.split(",")]
    parts = [p for p in PARTS if p in args.parts.split(",")]

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="swapbench-scaling-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        frames = Frames(root)
        if "bench" in parts or args.check_real:
            recording = _recording(args.recording, root, frames, rows if args.check_real else None, say)
            if "bench" in parts:
                rows += bench_rows(axes, recording, frames, root, say)
        rows += results_rows(parts, axes, frames, root, say)
    print(table(rows))
    if args.out is not None:
        record_ = {"base": asdict(BASE), "steps": STEPS, "noise": NOISE, "cpus": os.cpu_count(),
                   "rows": [asdict(r) for r in rows]}  # fmt: skip
        args.out.write_text(json.dumps(record_, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
