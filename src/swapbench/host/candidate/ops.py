"""Launch, watch and tear down a candidate llama-server: a docker container or a native process.

Teardown is idempotent and works from another process too (rollback after a crash): it converges on what
it observes (the container, the recorded process group, whatever llama-server owns the port), never on
what it believes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from swapbench.adapters.openai_client import ChatEndpoint, Health
from swapbench.errors import EndpointError, StepFailed
from swapbench.host.candidate.llama_server import LlamaServer, LlamaServerSpec, log_tail, server_argv
from swapbench.host.processes.proc import (
    CommandResult,
    container_pid,
    kill_group,
    port_holder,
    port_open,
    port_owner,
    run_argv,
)
from swapbench.host.processes.waiting import READY_POLL_S, throttled, wait_steady, wait_until
from swapbench.plan.load import LoadedPlan
from swapbench.plan.models import DockerLaunch, Launch, NativeLaunch, Target

CONTAINER_PORT = 8080
DOCKER_EXIT_POLL_S = 0.5
Runner = Callable[..., CommandResult]

DOCKER_INSPECT_TIMEOUT_S = 30.0  # `docker image inspect`: the image is local or not


def container_model_path(launch: DockerLaunch, path: Path, resolve: Callable[[Path], Path]) -> str:
    """Where a host file under models_dir appears inside the container (/models/...)."""
    models_dir, host_path = resolve(launch.models_dir), resolve(path)
    try:
        return str(Path("/models") / host_path.relative_to(models_dir))
    except ValueError as exc:
        raise StepFailed(
            f"{host_path} is not under models_dir {models_dir}", hint="keep model and mmproj inside models_dir"
        ) from exc


def docker_run_argv(label: str, launch: DockerLaunch, run_id: str, resolve: Callable[[Path], Path]) -> list[str]:
    """`docker run` for the candidate: loopback-published port, read-only models, no restart policy,
    labelled with the run id; inside the container llama-server listens on 8080 for the mapping."""
    publish = launch.publish or f"127.0.0.1:{launch.port}:{CONTAINER_PORT}"
    argv = [
        "docker", "run", "-d", "--name", launch.name,
        "--label", f"swapbench.run={run_id}", "--label", f"swapbench.candidate={label}",
        "--restart", "no", *(["--gpus", launch.gpus] if launch.gpus else []), "-p", publish,
        "-v", f"{resolve(launch.models_dir)}:/models:ro",
        launch.image,
        "-m", container_model_path(launch, launch.model, resolve),
    ]  # fmt: skip
    if launch.mmproj is not None:
        argv += ["--mmproj", container_model_path(launch, launch.mmproj, resolve)]
    if launch.chat_template_file is not None:
        argv += ["--chat-template-file", container_model_path(launch, launch.chat_template_file, resolve)]
    # 0.0.0.0 inside the container only: the host side is the loopback-only -p above.
    argv += ["--host", "0.0.0.0", "--port", str(CONTAINER_PORT)]  # noqa: S104
    argv.append("--jinja" if launch.jinja else "--no-jinja")
    return argv + list(launch.flags)


def native_spec(launch: NativeLaunch, resolve: Callable[[Path], Path], log_path: Path) -> LlamaServerSpec:
    return LlamaServerSpec(
        binary=resolve(launch.binary), model=resolve(launch.model), port=launch.port, log_path=log_path,
        mmproj=resolve(launch.mmproj) if launch.mmproj else None,
        chat_template_file=resolve(launch.chat_template_file) if launch.chat_template_file else None,
        host=launch.host, ctx_size=None, parallel=None, jinja=launch.jinja, extra_args=tuple(launch.flags),
    )  # fmt: skip


def launch_argv(label: str, launch: Launch, run_id: str, resolve: Callable[[Path], Path], log_path: Path) -> list[str]:
    if isinstance(launch, DockerLaunch):
        return docker_run_argv(label, launch, run_id, resolve)
    return server_argv(native_spec(launch, resolve, log_path))


def teardown_argv(launch: Launch) -> list[str] | None:
    """The docker command that removes the candidate; None for native (it is signalled)."""
    return ["docker", "rm", "-f", launch.name] if isinstance(launch, DockerLaunch) else None


@dataclass
class CandidateOps:
    """One candidate on the host. `pgid` is recorded in the journal so another process can tear it down."""

    target: Target
    run_id: str
    resolve: Callable[[Path], Path]
    log_path: Path
    runner: Runner = run_argv
    pgid: int | None = None
    _server: LlamaServer | None = field(default=None, repr=False)

    @property
    def launch_spec(self) -> Launch:
        assert self.target.launch is not None
        return self.target.launch

    @property
    def url(self) -> str:
        endpoint = self.target.endpoint
        assert endpoint is not None
        return endpoint

    def launch(self) -> None:
        spec = self.launch_spec
        if isinstance(spec, DockerLaunch):
            result = self.runner(docker_run_argv(self.target.label, spec, self.run_id, self.resolve), 120.0)
            if not result.ok:
                raise StepFailed(
                    f"docker run for {self.target.label}: {result.describe()}", hint="see docker's message"
                )
            return
        self._server = LlamaServer(native_spec(spec, self.resolve, self.log_path))
        self._server.start()
        self.pgid = self._server.pid  # own session: pid == pgid

    def _exited(self) -> str | None:
        """Why the candidate is gone while loading, or None while it lives."""
        if isinstance(self.launch_spec, DockerLaunch):
            name = self.launch_spec.name
            result = self.runner(["docker", "inspect", "-f", "{{.State.Running}}", name], 10.0)
            if result.ok and result.stdout.strip() == "true":
                return None
            logs = self.runner(["docker", "logs", "--tail", "15", name], 10.0)
            return f"container {name} is not running; last log lines:\n{logs.stdout}{logs.stderr}"
        if self._server is not None and self._server.process is not None:
            code = self._server.process.poll()
            if code is not None:
                return (
                    f"llama-server exited with code {code}; last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
        return None

    def wait_ready(self, timeout_s: float) -> float:
        """/health 200 stable for settle_s; 503 "Loading model" is not ready; exiting while loading fails fast."""
        with ChatEndpoint(self.url, timeout_s=5.0) as ep:

            def healthy() -> bool:
                try:
                    return ep.health().state is Health.OK
                except EndpointError:
                    return False

            spec = self.launch_spec
            # a native candidate's exit is one poll(); a container's is a docker inspect: asked every half second
            docker = isinstance(spec, DockerLaunch)
            exited = throttled(self._exited, DOCKER_EXIT_POLL_S, None) if docker else self._exited
            waited = wait_steady(healthy, spec.settle_s, min(timeout_s, spec.ready_timeout_s), abort=exited,
                                 poll_s=READY_POLL_S)  # fmt: skip
        if waited.aborted is not None:
            raise StepFailed(f"candidate {self.target.label} died while loading: {waited.aborted}", hint="check flags")
        if not waited.ok:
            raise StepFailed(
                f"candidate {self.target.label} not ready after {waited.seconds:.0f} s",
                hint=f"raise launch.ready_timeout_s, or look at {self.log_path}",
            )
        return waited.seconds

    def pids(self) -> list[int]:
        """Host PIDs of the candidate (for VRAM attribution and teardown)."""
        if isinstance(self.launch_spec, DockerLaunch):
            pid = container_pid(self.launch_spec.name, self.runner)
            return [pid] if pid else []
        if self._recorded_pgid() is not None and _alive(self.pgid or 0):
            return [self.pgid or 0]
        owner = self._port_owner_pid()
        return [owner] if owner else []

    def _ours(self, cmdline: str) -> bool:
        spec = self.launch_spec
        binary = str(self.resolve(spec.binary)) if isinstance(spec, NativeLaunch) else "llama-server"
        return binary in cmdline and f"--port {self.launch_spec.port}" in cmdline

    def _port_owner_pid(self) -> int | None:
        """The llama-server that owns our port, if it is ours (binary and --port in its command line)."""
        owner = port_owner(self.launch_spec.port)
        return owner[0] if owner is not None and self._ours(owner[1]) else None

    def _recorded_pgid(self) -> int | None:
        """The journal's process group, only while it still is our llama-server (a PID may be reused)."""
        if self.pgid is None:
            return None
        try:
            return self.pgid if self._ours(" ".join(psutil.Process(self.pgid).cmdline())) else None
        except psutil.Error:
            return None

    def _still_listening(self) -> bool:
        if isinstance(self.launch_spec, DockerLaunch):
            return port_open(self.launch_spec.port)
        return port_open(self.launch_spec.port) and self._port_owner_pid() is not None

    def teardown(self, timeout_s: float) -> None:
        """Remove the candidate; idempotent. Converges on observed state: the process gone, the port closed."""
        deadline = time.monotonic() + timeout_s
        if isinstance(self.launch_spec, DockerLaunch):
            name = self.launch_spec.name
            # straight to `rm -f` (an inspect first costs a docker call, inside the window): "no such container"
            # means it is gone already
            result = self.runner(["docker", "rm", "-f", name], max(deadline - time.monotonic(), 1.0))
            if not result.ok and not _no_such_container(result):
                raise StepFailed(f"removing container {name}: {result.describe()}", hint=f"docker rm -f {name}")
        else:
            if self._server is not None:
                self._server.stop(grace_s=5.0)
            # our own server is reaped: another owner of the port shows as an open port (a scan of every
            # socket on the host costs tens of ms, and this is the start of the restore)
            scan = self._server is None or port_open(self.launch_spec.port)
            for pid in {p for p in (self._recorded_pgid(), self._port_owner_pid() if scan else None) if p}:
                kill_group(_pgid_or(pid), grace_s=5.0)
        if not wait_until(lambda: not self._still_listening(), deadline - time.monotonic()):
            raise StepFailed(
                f"candidate {self.target.label} still listens on {self.launch_spec.port}",
                hint=f"kill it by hand: it owns 127.0.0.1:{self.launch_spec.port}",
            )

    def is_gone(self) -> bool:
        """No process (or container) of this candidate is left. Its port may still be open: then a stranger
        holds it (`stranger()`), which is reported as such, never taken for the candidate."""
        if isinstance(self.launch_spec, DockerLaunch):  # its PID may live in a namespace we cannot see: ask
            found = self.runner(["docker", "inspect", self.launch_spec.name], 10.0)
            return not found.ok and _no_such_container(found)  # not: the engine unreachable
        return not self.pids()

    def stranger(self) -> str | None:
        """Who holds the candidate's port once the candidate is gone ('pid N (cmdline)'), or None: nobody."""
        if not port_open(self.launch_spec.port):
            return None
        return port_holder(self.launch_spec.port)


def _no_such_container(result: CommandResult) -> bool:
    """docker's (and podman's) answer about a container that does not exist, as opposed to any other failure."""
    return "no such" in (result.stderr + result.stdout).lower()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _pgid_or(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return pid


def launched(loaded: LoadedPlan) -> list[tuple[str, Target, Launch]]:
    """(plan key, target, launch) of every candidate swapbench starts."""
    found = []
    for i, target in enumerate(loaded.plan.candidates):
        if target.launch is not None:
            found.append((f"candidates[{i}] ({target.label}).launch", target, target.launch))
    return found
