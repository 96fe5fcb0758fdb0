"""The OpenAI-compatible HTTP client: one persistent connection, timed requests, llama-server extras.

httpx errors stop here: connection failures become EndpointUnreachable; HTTP errors and malformed answers
become an Exchange with `error` set, so the bench loop records them as samples.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from swapbench.core.results import Exchange, ServerInfo, ServerTimings, Usage
from swapbench.errors import EndpointUnreachable

CHAT_PATH = "/v1/chat/completions"
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
        data = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:500]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return text.strip()[:500]


def _timings(raw: Any) -> ServerTimings | None:
    if not isinstance(raw, dict):
        return None
    keys = ("cache_n", "prompt_n", "prompt_ms", "predicted_n", "predicted_ms")
    return ServerTimings(**{k: raw[k] for k in keys if isinstance(raw.get(k), int | float)})


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return Usage(**{k: raw[k] for k in keys if isinstance(raw.get(k), int)}, cached_tokens=cached)


class _WireClock:
    """httpcore trace hook: times a request on the wire, from the first byte sent (or the TCP connect, when
    one was needed) to the last byte of the body received, so httpx's own bookkeeping stays out of the
    recorded latency. Also counts connects, so a transparent reconnect is visible in the sample."""

    __slots__ = ("connects", "end_ns", "start_ns")

    def __init__(self) -> None:
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

    def elapsed_ms(self, fallback_start_ns: int) -> float:
        start = self.start_ns or fallback_start_ns
        end = self.end_ns or time.perf_counter_ns()
        return (end - start) / 1e6


class ChatEndpoint:
    """A running OpenAI-compatible server. Use as a context manager; one connection is kept open."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Content-Type": "application/json"}
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
        self._connected_once = False

    def __enter__(self) -> ChatEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _unreachable(self, exc: Exception) -> EndpointUnreachable:
        return EndpointUnreachable(
            f"nothing answers at {self.base_url} ({type(exc).__name__}: {exc or 'no detail'})",
            hint="start the server, or check --url / the target's url (host and port)",
        )

    def _get(self, path: str) -> httpx.Response:
        try:
            return self._client.get(path, extensions={"trace": self._clock})
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._unreachable(exc) from exc

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
            data = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def server_info(self) -> ServerInfo:
        """What makes the run reproducible: llama-server's /props and /v1/models (absent on other servers)."""
        props = self._json("/props") or {}
        models = self._json("/v1/models") or {}
        entries = models.get("data") if isinstance(models.get("data"), list) else []
        meta = entries[0].get("meta") if entries and isinstance(entries[0], dict) else None
        template = props.get("chat_template")
        return ServerInfo(
            url=self.base_url,
            build_info=props.get("build_info"),
            model_path=props.get("model_path"),
            models_meta=meta if isinstance(meta, dict) else None,
            modalities=props.get("modalities") if isinstance(props.get("modalities"), dict) else None,
            chat_template_sha256=hashlib.sha256(template.encode()).hexdigest() if isinstance(template, str) else None,
            total_slots=props.get("total_slots") if isinstance(props.get("total_slots"), int) else None,
        )

    def complete(self, body: bytes, *, stream: bool = False) -> Exchange:
        """Send one chat completion and time it, send -> last byte; resend once if a kept-alive connection
        turned out closed. Raises EndpointUnreachable when no connection can be made."""
        for attempt in (1, 2):
            self._clock.reset()
            try:
                exchange = self._stream(body) if stream else self._plain(body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise self._unreachable(exc) from exc
            except RETRIABLE as exc:
                if attempt == 2:
                    return Exchange(latency_ms=0.0, error=f"connection lost: {type(exc).__name__}: {exc}")
                continue
            except httpx.TimeoutException as exc:
                return Exchange(latency_ms=0.0, error=f"timed out: {type(exc).__name__}")
            reconnects = self._clock.connects - (0 if self._connected_once else 1)
            self._connected_once = True
            return exchange.model_copy(update={"reconnects": max(reconnects, 0)})
        raise AssertionError("unreachable")  # pragma: no cover

    def _plain(self, body: bytes) -> Exchange:
        request = self._client.build_request("POST", CHAT_PATH, content=body, extensions={"trace": self._clock})
        start = time.perf_counter_ns()
        resp = self._client.send(request)
        latency_ms = self._clock.elapsed_ms(start)
        if resp.status_code != 200:
            return Exchange(latency_ms=latency_ms, http_status=resp.status_code, error=server_message(resp.text))
        try:
            data = resp.json()
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
            return Exchange(latency_ms=latency_ms, http_status=200, error=f"not a chat completion: {resp.text[:300]}")
        return Exchange(
            latency_ms=latency_ms,
            http_status=200,
            content=message.get("content"),
            reasoning_content=message.get("reasoning_content"),
            finish_reason=choice.get("finish_reason"),
            usage=_usage(data.get("usage")),
            timings=_timings(data.get("timings")),
        )

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
            for event in _sse_data(resp.iter_lines()):
                acc.add(event)
            latency_ms = self._clock.elapsed_ms(start)
        finally:
            resp.close()
        return acc.exchange(latency_ms)


def _sse_data(lines: Iterator[str]) -> Iterator[dict[str, Any] | None]:
    """The JSON payloads of an SSE stream; None for a payload that is not JSON."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            data = json.loads(payload)
        except json.JSONDecodeError:
            yield None
            continue
        yield data if isinstance(data, dict) else None


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
            self.error = self.error or "malformed stream event"
            return
        if isinstance(event.get("error"), dict):
            self.error = server_message(json.dumps(event))
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            text, thought = delta.get("content"), delta.get("reasoning_content")
            if (text or thought) and self.ttft_ms is None:
                self.ttft_ms = (time.perf_counter_ns() - self.start_ns) / 1e6
            if text:
                self.content.append(text)
            if thought:
                self.reasoning.append(thought)
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        self.usage = _usage(event.get("usage")) or self.usage
        self.timings = _timings(event.get("timings")) or self.timings

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
