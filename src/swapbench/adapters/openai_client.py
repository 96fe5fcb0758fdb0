"""The OpenAI-compatible HTTP client: one persistent connection, timed requests, llama-server extras.

Wire errors stop here: connection failures become EndpointUnreachable; HTTP errors and malformed answers
become an Exchange with `error` set, so the bench loop records them as samples.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from swapbench.adapters.wire import (
    Answer,
    Connection,
    ConnectionLost,
    DeadlinePassed,
    Endpoint,
    TooLarge,
    Unreachable,
    WireError,
)
from swapbench.core.results import Exchange, ServerInfo, ServerTimings, Usage
from swapbench.errors import EndpointUnreachable

CHAT_PATH = "/v1/chat/completions"
MAX_ANSWER_BYTES = 1 << 20  # a chat answer is a few KiB; a server sending more is broken or hostile


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


class ChatEndpoint:
    """A running OpenAI-compatible server. Use as a context manager; one connection is kept open.

    The latency of a chat completion is the time on the wire (adapters/wire.py): from the first byte sent to
    the last byte of the answer received, on a connection that is already open (a reconnect is counted in the
    sample, not timed). Parsing and the typed sample come after the clock stops."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_answer_bytes = max_answer_bytes
        self._endpoint = Endpoint.parse(self.base_url)
        self._conn = Connection(self._endpoint)
        # identity: the body is read raw (to cap its size), so it must not arrive compressed
        extra = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
        self._common = (
            f"Host: {self._endpoint.authority}\r\nUser-Agent: swapbench\r\nAccept-Encoding: identity\r\n{extra}"
        )
        self._heads: dict[tuple[str, int], bytes] = {}
        self._connected_once = False

    def __enter__(self) -> ChatEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def _head(self, method: str, path: str, length: int) -> bytes:
        """The request line and headers, built once per (path, body length) and kept: the measured request
        sends bytes prepared before the clock starts."""
        key = (f"{method} {path}", length)
        head = self._heads.get(key)
        if head is None:
            body_headers = f"Content-Type: application/json\r\nContent-Length: {length}\r\n" if method == "POST" else ""
            text = f"{method} {self._endpoint.prefix}{path} HTTP/1.1\r\n{self._common}{body_headers}\r\n"
            head = self._heads[key] = text.encode("latin-1")
        return head

    def _unreachable(self, exc: Unreachable) -> EndpointUnreachable:
        return EndpointUnreachable(
            f"nothing answers at {self.base_url} ({exc.kind}: {exc or 'no detail'})",
            hint="start the server, or check --url / the target's url (host and port)",
        )

    def _get(self, path: str) -> Answer:
        """GET with the same deadline and size cap as a chat request: a /health that drips is cut too."""
        deadline = time.monotonic() + self.timeout_s
        try:
            return self._conn.exchange(self._head("GET", path, 0), b"", deadline, self.max_answer_bytes)
        except Unreachable as exc:
            raise self._unreachable(exc) from exc

    def health(self) -> HealthReport:
        """/health: 200 is ok; 503 (llama-server's "Loading model") is loading; anything else an error."""
        try:
            answer = self._get("/health")
        except WireError as exc:
            return HealthReport(Health.ERROR, 0, f"{exc.kind}: {exc}")
        message = server_message(answer.body.decode("utf-8", "replace"))
        if answer.status == 200:
            return HealthReport(Health.OK, 200, message)
        if answer.status == 503:
            return HealthReport(Health.LOADING, 503, message)
        return HealthReport(Health.ERROR, answer.status, message)

    def _json(self, path: str) -> dict[str, Any] | None:
        try:
            answer = self._get(path)
            data = loads(answer.body) if answer.status == 200 else None
        except (WireError, ValueError):
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
        """Send one chat completion and time it, first byte sent -> last byte received; resend once if a
        kept-alive connection turned out closed before any byte of the answer. `stream` says how to read the
        answer (the body itself asks for a stream). Raises EndpointUnreachable when no connection can be made."""
        deadline = time.monotonic() + self.timeout_s  # one deadline for the request, the resend included
        head = self._head("POST", CHAT_PATH, len(body))
        try:
            answer = self._conn.exchange(head, body, deadline, self.max_answer_bytes)
        except Unreachable as exc:
            raise self._unreachable(exc) from exc
        except DeadlinePassed:
            return Exchange(latency_ms=0.0, error=f"no complete answer within {self.timeout_s:g} s (deadline)")
        except TooLarge as exc:
            return Exchange(latency_ms=0.0, http_status=exc.status, error=self._too_large())
        except ConnectionLost as exc:
            return Exchange(latency_ms=0.0, error=f"connection lost: {exc}")
        except WireError as exc:  # anything else the wire can say about one answer: a failed sample
            return Exchange(latency_ms=0.0, error=f"malformed HTTP answer: {exc}")
        reconnects = max(answer.connects - (0 if self._connected_once else 1), 0)
        self._connected_once = True
        exchange = _streamed(answer) if stream and answer.status == 200 else _plain(answer)
        return exchange.model_copy(update={"reconnects": reconnects}) if reconnects else exchange

    def _too_large(self) -> str:
        return f"answer larger than {self.max_answer_bytes // 1024} KiB; not stored"


def _plain(answer: Answer) -> Exchange:
    latency_ms, raw = answer.elapsed_ms, answer.body
    if answer.status != 200:
        text = raw.decode("utf-8", "replace")
        return Exchange(latency_ms=latency_ms, http_status=answer.status, error=server_message(text))
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


def _streamed(answer: Answer) -> Exchange:
    """A streamed answer's events, each timed by when the chunk that completed it arrived."""
    acc = _StreamAccumulator(answer.start_ns)
    ends = [length for _, length in answer.arrivals]
    offset = 0
    for raw_line in answer.body.split(b"\n"):
        offset += len(raw_line) + 1
        event = _sse_event(raw_line.decode("utf-8", "replace").rstrip("\r"))
        if event is DONE:
            break
        if event is not SKIP:
            arrived = answer.arrivals[min(bisect.bisect_left(ends, offset), len(ends) - 1)][0] if ends else None
            acc.add(event, arrived or answer.end_ns)
    return acc.exchange(answer.elapsed_ms)


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

    def add(self, event: dict[str, Any] | None, at_ns: int) -> None:
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
            self._delta(choice, at_ns)
        self.usage = _usage(event.get("usage")) or self.usage
        self.timings = _timings(event.get("timings")) or self.timings

    def _delta(self, choice: Any, at_ns: int) -> None:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            self.error = self.error or "malformed stream event: a choice without a delta object"
            return
        text, thought = delta.get("content"), delta.get("reasoning_content")
        if not isinstance(text, str | None) or not isinstance(thought, str | None):
            self.error = self.error or "malformed stream event: content is not text"
            return
        if (text or thought) and self.ttft_ms is None:
            self.ttft_ms = (at_ns - self.start_ns) / 1e6
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
