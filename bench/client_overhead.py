"""Client overhead: swapbench's recorded latency and CPU against bare loops, interleaved, on one real server.

Three clients send the same pre-serialised request bytes on one kept-alive connection each, in turn (the order
rotates every round, so drift and cache effects fall on all alike):
  swapbench  ChatEndpoint.complete(): the latency it records, the wall time of the whole call (parsing and
             the typed sample included) and the CPU the calling thread used;
  http       a bare http.client loop: request(), getresponse().read(), timed around both;
  socket     the floor: sendall() of prepared bytes, recv() until Content-Length bytes are in, timed at the socket.
Reported per workload (text: 2 tokens out, no image; nav: the bundled image, JSON out):
  median of the paired differences (swapbench recorded - http, swapbench recorded - socket, call - http);
  p50 of each; median client-minus-server time (swapbench latency - prompt_ms - predicted_ms);
  CPU per request (thread time) of each client, and of swapbench's whole bench loop (run_workloads: the request,
  parsing, interpretation into samples) against the http loop over the same number of requests (process time).

    .venv/bin/python bench/client_overhead.py [--pairs 200] [--pairs-nav N] [--workload text|nav|both] [--ngl 99]
        [--loop-requests 100] [--out FILE]

Run it with PYTHONPATH pointing at another checkout's src/ to measure that version with the same script.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import random
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swapbench.adapters.image import load_image
from swapbench.adapters.openai_client import CHAT_PATH, ChatEndpoint
from swapbench.app import bench
from swapbench.core.bench import BenchSettings, run_workloads
from swapbench.demo.rig import find_rig
from swapbench.host.candidate.llama_server import LlamaServer, LlamaServerSpec, free_port
from swapbench.plan.load import pick_target
from swapbench.plan.models import DescribeWorkload, NavWorkload
from swapbench.workloads.requests import prepare_workloads, request_body


class HttpClient:
    """The least an http.client loop does: one connection, reopened when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port)

    def post(self, body: bytes) -> tuple[float, bytes]:
        for _ in range(2):
            try:
                start = time.perf_counter_ns()
                self.conn.request("POST", CHAT_PATH, body, {"Content-Type": "application/json"})
                data = self.conn.getresponse().read()
                return (time.perf_counter_ns() - start) / 1e6, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port)
        raise RuntimeError("server closed the connection twice in a row")


class SocketClient:
    """The floor: prepared request bytes on a raw socket; the answer read until its Content-Length is in."""

    def __init__(self, host: str, port: int) -> None:
        self.addr = (host, port)
        self.sock = self._connect()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.addr)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def post(self, request: bytes) -> tuple[float, bytes]:
        for _ in range(2):
            start = time.perf_counter_ns()
            self.sock.sendall(request)
            buf = b""
            while (end := buf.find(b"\r\n\r\n")) < 0:
                data = self.sock.recv(262144)
                if not data:
                    break
                buf += data
            if end < 0:  # the server had closed the kept-alive connection: reconnect and resend
                self.sock.close()
                self.sock = self._connect()
                continue
            head = buf[:end].lower()
            length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            while len(buf) < end + 4 + length:
                buf += self.sock.recv(262144)
            return (time.perf_counter_ns() - start) / 1e6, buf[end + 4 :]
        raise RuntimeError("server closed the connection twice in a row")


def make_body(kind: str) -> bytes:
    if kind == "nav":
        image = load_image(bench.bundled_image())
        body = request_body(NavWorkload(name="nav", kind="nav"), "Reply with JSON.", image.data_url, 42, None)
    else:
        body = request_body(
            DescribeWorkload(name="t", kind="describe", image=False, max_tokens=2), "Say hi.", None, 42, None
        )
    return json.dumps(body, separators=(",", ":")).encode()


def _cpu_ns(call: Callable[[], Any]) -> tuple[Any, int]:
    t0 = time.thread_time_ns()
    out = call()
    return out, time.thread_time_ns() - t0


def measure(port: int, body: bytes, pairs: int) -> dict[str, Any]:
    http_client = HttpClient("127.0.0.1", port)
    sock_client = SocketClient("127.0.0.1", port)
    raw = (
        f"POST {CHAT_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    lat: dict[str, list[float]] = {"swapbench": [], "http": [], "socket": [], "call": []}
    cpu: dict[str, list[int]] = {"swapbench": [], "http": [], "socket": []}
    outside: list[float] = []
    with ChatEndpoint(f"http://127.0.0.1:{port}") as ep:
        for _ in range(5):  # warm every path
            ep.complete(body)
            http_client.post(body)
            sock_client.post(raw)
        order = ["swapbench", "http", "socket"]
        for i in range(pairs):
            for who in order[i % 3 :] + order[: i % 3]:
                if who == "swapbench":
                    t0 = time.perf_counter_ns()
                    ex, used = _cpu_ns(lambda: ep.complete(body))
                    lat["call"].append((time.perf_counter_ns() - t0) / 1e6)
                    lat["swapbench"].append(ex.latency_ms)
                    if ex.error is not None:
                        raise RuntimeError(f"swapbench's request failed: {ex.error}")
                    if ex.timings and ex.timings.total_ms is not None:
                        outside.append(ex.latency_ms - ex.timings.total_ms)
                elif who == "http":
                    (ms, _), used = _cpu_ns(lambda: http_client.post(body))
                    lat["http"].append(ms)
                else:
                    (ms, _), used = _cpu_ns(lambda: sock_client.post(raw))
                    lat["socket"].append(ms)
                cpu[who].append(used)

    def paired(a: str, b: str) -> float:
        return statistics.median(x - y for x, y in zip(lat[a], lat[b], strict=True))

    def ci95(a: str, b: str) -> list[float]:
        """Bootstrap 95 % interval of the median paired difference (2000 resamples, fixed seed)."""
        diffs = [x - y for x, y in zip(lat[a], lat[b], strict=True)]
        rng = random.Random(13)
        medians = sorted(statistics.median(rng.choices(diffs, k=len(diffs))) for _ in range(2000))
        return [medians[50], medians[1949]]

    p50 = {k: statistics.median(v) for k, v in lat.items()}
    return {
        "pairs": pairs,
        "http_p50_ms": p50["http"],
        "socket_p50_ms": p50["socket"],
        "swapbench_p50_ms": p50["swapbench"],
        "ratio_p50_swapbench_over_http": p50["swapbench"] / p50["http"],
        "median_recorded_overhead_vs_http_ms": paired("swapbench", "http"),
        "median_recorded_overhead_vs_http_ci95_ms": ci95("swapbench", "http"),
        "median_recorded_overhead_vs_socket_ms": paired("swapbench", "socket"),
        "median_recorded_overhead_vs_socket_ci95_ms": ci95("swapbench", "socket"),
        "median_call_overhead_vs_http_ms": paired("call", "http"),
        "median_client_minus_server_timings_ms": statistics.median(outside) if outside else float("nan"),
        "cpu_us_per_request_swapbench_call": statistics.mean(cpu["swapbench"]) / 1e3,
        "cpu_us_per_request_http": statistics.mean(cpu["http"]) / 1e3,
        "cpu_us_per_request_socket": statistics.mean(cpu["socket"]) / 1e3,
    }


def loop_cpu(url: str, port: int, kind: str, body: bytes, requests: int) -> dict[str, float]:
    """Process CPU of swapbench's whole bench loop (request, parse, samples) against the http loop, alternating
    blocks of the same number of requests."""
    workload = "nav" if kind == "nav" else "describe"
    loaded = bench.plan_from_options(bench.BenchRequest(url=url, workloads=(workload,), samples=requests, warmup=0))
    _, prepared = prepare_workloads(loaded, pick_target(loaded, "baseline"))
    # the same bytes as the paired figures (nav keeps its parse contract: the loop interprets every answer)
    workloads = [dataclasses.replace(prepared[0], bodies=(json.loads(body),), framed=False)]
    http_client = HttpClient("127.0.0.1", port)
    settings = BenchSettings(warmup=0, samples=requests)
    sb_cpu, http_cpu, sb_wall, http_wall = [], [], [], []
    with ChatEndpoint(url) as ep:
        for _ in range(3):
            t0, w0 = time.process_time_ns(), time.perf_counter_ns()
            runs = run_workloads(ep, workloads, settings, time.perf_counter_ns)
            sb_cpu.append(time.process_time_ns() - t0)
            sb_wall.append(time.perf_counter_ns() - w0)
            assert runs[0].error is None and len(runs[0].samples) == requests, runs[0].error
            t0, w0 = time.process_time_ns(), time.perf_counter_ns()
            for _ in range(requests):
                http_client.post(body)
            http_cpu.append(time.process_time_ns() - t0)
            http_wall.append(time.perf_counter_ns() - w0)
    sb, bare = statistics.median(sb_cpu) / requests / 1e3, statistics.median(http_cpu) / requests / 1e3
    return {
        "loop_requests": requests,
        "loop_cpu_us_per_request_swapbench": sb,
        "loop_cpu_us_per_request_http": bare,
        "loop_cpu_ratio_swapbench_over_http": sb / bare,
        "loop_cpu_share_of_wall_swapbench": statistics.median(sb_cpu) / statistics.median(sb_wall),
        "loop_cpu_share_of_wall_http": statistics.median(http_cpu) / statistics.median(http_wall),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--pairs-nav", type=int, default=None, help="pairs for nav (default: --pairs)")
    parser.add_argument("--workload", choices=("text", "nav", "both"), default="both")
    parser.add_argument("--loop-requests", type=int, default=100, help="per block of the loop CPU figure (0: skip)")
    parser.add_argument("--ngl", default=None, help="llama-server -ngl (99 on a GPU)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rig = find_rig()
    report: dict[str, Any] = {}
    kinds = ("text", "nav") if args.workload == "both" else (args.workload,)
    with tempfile.TemporaryDirectory() as tmp:
        spec = LlamaServerSpec(
            binary=rig.llama_server,
            model=rig.smollm2,
            port=free_port(),
            log_path=Path(tmp) / "server.log",
            mmproj=rig.mmproj(rig.smollm2) if "nav" in kinds else None,
            extra_args=("-ngl", args.ngl) if args.ngl else (),
        )
        with LlamaServer(spec) as server:
            server.wait_ready()
            for kind in kinds:
                body = make_body(kind)
                pairs = args.pairs_nav if kind == "nav" and args.pairs_nav else args.pairs
                result: dict[str, Any] = {"workload": kind, **measure(spec.port, body, pairs)}
                if args.loop_requests:
                    result |= loop_cpu(spec.url, spec.port, kind, body, args.loop_requests)
                report[kind] = result
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
