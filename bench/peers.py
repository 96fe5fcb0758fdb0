"""Peers: swapbench's client against GuideLLM, AIPerf and a bare http.client loop, on one real llama-server.

    .venv/bin/python bench/peers.py [--requests 100] [--rounds 3] [--tools bare,guidellm,...] [--out FILE]

Run by hand, not in CI. It installs pinned GuideLLM and AIPerf (PyPI) each into its own virtual environment
under ~/.cache/swapbench/peers/<tool>-<version>-py<X.Y>/ once (reused while its marker file is there; delete the
folder to reinstall), starts ONE CPU llama-server (the rig's SmolLM2-135M, `-t 1`, 127.0.0.1 only), and then runs
every tool for ROUNDS rounds, one tool at a time, each sending the same chat request REQUESTS times at
concurrency 1. The order of the tools rotates each round (round r starts with the r-th tool), so drift of the
host falls on all of them alike. Every tool runs as its own process tree, so start-up, memory and CPU are
measured the same way for all:

  bare           this script's `client bare` mode: one http.client connection, pre-serialised bytes
  swapbench-lib  this script's `client library` mode: `ChatEndpoint(url).complete(body)` in a loop
  swapbench-cli  `python -m swapbench bench --plan P` with a one-workload plan (warmup 0)
  guidellm       `guidellm run -c scenario.json --disable-console`: synchronous profile, max_requests = N,
                 a json_file dataset of N rows, non-streaming, HTTP/1.1
  aiperf         `aiperf profile`: --custom-dataset-type raw-payload, --concurrency 1, paced (below)

The request. The body is swapbench's own (`request_body` of a text workload: the prompt as one text part,
max_tokens 8, temperature 0, seed 42, chat_template_kwargs.enable_thinking false, ignore_eos true), so bare,
swapbench-lib, swapbench-cli and aiperf (raw-payload: sent verbatim) send the same bytes. GuideLLM builds its own
body from a dataset row {"prompt", "output_tokens_count": 8}: the same messages, `max_completion_tokens` 8 with
`ignore_eos` true and `stop` null, the sampling fields as backend `extras.body`, plus `model`. The server log
is checked for every request (a note if one did not generate exactly 8 tokens); the JSON's `tokens` lists, per
run, the prompt tokens the server evaluated / the tokens it generated: "1/8" for every tool here, i.e. 32 of
the 33 prompt tokens came from the slot's cache, which a differently rendered prompt would not have matched.

No traffic leaves 127.0.0.0/8 except the pip install itself: the tools run with HF_HUB_OFFLINE=1,
TRANSFORMERS_OFFLINE=1, HF_DATASETS_OFFLINE=1, HF_HUB_DISABLE_TELEMETRY=1, DO_NOT_TRACK=1 and HF_HOME set to this
run's folder, which holds a local placeholder tokenizer (`swapbench/placeholder-tokenizer`: a whitespace
WordLevel tokenizer.json, laid out as a hub cache entry). Token counts come from the server (AIPerf
`--use-server-token-count`; GuideLLM reads `usage`). Why the placeholder: AIPerf's `--tokenizer builtin`, said to
be zero-network, downloads o200k_base.tiktoken from openaipublic.blob.core.windows.net unless it is cached, and
AIPerf 0.13.0 in offline mode cannot load a tokenizer from a plain folder (it calls snapshot_download on the path:
HFValidationError); a hub-cache layout works. Checked with `strace -f -e trace=connect,bind` on both tools:
AF_INET connects only to 127.0.0.1:<server port>, everything else is AF_UNIX (AIPerf's ZMQ IPC, GuideLLM's
multiprocessing); no AF_INET bind.

AIPerf pacing. With only `--concurrency 1`, AIPerf 0.13.0's timing_manager waits for a free slot by spinning
its event loop (`yield_to_event_loop` in the request-rate loop's "no slot" branch: ~43,000 zero-timeout
epoll_pwait calls a second, 5.4 CPU-s for 60 requests), which on this 2-core box slowed the server's decode
~2.5x (p50 213-284 ms against ~87 ms). This script adds `--request-rate 100 --arrival-pattern constant`: the
loop then sleeps until the next 10 ms tick before it looks for a slot (timing_manager 0.43 CPU-s for the same 60
requests, p50 86.5 ms); concurrency 1 still caps requests in flight. Also set: --no-server-metrics (it would
poll /metrics), --no-gpu-telemetry (it would poll DCGM on localhost:9400/9401), --ui none.
AIPERF_TIMING_HIGH_RES_TIMER=false made no difference to the spinning.

What the table shows (one run; ratios are to the bare loop of the same run):
  p50 ms          median client latency over all rounds, as each tool records it (bare, swapbench-lib: send to
                  last byte; swapbench-cli: results file exchange.latency_ms; guidellm: request_latency; aiperf:
                  profile_export.jsonl request_latency)
  x bare          that p50 / the bare loop's p50; in brackets the range of the per-round ratios. On a busy
                  host this moves with the server's own time more than with the client: read it with the next
  server p50      median of the server's prompt_ms + predicted_ms (its log) during that tool's runs; it differs
                  between tools with host drift and with the CPU the tool itself takes from the server
  client-server   median over requests of (client latency - the server's prompt_ms + predicted_ms). The
                  server's figures come from its log for every tool (b11434 prints per task `prompt eval time =
                  X ms` and `eval time = Y ms`), paired in order with the tool's requests sorted by their start;
                  the JSON has, for bare and swapbench-lib, the largest difference between the log's and the
                  response body's timings, which checks the pairing.
  start-up s      from the tool's process start to its first request reaching the server: the server log's
                  `launch_slot_` stamp of the first task, on this script's monotonic clock (the log clock is
                  calibrated against five warm-up requests sent from here). Median over rounds.
  peak RSS MB     the largest sum of RSS over the tool's process tree, sampled every 100 ms (psutil). Max over
                  rounds. Pages shared between the tree's processes are counted in each.
  CPU/req ms      user+sys CPU of the whole process tree (getrusage RUSAGE_CHILDREN around it, start-up and
                  report writing included; this script is a child subreaper, so orphans the tool leaves are
                  reaped and counted here), over all rounds, / requests.

vLLM's client (`vllm bench serve`) is not included; measured here: `pip install vllm==0.33.0` works on this
CPU-only box (223 s, a 9.4 GB environment with CUDA torch and CUDA libraries; it warns "Failed to import from
vllm._C", which the client does not need), `vllm bench serve` also needs the `vllm[bench]` extra (+54 s: pandas,
datasets, ...), takes ~22 s to start, and does run on CPU against llama-server with a local tokenizer. But its
openai-chat backend always streams (`"stream": True` is hard-coded; no option turns it off) and reuses keep-alive
connections (aiohttp TCPConnector, force_close=False), while llama-server b11434 closes the connection after every
stream: at --max-concurrency 1, 7 of 20 requests failed with aiohttp ServerDisconnectedError. It cannot send the
non-streamed request the other tools send, and a third of its requests fail, so it is left out.

Pins (PEERS): the newest releases on PyPI on 2026-11-29, both work with Python 3.11 (guidellm needs >= 3.10,
aiperf >= 3.11, < 3.14). Only the tools are pinned; the JSON records the full package list of each environment.
Installed here with pip (uv is used when it is on PATH): guidellm 0.8.1 in 139 s, a 6.0 GB environment (it
depends on torch, and PyPI's torch 2.14 brings ~3 GB of CUDA wheels even on a CPU box); aiperf 0.13.0 in 112 s,
1.2 GB; both with pip's download cache warm (the first, cold installs, run side by side, took 273 s and 231 s).
`python bench/peers.py client bare|library ...` is the internal client mode the two loops run in.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from swapbench.errors import SwapbenchError

if TYPE_CHECKING:
    from swapbench.host.candidate.llama_server import LlamaServer

# swapbench and psutil are imported inside the functions that use them (noqa: PLC0415 below): the client
# processes run this file too, and the bare loop must start as lean as a bare script (importing swapbench's
# server side costs ~1 s here).

PROMPT = "Say hi."
MAX_TOKENS = 8
SEED = 42
CHAT_PATH = "/v1/chat/completions"
PLACEHOLDER_TOKENIZER = "swapbench/placeholder-tokenizer"
AIPERF_RATE_PER_S = 100  # paces AIPerf's slot polling (see the docstring); far above what one slot serves
CALIBRATION_REQUESTS = 5
RSS_PERIOD_S = 0.1
LOG_WAIT_S = 5.0
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


@dataclass(frozen=True)
class PeerPackage:
    tool: str
    version: str
    entry: str  # the console script


PEERS = (PeerPackage("guidellm", "0.8.1", "guidellm"), PeerPackage("aiperf", "0.13.0", "aiperf"))
TOOLS = ("bare", "swapbench-lib", "swapbench-cli", "guidellm", "aiperf")


class PeerError(Exception):
    """An expected failure, told to the user in one message (no traceback)."""


# --- what the tools record ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request as a tool recorded it. `start_s` only orders requests (any clock the tool uses)."""

    start_s: float
    latency_ms: float
    body_server_ms: float | None = None  # prompt_ms + predicted_ms from the response body, where recorded


@dataclass(frozen=True)
class Task:
    """One completion task as llama-server logs it."""

    task_id: int
    launch_log_s: float
    prompt_ms: float
    prompt_n: int
    predicted_ms: float
    predicted_n: int

    @property
    def server_ms(self) -> float:
        return self.prompt_ms + self.predicted_ms


@dataclass(frozen=True)
class TreeUsage:
    """What a tool's process tree used."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    spawned_at: float  # time.monotonic()
    killed_leftovers: int


@dataclass(frozen=True)
class ToolRun:
    """One tool in one round."""

    tool: str
    round: int
    requests: int = 0
    latencies_ms: tuple[float, ...] = ()
    server_ms: tuple[float, ...] = ()
    client_minus_server_ms: tuple[float, ...] = ()
    body_vs_log_max_diff_ms: float | None = None
    tokens: tuple[str, ...] = ()  # distinct "prompt_n/predicted_n" the server logged for this run
    startup_s: float | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None

    @property
    def p50_ms(self) -> float | None:
        return statistics.median(self.latencies_ms) if self.latencies_ms else None


# --- the server's log -----------------------------------------------------------------------------------------

_STAMP = r"^(\d+)\.(\d{2})\.(\d{3})\.(\d{3}) "
_LAUNCH = re.compile(_STAMP + r".*\| task (\d+) \| processing task")
_TIMING = re.compile(r"\| task (\d+) \|\s+(prompt eval|eval) time =\s+([\d.]+) ms /\s+(\d+) tokens")


def log_seconds(match: re.Match[str]) -> float:
    """llama.cpp's log stamp `M.SS.mmm.uuu` (since the logger started) in seconds."""
    minutes, seconds, millis, micros = (int(g) for g in match.groups()[:4])
    return minutes * 60 + seconds + millis / 1e3 + micros / 1e6


class ServerLog:
    """Completion tasks read incrementally from a llama-server b11434 log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = ""
        self._parts: dict[int, dict[str, float]] = {}

    def _read(self) -> None:
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        text = self._partial + data.decode("utf-8", "replace")
        *lines, self._partial = text.split("\n")
        for line in lines:
            self._parse(line)

    def _parse(self, line: str) -> None:
        if launch := _LAUNCH.match(line):
            self._parts.setdefault(int(launch.group(5)), {})["launch"] = log_seconds(launch)
        elif timing := _TIMING.search(line):
            kind = "prompt" if timing.group(2) == "prompt eval" else "predicted"
            parts = self._parts.setdefault(int(timing.group(1)), {})
            parts[f"{kind}_ms"], parts[f"{kind}_n"] = float(timing.group(3)), float(timing.group(4))

    def last_task_id(self) -> int:
        self._read()
        return max(self._parts, default=-1)

    def tasks_after(self, task_id: int, expected: int, wait_s: float = LOG_WAIT_S) -> list[Task]:
        """The complete tasks after `task_id`, waiting up to `wait_s` for `expected` of them to be logged."""
        deadline = time.monotonic() + wait_s
        while True:
            self._read()
            ids = sorted(i for i in self._parts if i > task_id)
            done = [i for i in ids if len(self._parts[i]) == 5]
            if (len(done) >= expected and len(done) == len(ids)) or time.monotonic() > deadline:
                return [self._task(i) for i in done]
            time.sleep(0.02)

    def _task(self, task_id: int) -> Task:
        p = self._parts[task_id]
        return Task(task_id, p["launch"], p["prompt_ms"], int(p["prompt_n"]), p["predicted_ms"], int(p["predicted_n"]))


# --- installing the peers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    package: PeerPackage
    venv: Path
    install_s: float
    installer: str
    reused: bool
    packages: tuple[str, ...] = field(default=(), repr=False)

    @property
    def entry(self) -> Path:
        return self.venv / "bin" / self.package.entry


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "swapbench" / "peers"


def ensure_installed(package: PeerPackage, root: Path) -> Installed:
    """The tool's venv, installed once: a folder without its marker file is a broken install and is redone."""
    tag = f"py{sys.version_info.major}.{sys.version_info.minor}"
    venv = root / f"{package.tool}-{package.version}-{tag}"
    marker = venv / "swapbench-peers.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # no marker, or a damaged one: reinstall
        data = json.loads(marker.read_text(encoding="utf-8"))
        return Installed(package, venv, float(data["install_s"]), str(data["installer"]), True,
                         tuple(data["packages"]))  # fmt: skip
    shutil.rmtree(venv, ignore_errors=True)
    (root / f"{venv.name}.install.log").unlink(missing_ok=True)
    uv = shutil.which("uv")
    say(f"installing {package.tool}=={package.version} into {venv} (once; {'uv' if uv else 'pip'}) ...")
    started = time.monotonic()
    for step in install_steps(package, venv, uv):
        run_install_step(package, step, root / f"{venv.name}.install.log")
    install_s = time.monotonic() - started
    packages = installed_packages(package, venv)
    marker.write_text(json.dumps({"tool": package.tool, "version": package.version, "python": sys.version,
                                  "installer": "uv" if uv else "pip", "install_s": round(install_s, 1),
                                  "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                  "packages": packages}, indent=1), encoding="utf-8")  # fmt: skip
    say(f"installed {package.tool}=={package.version} in {install_s:.0f} s")
    return Installed(package, venv, install_s, "uv" if uv else "pip", False, tuple(packages))


def install_steps(package: PeerPackage, venv: Path, uv: str | None) -> list[list[str]]:
    pin = f"{package.tool}=={package.version}"
    python = str(venv / "bin" / "python")
    if uv:
        return [[uv, "venv", "--python", sys.executable, str(venv)], [uv, "pip", "install", "--python", python, pin]]
    return [[sys.executable, "-m", "venv", str(venv)],
            [python, "-m", "pip", "install", "--disable-pip-version-check", pin]]  # fmt: skip


def run_install_step(package: PeerPackage, argv: list[str], log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        code = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        raise PeerError(
            f"installing {package.tool}=={package.version} failed ({'install' if 'install' in argv else 'venv'} "
            f"step, exit {code}); "
            f"last lines of {log_path}:\n{tail(log_path)}\n"
            f"fix the cause (network, Python version: {package.tool} {package.version} needs a supported one) "
            f"and run again; the half-made environment is redone"
        )


def installed_packages(package: PeerPackage, venv: Path) -> list[str]:
    """`name==version` of every distribution in the venv; also proves its Python starts and imports the tool."""
    code = (f"import importlib.metadata as m, json, {package.tool}; "
            "print(json.dumps(sorted(f'{d.name}=={d.version}' for d in m.distributions())))")  # fmt: skip
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PeerError(f"{package.tool}=={package.version} installed but does not import:\n{done.stderr[-1500:]}")
    return list(json.loads(done.stdout))


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, without pip's noise about this machine's missing local indexes."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    kept = [line for line in text.splitlines() if not line.startswith("WARNING: Location")]
    return "\n".join(kept[-lines:])


# --- the tools ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One tool run: where the server is, what to send, where the tool writes."""

    url: str
    requests: int
    body: bytes
    inputs: Path  # shared, read-only files (the body, the placeholder tokenizer's HF_HOME)
    folder: Path  # this run's own folder

    @property
    def body_dict(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.body)
        return data


class Peer(Protocol):
    @property
    def name(self) -> str: ...

    def command(self, job: Job) -> list[str]:
        """The argv to run; writes the tool's input files into job.folder first."""
        ...

    def read(self, job: Job) -> list[Request]:
        """The tool's per-request records, from what it wrote into job.folder."""
        ...


@dataclass(frozen=True)
class ClientLoop:
    """bare or swapbench-lib: this file's client mode in a fresh interpreter."""

    name: str
    kind: str  # "bare" | "library"

    def command(self, job: Job) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "client", self.kind, "--url", job.url,
                "--requests", str(job.requests), "--body", str(job.inputs / "body.json"),
                "--out", str(job.folder / "requests.jsonl")]  # fmt: skip

    def read(self, job: Job) -> list[Request]:
        path = job.folder / "requests.jsonl"
        return [Request(**json.loads(line)) for line in read_text(path, self.name).splitlines() if line]


@dataclass(frozen=True)
class SwapbenchCli:
    """`swapbench bench --plan`: a plan with the one text workload that makes swapbench send `job.body`."""

    name: str = "swapbench-cli"

    def command(self, job: Job) -> list[str]:
        plan = job.folder / "plan.toml"
        plan.write_text(
            f'[run]\nsamples = {job.requests}\nwarmup = 0\nseed = {SEED}\noutput_dir = "results"\n\n'
            f'[[workloads]]\nname = "peers"\nkind = "describe"\nprompt = {json.dumps(PROMPT)}\n'
            f"max_tokens = {MAX_TOKENS}\nimage = false\nextra_body = {{ ignore_eos = true }}\n\n"
            f'[baseline]\nlabel = "peers"\nurl = "{job.url}"\n',
            encoding="utf-8",
        )
        return [sys.executable, "-m", "swapbench", "bench", "--plan", str(plan), "--target", "baseline"]

    def read(self, job: Job) -> list[Request]:
        files = sorted((job.folder / "results").glob("*/results-peers.json"))
        if not files:
            raise PeerError(f"swapbench-cli wrote no results file under {job.folder / 'results'}")
        data = json.loads(read_text(files[-1], self.name))
        samples = json_list(data, "workloads", 0, "samples")
        return [Request(json_float(s, "offset_ms") / 1e3, json_float(s, "exchange", "latency_ms"),
                        timings_ms(s)) for s in samples]  # fmt: skip


def timings_ms(sample: object) -> float | None:
    prompt_ms = json_get(sample, "exchange", "timings", "prompt_ms")
    predicted_ms = json_get(sample, "exchange", "timings", "predicted_ms")
    if isinstance(prompt_ms, int | float) and isinstance(predicted_ms, int | float):
        return float(prompt_ms) + float(predicted_ms)
    return None


@dataclass(frozen=True)
class GuideLLM:
    """`guidellm run` with a scenario file: synchronous, max_requests N, non-streaming, HTTP/1.1."""

    installed: Installed
    name: str = "guidellm"

    def command(self, job: Job) -> list[str]:
        rows = "".join(json.dumps({"prompt": PROMPT, "output_tokens_count": MAX_TOKENS}) + "\n"
                       for _ in range(job.requests))  # fmt: skip
        (job.folder / "data.jsonl").write_text(rows, encoding="utf-8")
        extras = {k: v for k, v in job.body_dict.items() if k not in ("messages", "max_tokens", "ignore_eos")}
        spec = {
            "backend": {"kind": "openai_http", "target": job.url, "request_format": CHAT_PATH, "stream": False,
                        "http2": False, "extras": {"body": extras}},
            "profile": {"kind": "synchronous"},
            "constraints": [{"kind": "max_requests", "count": job.requests}],
            "tokenizer": {"kind": "huggingface_auto", "model": PLACEHOLDER_TOKENIZER},
            "data": [{"kind": "json_file", "path": str(job.folder / "data.jsonl")}],
            "outputs": [{"kind": "json", "path": str(job.folder / "guidellm.json")}],
        }  # fmt: skip
        (job.folder / "scenario.json").write_text(json.dumps({"spec": spec}, indent=1), encoding="utf-8")
        return [str(self.installed.entry), "run", "-c", str(job.folder / "scenario.json"), "--disable-console"]

    def read(self, job: Job) -> list[Request]:
        data = json.loads(read_text(job.folder / "guidellm.json", self.name))
        errored = json_list(data, "benchmarks", 0, "requests", "errored")
        if errored:
            raise PeerError(f"guidellm: {len(errored)} requests errored, e.g. {json_get(errored[0], 'info', 'error')}")
        done = json_list(data, "benchmarks", 0, "requests", "successful")
        return [Request(json_float(r, "request_start_time"), json_float(r, "request_latency") * 1e3) for r in done]


@dataclass(frozen=True)
class AIPerf:
    """`aiperf profile` on a raw-payload dataset (the body verbatim), concurrency 1, paced slot polling."""

    installed: Installed
    name: str = "aiperf"

    def command(self, job: Job) -> list[str]:
        payloads = job.folder / "payloads.jsonl"
        payloads.write_bytes(job.body + b"\n")
        return [str(self.installed.entry), "profile", "--url", job.url, "--endpoint-type", "chat",
                "--model", "smollm2", "--tokenizer", PLACEHOLDER_TOKENIZER, "--use-server-token-count",
                "--input-file", str(payloads), "--custom-dataset-type", "raw-payload",
                "--request-count", str(job.requests), "--concurrency", "1",
                "--request-rate", str(AIPERF_RATE_PER_S), "--arrival-pattern", "constant",
                "--no-server-metrics", "--no-gpu-telemetry", "--ui", "none",
                "--artifact-dir", str(job.folder / "aiperf")]  # fmt: skip

    def read(self, job: Job) -> list[Request]:
        path = job.folder / "aiperf" / "profile_export.jsonl"
        records = [json.loads(line) for line in read_text(path, self.name).splitlines() if line.strip()]
        failed = [r for r in records if json_get(r, "metrics", "request_latency", "value") is None]
        if failed:
            raise PeerError(f"aiperf: {len(failed)} of {len(records)} records have no latency (errors); see {path}")
        return [Request(json_float(r, "metadata", "request_start_ns") / 1e9,
                        json_float(r, "metrics", "request_latency", "value")) for r in records]  # fmt: skip


def read_text(path: Path, tool: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PeerError(f"{tool} wrote no results at {path} ({exc.strerror})") from exc


def json_get(obj: object, *keys: str | int) -> object:
    for key in keys:
        if isinstance(key, str) and isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(key, int) and isinstance(obj, list) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return None
    return obj


def json_float(obj: object, *keys: str | int) -> float:
    value = json_get(obj, *keys)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise PeerError(f"unexpected results layout: {'.'.join(map(str, keys))} is {value!r}")
    return float(value)


def json_list(obj: object, *keys: str | int) -> list[object]:
    value = json_get(obj, *keys)
    if not isinstance(value, list):
        raise PeerError(f"unexpected results layout: {'.'.join(map(str, keys))} is not a list")
    return value


# --- running one tool -----------------------------------------------------------------------------------------


class TreeSampler(threading.Thread):
    """Polls the RSS of a process tree (psutil) until stopped; keeps the peak of the sum."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil  # noqa: PLC0415 (see the note at the imports)

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while True:
            total = 0
            with contextlib.suppress(psutil.Error):
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
            self.peak_rss = max(self.peak_rss, total)
            if self._stop_event.wait(RSS_PERIOD_S):
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def stop_tree(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """TERM the tool's process group, KILL what is left of it after `grace_s`, and collect the tool."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def become_subreaper() -> None:
    """Have the tools' orphans re-parented to this process (Linux), so that reaping them here counts their CPU
    time in RUSAGE_CHILDREN (GuideLLM leaves one child it never waits for)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def session_members(sid: int) -> list[int]:
    import psutil  # noqa: PLC0415 (see the note at the imports)

    members = []
    for pid in psutil.pids():
        with contextlib.suppress(OSError):
            if os.getsid(pid) == sid:
                members.append(pid)
    return members


def reap(pid: int, block: bool = False) -> None:
    """Collect a re-parented orphan's exit (and so its CPU time); not our child: nothing to do."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0 if block else os.WNOHANG)


def settle_session(sid: int, wait_s: float = 5.0) -> int:
    """Wait for what the tool left running in its session to end, reaping it here; kill it after `wait_s`.
    Returns how many had to be killed."""
    deadline = time.monotonic() + wait_s
    while members := session_members(sid):
        for pid in members:
            reap(pid)
        if time.monotonic() > deadline:
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                reap(pid, block=True)
            return len(members)
        time.sleep(0.05)
    return 0


def run_tree(name: str, argv: list[str], env: dict[str, str], log_path: Path, timeout_s: float) -> TreeUsage:
    """Run a tool in its own session and measure it; on any way out (Ctrl-C too) its whole group is stopped."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawned_at = time.monotonic()
    with log_path.open("wb") as log:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)  # fmt: skip
        except OSError as exc:
            raise PeerError(f"cannot start {name} ({argv[0]}): {exc.strerror}") from exc
    sampler = TreeSampler(proc.pid)
    sampler.start()
    try:
        code = proc.wait(timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"{name} did not finish within {timeout_s:.0f} s; last lines of {log_path}:\n"
                        f"{tail(log_path)}") from exc  # fmt: skip
    finally:
        if proc.poll() is None:
            stop_tree(proc)
        sampler.stop()
    wall_s = time.monotonic() - spawned_at
    leftovers = settle_session(proc.pid)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise PeerError(f"{name} exited with code {code}; last lines of {log_path}:\n{tail(log_path)}")
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return TreeUsage(wall_s, cpu_s, sampler.peak_rss / 2**20, spawned_at, leftovers)


def tool_env(job: Job) -> dict[str, str]:
    """The tools' environment: offline hub, no telemetry, proxies bypassed for loopback."""
    return {**os.environ, "HF_HOME": str(job.inputs / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1",
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}  # fmt: skip


@dataclass(frozen=True)
class LogClock:
    """Maps the server log's clock onto time.monotonic()."""

    offset_s: float

    def monotonic(self, log_s: float) -> float:
        return log_s + self.offset_s


def run_tool(peer: Peer, job: Job, log: ServerLog, clock: LogClock, round_index: int) -> ToolRun:
    job.folder.mkdir(parents=True, exist_ok=True)
    argv = peer.command(job)
    before_id = log.last_task_id()
    usage = run_tree(peer.name, argv, tool_env(job), job.folder / "output.log", 300 + 5 * job.requests)
    requests = sorted(peer.read(job), key=lambda r: r.start_s)
    tasks = log.tasks_after(before_id, len(requests))
    notes = run_notes(job, usage, requests, tasks)
    paired = len(tasks) == len(requests)
    return ToolRun(
        tool=peer.name, round=round_index, requests=len(requests),
        latencies_ms=tuple(r.latency_ms for r in requests),
        server_ms=tuple(t.server_ms for t in tasks),
        client_minus_server_ms=outside_server(requests, tasks) if paired else (),
        body_vs_log_max_diff_ms=body_vs_log(requests, tasks) if paired else None,
        tokens=tuple(sorted({f"{t.prompt_n}/{t.predicted_n}" for t in tasks})),
        startup_s=clock.monotonic(tasks[0].launch_log_s) - usage.spawned_at if tasks else None,
        wall_s=usage.wall_s, cpu_s=usage.cpu_s, peak_rss_mb=usage.peak_rss_mb, notes=tuple(notes),
    )  # fmt: skip


def run_notes(job: Job, usage: TreeUsage, requests: Sequence[Request], tasks: Sequence[Task]) -> list[str]:
    """What makes this run's figures less than comparable, in words."""
    notes = []
    if usage.killed_leftovers:
        notes.append(f"{usage.killed_leftovers} of its processes outlived it by 5 s: killed, their CPU not counted")
    if len(requests) != job.requests:
        notes.append(f"recorded {len(requests)} requests, not {job.requests}")
    if len(tasks) != len(requests):
        notes.append(f"{len(tasks)} server tasks for {len(requests)} requests: not paired")
    if off := [t for t in tasks if t.predicted_n != MAX_TOKENS]:
        notes.append(f"{len(off)} requests generated other than {MAX_TOKENS} tokens")
    return notes


def outside_server(requests: Sequence[Request], tasks: Sequence[Task]) -> tuple[float, ...]:
    """Per request: the client's latency minus the server's own prompt_ms + predicted_ms."""
    return tuple(r.latency_ms - t.server_ms for r, t in zip(requests, tasks, strict=True))


def body_vs_log(requests: Sequence[Request], tasks: Sequence[Task]) -> float | None:
    diffs = [
        abs(r.body_server_ms - t.server_ms)
        for r, t in zip(requests, tasks, strict=True)
        if r.body_server_ms is not None
    ]
    return max(diffs) if diffs else None


# --- the run --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    requests: int
    rounds: int
    tools: tuple[str, ...]
    server_threads: int
    out: Path
    cache: Path
    load_before: tuple[float, float, float]  # os.getloadavg() when the run started


def canonical_body() -> bytes:
    """swapbench's own body for a text workload: what swapbench-cli sends, byte for byte."""
    from swapbench.plan.models import DescribeWorkload  # noqa: PLC0415 (see the note at the imports)
    from swapbench.workloads.requests import request_body  # noqa: PLC0415

    workload = DescribeWorkload(name="peers", kind="describe", prompt=PROMPT, max_tokens=MAX_TOKENS, image=False,
                        extra_body={"ignore_eos": True})  # fmt: skip
    return json.dumps(request_body(workload, PROMPT, None, SEED, None), separators=(",", ":")).encode()


def write_inputs(folder: Path, body: bytes) -> None:
    """The body, and the placeholder tokenizer laid out as a hub-cache entry (AIPerf loads only those offline)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "body.json").write_bytes(body)
    repo = folder / "hf" / "hub" / f"models--{PLACEHOLDER_TOKENIZER.replace('/', '--')}"
    revision = "0" * 40
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision, encoding="utf-8")
    unk = {"id": 0, "content": "[UNK]", "single_word": False, "lstrip": False, "rstrip": False,
           "normalized": False, "special": True}  # fmt: skip
    tokenizer = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [unk], "normalizer": None,
                 "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None, "decoder": None,
                 "model": {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}}  # fmt: skip
    (snapshot / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]", "model_max_length": 1_000_000}
    (snapshot / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")


@contextlib.contextmanager
def llama_server(folder: Path, threads: int) -> Iterator[LlamaServer]:
    """The rig's SmolLM2 on 127.0.0.1, stopped on the way out."""
    from swapbench.demo.rig import find_rig  # noqa: PLC0415 (see the note at the imports)
    from swapbench.host.candidate.llama_server import LlamaServer, LlamaServerSpec, free_port  # noqa: PLC0415

    rig = find_rig()
    spec = LlamaServerSpec(binary=rig.llama_server, model=rig.smollm2, port=free_port(),
                           log_path=folder / "server.log", extra_args=("-t", str(threads)))  # fmt: skip
    with LlamaServer(spec) as server:
        server.wait_ready()
        yield server


def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", CHAT_PATH, body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def calibrate(url: str, body: bytes, log: ServerLog) -> LogClock:
    """Warm the server up and find the log clock's offset: a task is launched just after its request is sent,
    so the largest (send time - launch stamp) over a few requests is the offset within ~0.1 ms."""
    before_id = log.last_task_id()
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
    sent = []
    for _ in range(CALIBRATION_REQUESTS):
        sent.append(time.monotonic())
        status, answer = post(conn, body)
        if status != 200:
            raise PeerError(f"the server answered HTTP {status} to the benchmark request: {answer[:300]!r}")
    conn.close()
    tasks = log.tasks_after(before_id, CALIBRATION_REQUESTS)
    if len(tasks) != CALIBRATION_REQUESTS:
        raise PeerError(
            f"the server log {log.path} shows {len(tasks)} completion tasks for {CALIBRATION_REQUESTS} requests; "
            "this script reads llama-server b11434's per-task lines: check the rig's build"
        )
    return LogClock(max(s - t.launch_log_s for s, t in zip(sent, tasks, strict=True)))


def make_peers(names: Sequence[str], installed: dict[str, Installed]) -> list[Peer]:
    table: dict[str, Peer] = {
        "bare": ClientLoop("bare", "bare"),
        "swapbench-lib": ClientLoop("swapbench-lib", "library"),
        "swapbench-cli": SwapbenchCli(),
    }
    if "guidellm" in installed:
        table["guidellm"] = GuideLLM(installed["guidellm"])
    if "aiperf" in installed:
        table["aiperf"] = AIPerf(installed["aiperf"])
    return [table[name] for name in names]


def run_rounds(settings: Settings, peers: Sequence[Peer], folder: Path) -> list[list[ToolRun]]:
    body = canonical_body()
    write_inputs(folder / "inputs", body)
    with llama_server(folder, settings.server_threads) as server:
        log = ServerLog(server.spec.log_path)
        clock = calibrate(server.spec.url, body, log)
        rounds = []
        for r in range(settings.rounds):
            order = [*peers[r % len(peers) :], *peers[: r % len(peers)]]
            job = Job(server.spec.url, settings.requests, body, folder / "inputs", folder)
            rounds.append([run_one(p, replace(job, folder=folder / f"round{r + 1}-{p.name}"), log, clock, r + 1)
                           for p in order])  # fmt: skip
    return rounds


def run_one(peer: Peer, job: Job, log: ServerLog, clock: LogClock, round_index: int) -> ToolRun:
    """One tool run; an expected failure is recorded (and told) and the other tools go on."""
    try:
        run = run_tool(peer, job, log, clock, round_index)
    except PeerError as exc:
        say(f"round {round_index}: {peer.name} FAILED: {exc}")
        return ToolRun(tool=peer.name, round=round_index, error=str(exc))
    say(f"round {round_index}: {peer.name:<14} {run.requests} requests  p50 {run.p50_ms or 0:7.2f} ms  "
        f"wall {run.wall_s or 0:5.1f} s" + (f"  ({'; '.join(run.notes)})" if run.notes else ""))  # fmt: skip
    return run


# --- the summary ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    tool: str
    requests: int
    p50_ms: float | None
    ratio: float | None
    ratio_range: tuple[float, float] | None
    server_p50_ms: float | None
    client_minus_server_ms: float | None
    startup_s: float | None
    peak_rss_mb: float | None
    cpu_ms_per_request: float | None
    failed_rounds: int


def median_or_none(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(rounds: Sequence[Sequence[ToolRun]], tools: Sequence[str]) -> list[Row]:
    runs = {t: [run for one in rounds for run in one if run.tool == t] for t in tools}
    bare = {run.round: run.p50_ms for run in runs["bare"] if run.error is None}
    bare_p50 = median_or_none([x for run in runs["bare"] if run.error is None for x in run.latencies_ms])
    return [row(t, [r for r in runs[t] if r.error is None], len(runs[t]), bare, bare_p50) for t in tools]


def row(tool: str, ok: list[ToolRun], total: int, bare: dict[int, float | None], bare_p50: float | None) -> Row:
    p50 = median_or_none([x for run in ok for x in run.latencies_ms])
    ratios = [run.p50_ms / b for run in ok if run.p50_ms and (b := bare.get(run.round))]
    requests = sum(run.requests for run in ok)
    cpu = [run.cpu_s for run in ok if run.cpu_s is not None]
    return Row(
        tool=tool, requests=requests, p50_ms=p50, ratio=p50 / bare_p50 if p50 and bare_p50 else None,
        ratio_range=(min(ratios), max(ratios)) if ratios else None,
        server_p50_ms=median_or_none([x for run in ok for x in run.server_ms]),
        client_minus_server_ms=median_or_none([x for run in ok for x in run.client_minus_server_ms]),
        startup_s=median_or_none([run.startup_s for run in ok if run.startup_s is not None]),
        peak_rss_mb=max((run.peak_rss_mb for run in ok if run.peak_rss_mb is not None), default=None),
        cpu_ms_per_request=sum(cpu) / requests * 1e3 if cpu and requests else None,
        failed_rounds=total - len(ok),
    )  # fmt: skip


def render_table(rows: Sequence[Row]) -> str:
    """The summary as a plain-text table (one line per tool)."""
    head = ("tool", "requests", "p50 ms", "x bare (rounds)", "server p50 ms", "client-server ms", "start-up s",
            "peak RSS MB", "CPU/req ms")  # fmt: skip
    lines = [head, *[cells(r) for r in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
            for line in lines]  # fmt: skip
    return "\n".join([text[0], "  ".join("-" * w for w in widths), *text[1:]])


def cells(r: Row) -> tuple[str, ...]:
    def num(value: float | None, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    ratio = num(r.ratio, ".3f")
    if r.ratio_range:
        ratio += f" ({r.ratio_range[0]:.2f}-{r.ratio_range[1]:.2f})"
    tool = r.tool + (f" [{r.failed_rounds} failed]" if r.failed_rounds else "")
    return (tool, str(r.requests), num(r.p50_ms, ".2f"), ratio, num(r.server_p50_ms, ".2f"),
            num(r.client_minus_server_ms, ".2f"),
            num(r.startup_s, ".2f"), num(r.peak_rss_mb, ".0f"), num(r.cpu_ms_per_request, ".2f"))  # fmt: skip


def report(settings: Settings, installed: dict[str, Installed], rounds: Sequence[Sequence[ToolRun]],
           rows: Sequence[Row]) -> dict[str, object]:  # fmt: skip
    return {
        "settings": {**asdict(settings), "out": str(settings.out), "cache": str(settings.cache), "prompt": PROMPT,
                     "max_tokens": MAX_TOKENS, "aiperf_request_rate": AIPERF_RATE_PER_S, "cpus": os.cpu_count(),
                     "python": sys.version},
        "installs": {t: {"version": i.package.version, "venv": str(i.venv), "installer": i.installer,
                         "install_s": round(i.install_s, 1), "reused": i.reused, "packages": list(i.packages)}
                     for t, i in installed.items()},
        "rounds": [[asdict(run) for run in one] for one in rounds],
        "summary": [asdict(r) for r in rows],
    }  # fmt: skip


# --- the client mode ------------------------------------------------------------------------------------------


class ClientFailed(Exception):
    pass


def bare_loop(url: str, body: bytes, count: int) -> list[Request]:
    """The least a Python client can do: one connection, reopened when the server closes it."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    conn = http.client.HTTPConnection(host, port, timeout=120)
    rows = []
    for _ in range(count):
        for attempt in range(2):
            try:
                start = time.monotonic()
                t0 = time.perf_counter_ns()
                status, answer = post(conn, body)
                latency_ms = (time.perf_counter_ns() - t0) / 1e6
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=120)
                if attempt:
                    raise
        if status != 200:
            raise ClientFailed(f"HTTP {status}: {answer[:300]!r}")
        timings = json.loads(answer).get("timings") or {}
        rows.append(Request(start, latency_ms, timings.get("prompt_ms", 0.0) + timings.get("predicted_ms", 0.0)))
    return rows


def library_loop(url: str, body: bytes, count: int) -> list[Request]:
    """swapbench's client as the bench loop uses it."""
    from swapbench.adapters.openai_client import ChatEndpoint  # noqa: PLC0415 (see the note at the imports)

    rows = []
    with ChatEndpoint(url) as endpoint:
        for _ in range(count):
            start = time.monotonic()
            exchange = endpoint.complete(body)
            if exchange.error is not None:
                raise ClientFailed(exchange.error)
            server_ms = exchange.timings.total_ms if exchange.timings else None
            rows.append(Request(start, exchange.latency_ms, server_ms))
    return rows


def client_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="peers.py client", description="internal: one client loop")
    parser.add_argument("kind", choices=("bare", "library"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    loop = bare_loop if args.kind == "bare" else library_loop
    try:
        rows = loop(args.url, args.body.read_bytes(), args.requests)
    except (ClientFailed, OSError, http.client.HTTPException, SwapbenchError) as exc:
        print(f"client {args.kind}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    args.out.write_text("".join(json.dumps(asdict(r)) + "\n" for r in rows), encoding="utf-8")
    return 0


# --- entry ----------------------------------------------------------------------------------------------------


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_settings(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100, help="requests per tool per round (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the tool order rotates (default 3)")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}; "
                        "bare always runs (the ratios are to it)")  # fmt: skip
    parser.add_argument("--server-threads", type=int, default=1, help="llama-server -t (default 1: 2-core box)")
    parser.add_argument("--out", type=Path, help="JSON of every round (default swapbench-results/peers-TIME.json)")
    parser.add_argument("--cache-dir", type=Path, default=cache_root(), help="where the tools' venvs live")
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown or args.requests < 1 or args.rounds < 1:
        parser.error(f"unknown tool {unknown[0]!r} (known: {', '.join(TOOLS)})" if unknown
                     else "--requests and --rounds must be at least 1")  # fmt: skip
    chosen = tuple(t for t in TOOLS if t == "bare" or t in tools)
    out = args.out or Path("swapbench-results") / f"peers-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    return Settings(args.requests, args.rounds, chosen, args.server_threads, out, args.cache_dir, os.getloadavg())


def bench(settings: Settings) -> int:
    installed = {p.tool: ensure_installed(p, settings.cache) for p in PEERS if p.tool in settings.tools}
    folder = settings.out.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    say(f"tool outputs and the server log: {folder}")
    rounds = run_rounds(settings, make_peers(settings.tools, installed), folder)
    rows = summarize(rounds, settings.tools)
    print(render_summary(settings, installed, rounds, rows))
    settings.out.write_text(json.dumps(report(settings, installed, rounds, rows), indent=1), encoding="utf-8")
    print(f"every round: {settings.out}")
    return 1 if any(r.failed_rounds for r in rows) else 0


def render_summary(settings: Settings, installed: dict[str, Installed], rounds: Sequence[Sequence[ToolRun]],
                   rows: Sequence[Row]) -> str:  # fmt: skip
    """The table, what it was measured on, the pins, and every note or failure of a round."""
    head = (
        f"{settings.requests} requests x {settings.rounds} rounds per tool, concurrency 1, {MAX_TOKENS} tokens "
        f"out, one CPU llama-server (SmolLM2-135M, -t {settings.server_threads}), {os.cpu_count()} CPUs; "
        f"load average before the run {settings.load_before[0]:.1f} (other work on the host skews the p50s)"
    )
    pins = ", ".join(f"{i.package.tool} {i.package.version} ({i.installer}, installed in {i.install_s:.0f} s"
                     f"{', reused' if i.reused else ''})" for i in installed.values())  # fmt: skip
    notes = [f"  round {run.round} {run.tool}: {note}" for one in rounds for run in one
             for note in ([*run.notes, f"FAILED: {run.error}"] if run.error else run.notes)]  # fmt: skip
    parts = ["", head, "", render_table(rows), "", f"pins: {pins or 'none'}"]
    return "\n".join([*parts, *(["notes:", *notes] if notes else []), ""])


def raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["client"]:
        return client_main(args[1:])
    settings = parse_settings(args)
    signal.signal(signal.SIGTERM, raise_interrupt)  # the same clean way out as Ctrl-C
    become_subreaper()
    try:
        return bench(settings)
    except (PeerError, SwapbenchError, OSError) as exc:
        say(f"peers: {exc}")
        return 2
    except KeyboardInterrupt:
        say("peers: interrupted; the server and the running tool were stopped")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
