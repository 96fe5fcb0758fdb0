"""Twin of the Chatterbox TTS server: /health says model_loaded once the "model" has loaded (1 s), and
/synthesize answers a real WAV (16 kHz mono, a tone of 0.4 s a word). Standard library only."""

import argparse
import io
import json
import math
import struct
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.monotonic()
LOAD_S = 1.0


def wav_for(text: str) -> bytes:
    rate, seconds = 16000, 0.4 * max(1, len(text.split()))
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(int(rate * seconds))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health":
            loaded = time.monotonic() - STARTED >= LOAD_S
            self._send(200, json.dumps({"status": "ok", "model_loaded": loaded}).encode(), "application/json")
        else:
            self._send(404, b"{}", "application/json")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            text = json.loads(self.rfile.read(length) or b"{}").get("text", "")
        except ValueError:
            self._send(400, b'{"error":"bad json"}', "application/json")
            return
        if self.path == "/synthesize" and time.monotonic() - STARTED >= LOAD_S:
            self._send(200, wav_for(text), "audio/wav")
        else:
            self._send(503 if self.path == "/synthesize" else 404, b"{}", "application/json")

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8772)
    ThreadingHTTPServer(("127.0.0.1", parser.parse_args().port), Handler).serve_forever()
