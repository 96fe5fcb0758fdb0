"""A sandbox host of real processes on loopback, shaped like the user's box, and the plan that swaps it.

Production: a llama-server (SmolLM2) started by a start script, a TTS service that answers with real WAV
audio, a nav sidecar with /health, and a phone daemon found by pgrep. The candidate is Gemma 3 270M,
launched natively by swapbench.

This package is also the entry point of the sandbox's processes (`python -m swapbench.demo.sandbox`): its stop
and start commands run inside the window, so what only the builder needs (jinja2, httpx, pydantic: 0.25 s of
imports) is imported by the builder itself.
"""

from __future__ import annotations

import functools
import json
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from swapbench.demo.rig import Rig
from swapbench.errors import StepFailed
from swapbench.host.processes.proc import pgrep, run_argv
from swapbench.host.processes.waiting import wait_until

if TYPE_CHECKING:
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


def _toml(value: object) -> str:
    """A TOML value: JSON's encoding of strings, numbers, booleans and arrays is TOML's too."""
    return json.dumps(value, default=str)


def sandbox_plan(
    folder: Path, rig: Rig, ports: dict[str, int], samples: int, extended: int, gpu: bool = False, abort_gb: float = 4.0
) -> str:
    """The sandbox's plan.toml (demo/sandbox/plan.toml.j2). With `gpu`, both models on the GPU (-ngl 99) beside a
    second GPU-holding production process, under a VRAM gate that aborts above `abort_gb`."""
    import jinja2  # noqa: PLC0415 -- the builder's alone (see the module's docstring)

    from swapbench.host.candidate.llama_server import LlamaServerSpec, server_argv  # noqa: PLC0415

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("swapbench.demo.sandbox", "."),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 -- TOML, not HTML: every value goes through the toml filter
    )
    env.filters["toml"] = _toml
    llama = server_argv(LlamaServerSpec(binary=rig.llama_server, model=rig.smollm2, mmproj=rig.mmproj(rig.smollm2),
                                        port=ports["llama"], log_path=folder / "unused.log"))  # fmt: skip
    return env.get_template("plan.toml.j2").render(
        folder=str(folder), rig=rig, ports=ports, samples=samples, extended=extended, gpu=gpu, abort_gb=abort_gb,
        frames=str(Path(__file__).parent.parent / "frames"), sandbox=SANDBOX, llama=llama, phone=PHONE_PATTERN,
        on_gpu=["-ngl", "99"] if gpu else [], baseline_label=BASELINE_LABEL, candidate_label=CANDIDATE_LABEL,
        url="http://127.0.0.1:{}".format,
    )  # fmt: skip


def _healthy(check: HealthCheck) -> bool:
    from swapbench.host.processes.probes import probe_http  # noqa: PLC0415 -- the builder's alone

    return probe_http(check).ok


def _wait(what: str, ok: Callable[[], bool], timeout_s: float = 60.0) -> None:
    if not wait_until(ok, timeout_s):
        raise StepFailed(f"sandbox: {what} did not come up", hint="see the logs in the sandbox folder")


def _gpu_holder(rig: Rig, port: int, folder: Path) -> list[str]:
    """A second production process holding GPU memory (observed by the plan, never stopped)."""
    from swapbench.host.candidate.llama_server import LlamaServerSpec, server_argv  # noqa: PLC0415 -- the builder's alone

    spec = LlamaServerSpec(binary=rig.llama_server, model=rig.smollm2, port=port, log_path=folder / "x.log")
    return [*server_argv(spec), "-ngl", "99"]


def build_sandbox(
    folder: Path, rig: Rig, samples: int = 20, extended: int = 40, gpu: bool = False, abort_gb: float = 4.0
) -> Sandbox:
    """Start the sandbox's production on free loopback ports and write its plan (plan.toml). With `gpu`, the
    models run on the GPU beside a second GPU-holding process, under a VRAM gate (abort above `abort_gb`)."""
    from swapbench.host.candidate.llama_server import free_port  # noqa: PLC0415 -- the builder's alone
    from swapbench.plan.models import HealthCheck  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    ports = {k: free_port() for k in ("llama", "tts", "nav", "candidate", "holder")}
    text = sandbox_plan(folder, rig, ports, samples, extended, gpu, abort_gb)
    holder = _gpu_holder(rig, ports["holder"], folder) if gpu else None
    # The TTS contract the user plan checks before touching anything (chatterbox_tts.py:159-161).
    filler = [f"# line {i}" for i in range(1, 159)]
    (folder / "chatterbox_tts.py").write_text(
        "\n".join([*filler, "except (httpx.TimeoutException, httpx.HTTPError):", "    yield TTSStoppedFrame()"]) + "\n"
    )
    plan_path = folder / "plan.toml"
    plan_path.write_text(text)
    box = Sandbox(folder, ports, plan_path)
    d = str(folder)
    for svc in tomllib.loads(text)["services"][:2]:
        result = run_argv(svc["start"], 30.0)
        if not result.ok:
            raise StepFailed(f"sandbox: {result.describe()}", hint="see the sandbox folder")
    run_argv([*SANDBOX, "start", "--dir", d, "nav", "--", *SANDBOX, "nav", "--port", str(ports["nav"])], 30.0)
    run_argv([*SANDBOX, "start", "--dir", d, "phone", "--", *SANDBOX, "daemon", PHONE_PATTERN, str(ports["nav"])], 30.0)
    for name in ("llama", "tts", "nav"):
        loaded = {"json_field": "model_loaded", "json_equals": True} if name == "tts" else {}
        health = HealthCheck.model_validate({"url": f"http://127.0.0.1:{ports[name]}/health", **loaded})
        _wait(f"{name} on port {ports[name]}", functools.partial(_healthy, health))
    _wait("the phone daemon", lambda: bool(pgrep(f"{PHONE_PATTERN} {ports['nav']}")))
    if holder is not None:
        run_argv([*SANDBOX, "start", "--dir", d, "gpu-holder", "--", *holder], 30.0)
        health = HealthCheck(url=f"http://127.0.0.1:{ports['holder']}/health")
        _wait("the GPU holder", functools.partial(_healthy, health))
    return box
