"""Processes of the sandbox host, run as `python -m swapbench.demo.sandbox ...`:

start NAME --dir D -- ARGV...   start ARGV detached (like a service's ./start.sh) and return
stop NAME --dir D               stop what `start NAME` started (TERM its group, then KILL)
tts --port P [--load-s S]       a TTS service: /health (model_loaded), POST /synthesize -> WAV audio
nav --port P                    a nav sidecar: /health
daemon TAG...                   a daemon that only needs to stay alive (found by pgrep)
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import subprocess
import sys
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import ClassVar

import psutil

from swapbench.host.processes.proc import kill_group

LOOPBACK = "127.0.0.1"


def start(name: str, folder: Path, argv: list[str]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    fail_marker = folder / f"{name}.fail-next-start"
    if fail_marker.exists():  # the fault matrix's "a service fails its first restart"
        fail_marker.unlink()
        print(f"{name}: start failed (injected)", file=sys.stderr)
        return 1
    with (folder / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    # The start time goes with the PID: PIDs are reused (pid_max is often 32768), a stale pidfile must not
    # make `stop` signal somebody else's process group.
    (folder / f"{name}.pid").write_text(f"{proc.pid} {psutil.Process(proc.pid).create_time()!r}")
    return 0


def stop(name: str, folder: Path) -> int:
    pidfile = folder / f"{name}.pid"
    if pidfile.exists():
        pid, created = pidfile.read_text().split()
        try:
            ours = abs(psutil.Process(int(pid)).create_time() - float(created)) < 0.01
        except psutil.Error:
            ours = False
        if ours:
            kill_group(int(pid), grace_s=5.0)
        pidfile.unlink(missing_ok=True)
    return 0


def wav_bytes(text: str, rate: int = 16000) -> bytes:
    """A real mono 16-bit WAV: one short tone per word."""
    frames = bytearray()
    for i, _ in enumerate(text.split() or ["."]):
        freq = 440.0 + 110.0 * (i % 4)
        frames += b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * n / rate))) for n in range(rate // 4)
        )
    buf = BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    health: ClassVar[dict[str, object]] = {}
    loaded_at: ClassVar[float] = 0.0

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != "/health":
            self._send(404, b'{"error": "not found"}')
            return
        ready = time.monotonic() >= self.loaded_at
        self._send(200, json.dumps({**self.health, "model_loaded": ready}).encode())

    def do_POST(self) -> None:
        if self.path != "/synthesize" or time.monotonic() < self.loaded_at:
            self._send(503 if self.path == "/synthesize" else 404, b'{"error": "not ready"}')
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self._send(200, wav_bytes(str(body.get("text", ""))), "audio/wav")


def serve(port: int, health: dict[str, object], load_s: float = 0.0) -> int:
    handler = type("Handler", (_Handler,), {"health": health, "loaded_at": time.monotonic() + load_s})
    server = ThreadingHTTPServer((LOOPBACK, port), handler)
    server.serve_forever()
    return 0


def daemon() -> int:
    threading.Event().wait()
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m swapbench.demo.sandbox")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("start")
    p.add_argument("name")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p = sub.add_parser("stop")
    p.add_argument("name")
    p.add_argument("--dir", type=Path, required=True)
    p = sub.add_parser("tts")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--load-s", type=float, default=0.0)
    p = sub.add_parser("nav")
    p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("daemon")
    p.add_argument("tag", nargs="*")
    args = parser.parse_args(argv)
    if args.cmd == "start":
        return start(args.name, args.dir, [a for a in args.argv if a != "--"])
    if args.cmd == "stop":
        return stop(args.name, args.dir)
    if args.cmd == "tts":
        return serve(args.port, {"service": "tts"}, args.load_s)
    if args.cmd == "nav":
        return serve(args.port, {"service": "panda-nav", "status": "ok"})
    return daemon()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
