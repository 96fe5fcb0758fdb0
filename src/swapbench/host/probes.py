"""HTTP probes for health and verify: status, a JSON field's value, and the TTS WAV smoke test."""

from __future__ import annotations

import io
import json
import wave
from dataclasses import dataclass
from typing import Any

import httpx

from swapbench.plan.models import HealthCheck, WavVerify


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str


def _field(data: Any, dotted: str) -> tuple[bool, Any]:
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return False, None
        data = data[key]
    return True, data


def probe_http(check: HealthCheck) -> ProbeResult:
    """GET the URL: the expected status, and the JSON field's expected value when one is set."""
    try:
        resp = httpx.get(check.url, timeout=check.timeout_s, trust_env=False)
    except httpx.HTTPError as exc:
        return ProbeResult(False, f"GET {check.url}: {type(exc).__name__}: {exc or 'no answer'}")
    if resp.status_code != check.status:
        return ProbeResult(False, f"GET {check.url}: HTTP {resp.status_code}, expected {check.status}")
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
        resp = httpx.post(step.url, json=step.json_body, timeout=step.timeout_s, trust_env=False)
    except httpx.HTTPError as exc:
        return ProbeResult(False, f"POST {step.url}: {type(exc).__name__}: {exc or 'no answer'}")
    if resp.status_code != 200:
        return ProbeResult(False, f"POST {step.url}: HTTP {resp.status_code}: {resp.text[:200]}")
    result = check_wav(resp.content, step.min_bytes)
    return ProbeResult(result.ok, f"POST {step.url}: {result.detail}")
