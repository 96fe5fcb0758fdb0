"""A hostile OpenAI-compatible server on 127.0.0.1: answers that are malformed, dripped, huge or full of markup.

Raw HTTP/1.1 over a socket (so headers too can be dripped), one thread per connection, keep-alive. /health is
always 200 so a bench starts; every chat completion gets the mode's answer. Every loop is bounded.
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MODES = ("nonstring-content", "nan-timings", "choices-5-stream", "markup-error", "drip-body", "drip-headers",
         "huge-answer", "not-json", "empty-choices", "invalid-utf8", "surrogate-content")  # fmt: skip
MARKUP = "bad [/] thing [red]x[/red] and [[services]]"
HUGE_BYTES = 50 << 20


def _response(status: str, body: bytes, kind: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _chat(content: str = "ok", timings: str = '{"prompt_n": 5, "prompt_ms": 1.0, "predicted_n": 2, '
          '"predicted_ms": 2.0}') -> bytes:  # fmt: skip
    message = json.dumps({"role": "assistant", "content": content})
    return (f'{{"choices": [{{"index": 0, "message": {message}, "finish_reason": "stop"}}], '
            f'"usage": {{"prompt_tokens": 5, "completion_tokens": 2}}, "timings": {timings}}}').encode()  # fmt: skip


ANSWERS: dict[str, bytes] = {
    "nonstring-content": _response("200 OK", b'{"choices": [{"message": {"content": 5}, "finish_reason": "stop"}]}'),
    "nan-timings": _response("200 OK", _chat(timings='{"prompt_ms": NaN, "predicted_ms": Infinity, "predicted_n": 2}')),
    "choices-5-stream": _response("200 OK", b'data: {"choices": 5}\n\ndata: [DONE]\n\n', "text/event-stream"),
    "markup-error": _response("500 Internal Server Error", json.dumps({"error": {"message": MARKUP}}).encode()),
    "not-json": _response("200 OK", b"<html>upstream error</html>", "text/html"),
    "empty-choices": _response("200 OK", b'{"choices": []}'),
    "invalid-utf8": _response("200 OK", b'{"choices": [{"message": {"content": "\xff\xfe"}}]}'),
    "surrogate-content": _response("200 OK", _chat(content="\ud800 lone surrogate")),
}


class _Handler(socketserver.StreamRequestHandler):
    mode = ""

    def handle(self) -> None:
        for _ in range(1000):  # requests on one kept-alive connection
            path = self._read_request()
            if path is None:
                return
            try:
                self._answer(path)
            except OSError:
                return  # the client cut the connection (a deadline, a size cap): fine

    def _read_request(self) -> str | None:
        line = self.rfile.readline(65536)
        if not line:
            return None
        length = 0
        while (header := self.rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        self.rfile.read(length)
        return line.split()[1].decode("latin-1")

    def _answer(self, path: str) -> None:
        if path == "/health":
            self.wfile.write(_response("200 OK", b'{"status": "ok"}'))
        elif not path.startswith("/v1/chat/completions"):
            self.wfile.write(_response("404 Not Found", b'{"error": {"message": "not here"}}'))
        elif self.mode in ANSWERS:
            self.wfile.write(ANSWERS[self.mode])
        else:
            self._slow()

    def _slow(self) -> None:
        """Drip or flood, one write at a time: bounded, and ended by the client closing the connection."""
        if self.mode == "huge-answer":
            self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Length: {HUGE_BYTES}\r\n\r\n".encode())
            chunk = b"x" * (64 << 10)
            for _ in range(HUGE_BYTES // len(chunk)):
                self.wfile.write(chunk)
            return
        data = _response("200 OK", _chat())
        head_end = data.index(b"\r\n\r\n") + 4
        if self.mode == "drip-body":
            self.wfile.write(data[:head_end])
            data = data[head_end:]
        for byte in data[:60]:  # a minute at most
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(1.0)


@contextmanager
def hostile_server(mode: str) -> Iterator[int]:
    """Serve `mode` on a free loopback port; yields the port."""
    handler = type("Handler", (_Handler,), {"mode": mode})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
