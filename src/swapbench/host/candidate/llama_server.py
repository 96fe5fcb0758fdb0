"""Start and stop a native llama-server: loopback only, its own process group, ready means serving."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from swapbench.adapters.openai_client import ChatEndpoint, Health
from swapbench.errors import EndpointError, EndpointLoading
from swapbench.host.processes.proc import kill_group
from swapbench.host.processes.waiting import wait_steady

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

    def wait_ready(self, timeout_s: float = 60.0, settle_s: float = 0.3) -> float:
        """Wait until /health answers 200 and keeps answering 200 for `settle_s`; returns seconds taken.
        503 "Loading model" is not ready; a process that exits while loading fails fast with its log."""
        process = self.process
        assert process is not None, "start() first"
        with ChatEndpoint(self.spec.url, timeout_s=5.0) as ep:
            last: list[Health | None] = [None]

            def healthy() -> bool:
                last[0] = self._health(ep)
                return last[0] is Health.OK

            def exited() -> str | None:
                code = process.poll()
                return None if code is None else f"exited with code {code}"

            waited = wait_steady(healthy, settle_s, timeout_s, abort=exited)
        if waited.aborted is not None:
            raise EndpointError(
                f"llama-server {waited.aborted} while loading; last lines of {self.spec.log_path}:\n"
                f"{log_tail(self.spec.log_path)}",
                hint="check the model path, --mmproj and the flags in the log above",
            )
        if not waited.ok:
            raise EndpointLoading(
                f"llama-server on {self.spec.url} not ready after {timeout_s:.0f} s (last: {last[0]})",
                hint=f"see {self.spec.log_path}",
            )
        return waited.seconds

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
            kill_group(self.pid, grace_s)
        return self.process.wait(5.0)
