"""A sandbox host of real processes on loopback, shaped like the user's box, and the plan that swaps it.

Production: a llama-server (SmolLM2) started by a start script, a TTS service that answers with real WAV
audio, a nav sidecar with /health, and a phone daemon found by pgrep. The candidate is Gemma 3 270M,
launched natively by swapbench.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swapbench.demo.rig import Rig
from swapbench.errors import StepFailed
from swapbench.host.llama_server import LlamaServerSpec, free_port, server_argv
from swapbench.host.probes import probe_http
from swapbench.host.proc import pgrep, run_argv
from swapbench.host.waiting import wait_until
from swapbench.plan.models import HealthCheck

SANDBOX = [sys.executable, "-m", "swapbench.demo.sandbox"]
PHONE_PATTERN = "phone_call.py auto"
BASELINE_LABEL, CANDIDATE_LABEL = "smollm2-135m", "gemma3-270m"


@dataclass
class Sandbox:
    folder: Path
    ports: dict[str, int]
    plan_path: Path

    def fail_next_start(self, name: str) -> None:
        (self.folder / f"{name}.fail-next-start").touch()

    def teardown(self) -> None:
        """Stop every sandbox process (production included): the sandbox is gone afterwards."""
        for name in ("llama-prod", "tts", "nav", "phone", "gpu-holder"):
            run_argv([*SANDBOX, "stop", "--dir", str(self.folder), name], 30.0)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def to_toml(plan: dict[str, Any]) -> str:
    """Just enough TOML for the sandbox plan: tables, arrays of tables, inline values."""
    lines = []
    for key, value in plan.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            lines += [f"{k} = {_toml(v)}" for k, v in value.items()]
        else:
            for item in value:
                lines.append(f"\n[[{key}]]")
                lines += [f"{k} = {_toml(v)}" for k, v in item.items() if not isinstance(v, dict) or k != "launch"]
                if "launch" in item:
                    lines.append(f"[{key}.launch]")
                    lines += [f"{k} = {_toml(v)}" for k, v in item["launch"].items()]
    return "\n".join(lines).lstrip() + "\n"


def sandbox_plan(folder: Path, rig: Rig, ports: dict[str, int], samples: int, extended: int) -> dict[str, Any]:
    d = str(folder)
    llama = server_argv(
        LlamaServerSpec(
            binary=rig.llama_server,
            model=rig.smollm2,
            mmproj=rig.mmproj(rig.smollm2),
            port=ports["llama"],
            log_path=folder / "unused.log",
        )
    )
    nav_schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "nav",
            "schema": {
                "type": "object",
                "required": ["action"],
                "properties": {"action": {"enum": ["forward", "left", "right", "back", "stop"]}},
            },
        },
    }
    url = "http://127.0.0.1:{}"
    return {
        "run": {
            "label": "sandbox-swap",
            "output_dir": str(folder / "results"),
            "samples": samples,
            "extended_samples": extended,
            "warmup": 1,
            "time_cap_s": 600.0,
            "stop_order": ["tts", "llama-prod"],
            "restore_order": ["llama-prod", "tts"],
            "drain_timeout_s": 30.0,
        },
        # four frames of a car driving on: each request sends the next, as the robot's camera would
        "image": {"frames": str(Path(__file__).parent.parent / "frames")},
        "workloads": [
            # production decodes nav with a JSON-schema grammar, so both models answer by the contract. `nav`
            # is what a new frame costs (every prompt evaluated: judged); `nav-cached` lets the server reuse
            # what it cached (llama-server keeps earlier prompts, images included): shown beside it, not judged
            {
                "name": "nav",
                "kind": "nav",
                "max_tokens": 20,
                "cache_prompt": False,
                "extra_body": {"response_format": nav_schema},
            },
            {"name": "nav-cached", "kind": "nav", "max_tokens": 20, "extra_body": {"response_format": nav_schema}},
            {"name": "describe", "kind": "describe", "max_tokens": 32},
        ],
        "baseline": {"label": BASELINE_LABEL, "url": url.format(ports["llama"])},
        "candidates": [
            {
                "label": CANDIDATE_LABEL,
                "launch": {
                    "kind": "native",
                    "binary": str(rig.llama_server),
                    "model": str(rig.gemma3),
                    "mmproj": str(rig.mmproj(rig.gemma3)),
                    "chat_template_file": str(rig.gemma3_template),
                    "port": ports["candidate"],
                    "flags": ["-c", "2048", "-np", "1"],
                    "ready_timeout_s": 60.0,
                    "settle_s": 0.3,
                },
            }
        ],
        "services": [
            {
                "name": "llama-prod",
                "manager": "command",
                "start": [*SANDBOX, "start", "--dir", d, "llama-prod", "--", *llama],
                "stop": [*SANDBOX, "stop", "--dir", d, "llama-prod"],
                "settle_s": 0.3,
                "ready_timeout_s": 60.0,
                "health": {"url": url.format(ports["llama"]) + "/health"},
            },
            {
                "name": "tts",
                "manager": "command",
                "start": [
                    *SANDBOX,
                    "start",
                    "--dir",
                    d,
                    "tts",
                    "--",
                    *SANDBOX,
                    "tts",
                    "--port",
                    str(ports["tts"]),
                    "--load-s",
                    "0.5",
                ],
                "stop": [*SANDBOX, "stop", "--dir", d, "tts"],
                "settle_s": 0.3,
                "ready_timeout_s": 30.0,
                "health": {
                    "url": url.format(ports["tts"]) + "/health",
                    "json_field": "model_loaded",
                    "json_equals": True,
                },
            },
            {
                "name": "nav",
                "manager": "process",
                "pattern": f"swapbench.demo.sandbox nav --port {ports['nav']}",
                "health": {"url": url.format(ports["nav"]) + "/health"},
            },
            {"name": "phone", "manager": "process", "pattern": f"{PHONE_PATTERN} {ports['nav']}"},
        ],
        # The user plan's rule; no VRAM band without a GPU (on_gpu turns it on).
        "decision": {"min_schema_adherence": 0.95, "describe_must_improve": True, "vram_in_band": False},
        "report": {
            "research_doc": str(folder / "docs" / "RESEARCH-CANDIDATE.md"),
            "registry_doc": str(folder / "docs" / "RESOURCE-REGISTRY.md"),
        },
        "checks": [
            {"kind": "port_free", "port": ports["candidate"]},
            {"kind": "port_owner", "port": ports["nav"], "process": "swapbench.demo.sandbox nav"},
            {
                "kind": "file_pattern",
                "path": str(folder / "chatterbox_tts.py"),
                "pattern": "TTSStoppedFrame",
                "lines": [159, 161],
            },
            {"kind": "disk_free", "path": d, "min_gb": 0.5},
        ],
        "verify": [
            {"kind": "http", "url": url.format(ports["llama"]) + "/health"},
            {"kind": "http", "url": url.format(ports["nav"]) + "/health"},
            {"kind": "port_refused", "port": ports["candidate"]},
            {
                "kind": "http",
                "url": url.format(ports["tts"]) + "/health",
                "json_field": "model_loaded",
                "json_equals": True,
            },
            {
                "kind": "wav",
                "url": url.format(ports["tts"]) + "/synthesize",
                "json": {"text": "test one two"},
                "min_bytes": 5000,
            },
            {"kind": "pgrep", "pattern": f"{PHONE_PATTERN} {ports['nav']}"},
            {"kind": "vram", "min_gb": 0.0, "max_gb": 80.0, "processes": 0},
        ],
    }


def _healthy(check: HealthCheck) -> bool:
    return probe_http(check).ok


def _wait(what: str, ok: Callable[[], bool], timeout_s: float = 60.0) -> None:
    if not wait_until(ok, timeout_s):
        raise StepFailed(f"sandbox: {what} did not come up", hint="see the logs in the sandbox folder")


def on_gpu(plan: dict[str, Any], rig: Rig, ports: dict[str, int], folder: Path, abort_gb: float) -> list[str]:
    """Put both models on the GPU, add a second GPU-holding production process (observed, never stopped), a
    VRAM gate for the candidate and the expected process count after restore. Returns the holder's argv."""
    plan["services"][0]["start"] += ["-ngl", "99"]
    plan["candidates"][0]["launch"]["flags"] += ["-ngl", "99"]
    spec = LlamaServerSpec(binary=rig.llama_server, model=rig.smollm2, port=ports["holder"], log_path=folder / "x.log")
    holder = [*server_argv(spec), "-ngl", "99"]
    plan["services"].append({
        "name": "gpu-holder", "manager": "process", "pattern": f"--port {ports['holder']} --no-webui",
        "health": {"url": f"http://127.0.0.1:{ports['holder']}/health"},
    })  # fmt: skip
    plan["decision"]["vram_in_band"] = True
    plan["gates"] = {"candidate_vram_gb": {"healthy": [0.2, 3.0], "warn": [3.0, 4.0], "abort_above": abort_gb}}
    for step in plan["verify"]:
        if step["kind"] == "vram":
            step["processes"] = 2  # production's model and the holder
    return holder


def build_sandbox(
    folder: Path, rig: Rig, samples: int = 20, extended: int = 40, gpu: bool = False, abort_gb: float = 4.0
) -> Sandbox:
    """Start the sandbox's production on free loopback ports and write its plan (plan.toml). With `gpu`, the
    models run on the GPU beside a second GPU-holding process, under a VRAM gate (abort above `abort_gb`)."""
    folder.mkdir(parents=True, exist_ok=True)
    ports = {k: free_port() for k in ("llama", "tts", "nav", "candidate", "holder")}
    plan = sandbox_plan(folder, rig, ports, samples, extended)
    holder = on_gpu(plan, rig, ports, folder, abort_gb) if gpu else None
    # The TTS contract the user plan checks before touching anything (chatterbox_tts.py:159-161).
    filler = [f"# line {i}" for i in range(1, 159)]
    (folder / "chatterbox_tts.py").write_text(
        "\n".join([*filler, "except (httpx.TimeoutException, httpx.HTTPError):", "    yield TTSStoppedFrame()"]) + "\n"
    )
    plan_path = folder / "plan.toml"
    plan_path.write_text(to_toml(plan))
    box = Sandbox(folder, ports, plan_path)
    d = str(folder)
    for svc in plan["services"][:2]:
        result = run_argv(svc["start"], 30.0)
        if not result.ok:
            raise StepFailed(f"sandbox: {result.describe()}", hint="see the sandbox folder")
    run_argv([*SANDBOX, "start", "--dir", d, "nav", "--", *SANDBOX, "nav", "--port", str(ports["nav"])], 30.0)
    run_argv([*SANDBOX, "start", "--dir", d, "phone", "--", *SANDBOX, "daemon", PHONE_PATTERN, str(ports["nav"])], 30.0)
    for name in ("llama", "tts", "nav"):
        loaded = {"json_field": "model_loaded", "json_equals": True} if name == "tts" else {}
        health = HealthCheck(url=f"http://127.0.0.1:{ports[name]}/health", **loaded)
        _wait(f"{name} on port {ports[name]}", functools.partial(_healthy, health))
    _wait("the phone daemon", lambda: bool(pgrep(f"{PHONE_PATTERN} {ports['nav']}")))
    if holder is not None:
        run_argv([*SANDBOX, "start", "--dir", d, "gpu-holder", "--", *holder], 30.0)
        health = HealthCheck(url=f"http://127.0.0.1:{ports['holder']}/health")
        _wait("the GPU holder", functools.partial(_healthy, health))
    return box
