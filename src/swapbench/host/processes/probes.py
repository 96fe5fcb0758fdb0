"""HTTP probes for health and verify: status, a JSON field's value, and the TTS WAV smoke test."""

from __future__ import annotations

import functools
import io
import json
import ssl
import wave
from dataclasses import dataclass
from typing import Any

import httpx

from swapbench.plan.models import HealthCheck, WavVerify


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default verification, built once: made afresh for every request it costs ~40 ms (loading the CA
    bundle), more than the probe of a local /health itself — and readiness and verify probe many times."""
    return httpx.create_ssl_context()


def _field(data: Any, dotted: str) -> tuple[bool, Any]:
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return False, None
        data = data[key]
    return True, data


def why_no_answer(exc: httpx.HTTPError, url: str, timeout_s: float) -> str:
    """What stood between the request and an answer, in words: refused, a timeout, a connection cut."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {timeout_s:g} s (a listener that never accepts, or a dropped connection)"
    if isinstance(exc, httpx.TimeoutException):
        return f"connected, but no answer within {timeout_s:g} s (timeout)"
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ConnectionRefusedError):
        cause = cause.__cause__ or cause.__context__
    if cause is not None or "refused" in str(exc).lower():
        return f"connection refused: nothing listens on {httpx.URL(url).netloc.decode()}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server closed the connection without a whole answer ({exc})"
    return f"{type(exc).__name__}: {exc or 'no answer'}"


def short_body(resp: httpx.Response, limit: int = 120) -> str:
    """The start of an answer's body on one line, for a message: llama-server says why it is 503 there."""
    text = " ".join(resp.text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def probe_http(check: HealthCheck) -> ProbeResult:
    """GET the URL: the expected status, and the JSON field's expected value when one is set."""
    try:
        resp = httpx.get(check.url, timeout=check.timeout_s, trust_env=False, verify=_tls())
    except httpx.HTTPError as exc:
        return ProbeResult(False, f"GET {check.url}: {why_no_answer(exc, check.url, check.timeout_s)}")
    if resp.status_code != check.status:
        body = short_body(resp)
        detail = f"GET {check.url}: HTTP {resp.status_code}, expected {check.status}" + (f": {body}" if body else "")
        return ProbeResult(False, detail)
    if check.json_field is None:
        return ProbeResult(True, f"GET {check.url}: HTTP {resp.status_code}")
    try:
        found, value = _field(resp.json(), check.json_field)
    except json.JSONDecodeError:
        return ProbeResult(False, f"GET {check.url}: body is not JSON")
    if not found:
        return ProbeResult(False, f"GET {check.url}: no field {check.json_field!r} in the answer")
    if value != check.json_equals:
        return ProbeResult(False, f"GET {check.url}: {check.json_field} = {value!r}, expected {check.json_equals!r}")
    return ProbeResult(True, f"GET {check.url}: {check.json_field} = {value!r}")


def check_wav(body: bytes, min_bytes: int) -> ProbeResult:
    """The body must be RIFF/WAVE with at least one frame and larger than `min_bytes`."""
    try:
        with wave.open(io.BytesIO(body), "rb") as wav:
            frames, rate, channels = wav.getnframes(), wav.getframerate(), wav.getnchannels()
    except (wave.Error, EOFError) as exc:
        return ProbeResult(False, f"not a WAV file ({len(body)} bytes): {exc}")
    if frames < 1:
        return ProbeResult(False, f"WAV has no audio frames ({len(body)} bytes)")
    if len(body) <= min_bytes:
        return ProbeResult(False, f"WAV is {len(body)} bytes, expected more than {min_bytes}")
    return ProbeResult(True, f"WAV {len(body)} bytes, {frames} frames, {rate} Hz, {channels} ch")


def probe_wav(step: WavVerify) -> ProbeResult:
    """POST the JSON (e.g. a phrase to synthesize) and check the answer is real audio."""
    try:
        resp = httpx.post(step.url, json=step.json_body, timeout=step.timeout_s, trust_env=False, verify=_tls())
    except httpx.HTTPError as exc:
        return ProbeResult(False, f"POST {step.url}: {why_no_answer(exc, step.url, step.timeout_s)}")
    if resp.status_code != 200:
        return ProbeResult(False, f"POST {step.url}: HTTP {resp.status_code}: {short_body(resp, 200)}")
    result = check_wav(resp.content, step.min_bytes)
    return ProbeResult(result.ok, f"POST {step.url}: {result.detail}")
