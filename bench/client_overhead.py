"""Client overhead: swapbench's HTTP client against a bare http.client loop, interleaved, on one real server.

Reports, over N interleaved pairs of the same request:
  (a) median of (swapbench latency - bare latency) per pair: what swapbench adds to the latency it records
      (goal <= 0.3 ms), and the same for the wall time of a whole `complete()` call (JSON decode and the
      typed sample included);
  (b) median of (swapbench client latency - server timings prompt_ms + predicted_ms): the time spent
      outside the server's own timings (HTTP, template, tokenisation, the client).

    .venv/bin/python bench/client_overhead.py [--pairs 200] [--workload text|nav]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from swapbench.adapters.image import load_image
from swapbench.adapters.openai_client import CHAT_PATH, ChatEndpoint
from swapbench.app import bench
from swapbench.demo.rig import find_rig
from swapbench.host.llama_server import LlamaServer, LlamaServerSpec, free_port
from swapbench.plan.models import Workload
from swapbench.workloads.prepare import request_body


class BareClient:
    """The least a Python client can do: one http.client connection, reopened when the server closes it."""

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


def make_body(kind: str) -> bytes:
    if kind == "nav":
        image = load_image(bench.bundled_image())
        body = request_body(Workload(name="nav", kind="nav"), "Reply with JSON.", image.data_url, 42, None)
    else:
        body = request_body(Workload(name="t", kind="describe", image=False, max_tokens=2), "Say hi.", None, 42, None)
    return json.dumps(body, separators=(",", ":")).encode()


def measure(url_port: int, body: bytes, pairs: int) -> dict[str, float | str]:
    bare = BareClient("127.0.0.1", url_port)
    recorded_diff, wall_diff, outside_server, sb_lat, bare_lat = [], [], [], [], []
    with ChatEndpoint(f"http://127.0.0.1:{url_port}") as ep:
        for _ in range(5):  # warm both paths
            ep.complete(body)
            bare.post(body)
        for i in range(pairs):
            # alternate who goes first, so drift and cache effects fall on both alike
            order = ("sb", "bare") if i % 2 == 0 else ("bare", "sb")
            got: dict[str, float] = {}
            for who in order:
                if who == "sb":
                    t0 = time.perf_counter_ns()
                    ex = ep.complete(body)
                    got["sb_wall"] = (time.perf_counter_ns() - t0) / 1e6
                    got["sb"] = ex.latency_ms
                    if ex.timings and ex.timings.total_ms is not None:
                        outside_server.append(ex.latency_ms - ex.timings.total_ms)
                else:
                    got["bare"], _ = bare.post(body)
            recorded_diff.append(got["sb"] - got["bare"])
            wall_diff.append(got["sb_wall"] - got["bare"])
            sb_lat.append(got["sb"])
            bare_lat.append(got["bare"])
    return {
        "pairs": pairs,
        "bare_p50_ms": statistics.median(bare_lat),
        "swapbench_p50_ms": statistics.median(sb_lat),
        "ratio_p50_swapbench_over_bare": statistics.median(sb_lat) / statistics.median(bare_lat),
        "median_recorded_overhead_ms": statistics.median(recorded_diff),
        "median_call_overhead_ms": statistics.median(wall_diff),
        "median_client_minus_server_timings_ms": statistics.median(outside_server),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--workload", choices=("text", "nav"), default="text")
    args = parser.parse_args()
    rig = find_rig()
    with tempfile.TemporaryDirectory() as tmp:
        spec = LlamaServerSpec(
            binary=rig.llama_server,
            model=rig.smollm2,
            port=free_port(),
            log_path=Path(tmp) / "server.log",
            mmproj=rig.mmproj(rig.smollm2) if args.workload == "nav" else None,
        )
        with LlamaServer(spec) as server:
            server.wait_ready()
            result = measure(spec.port, make_body(args.workload), args.pairs)
    result["workload"] = args.workload
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
