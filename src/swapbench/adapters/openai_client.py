"""The OpenAI-compatible HTTP client: one persistent connection, timed requests, llama-server extras.

httpx errors stop here: connection failures become EndpointUnreachable; HTTP errors and malformed answers
become an Exchange with `error` set, so the bench loop records them as samples.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import socket
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from swapbench.core.results import Exchange, ServerInfo, ServerTimings, Usage
from swapbench.errors import EndpointUnreachable

CHAT_PATH = "/v1/chat/completions"
MAX_ANSWER_BYTES = 1 << 20  # a chat answer is a few KiB; a server sending more is broken or hostile
# A request that fails before any byte of the answer on a reused connection is resent once: the server
# closes keep-alive connections after every stream, after 5 s idle and after 100 requests.
RETRIABLE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class Health(StrEnum):
    OK = "ok"
    LOADING = "loading"
    ERROR = "error"


@dataclass(frozen=True)
class HealthReport:
    state: Health
    status: int
    message: str


def server_message(text: str) -> str:
    """The server's own error message from an error body, or the body itself, shortened."""
    try:
        data = loads(text)
    except ValueError:
        return _text(text.strip()[:500])
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return _text(err["message"])[:500]
        if isinstance(err, str):
            return _text(err)[:500]
    return _text(text.strip()[:500])


def _count(value: Any) -> int | None:
    """A token count, or None for anything else (a bool, a float, a string, NaN)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _ms(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    return float(value) if ok else None


def _timings(raw: Any) -> ServerTimings | None:
    if not isinstance(raw, dict):
        return None
    return ServerTimings(
        cache_n=_count(raw.get("cache_n")), prompt_n=_count(raw.get("prompt_n")), prompt_ms=_ms(raw.get("prompt_ms")),
        predicted_n=_count(raw.get("predicted_n")), predicted_ms=_ms(raw.get("predicted_ms")),
    )  # fmt: skip


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details")
    return Usage(
        prompt_tokens=_count(raw.get("prompt_tokens")), completion_tokens=_count(raw.get("completion_tokens")),
        total_tokens=_count(raw.get("total_tokens")),
        cached_tokens=_count(details.get("cached_tokens")) if isinstance(details, dict) else None,
    )  # fmt: skip


def _text(value: Any) -> str:
    """Text as results can store it: lone surrogates (valid in JSON, not in UTF-8) replaced."""
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def loads(body: bytes | str) -> Any:
    """JSON as a server may send it: NaN and Infinity (which Python's json accepts) become null."""
    return json.loads(body, parse_constant=lambda name: None)


def _shown(body: bytes) -> str:
    return _text(body[:300].decode("utf-8", "replace"))


def parse_completion(body: bytes) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | str:
    """(the whole answer, its first choice, that choice's message), or what is wrong with the body, in words."""
    try:
        data = loads(body)
    except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError)
        return f"not a chat completion (not JSON): {_shown(body)}"
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return f"not a chat completion (no choices): {_shown(body)}"
    message = choices[0].get("message") or {}
    if not isinstance(message, dict):
        return f"not a chat completion (message is {type(message).__name__}): {_shown(body)}"
    for field in ("content", "reasoning_content"):
        if message.get(field) is not None and not isinstance(message[field], str):
            return f"malformed answer: {field} is {type(message[field]).__name__}, not text: {_shown(body)}"
    return data, choices[0], message


class _WireClock:
    """httpcore trace hook: times a request on the wire, from the first byte sent (or the TCP connect, when
    one was needed) to the last byte of the body received, so httpx's own bookkeeping stays out of the
    recorded latency. Also counts connects, so a transparent reconnect is visible in the sample."""

    __slots__ = ("connects", "end_ns", "socket", "start_ns")

    def __init__(self) -> None:
        self.socket: socket.socket | None = None
        self.reset()

    def reset(self) -> None:
        self.connects = 0
        self.start_ns = 0
        self.end_ns = 0

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event == "http11.send_request_headers.started":
            if not self.start_ns:
                self.start_ns = time.perf_counter_ns()
        elif event == "http11.receive_response_body.complete":
            self.end_ns = time.perf_counter_ns()
        elif event == "connection.connect_tcp.started":
            self.start_ns = time.perf_counter_ns()
            self.connects += 1
        elif event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            self.socket = stream.get_extra_info("socket") if stream is not None else None

    def elapsed_ms(self, fallback_start_ns: int) -> float:
        start = self.start_ns or fallback_start_ns
        end = self.end_ns or time.perf_counter_ns()
        return (end - start) / 1e6


class _Deadline:
    """Cuts a request at its deadline, whatever the server does: httpx's timeout is per read, so a server that
    drips a byte a second (headers or body) would never time out. One watcher thread per endpoint, asleep
    until a deadline passes; then it shuts the connection's socket down and the read in progress fails. Per
    request it costs a lock and a notify."""

    def __init__(self, clock: _WireClock) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._at: float | None = None
        self._closed = False
        self.fired = False
        self._thread: threading.Thread | None = None

    def arm(self, timeout_s: float) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="swapbench-deadline", daemon=True)
                self._thread.start()
            self._at, self.fired = time.monotonic() + timeout_s, False
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._at = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        while True:
            with self._cond:
                while self._at is None and not self._closed:
                    self._cond.wait()
                if self._closed or self._at is None:
                    return
                left = self._at - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._at, self.fired, sock = None, True, self._clock.socket
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class ChatEndpoint:
    """A running OpenAI-compatible server. Use as a context manager; one connection is kept open."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        transport: httpx.BaseTransport | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_answer_bytes = max_answer_bytes
        # identity: the body is read raw (to cap its size), so it must not arrive compressed
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            transport=transport,
            trust_env=False,  # never route loopback benchmarks through a proxy from the environment
        )
        self._clock = _WireClock()
        self._deadline = _Deadline(self._clock)
        self._connected_once = False

    def __enter__(self) -> ChatEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._deadline.close()
        self._client.close()

    def _unreachable(self, exc: Exception) -> EndpointUnreachable:
        return EndpointUnreachable(
            f"nothing answers at {self.base_url} ({type(exc).__name__}: {exc or 'no detail'})",
            hint="start the server, or check --url / the target's url (host and port)",
        )

    def _get(self, path: str) -> httpx.Response:
        """GET with the same deadline and size cap as a chat request: a /health that drips is cut too."""
        self._deadline.arm(self.timeout_s)
        try:
            request = self._client.build_request("GET", path, extensions={"trace": self._clock})
            resp = self._client.send(request, stream=True)
            try:
                body = self._read_capped(resp)
            finally:
                resp.close()
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._unreachable(exc) from exc
        finally:
            self._deadline.disarm()
        return httpx.Response(resp.status_code, content=body if body is not None else b"", request=request)

    def health(self) -> HealthReport:
        """/health: 200 is ok; 503 (llama-server's "Loading model") is loading; anything else an error."""
        try:
            resp = self._get("/health")
        except httpx.HTTPError as exc:
            return HealthReport(Health.ERROR, 0, f"{type(exc).__name__}: {exc}")
        message = server_message(resp.text)
        if resp.status_code == 200:
            return HealthReport(Health.OK, 200, message)
        if resp.status_code == 503:
            return HealthReport(Health.LOADING, 503, message)
        return HealthReport(Health.ERROR, resp.status_code, message)

    def _json(self, path: str) -> dict[str, Any] | None:
        try:
            resp = self._get(path)
            data = loads(resp.content) if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def server_info(self) -> ServerInfo:
        """What makes the run reproducible: llama-server's /props and /v1/models (absent on other servers)."""
        props = self._json("/props") or {}
        models = self._json("/v1/models") or {}
        entries = models.get("data") if isinstance(models.get("data"), list) else []
        meta = entries[0].get("meta") if entries and isinstance(entries[0], dict) else None
        template = props.get("chat_template")

        def text(key: str) -> str | None:
            return _text(props[key])[:1000] if isinstance(props.get(key), str) else None

        return ServerInfo(
            url=self.base_url,
            build_info=text("build_info"),
            model_path=text("model_path"),
            models_meta=meta if isinstance(meta, dict) else None,
            modalities=props.get("modalities") if isinstance(props.get("modalities"), dict) else None,
            chat_template_sha256=hashlib.sha256(template.encode("utf-8", "surrogatepass")).hexdigest()
            if isinstance(template, str)
            else None,
            total_slots=_count(props.get("total_slots")),
        )

    def complete(self, body: bytes, *, stream: bool = False) -> Exchange:
        """Send one chat completion and time it, send -> last byte; resend once if a kept-alive connection
        turned out closed. Raises EndpointUnreachable when no connection can be made."""
        self._deadline.arm(self.timeout_s)  # one deadline for the request, the resend included
        try:
            return self._complete(body, stream)
        finally:
            self._deadline.disarm()

    def _complete(self, body: bytes, stream: bool) -> Exchange:
        for attempt in (1, 2):
            self._clock.reset()
            try:
                exchange = self._stream(body) if stream else self._plain(body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise self._unreachable(exc) from exc
            except (*RETRIABLE, httpx.TimeoutException) as exc:
                if self._deadline.fired:
                    return Exchange(latency_ms=0.0, error=f"no complete answer within {self.timeout_s:g} s (deadline)")
                if isinstance(exc, httpx.TimeoutException):
                    return Exchange(latency_ms=0.0, error=f"timed out: {type(exc).__name__}")
                if attempt == 2:
                    return Exchange(latency_ms=0.0, error=f"connection lost: {type(exc).__name__}: {exc}")
                continue
            except httpx.HTTPError as exc:  # anything else httpx can say about one answer: a failed sample
                return Exchange(latency_ms=0.0, error=f"malformed HTTP answer: {type(exc).__name__}: {exc}")
            reconnects = self._clock.connects - (0 if self._connected_once else 1)
            self._connected_once = True
            return exchange.model_copy(update={"reconnects": max(reconnects, 0)})
        raise AssertionError("unreachable")  # pragma: no cover

    def _plain(self, body: bytes) -> Exchange:
        request = self._client.build_request("POST", CHAT_PATH, content=body, extensions={"trace": self._clock})
        start = time.perf_counter_ns()
        resp = self._client.send(request, stream=True)
        try:
            raw = self._read_capped(resp)
        finally:
            resp.close()
        latency_ms = self._clock.elapsed_ms(start)
        if raw is None:
            return Exchange(latency_ms=latency_ms, http_status=resp.status_code, error=self._too_large())
        if resp.status_code != 200:
            text = raw.decode("utf-8", "replace")
            return Exchange(latency_ms=latency_ms, http_status=resp.status_code, error=server_message(text))
        parsed = parse_completion(raw)
        if isinstance(parsed, str):
            return Exchange(latency_ms=latency_ms, http_status=200, error=parsed)
        data, choice, message = parsed
        return Exchange(
            latency_ms=latency_ms,
            http_status=200,
            content=_text(message["content"]) if message.get("content") is not None else None,
            reasoning_content=_text(message["reasoning_content"]) if message.get("reasoning_content") else None,
            finish_reason=choice["finish_reason"] if isinstance(choice.get("finish_reason"), str) else None,
            usage=_usage(data.get("usage")),
            timings=_timings(data.get("timings")),
        )

    def _read_capped(self, resp: httpx.Response) -> bytes | None:
        """The body, or None when it is larger than the cap (nothing beyond it is kept)."""
        chunks, size = [], 0
        for chunk in resp.iter_raw():
            size += len(chunk)
            if size > self.max_answer_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> str:
        return f"answer larger than {self.max_answer_bytes // 1024} KiB; not stored"

    def _stream(self, body: bytes) -> Exchange:
        request = self._client.build_request("POST", CHAT_PATH, content=body, extensions={"trace": self._clock})
        start = time.perf_counter_ns()
        resp = self._client.send(request, stream=True)
        try:
            if resp.status_code != 200:
                resp.read()
                latency_ms = self._clock.elapsed_ms(start)
                return Exchange(latency_ms=latency_ms, http_status=resp.status_code, error=server_message(resp.text))
            acc = _StreamAccumulator(self._clock.start_ns or start)
            received = 0
            for line in resp.iter_lines():
                received += len(line) + 1
                if received > self.max_answer_bytes:
                    return Exchange(latency_ms=self._clock.elapsed_ms(start), http_status=200, error=self._too_large())
                event = _sse_event(line)
                if event is DONE:
                    break
                if event is not SKIP:
                    acc.add(event)
            latency_ms = self._clock.elapsed_ms(start)
        finally:
            resp.close()
        return acc.exchange(latency_ms)


DONE, SKIP = object(), object()


def _sse_event(line: str) -> Any:
    """One SSE line: its JSON object, None for a payload that is not one, SKIP for other lines, DONE at the end."""
    if not line.startswith("data:"):
        return SKIP
    payload = line[5:].strip()
    if payload == "[DONE]":
        return DONE
    try:
        data = loads(payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class _StreamAccumulator:
    """Assembles a streamed chat completion and notes when the first token arrived."""

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.ttft_ms: float | None = None
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.timings: ServerTimings | None = None
        self.error: str | None = None

    def add(self, event: dict[str, Any] | None) -> None:
        if event is None:
            self.error = self.error or "malformed stream event (not a JSON object)"
            return
        if isinstance(event.get("error"), dict):
            self.error = server_message(json.dumps(event))
        choices = event.get("choices")
        if choices is not None and not isinstance(choices, list):
            self.error = self.error or f"malformed stream event: choices is {type(choices).__name__}"
            return
        for choice in choices or []:
            self._delta(choice)
        self.usage = _usage(event.get("usage")) or self.usage
        self.timings = _timings(event.get("timings")) or self.timings

    def _delta(self, choice: Any) -> None:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            self.error = self.error or "malformed stream event: a choice without a delta object"
            return
        text, thought = delta.get("content"), delta.get("reasoning_content")
        if not isinstance(text, str | None) or not isinstance(thought, str | None):
            self.error = self.error or "malformed stream event: content is not text"
            return
        if (text or thought) and self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter_ns() - self.start_ns) / 1e6
        if text:
            self.content.append(_text(text))
        if thought:
            self.reasoning.append(_text(thought))
        reason = choice.get("finish_reason")
        self.finish_reason = reason if isinstance(reason, str) else self.finish_reason

    def exchange(self, latency_ms: float) -> Exchange:
        return Exchange(
            latency_ms=latency_ms,
            ttft_ms=self.ttft_ms,
            http_status=200,
            error=self.error,
            content="".join(self.content),
            reasoning_content="".join(self.reasoning) or None,
            finish_reason=self.finish_reason,
            usage=self.usage,
            timings=self.timings,
        )
