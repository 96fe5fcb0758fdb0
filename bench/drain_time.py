"""Drain time on a GPU: how long after SIGTERM (and after SIGKILL) a llama-server's memory is gone from NVML.

    SWAPBENCH_RIG=/path/to/rig python bench/drain_time.py [--repeats 3] [--ngl 99]

For each signal: start SmolLM2 on the GPU, wait until it serves, read NVML, send the signal, then poll NVML
every 10 ms until the process is no longer listed and used memory is back within 64 MiB of the level before
launch. Prints one JSON object: per-signal drain times and the server's resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from swapbench.demo.rig import find_rig
from swapbench.host.candidate.llama_server import LlamaServer, LlamaServerSpec, free_port
from swapbench.host.gpu.device import GpuProbe

TOLERANCE_MIB = 64.0


def one(sig: signal.Signals, ngl: str, probe: GpuProbe, folder: Path) -> dict[str, float | None]:
    rig = find_rig()
    before = probe.read().used_mib or 0.0
    spec = LlamaServerSpec(binary=rig.llama_server, model=rig.smollm2, port=free_port(),
                           log_path=folder / "server.log", extra_args=("-ngl", ngl))  # fmt: skip
    server = LlamaServer(spec)
    server.start()
    server.wait_ready(timeout_s=120)
    loaded = probe.read()
    resident = loaded.memory_of({server.pid})
    os.killpg(server.pid, sig)
    t0 = time.monotonic()
    exited = None
    while True:
        reading = probe.read()
        if exited is None and server.process is not None and server.process.poll() is not None:
            exited = time.monotonic() - t0
        listed = any(p.pid == server.pid for p in reading.processes)
        if not listed and (reading.used_mib or 0.0) <= before + TOLERANCE_MIB:
            drained = time.monotonic() - t0
            break
        if time.monotonic() - t0 > 60:
            drained = float("nan")
            break
        time.sleep(0.01)
    server.stop(grace_s=1)
    return {"drain_s": drained, "exit_s": exited, "resident_mib": resident, "device_used_loaded_mib": loaded.used_mib}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ngl", default="99")
    args = parser.parse_args()
    out: dict[str, object] = {}
    with GpuProbe(0) as probe, tempfile.TemporaryDirectory() as tmp:
        first = probe.read()
        if first.error:
            print(json.dumps({"error": first.error}))
            return 1
        out["device"] = first.name
        for sig in (signal.SIGTERM, signal.SIGKILL):
            runs = [one(sig, args.ngl, probe, Path(tmp)) for _ in range(args.repeats)]
            drains = [r["drain_s"] for r in runs if r["drain_s"] is not None]
            out[sig.name] = {"runs": runs, "median_drain_s": statistics.median(drains) if drains else None}
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
