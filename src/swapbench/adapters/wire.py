"""A lean HTTP/1.1 client for the measured request: one kept-alive socket, bytes in and bytes out.

The recorded latency is the time on the wire: the clock starts just before the first byte is sent and stops just
after the recv that completes the answer. Between the two, the loop only receives and frames (the header block,
Content-Length or chunked); headers are split, JSON is decoded and samples are built after the clock stops. A
request never waits past its deadline: every recv is given the time left (a server that drips a byte a second
is cut), and nothing spins (a blocking recv with a timeout; no polling loop).

What an HTTP library does besides (redirects, proxies, cookies, compression, HTTP/2, pools) is not wanted for
a benchmark of one loopback server: the request goes to the URL as written, uncompressed, on one connection.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field

HEAD_LIMIT = 64 * 1024  # a header block larger than this is not an HTTP answer we can use
RECV_BYTES = 256 * 1024


class WireError(Exception):
    """What went wrong with one exchange, in words; `kind` names it for messages ("ConnectError")."""

    kind = "WireError"


class Unreachable(WireError):
    """No connection could be made (refused, no route, the connect timed out)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class ConnectionLost(WireError):
    """The connection closed or broke before the answer was complete. `answered`: a byte of it had arrived."""

    kind = "ConnectionLost"

    def __init__(self, detail: str, *, answered: bool) -> None:
        super().__init__(detail)
        self.answered = answered


class DeadlinePassed(WireError):
    kind = "DeadlinePassed"


class Malformed(WireError):
    """The bytes are not an HTTP/1.1 answer (status line, header block or chunk framing)."""

    kind = "Malformed"


class TooLarge(WireError):
    """The answer's body passed the size cap; nothing beyond the cap was read."""

    kind = "TooLarge"

    def __init__(self, status: int) -> None:
        super().__init__(f"the answer's body passed the size cap (HTTP {status})")
        self.status = status


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where requests go: scheme, host, port and the path prefix from the base URL."""

    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, base_url: str) -> Endpoint:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(slots=True)
class Answer:
    """One answer as it came off the wire. `arrivals`: for a chunked body, when each piece of it arrived
    (perf_counter ns, the body's length so far), so a stream's events can be timed after the clock stopped."""

    status: int
    head: bytes
    body: bytes
    start_ns: int
    end_ns: int
    connects: int
    arrivals: list[tuple[int, int]] = field(default_factory=list)
    close: bool = False

    @property
    def elapsed_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _framing(head: bytes) -> tuple[int, int | None, bool, bool]:
    """(status, content length or None, chunked, the server will close) from a header block."""
    lines = head.split(b"\r\n")
    status_line = lines[0].split(b" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1.") or not status_line[1].isdigit():
        raise Malformed(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(status_line[1])
    length: int | None = None
    chunked = False
    close = status_line[0] == b"HTTP/1.0"
    for line in lines[1:]:
        key, sep, value = line.partition(b":")
        if not sep:
            raise Malformed(f"a header line without a colon: {line[:80]!r}")
        key, value = key.strip().lower(), value.strip().lower()
        if key == b"content-length":
            if not value.isdigit():
                raise Malformed(f"Content-Length is not a number: {value[:40]!r}")
            length = int(value)
        elif key == b"transfer-encoding":
            chunked = value.endswith(b"chunked")
        elif key == b"connection":
            close = value == b"close" if value in (b"close", b"keep-alive") else close
    return status, length, chunked, close


def _send(sock: socket.socket, head: bytes, body: bytes) -> None:
    """The request line, headers and body in one gathered write (one segment train, as a client that sends
    prepared bytes does; two writes would let the server wake on the headers alone); the rest, if the kernel
    took only part of it, with sendall."""
    if isinstance(sock, ssl.SSLSocket):  # TLS has no gathered write
        sock.sendall(head + body)
        return
    sent = sock.sendmsg([head, body]) if body else sock.send(head)
    if sent < len(head):
        sock.sendall(memoryview(head)[sent:])
        sent = len(head)
    if sent < len(head) + len(body):
        sock.sendall(memoryview(body)[sent - len(head) :])


class Connection:
    """One kept-alive connection to one server. Not thread-safe: one request at a time, as a benchmark sends."""

    def __init__(self, endpoint: Endpoint, connect_timeout_s: float = 5.0) -> None:
        self.endpoint = endpoint
        self.connect_timeout_s = connect_timeout_s
        self._sock: socket.socket | None = None
        self._buf = bytearray()  # bytes received beyond the last answer (a well-behaved server sends none)
        self._answered = False  # a byte of the answer in progress has arrived

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
        self._buf.clear()

    def _connect(self, deadline: float) -> None:
        timeout = max(min(self.connect_timeout_s, deadline - time.monotonic()), 0.001)
        ep = self.endpoint
        try:
            sock = socket.create_connection((ep.host, ep.port), timeout=timeout)
        except TimeoutError as exc:
            raise Unreachable("ConnectTimeout", f"no answer to the connect within {timeout:.3g} s") from exc
        except OSError as exc:
            raise Unreachable("ConnectError", exc.strerror or str(exc)) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ep.scheme == "https":
            try:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=ep.host)
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                raise Unreachable("ConnectError", f"TLS: {exc}") from exc
        self._sock = sock

    def _usable(self) -> bool:
        """The kept-alive socket is still open: nothing to read on it (a closed one reads as EOF at once)."""
        if self._sock is None or self._buf:
            return False
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def exchange(self, head: bytes, body: bytes, deadline: float, cap: int) -> Answer:
        """Send one request and read its whole answer. `deadline` is on time.monotonic(). On a reused connection
        that turns out closed before any byte of the answer, the request is sent once more on a new one."""
        connects = 0
        for attempt in (1, 2):
            fresh = not self._usable()
            if fresh:
                self.close()
                self._connect(deadline)
                connects += 1
            try:
                answer = self._once(head, body, deadline, cap)
            except ConnectionLost as exc:
                self.close()
                if exc.answered or fresh or attempt == 2:
                    raise
                continue
            except WireError:
                self.close()  # the connection is in an unknown state: the next request gets a new one
                raise
            answer.connects = connects
            if answer.close:
                self.close()
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _recv(self, sock: socket.socket, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlinePassed("no complete answer before the deadline")
        sock.settimeout(left)
        try:
            return sock.recv(RECV_BYTES)
        except TimeoutError as exc:
            raise DeadlinePassed("no complete answer before the deadline") from exc

    def _once(self, head: bytes, body: bytes, deadline: float, cap: int) -> Answer:
        sock = self._sock
        assert sock is not None
        self._answered = False
        arrivals: list[tuple[int, int]] = []
        start = time.perf_counter_ns()
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            _send(sock, head, body)
            header_block = self._head(sock, deadline)
            status, length, chunked, close = _framing(header_block)
            if chunked:
                content, arrivals = self._chunked(sock, deadline, cap, status)
            elif length is not None:
                content = self._sized(sock, deadline, cap, status, length)
            else:  # no length: the body runs to the end of the connection
                content, close = self._to_eof(sock, deadline, cap, status), True
            end_ns = time.perf_counter_ns()
        except TimeoutError as exc:  # a send that could not finish before the deadline
            raise DeadlinePassed("no complete answer before the deadline") from exc
        except OSError as exc:  # reset, broken pipe, a TLS error: the connection is gone
            detail = f"{type(exc).__name__}: {exc.strerror or exc}"
            raise ConnectionLost(detail, answered=self._answered) from exc
        return Answer(status, header_block, content, start, end_ns, 0, arrivals, close)

    def _head(self, sock: socket.socket, deadline: float) -> bytes:
        buf = self._buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            data = self._recv(sock, deadline)
            if not data:
                raise ConnectionLost("the server closed the connection", answered=bool(buf))
            self._answered = True
            buf += data
            if len(buf) > HEAD_LIMIT and buf.find(b"\r\n\r\n") < 0:
                raise Malformed(f"no end of the header block in the first {HEAD_LIMIT // 1024} KiB")
        self._answered = True
        header_block = bytes(buf[:end])
        del buf[: end + 4]
        return header_block

    def _sized(self, sock: socket.socket, deadline: float, cap: int, status: int, length: int) -> bytes:
        if length > cap:
            raise TooLarge(status)
        buf = self._buf
        while len(buf) < length:
            self._more(sock, deadline)
        content = bytes(buf[:length])
        del buf[:length]
        return content

    def _to_eof(self, sock: socket.socket, deadline: float, cap: int, status: int) -> bytes:
        buf = self._buf
        while data := self._recv(sock, deadline):
            buf += data
            if len(buf) > cap:
                raise TooLarge(status)
        content = bytes(buf)
        buf.clear()
        return content

    def _chunked(
        self, sock: socket.socket, deadline: float, cap: int, status: int
    ) -> tuple[bytes, list[tuple[int, int]]]:
        """A chunked body, de-chunked, and when each chunk of it arrived. Trailers are read and dropped."""
        buf, out = self._buf, bytearray()
        arrivals: list[tuple[int, int]] = []
        pos = 0  # where the next chunk's size line starts in buf
        while True:
            while (line_end := buf.find(b"\r\n", pos)) < 0:
                self._more(sock, deadline)
            size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise Malformed(f"a chunk size that is not hexadecimal: {size_text[:40]!r}") from exc
            pos = line_end + 2
            if size == 0:
                while (line_end := buf.find(b"\r\n", pos)) != pos:  # trailer lines, then the empty line
                    if line_end < 0:
                        self._more(sock, deadline)
                    else:
                        pos = line_end + 2
                del buf[: pos + 2]
                return bytes(out), arrivals
            if len(out) + size > cap:
                raise TooLarge(status)
            while len(buf) < pos + size + 2:
                self._more(sock, deadline)
            if buf[pos + size : pos + size + 2] != b"\r\n":
                raise Malformed("a chunk not followed by CRLF")
            out += buf[pos : pos + size]
            arrivals.append((time.perf_counter_ns(), len(out)))
            pos += size + 2

    def _more(self, sock: socket.socket, deadline: float) -> None:
        data = self._recv(sock, deadline)
        if not data:
            raise ConnectionLost("the server closed the connection mid-answer", answered=True)
        self._buf += data
