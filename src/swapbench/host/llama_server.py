"""Start and stop a native llama-server: loopback only, its own process group, ready means serving."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from swapbench.adapters.openai_client import ChatEndpoint, Health
from swapbench.errors import EndpointError, EndpointLoading

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free on loopback a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LlamaServerSpec:
    binary: Path
    model: Path
    port: int
    log_path: Path
    mmproj: Path | None = None
    chat_template_file: Path | None = None
    host: str = LOOPBACK
    ctx_size: int | None = 2048
    parallel: int | None = 1
    jinja: bool = True
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def server_argv(spec: LlamaServerSpec) -> list[str]:
    """The exact argv; `--jinja` is what makes `chat_template_kwargs.enable_thinking` take effect."""
    argv = [str(spec.binary), "-m", str(spec.model), "--host", spec.host, "--port", str(spec.port), "--no-webui"]
    if spec.ctx_size is not None:
        argv += ["-c", str(spec.ctx_size)]
    if spec.parallel is not None:
        argv += ["-np", str(spec.parallel)]
    argv.append("--jinja" if spec.jinja else "--no-jinja")
    if spec.mmproj is not None:
        argv += ["--mmproj", str(spec.mmproj)]
    if spec.chat_template_file is not None:
        argv += ["--chat-template-file", str(spec.chat_template_file)]
    return argv + list(spec.extra_args)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class LlamaServer:
    """A llama-server child process. Use as a context manager: it is stopped (TERM, grace, KILL) on exit."""

    def __init__(self, spec: LlamaServerSpec) -> None:
        self.spec = spec
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.spec.log_path.open("wb") as log:
            # Own session = own process group: stop() can signal the server and anything it spawned.
            self.process = subprocess.Popen(
                server_argv(self.spec),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None, "start() first"
        return self.process.pid

    def wait_ready(self, timeout_s: float = 60.0, settle_s: float = 0.3, poll_s: float = 0.05) -> float:
        """Wait until /health answers 200 and keeps answering 200 for `settle_s`; returns seconds taken.
        503 "Loading model" is not ready; a process that exits while loading fails fast with its log."""
        assert self.process is not None, "start() first"
        start = time.monotonic()
        ok_since: float | None = None
        with ChatEndpoint(self.spec.url, timeout_s=5.0) as ep:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise EndpointError(
                        f"llama-server exited with code {code} while loading; last lines of "
                        f"{self.spec.log_path}:\n{log_tail(self.spec.log_path)}",
                        hint="check the model path, --mmproj and the flags in the log above",
                    )
                state = self._health(ep)
                now = time.monotonic()
                ok_since = (ok_since or now) if state is Health.OK else None
                if ok_since is not None and now - ok_since >= settle_s:
                    return now - start
                if now - start > timeout_s:
                    raise EndpointLoading(
                        f"llama-server on {self.spec.url} not ready after {timeout_s:.0f} s (last: {state})",
                        hint=f"see {self.spec.log_path}",
                    )
                time.sleep(poll_s)

    @staticmethod
    def _health(ep: ChatEndpoint) -> Health | None:
        try:
            return ep.health().state
        except EndpointError:
            return None  # not listening yet

    def stop(self, grace_s: float = 5.0) -> int | None:
        """TERM the process group, wait up to `grace_s`, then KILL. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(5.0)
        return self.process.returncode

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)
