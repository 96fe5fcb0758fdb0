"""The rehearsal host: a Debian machine with systemd as PID 1, in a podman container, holding a twin of the
user's box (Panda) that swapbench swaps for real.

Inside: the production llama-server as the systemd unit `panda-llamacpp.service`, the nav sidecar as a real
uvicorn (`panda-nav.service`), the phone daemon (`panda-phone.service`), Chatterbox behind `./start.sh` and
`./stop.sh`, an operator user `panda` whose sudoers rule allows exactly `systemctl start|stop
panda-llamacpp.service`, OpenSSH's server as the real `ssh.service` on 127.0.0.1:11422 (key login for the
operator only, no password, fresh host keys at each boot), Python with swapbench installed, and the real docker
CLI talking to podman's API socket outside (the engine runs the candidate as a sibling container, as Docker would
on the real box).

The operator's home lives at the same path inside and outside (under the state folder), so a `docker run -v
~/models/...` given inside names the same folder for the engine outside — as on a real host.

A second twin for fleet tests (`RehearsalHost(link=Link())`) is the same image booted in a network namespace
of its own, joined to this machine by a veth pair on a /30 of the test's own: its services keep the user's own
loopback ports without colliding with the first twin's, and its sshd listens on its end of the veth. It runs no
container engine: sibling containers would live in this machine's network namespace and collide with the first
twin's candidate port, so its plan launches the candidate as a native llama-server.

HAZARD (../shared/notes/real-managers.md): systemd runs only as PID 1 of the podman container. Nothing here
starts a systemd manager on this machine; the tests check /proc/1/cgroup and their own cgroup before and after.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TWIN = Path(__file__).resolve().parent / "twin"
EXAMPLE = REPO / "examples" / "panda-gemma4-e4b.toml"
DEMO_IMAGE = REPO / "src" / "swapbench" / "demo" / "car-view.jpg"

CONTAINER = "swapbench-rehearsal"
OPERATOR, OPERATOR_UID, DOCKER_GID = "panda", 1000, 2375
UNIT = "panda-llamacpp"
SSH_PORT = 11422  # the box's sshd (Debian's ssh.service), on 127.0.0.1 only: host networking shares this machine's
LLAMA_IMAGE = "localhost/llama.cpp:server-b11434-cpu"
HEALTH = {
    "panda-llamacpp": "http://127.0.0.1:11435/health",
    "panda-nav": "http://127.0.0.1:11436/health",
    "chatterbox": "http://127.0.0.1:8772/health",
    "phone": "http://127.0.0.1:8770/health",
}
CONTAINERS_CONF = """\
# crun cannot run under this machine's hybrid cgroups, and podman's default nofile ulimit exceeds its hard limit.
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""


@dataclass(frozen=True)
class Link:
    """A network namespace of the test's own, joined to this machine by a veth pair: a second host's network."""

    netns: str = "swapbench-twin-b"
    hostname: str = "panda-b"
    outside: str = "sbtwin-b0"  # interface names: at most 15 characters
    inside: str = "sbtwin-b1"
    host_address: str = "10.211.22.1"  # a /30 no other route here uses (checked before it is made)
    box_address: str = "10.211.22.2"


class RehearsalError(Exception):
    """The rehearsal host could not be built, started or reached; the message says what to do."""


@dataclass(frozen=True)
class Change:
    """One edit that turns the user's plan into the twin's; `old` must occur exactly once."""

    old: str
    new: str
    why: str


# Everything that differs between examples/panda-gemma4-e4b.toml and the plan run on the twin. The paths and
# ports are the user's own: the twin has its files at the same places under the operator's home.
TWIN_CHANGES = [
    Change('image = "ghcr.io/ggml-org/llama.cpp:server-cuda"', f'image = "{LLAMA_IMAGE}"',
           "no registry is reachable: a CPU llama-server image built locally from the rig"),
    Change('gpus = "all"\n', "", "a CPU host: the plan leaves --gpus out"),
    Change('"-np", "1"]', '"-np", "1", "-t", "1"]',
           "2 busy CPU cores: llama-server's default threads collapse decode (0.33 tok/s measured), one is steady"),
    Change('[[checks]]\nkind = "gpu"\n\n', "", "no GPU here (the VRAM check and verify are skipped, as they say)"),
    Change("min_bytes = 1_000_000_000", "min_bytes = 50_000_000", "the stand-in model is 98 MB"),
    Change('python_path = ["~/workplace/her/her-os"]\n',
           'python_path = ["~/workplace/her/her-os"]\n[workloads.extra_body.response_format]\ntype = "json_schema"\n'
           'json_schema = { name = "nav", schema = { type = "object", required = ["action"], properties = '
           '{ action = { enum = ["forward", "left", "right", "back", "stop"] } } } }\n',
           "a 135M stand-in follows the nav contract only under a JSON-schema grammar"),
]  # fmt: skip


# The second twin runs no container engine: its candidate is the same llama-server, as a native process.
NATIVE_CHANGES = [
    Change('kind = "docker"\nname = "panda-llamacpp-e4b"\n',
           'kind = "native"\nbinary = "/usr/local/bin/llama-server"\n',
           "the second twin runs no container engine: the candidate is a native llama-server"),
    Change(f'image = "{LLAMA_IMAGE}"\n', "", "a native launch has no image"),
    Change('publish = "127.0.0.1:11437:8080" # decision 3: loopback only, no LAN exposure of an unauthenticated LLM\n',
           "", "a native launch binds 127.0.0.1:11437 itself (host defaults to loopback)"),
    Change('models_dir = "~/models/gemma-4-E4B"\n', "", "a native launch mounts nothing"),
]  # fmt: skip


def twin_plan_text(example: str | None = None, native: bool = False) -> str:
    text = EXAMPLE.read_text() if example is None else example
    for change in TWIN_CHANGES + (NATIVE_CHANGES if native else []):
        if text.count(change.old) != 1:
            raise RehearsalError(f"the twin's change {change.old!r} no longer matches {EXAMPLE.name} exactly once")
        text = text.replace(change.old, change.new)
    header = "# The rehearsal twin of examples/panda-gemma4-e4b.toml. Changes, each for one reason:\n"
    header += "".join(f"#   - {c.why}\n" for c in TWIN_CHANGES + (NATIVE_CHANGES if native else []))
    return header + text


def cgroups() -> tuple[str, str]:
    """The cgroups of PID 1 and of this process: a systemd manager started on this machine would move both."""
    return Path("/proc/1/cgroup").read_text(), Path("/proc/self/cgroup").read_text()


def _run(argv: Sequence[str], timeout_s: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout_s, env=env, errors="replace", check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RehearsalError(f"{' '.join(argv[:4])} did not finish in {timeout_s:.0f} s") from exc


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as answer:  # loopback URLs only (HEALTH)
            return int(answer.status) == 200 and b'"model_loaded": false' not in answer.read()
    except OSError:
        return False


class RehearsalHost:
    """Build, start, use and remove the rehearsal host. One at a time per state folder; with `link`, a second
    twin in a network namespace of its own (the module's docstring)."""

    def __init__(self, state: Path | None = None, rig: Path | None = None, link: Link | None = None) -> None:
        default = Path(os.environ.get("SWAPBENCH_REHEARSAL_DIR", "/var/tmp/swapbench-rehearsal"))
        self.link = link
        tail = "" if link is None else "-" + link.netns.removeprefix("swapbench-")
        self.container = CONTAINER + tail
        self.address = "127.0.0.1" if link is None else link.box_address  # where its sshd listens
        self.state = state or default.with_name(default.name + tail)
        self.rig = rig or Path.home() / ".cache" / "swapbench" / "rig-b11434"
        self.home = self.state / "home" / OPERATOR
        self.her_os = self.home / "workplace" / "her" / "her-os"
        self.plan = self.home / "panda-twin.toml"
        self.results = self.her_os / "benchmark-results"
        self.socket = self.state / "engine.sock"
        self.small_disk = self.state / "disks" / "small"  # a 64 MiB tmpfs the operator owns, for full-disk tests
        self.env = {**os.environ, "CONTAINERS_CONF": str(self.state / "containers.conf")}
        self._engine: subprocess.Popen[bytes] | None = None

    # --- the engine ---------------------------------------------------------------------------------------

    def podman(self, *args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
        return _run(["podman", *args], timeout_s, env=self.env)

    def _need(self, result: subprocess.CompletedProcess[str], what: str) -> str:
        if result.returncode != 0:
            raise RehearsalError(f"{what} failed (exit {result.returncode}): {(result.stderr or result.stdout)[-800:]}")
        return result.stdout

    def image_tag(self) -> str:
        """Keyed by what goes into the image: the build script and swapbench's dependencies."""
        deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
        digest = hashlib.sha256((Path(__file__).parent / "build-image.sh").read_bytes() + repr(deps).encode())
        return f"localhost/swapbench-rehearsal:{digest.hexdigest()[:12]}"

    def build(self) -> float:
        """Build whatever image is missing; seconds spent building (0.0 when both were cached)."""
        for tool in ("podman", "runc", "debootstrap"):
            if shutil.which(tool) is None:
                raise RehearsalError(f"{tool} is not installed; run scripts/rehearsal.sh, which installs it")
        self._write_engine_conf()
        start, built = time.monotonic(), False
        if self.podman("image", "exists", self.image_tag()).returncode != 0:
            built = True
            with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="swapbench-wheels-") as wheels:
                wheel = self._swapbench_wheel(Path(wheels))
                self._need(_run([sys.executable, "-m", "pip", "download", "--quiet", "-d", wheels, str(wheel)], 600.0),
                           "fetching swapbench's dependencies")  # fmt: skip
                script = str(Path(__file__).parent / "build-image.sh")
                self._need(_run(["bash", script, self.image_tag(), wheels], 1200.0, env=self.env), "build-image.sh")
        if self.podman("image", "exists", LLAMA_IMAGE).returncode != 0:
            built = True
            self._build_llama_image()
        return time.monotonic() - start if built else 0.0

    def _swapbench_wheel(self, folder: Path) -> Path:
        """The working tree's swapbench as a wheel in `folder` (what the rehearsal host installs)."""
        built = _run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(folder), str(REPO)], 300.0
        )
        self._need(built, "building swapbench's wheel")
        return next(folder.glob("swapbench-*.whl"))

    def _write_engine_conf(self) -> None:
        """The state folder is ours alone (`up` empties the operator's home in it): a folder that has files but
        not our marker is refused, so a mistyped SWAPBENCH_REHEARSAL_DIR never loses anything."""
        marker = self.state / ".swapbench-rehearsal"
        if self.state.exists() and any(self.state.iterdir()) and not marker.exists():
            raise RehearsalError(f"{self.state} has files that are not the rehearsal host's; pick an empty folder")
        self.state.mkdir(parents=True, exist_ok=True)
        marker.touch()
        (self.state / "containers.conf").write_text(CONTAINERS_CONF)

    def _build_llama_image(self) -> None:
        """The rig's CPU llama-server with the libraries ldd names, an /etc/passwd, and llama-server as the
        entrypoint (as in the upstream server images)."""
        binary = self.rig / "bin" / "llama-server"
        libs = [Path(p) for line in self._need(_run(["ldd", str(binary)], 30.0), "ldd").splitlines()
                for p in line.split() if p.startswith("/")]  # fmt: skip
        with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="swapbench-llama-image-") as work:
            root = Path(work) / "rootfs"
            (root / "app").mkdir(parents=True)
            shutil.copy2(binary, root / "app" / "llama-server")
            for lib in libs:
                (root / lib.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(lib, root / lib.relative_to("/"))
            (root / "etc").mkdir(exist_ok=True)
            (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
            (root / "etc" / "group").write_text("root:x:0:\n")
            (root / "tmp").mkdir(mode=0o1777)
            tar = Path(work) / "rootfs.tar"
            self._need(_run(["tar", "-C", str(root), "-cf", str(tar), "."], 120.0), "tar")
            change = 'ENTRYPOINT ["/app/llama-server"]'
            self._need(self.podman("import", "--change", change, str(tar), LLAMA_IMAGE), "podman import")

    # --- up and down --------------------------------------------------------------------------------------

    def up(self) -> float:
        """Start the host with the twin running and healthy; seconds from `podman run` to all healthy."""
        self.build()
        self.down()
        try:
            return self._boot()
        except BaseException:
            self.down()  # a host that did not come up leaves no mount, engine or container behind
            raise

    def _boot(self) -> float:
        self._lay_out_twin()
        self._mount_small_disk()
        if self.link is None:
            self._start_engine_socket()
            engine = ["-v", f"{self.socket}:/run/docker.sock", "-v", f"{self._docker_cli()}:/usr/local/bin/docker:ro"]
            network = ["--network", "host", *engine]
        else:
            self._make_link(self.link)
            network = ["--network", f"ns:/run/netns/{self.link.netns}", "--hostname", self.link.hostname]
        start = time.monotonic()
        self._need(self.podman(
            "run", "-d", "--name", self.container, "--systemd=always", *network,
            "--label", "swapbench.rehearsal=host",
            "-v", f"{self.state / 'units'}:/usr/local/lib/systemd/system:ro",
            "-v", f"{self.rig / 'bin' / 'llama-server'}:/usr/local/bin/llama-server:ro",
            "-v", f"{self.state / 'wheels'}:/opt/swapbench-wheels:ro",
            "-v", f"{self.small_disk}:{self.small_disk}",
            "-v", f"{self.state / 'home'}:{self.state / 'home'}",
            self.image_tag(),
        ), "podman run (the rehearsal host)")  # fmt: skip
        deadline = time.monotonic() + 60.0
        ask = ["exec", self.container, "systemctl", "is-system-running", "--wait"]
        while (state := self.podman(*ask)).stdout.strip() not in ("running", "degraded"):
            if time.monotonic() > deadline:  # before its bus exists, systemctl cannot even ask
                raise RehearsalError(f"systemd in the rehearsal host did not boot: {state.stdout}{state.stderr}")
            time.sleep(0.1)
        self._need(self.root(self._setup_script()), "setting up the rehearsal host")
        self.wait_healthy(120.0)
        return time.monotonic() - start

    @staticmethod
    def _docker_cli() -> str:
        found = shutil.which("docker")
        if found is None:
            raise RehearsalError("no docker CLI on PATH: the rehearsal host drives the engine with the real one")
        return str(Path(found).resolve())

    def down(self) -> None:
        """Remove the host, every container swapbench or the tests started on the engine, and the engine's
        socket service. Safe to call when nothing is up."""
        if self.podman("container", "exists", self.container).returncode == 0:
            self.podman("stop", "-t", "10", self.container, timeout_s=60.0)
            self.podman("rm", "-f", self.container, timeout_s=60.0)
        if self.link is not None:  # it started no container on the engine, and has no engine of its own
            self._remove_link(self.link)
        else:
            self._remove_engine_containers(("swapbench.run", "swapbench.rehearsal"))
        pid_file = self.state / "engine.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pid_file.read_text()), 15)
            pid_file.unlink()
        if self._engine is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._engine.wait(10.0)
            self._engine = None
        self.socket.unlink(missing_ok=True)
        if os.path.ismount(self.small_disk):
            _run(["umount", str(self.small_disk)], 30.0)

    def _remove_engine_containers(self, labels: Sequence[str]) -> None:
        for label in labels:
            listed = self.podman("ps", "-aq", "--filter", f"label={label}").stdout.split()
            if listed:
                self.podman("rm", "-f", *listed, timeout_s=60.0)

    def _make_link(self, link: Link) -> None:
        """The namespace and its veth pair (shared/notes/remote-and-fleet.md); refused if the /30 is in use."""
        subnet = link.host_address.rsplit(".", 1)[0] + "."
        if subnet in _run(["ip", "-4", "route", "show"], 30.0).stdout:
            raise RehearsalError(f"{subnet}0/24 is already routed on this machine; pick another Link address")
        script = f"""set -e
ip netns add {link.netns}
ip link add {link.outside} type veth peer name {link.inside}
ip link set {link.inside} netns {link.netns}
ip addr add {link.host_address}/30 dev {link.outside}
ip link set {link.outside} up
ip netns exec {link.netns} ip addr add {link.box_address}/30 dev {link.inside}
ip netns exec {link.netns} ip link set {link.inside} up
ip netns exec {link.netns} ip link set lo up
"""
        self._need(_run(["bash", "-c", script], 30.0), "making the second host's network namespace")

    @staticmethod
    def _remove_link(link: Link) -> None:
        """Deleting the namespace removes its end of the veth pair, and with it ours."""
        _run(["ip", "netns", "delete", link.netns], 30.0)
        _run(["ip", "link", "delete", link.outside], 30.0)  # gone already, unless the namespace was not made

    def _mount_small_disk(self) -> None:
        """Mounted before the host starts (this machine's mounts are private: a later one would not show inside)."""
        self.small_disk.mkdir(parents=True, exist_ok=True)
        options = f"size=64m,mode=0755,uid={OPERATOR_UID},gid={OPERATOR_UID}"
        self._need(_run(["mount", "-t", "tmpfs", "-o", options, "swapbench-small", str(self.small_disk)], 30.0),
                   "mounting the small disk")  # fmt: skip

    def _lay_out_twin(self) -> None:
        if self.home.exists():
            shutil.rmtree(self.home)
        shutil.copytree(TWIN / "her-os", self.her_os)
        for sub in ("docs", "benchmark-results"):
            (self.her_os / sub).mkdir(exist_ok=True)
        (self.home / ".rehearsal").mkdir()
        shutil.copy2(DEMO_IMAGE, self.home / "car-view.jpg")
        models = self.rig / "models"
        layout = {
            "gemma-4-E2B/gemma-4-E2B-it-Q4_K_M.gguf": "gemma-3-270m-q4_k_m.gguf",
            "gemma-4-E2B/mmproj-F16.gguf": "gemma-3-270m-q4_k_m.mmproj.gguf",
            "gemma-4-E2B/chat_template.jinja": "gemma3.jinja",
            "gemma-4-E4B/gemma-4-E4B-it-Q4_K_M.gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
            "gemma-4-E4B/mmproj-F16.gguf": "SmolLM2-135M-Instruct.Q4_1.mmproj.gguf",
        }
        for name, source in layout.items():
            dest = self.home / "models" / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(models / source, dest)  # read-only use; the rig's files are world-readable
            except OSError:
                shutil.copy2(models / source, dest)
        self.plan.write_text(twin_plan_text(native=self.link is not None))
        units = self.state / "units"
        if units.exists():
            shutil.rmtree(units)
        units.mkdir()
        for unit in (TWIN / "units").glob("*.service"):
            (units / unit.name).write_text(unit.read_text().replace("@HOME@", str(self.home)))
        wheels = self.state / "wheels"
        if wheels.exists():
            shutil.rmtree(wheels)
        self._swapbench_wheel(wheels)
        for path in [self.home, *self.home.rglob("*")]:
            if not (path.is_file() and path.parent.name.startswith("gemma-4-")):
                os.chown(path, OPERATOR_UID, OPERATOR_UID, follow_symlinks=False)
        os.chmod(self.state / "home", 0o755)

    def _start_engine_socket(self) -> None:
        """podman's Docker-compatible API on a socket of our own, group `docker` (gid 2375) as on a real host."""
        with (self.state / "engine.log").open("w") as engine_log:
            service = subprocess.Popen(
                ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
                env=self.env, stdout=engine_log, stderr=engine_log, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self._engine = service
        (self.state / "engine.pid").write_text(str(service.pid))
        deadline = time.monotonic() + 30.0
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(self.socket))
                break
            except OSError as exc:
                if service.poll() is not None or time.monotonic() > deadline:
                    log = self.state / "engine.log"
                    raise RehearsalError(f"podman system service did not start; see {log}") from exc
                time.sleep(0.1)
        os.chown(self.socket, 0, DOCKER_GID)
        os.chmod(self.socket, 0o660)

    def _setup_script(self) -> str:
        wheel = next((self.state / "wheels").glob("swapbench-*.whl")).name
        return f"""set -e
groupadd -g {DOCKER_GID} docker
useradd -M -u {OPERATOR_UID} -U -G docker -d {self.home} -s /bin/bash {OPERATOR}
{self.sudoers_script()}
/opt/swapbench/bin/pip install --quiet --no-deps --force-reinstall --no-index /opt/swapbench-wheels/{wheel}
usermod -p '*' {OPERATOR}
{self.sshd_script()}
systemctl daemon-reload
systemctl start {UNIT}.service panda-nav.service panda-phone.service
runuser -u {OPERATOR} -- sh -c 'cd {self.her_os}/services/chatterbox && ./start.sh'
"""

    def sshd_script(self) -> str:
        """Debian's ssh.service with a drop-in: loopback port of its own, a fresh ed25519 host key, public keys
        for the operator only (`usermod -p '*'` above unlocks key login without giving a password), client
        keepalive (a cut link ends the session in ~3 s), and SWAPBENCH_* from the client (the tests' hooks)."""
        config = "\\n".join([
            f"Port {SSH_PORT}", f"ListenAddress {self.address}", "HostKey /etc/ssh/ssh_host_ed25519_key",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin no",
            f"AllowUsers {OPERATOR}", "UsePAM no", "AcceptEnv SWAPBENCH_*", "ClientAliveInterval 1",
            "ClientAliveCountMax 3",
        ])  # fmt: skip
        return (
            "rm -f /etc/ssh/ssh_host_*\n"
            "ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key\n"
            f"printf '{config}\\n' >/etc/ssh/sshd_config.d/rehearsal.conf\n"
            "mkdir -p /run/sshd && sshd -t\n"
            "systemctl start ssh.service"
        )

    def authorize(self, public_key: str) -> None:
        """The operator's ~/.ssh/authorized_keys holds exactly this key (sshd's StrictModes: 0700 and 0600)."""
        folder = self.home / ".ssh"
        folder.mkdir(mode=0o700, exist_ok=True)
        (folder / "authorized_keys").write_text(public_key)
        (folder / "authorized_keys").chmod(0o600)
        for path in (folder, folder / "authorized_keys"):
            os.chown(path, OPERATOR_UID, OPERATOR_UID)

    def known_hosts_line(self) -> str:
        """The box's host key as a known_hosts line for [ADDRESS]:SSH_PORT (read from inside, as root)."""
        key = self._need(self.exec(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"], user="root"), "reading the host key")
        kind, body = key.split()[:2]
        return f"[{self.address}]:{SSH_PORT} {kind} {body}\n"

    @staticmethod
    def sudoers_script(verbs: Sequence[str] = ("start", "stop"), unit: str = f"{UNIT}.service") -> str:
        """The operator may run exactly `systemctl VERB panda-llamacpp.service` for each verb, nothing else."""
        rule = ", ".join(f"/usr/bin/systemctl {verb} {unit}" for verb in verbs)
        return (
            f"printf '%s\\n' '{OPERATOR} ALL=(root) NOPASSWD: {rule}' >/etc/sudoers.d/{OPERATOR}.new\n"
            f"chmod 0440 /etc/sudoers.d/{OPERATOR}.new\n"
            f"visudo -cqf /etc/sudoers.d/{OPERATOR}.new\n"
            f"mv /etc/sudoers.d/{OPERATOR}.new /etc/sudoers.d/{OPERATOR}"
        )

    def repair(self) -> None:
        """Put the twin back as `up` left it (rules, units, Chatterbox, no swapbench containers), whatever a
        test did to it. Tests assert before they repair: this only stops one failure from causing the next."""
        self._end_windows()
        if self.link is None:
            self._remove_engine_containers(("swapbench.run", "swapbench.rehearsal=service"))
        for flag in (self.home / ".rehearsal").glob("*.fail-next-start"):
            flag.unlink()
        for hook in (".fail-next-start", ".fail-every-start"):
            (self.her_os / "services" / "chatterbox" / hook).unlink(missing_ok=True)
        script = f"""{self.sudoers_script()}
gpasswd -d {OPERATOR} sudo >/dev/null 2>&1 || true
[ "$(systemctl show -p NRestarts --value {UNIT}.service)" = 0 ] || systemctl stop {UNIT}.service  # zeroes it
systemctl start {UNIT}.service panda-nav.service panda-phone.service ssh.service
curl -fs http://127.0.0.1:8772/health >/dev/null || runuser -u {OPERATOR} -- {self.her_os}/services/chatterbox/start.sh
"""
        self._need(self.root(script), "repairing the twin")
        self.wait_healthy(120.0)

    def _end_windows(self) -> None:
        """A failed test may leave a window held at its barrier, owning the lock the next test needs: let every
        barrier go, give the window time to measure and restore, then SIGTERM (it restores), then SIGKILL. The
        barrier folders go too: a `go` left behind would let the next window with that name straight through."""
        gates = [g for g in [*self.home.glob("barrier-*"), *(self.home / ".rehearsal").glob("barrier-*")] if g.is_dir()]
        for gate in gates:
            (gate / "go").touch()
        wait = f'for _ in $(seq 1 {{n}}); do pgrep -u {OPERATOR} -f "$ours" >/dev/null || exit 0; sleep 0.5; done'
        script = "\n".join([
            "ours='(^|[/ ])swapbench( |$)'", wait.format(n=480),
            f"pkill -TERM -u {OPERATOR} -f \"$ours\"", wait.format(n=240),
            f"pkill -KILL -u {OPERATOR} -f \"$ours\"", "true",
        ])  # fmt: skip
        self._need(self.root(script, timeout_s=400.0), "ending a window a failed test left")
        for gate in gates:
            shutil.rmtree(gate, ignore_errors=True)

    # --- using it -----------------------------------------------------------------------------------------

    def exec_argv(self, argv: Sequence[str], user: str = OPERATOR, env: dict[str, str] | None = None) -> list[str]:
        """`podman exec` of a command inside, by default as the operator in their home (as after an SSH login)."""
        flags = ["--user", user]
        if user == OPERATOR:
            flags += ["--workdir", str(self.home), "-e", f"HOME={self.home}", "-e", f"USER={OPERATOR}"]
        for key, value in (env or {}).items():
            flags += ["-e", f"{key}={value}"]
        return ["podman", "exec", *flags, self.container, *argv]

    def exec(
        self, argv: Sequence[str], user: str = OPERATOR, env: dict[str, str] | None = None, timeout_s: float = 600.0
    ) -> subprocess.CompletedProcess[str]:
        return _run(self.exec_argv(argv, user, env), timeout_s, env=self.env)

    def root(self, script: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
        return self.exec(["bash", "-c", script], user="root", timeout_s=timeout_s)

    def swapbench(
        self, *args: str, env: dict[str, str] | None = None, timeout_s: float = 600.0
    ) -> subprocess.CompletedProcess[str]:
        return self.exec(["swapbench", *args], env=env, timeout_s=timeout_s)

    def unit_property(self, name: str, unit: str = UNIT) -> str:
        result = self.exec(["systemctl", "show", "-p", name, "--value", f"{unit}.service"], user="root")
        return self._need(result, f"systemctl show {name}").strip()

    def labelled_containers(self) -> list[str]:
        """Containers swapbench started (label swapbench.run), running or not: `docker ps -a` from inside."""
        result = self.exec(["docker", "ps", "-a", "--filter", "label=swapbench.run", "--format", "{{.Names}}"])
        return self._need(result, "docker ps -a").split()

    def unhealthy(self) -> list[str]:
        if self.link is None:
            return [name for name, url in HEALTH.items() if not _http_ok(url)]
        # Its loopback is its own: asked from inside, with _http_ok's rule (200, and a model loaded).
        unloaded = "'\"model_loaded\": false'"
        script = "".join(
            f'a=$(curl -fs --max-time 2 {url}) && ! printf %s "$a" | grep -q {unloaded} || echo {name}\n'
            for name, url in HEALTH.items()
        )
        return self.exec(["bash", "-c", script], user="root", timeout_s=60.0).stdout.split()

    def port_refused(self, port: int) -> bool:
        """Nothing listens on 127.0.0.1:PORT of the box (its own loopback)."""
        if self.link is None:
            with socket.socket() as probe:
                probe.settimeout(2.0)
                return probe.connect_ex(("127.0.0.1", port)) != 0
        asked = self.exec(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], user="root", timeout_s=30.0)
        return asked.returncode != 0

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while bad := self.unhealthy():
            if time.monotonic() > deadline:
                logs = self.exec(["journalctl", "--no-pager", "-n", "30"], user="root").stdout
                raise RehearsalError(f"not healthy after {timeout_s:.0f} s: {', '.join(bad)}\n{logs}")
            time.sleep(0.2)
