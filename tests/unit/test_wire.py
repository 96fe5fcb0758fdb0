"""The lean HTTP/1.1 path (adapters/wire.py) against a real socket server on 127.0.0.1 that answers with scripted
bytes and records what it received: framing (length, chunked with trailers, to the end of the connection), the
one resend on a kept-alive connection the server had closed, no resend once the answer began, the deadline
against a silent server, and the request on the wire exactly as prepared."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from swapbench.adapters.wire import Answer, Connection, ConnectionLost, DeadlinePassed, Endpoint, Malformed, TooLarge

Script = Callable[[socket.socket, int], bool]  # (accepted socket, request number) -> keep the connection open


@contextmanager
def server(script: Script) -> Iterator[tuple[int, list[bytes], list[int]]]:
    """Accepts connections one after another; for each request read, runs the script. Yields (port, requests
    as received, how many connections were accepted)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    received: list[bytes] = []
    accepted = [0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted[0] += 1
            with conn:
                while not stop.is_set():
                    request = _read_request(conn)
                    if request is None:
                        break
                    received.append(request)
                    if not script(conn, len(received)):
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], received, accepted
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _read_request(conn: socket.socket) -> bytes | None:
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = conn.recv(65536)
        except (TimeoutError, OSError):
            return None
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def answering(make: Callable[[int], bytes]) -> Script:
    """A script that sends make(request number) and keeps the connection."""

    def script(conn: socket.socket, n: int) -> bool:
        conn.sendall(make(n))
        return True

    return script


def exchange(port: int, conn: Connection | None = None, timeout_s: float = 5.0) -> tuple[Connection, Answer]:
    conn = conn or Connection(Endpoint.parse(f"http://127.0.0.1:{port}"))
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 2\r\n\r\n".encode()
    return conn, conn.exchange(head, b"{}", time.monotonic() + timeout_s, 1 << 20)


def test_the_request_goes_out_exactly_as_prepared_and_the_connection_is_kept() -> None:
    with server(answering(lambda n: ok(b'{"n": %d}' % n))) as (port, received, accepted):
        conn, first = exchange(port)
        _, second = exchange(port, conn)
        conn.close()
    assert received == [f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                        "Content-Length: 2\r\n\r\n{}".encode()] * 2  # fmt: skip
    assert (first.body, first.connects, second.body, second.connects) == (b'{"n": 1}', 1, b'{"n": 2}', 0)
    assert accepted == [1]


def test_a_chunked_answer_is_dechunked_and_every_chunk_is_timed() -> None:
    def drip(c: socket.socket, n: int) -> bool:
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"data: a\n\n", b"data: bb\n\n", b"data: [DONE]\n\n"):
            time.sleep(0.02)
            c.sendall(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
        c.sendall(b"0\r\nX-Trailer: t\r\n\r\n")
        return True

    with server(drip) as (port, _, _):
        conn, answer = exchange(port)
        conn.close()
    assert answer.body == b"data: a\n\ndata: bb\n\ndata: [DONE]\n\n"
    times = [t for t, _ in answer.arrivals]
    assert [n for _, n in answer.arrivals] == [9, 19, 33]
    assert times == sorted(times) and times[-1] - times[0] >= 30e6  # the pieces came 20 ms apart
    assert answer.start_ns < times[0] <= times[-1] <= answer.end_ns


def test_a_body_without_length_runs_to_the_close() -> None:
    def close_after(c: socket.socket, n: int) -> bool:
        c.sendall(b"HTTP/1.0 200 OK\r\n\r\nall of it")
        return False

    with server(close_after) as (port, _, accepted):
        conn, first = exchange(port)
        _, second = exchange(port, conn)
        conn.close()
    assert (first.body, second.body, second.connects, accepted) == (b"all of it", b"all of it", 1, [2])


def test_a_kept_alive_connection_closed_before_the_answer_is_resent_once() -> None:
    def close_second(c: socket.socket, n: int) -> bool:
        if n == 2:
            return False  # read the request, then close without a byte of answer
        c.sendall(ok(b"fine"))
        return True

    with server(close_second) as (port, received, accepted):
        conn, _ = exchange(port)
        _, again = exchange(port, conn)
        conn.close()
    assert (again.body, again.connects, len(received), accepted) == (b"fine", 1, 3, [2])


def test_an_answer_cut_midway_is_not_resent() -> None:
    def cut(c: socket.socket, n: int) -> bool:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        return False

    with server(cut) as (port, received, _), pytest.raises(ConnectionLost) as info:
        exchange(port)
    assert info.value.answered and len(received) == 1


def test_a_silent_server_is_cut_at_the_deadline() -> None:
    def silent(conn: socket.socket, n: int) -> bool:
        time.sleep(3)
        return True

    with server(silent) as (port, _, _):
        start = time.monotonic()
        with pytest.raises(DeadlinePassed):
            exchange(port, timeout_s=0.3)
        assert time.monotonic() - start < 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"SMTP ready\r\n\r\n", Malformed),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", Malformed),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Malformed),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n", TooLarge),
    ],
)
def test_bytes_that_are_not_a_usable_answer_say_so(answer: bytes, error: type[Exception]) -> None:
    with server(answering(lambda n: answer)) as (port, _, _), pytest.raises(error):
        exchange(port)
