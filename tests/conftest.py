"""Shared fixtures: the test rig and real llama-server processes on free loopback ports."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from swapbench.demo.rig import Rig, find_rig
from swapbench.errors import InputError
from swapbench.host.candidate.llama_server import LlamaServer, LlamaServerSpec, free_port

REPO = Path(__file__).resolve().parents[1]
DEMO_IMAGE = REPO / "src" / "swapbench" / "demo" / "car-view.jpg"


@pytest.fixture(scope="session")
def rig() -> Rig:
    """The rig from `swapbench setup-rig`. Missing rig = error, not skip: these tests are the point.
    SWAPBENCH_SKIP_RIG=1 skips them instead, for a quick run of the pure tests."""
    try:
        return find_rig()
    except InputError as exc:
        if os.environ.get("SWAPBENCH_SKIP_RIG") == "1":
            pytest.skip("SWAPBENCH_SKIP_RIG=1 and no rig")
        pytest.fail(f"{exc}", pytrace=False)


ServerFactory = Callable[..., LlamaServer]


@pytest.fixture(scope="session")
def start_server(rig: Rig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start a real llama-server (SmolLM2 by default) and wait until it serves; all stop at session end."""
    started: list[LlamaServer] = []
    logs = tmp_path_factory.mktemp("server-logs")

    def start(model: Path | None = None, mmproj: bool = True, wait: bool = True, **kw: object) -> LlamaServer:
        model = model or rig.smollm2
        spec = LlamaServerSpec(
            binary=rig.llama_server,
            model=model,
            port=free_port(),
            mmproj=rig.mmproj(model) if mmproj else None,
            log_path=logs / f"server-{len(started)}.log",
            **kw,  # type: ignore[arg-type]
        )
        server = LlamaServer(spec)
        started.append(server)
        server.start()
        if wait:
            server.wait_ready(timeout_s=120)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def smol(start_server: ServerFactory) -> LlamaServer:
    """SmolLM2-135M-Instruct with the synthetic mmproj: serves images."""
    return start_server()


@pytest.fixture(scope="session")
def smol_text_only(start_server: ServerFactory) -> LlamaServer:
    """SmolLM2 without --mmproj: an image request gets HTTP 500."""
    return start_server(mmproj=False)
