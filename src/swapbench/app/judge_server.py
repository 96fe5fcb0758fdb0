"""The judging page's web server: on loopback only, it serves one page and the run's frames, and hands each
POSTed record to the caller's thread, which answers it."""

from __future__ import annotations

import ipaddress
import json
import queue
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import cast

from swapbench.errors import PlanError

MAX_POST_BYTES = 1 << 20  # picks and a note; anything larger is not from the page
DELIVERY_S = 10.0  # how long the last answer may take to reach the page before swapbench exits anyway
IDLE_S = 60.0  # a connection that sends nothing (a browser's speculative one) is dropped after this
LOOPBACK_HINT = ("leave --host out (127.0.0.1) or give ::1; to judge from another machine, forward the port "
                 "over SSH (ssh -L PORT:127.0.0.1:PORT) rather than serving the run to the network")  # fmt: skip


@dataclass(frozen=True)
class Reply:
    """An answer to a request: status, body and its media type."""

    status: HTTPStatus
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: HTTPStatus, payload: object) -> Reply:
        return cls(status, json.dumps(payload).encode())


STOPPED = Reply.json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "swapbench judge has stopped",
                                                      "hint": "run `swapbench judge` again to record"})  # fmt: skip


@dataclass(frozen=True)
class Image:
    data: bytes
    content_type: str


@dataclass
class Posted:
    """A record the page POSTed; its request waits until `answer` is called with the reply."""

    body: bytes
    _reply: queue.Queue[Reply] = field(default_factory=lambda: queue.Queue(maxsize=1))
    _sent: threading.Event = field(default_factory=threading.Event)

    def answer(self, reply: Reply, delivered: bool = False) -> None:
        """Reply; with `delivered`, wait until it was written to the page (the last reply, before exiting)."""
        if self._reply.empty():  # a record is answered once: by its reader, or with 503 when the server stops
            self._reply.put(reply)
        if delivered:
            self._sent.wait(DELIVERY_S)

    def reply(self) -> Reply:
        return self._reply.get()

    def sent(self) -> None:
        self._sent.set()


def loopback(host: str) -> str:
    """The address, if it is a loopback IP literal: the page shows a run's answers and takes its decision."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise PlanError(f"--host {host!r} is not an IP address", hint=LOOPBACK_HINT) from exc
    if not address.is_loopback:
        raise PlanError(f"--host {host} is not a loopback address: the judging page is served on this machine "
                        "only", hint=LOOPBACK_HINT)  # fmt: skip
    return str(address)


class JudgeServer:
    """`with JudgeServer(host, port, page, image) as server:` serves until the block ends; `next_post()` waits
    for the page's next record. Requests naming another host or origin are refused (DNS rebinding, other sites)."""

    def __init__(self, host: str, port: int, page: str, image: Callable[[int], Image | None]) -> None:
        self.page = page.encode()
        self.image = image
        self._inbox: queue.Queue[Posted] = queue.Queue()
        self._pending: list[Posted] = []
        self._lock = threading.Lock()
        self._closing = False
        self._host = loopback(host)
        self._http = _bind(self._host, port)
        self._http.site = self
        self._thread = threading.Thread(target=self._http.serve_forever, name="judge-server", daemon=True)

    @property
    def url(self) -> str:
        shown = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{shown}:{self._http.server_port}/"

    def __enter__(self) -> JudgeServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        with self._lock:
            self._closing = True
            for posted in self._pending:
                posted.answer(STOPPED)
        self._http.shutdown()
        self._http.server_close()

    def next_post(self) -> Posted:
        """The next record the page POSTed; answer it with `posted.answer(reply)`."""
        posted = self._inbox.get()
        with self._lock:
            self._pending.remove(posted)
        return posted

    def receive(self, body: bytes) -> Posted | None:
        """A request's record, queued for `next_post`; None once the server is stopping."""
        posted = Posted(body)
        with self._lock:
            if self._closing:
                return None
            self._pending.append(posted)
            self._inbox.put(posted)
        return posted


class _Http(ThreadingHTTPServer):
    """Request threads never hold the process up: a stopped judge exits at once (the last reply is awaited)."""

    daemon_threads = True
    block_on_close = False
    site: JudgeServer

    def handle_error(self, request: object, client_address: object) -> None:
        """A browser that went away mid-request is no error of the judge's; say nothing on the terminal."""


class _Http6(_Http):
    address_family = socket.AF_INET6


def _bind(host: str, port: int) -> _Http:
    kind = _Http6 if ":" in host else _Http
    try:
        return kind((host, port), _Handler)
    except OSError as exc:
        raise PlanError(f"cannot serve the judging page on {host} port {port}: {exc.strerror or exc}",
                        hint="pick another --port, or leave --port out for any free one") from exc  # fmt: skip


FRAME_PATH = re.compile(r"/frames/(\d{1,6})")


class _Handler(BaseHTTPRequestHandler):
    server_version = "swapbench-judge"
    timeout = IDLE_S

    @property
    def site(self) -> JudgeServer:
        return cast(_Http, self.server).site

    def do_GET(self) -> None:
        if not self._ours():
            return
        if self.path == "/":
            return self._send(Reply(HTTPStatus.OK, self.site.page, "text/html; charset=utf-8"))
        if (found := FRAME_PATH.fullmatch(self.path)) and (image := self.site.image(int(found[1]))):
            return self._send(Reply(HTTPStatus.OK, image.data, image.content_type))
        self._send(Reply(HTTPStatus.NOT_FOUND, b"not found", "text/plain"))

    def do_POST(self) -> None:
        if not self._ours():
            return
        length = self.headers.get("Content-Length", "")
        size = int(length) if length.isdigit() else 0
        if self.path != "/record" or not self.headers.get("Content-Type", "").startswith("application/json"):
            return self._send(Reply.json(HTTPStatus.NOT_FOUND, {"error": "POST JSON to /record"}))
        if not 0 < size <= MAX_POST_BYTES:
            return self._send(Reply.json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "no record, or too large"}))
        posted = self.site.receive(self.rfile.read(size))
        try:
            self._send(posted.reply() if posted else STOPPED)
        finally:
            if posted:
                posted.sent()

    def _ours(self) -> bool:
        """Only the page's own requests: a Host of our address (a rebound DNS name is not) and no other origin."""
        mine = self.site.url.rstrip("/")
        host, origin = self.headers.get("Host"), self.headers.get("Origin")
        if f"http://{host}" == mine and origin in (None, mine):
            return True
        self._send(Reply(HTTPStatus.FORBIDDEN, b"served to this page's own origin only", "text/plain"))
        return False

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the terminal shows the URL and then the decision, not a line per request."""
