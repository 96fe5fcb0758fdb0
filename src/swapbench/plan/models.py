"""The plan file's schema: frozen pydantic models, unknown keys refused.

The whole layout is here so later features fill it rather than reshape it. Sections marked "not yet
carried out" are validated for shape but refused by the loader until swapbench can act on them.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from swapbench.plan.explain import did_you_mean

# Names become file and container names: no path separators, no leading dot, bounded length.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
NAME_MAX = 64
CALLABLE_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"

# TOML has integers, floats, booleans and strings of its own: a value of the wrong one is a mistake (`port =
# "8081"`, `stream = "false"`), refused rather than converted (strict). TOML has no path or pair type: a path
# is a string and a range an array, converted (lax) while the numbers inside a pair stay strict.
PlanPath = Annotated[Path, Strict(False)]
IntPair = Annotated[tuple[int, int], Strict(False)]
FloatPair = Annotated[tuple[float, float], Strict(False)]


class StrictModel(BaseModel):
    # allow_inf_nan=False: `time_cap_s = inf` or `nan` is refused with the key, never carried into a window.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """A NUL byte in a name or path would only surface later as an OS error, mid-window."""
        items = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, str | Path) and "\x00" in str(v) for v in items):
            raise ValueError("contains a NUL character")
        return value


def _regex(value: str | None) -> str | None:
    """Compile once here, so a bad pattern is a plan error, not a traceback after the stop."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc}); escape special characters with \\") from exc
    return value


def _settles_before_timeout(settle_s: float, ready_timeout_s: float) -> None:
    if settle_s >= ready_timeout_s:
        raise ValueError(f"settle_s ({settle_s:g}) must be shorter than ready_timeout_s ({ready_timeout_s:g})")


class RunSettings(StrictModel):
    """`[run]`: how one session is carried out."""

    label: str = Field(
        "swapbench", pattern=NAME_PATTERN, max_length=NAME_MAX, description="Names the run in results and reports."
    )
    output_dir: PlanPath = Field(Path("swapbench-results"), description="Where results are written.")
    samples: int = Field(20, gt=0, le=100_000, description="Measured requests per workload.")
    extended_samples: int | None = Field(
        100, gt=0, le=100_000, description="Extension N -> N2 in `swapbench run` (statistical refinement, not a gate)."
    )
    warmup: int = Field(3, ge=0, le=1000, description="Requests per workload run first and excluded.")
    time_cap_s: float = Field(1500.0, gt=0, le=86_400, description="Hard cap on the whole session, seconds.")
    seed: int = Field(42, description="Sampling seed sent with every request.")
    concurrency: Literal[1] = Field(1, description="Requests in flight; sequential, like a nav loop.")
    stream: bool = Field(False, description="Stream responses and measure time to first token.")
    request_timeout_s: float = Field(120.0, gt=0, le=3600, description="Deadline for one request, seconds.")
    stop_order: list[str] = Field(default_factory=list, description="Services to stop, in this order.")
    restore_order: list[str] = Field(
        default_factory=list, description="Services to start again, in this order (default: stop_order reversed)."
    )
    drain_timeout_s: float = Field(60.0, gt=0, le=3600, description="Deadline for freed memory / ports to be gone.")
    restore_reserve_s: float | None = Field(
        None,
        gt=0,
        le=86_400,
        description="Share of time_cap_s kept for restore and verify (default: a fifth, >= 60 s).",
    )
    bench_baseline: bool = Field(True, description="`run`: measure the baseline live before stopping anything.")
    p50_precision: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Adaptive sample size: stop extending between samples and extended_samples once the p50 is "
        "known to this relative precision at 95 % (0.02 = +-2 %). Unset: the fixed N -> N2.",
    )
    drift_check: bool = Field(
        True,
        description="`run`: measure the baseline again after verify (production is up: no downtime) and report "
        "the drift; a verdict whose baseline drifted beyond the tolerance is marked untrustworthy.",
    )
    warm_page_cache: bool = Field(
        True,
        description="`run`: read each candidate's model files (model, mmproj) into the page cache before the "
        "window, and again right before the first stop, so its load inside the window reads memory, not disk. "
        "Skipped, with a warning, when they do not fit in the memory available.",
    )
    heartbeat_timeout_s: float = Field(
        15.0,
        ge=3,
        le=3600,
        description="The watchdog treats a run that sent no heartbeat for this long as hung (stopped by SIGSTOP or "
        "Ctrl-Z, or the whole process stuck): it kills the run, takes its window over and restores production.",
    )
    hang_grace_s: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="A run still alive this long past its time_cap_s is killed by its watchdog, which then restores "
        "production: the cap holds even when the run itself is stuck.",
    )
    parse_timeout_s: float = Field(
        2.0,
        gt=0,
        le=600,
        description="Deadline for one call of a user parser on a bench answer; a parser that does not return by "
        "then fails that answer only.",
    )
    gpu_index: int = Field(0, ge=0, description="The GPU the host's models share (NVML index).")
    vram_sample_ms: float = Field(
        100.0, ge=10, le=60_000, description="VRAM sampling period during launch, ready, smoke, bench."
    )
    drain_tolerance_mib: float = Field(
        256.0, ge=0, le=1e7, description="Drain is done when device memory is back within this of its pre-launch level."
    )

    @model_validator(mode="after")
    def _extension_not_smaller(self) -> RunSettings:
        if self.extended_samples is not None and self.extended_samples < self.samples:
            raise ValueError("extended_samples must be >= samples (the extension only adds samples)")
        if self.restore_reserve_s is not None and self.restore_reserve_s >= self.time_cap_s:
            raise ValueError(
                f"restore_reserve_s ({self.restore_reserve_s:g}) must be less than time_cap_s ({self.time_cap_s:g}): "
                "it is the part of the cap kept for restore and verify"
            )
        return self


MAX_FRAMES = 1000


class ImageSpec(StrictModel):
    """`[image]`: the camera frames every image workload and every target sees, in the same order: one image
    (`path`), or a set (`frames`: a folder of .jpg/.jpeg/.png/.webp files taken in name order, or a list)."""

    path: PlanPath | None = Field(None, description="One camera image, sent with every request.")
    frames: PlanPath | list[PlanPath] | None = Field(
        None,
        description="A folder of frames (name order) or a list of files: request k gets frame k mod count, "
        "so no two consecutive requests send the same image (a nav loop never sees a frame twice).",
    )
    sha256: str | None = Field(
        None, pattern=SHA256_PATTERN, description="Refuse the image (or the frame set's digest) if it differs."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ImageSpec:
        if (self.path is None) == (self.frames is None):
            raise ValueError('give either path = "image.jpg" or frames = "folder/" (or a list of files), not both')
        if isinstance(self.frames, list) and not 1 <= len(self.frames) <= MAX_FRAMES:
            raise ValueError(f"frames: give 1 to {MAX_FRAMES} files; got {len(self.frames)}")
        return self


class CallableRef(StrictModel):
    """A user function, `module:function`, importable with `python_path` prepended to sys.path."""

    callable: str = Field(pattern=CALLABLE_PATTERN, description="`package.module:function`")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    python_path: list[PlanPath] = Field(default_factory=list)


class WorkloadBase(StrictModel):
    """What every `[[workloads]]` entry has, whatever its kind. Each kind's model below holds what that kind
    needs; its module (core/kinds/KIND.py) says how it is sent, scored and judged."""

    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX)
    system: str | None = Field(None, description="Optional system message.")
    max_tokens: int | None = Field(None, gt=0, description="Default: nav 20, describe 128, chat 256.")
    image: bool = Field(True, description="Send the run's image with each request.")
    enable_thinking: bool = Field(False, description="Sent as chat_template_kwargs.enable_thinking.")
    cache_prompt: bool = Field(
        True,
        description="false: ask the server to evaluate the whole prompt every time (llama-server's cache_prompt), "
        "as production pays it for a frame it has never seen; true: the server may serve the prompt, image "
        "included, from its cache, and the latency is mostly decode.",
    )
    extra_body: dict[str, Any] = Field(default_factory=dict, description="Merged into every request body.")

    @model_validator(mode="before")
    @classmethod
    def _keys_of_other_kinds(cls, data: Any) -> Any:
        """A key another kind has (json_schema on a describe workload) is named as such, not as unknown."""
        if not isinstance(data, dict) or "kind" not in cls.model_fields:
            return data
        for key in data:
            owners = [name for name, model in _kind_models().items() if key in model.model_fields]
            if key not in cls.model_fields and owners:
                raise ValueError(f"{key} applies to {' and '.join(owners)} workloads only")
        return data


def _kind_models() -> dict[str, type[WorkloadBase]]:
    """Each kind's plan model by its name (the `kind` it takes), in the order of the `Workload` union."""
    models: tuple[type[WorkloadBase], ...] = get_args(get_args(Workload)[0])
    return {get_args(m.model_fields["kind"].annotation)[0]: m for m in models}


class OnePromptWorkload(WorkloadBase):
    """A kind that sends one prompt (with each frame): given literally, built by a function, or the kind's own."""

    prompt: str | None = Field(None, description="Literal prompt text; or use prompt_builder.")
    prompt_builder: CallableRef | None = Field(None, description="Function returning the prompt text.")

    @model_validator(mode="after")
    def _one_prompt(self) -> OnePromptWorkload:
        if self.prompt is not None and self.prompt_builder is not None:
            raise ValueError("give either prompt or prompt_builder, not both")
        return self


class NavWorkload(OnePromptWorkload):
    """`kind = "nav"`: the robot's next move as JSON, held to its parse contract and schema."""

    kind: Literal["nav"]
    parser: CallableRef | None = Field(None, description="function(content) -> (value, strategy 1|2|3 or None).")
    json_schema: PlanPath | None = Field(None, description="JSON Schema file for the parsed value.")


class DescribeWorkload(OnePromptWorkload):
    """`kind = "describe"`: free text about the image, kept whole for blinded side-by-side judging."""

    kind: Literal["describe"]


class ChatWorkload(WorkloadBase):
    """`kind = "chat"`: text prompts from a JSONL file, one request per line, each optionally with the answer
    it must give."""

    kind: Literal["chat"]
    prompts: PlanPath = Field(
        description='A JSONL file: one object per line, {"prompt": "..."} with optionally "expected" (the answer, '
        'surrounding whitespace aside) or "regex" (searched for in the answer), and "system".'
    )
    image: bool = Field(False, description="Always false: chat is text-only.")

    @model_validator(mode="after")
    def _text_only(self) -> ChatWorkload:
        if self.image:
            raise ValueError("chat workloads are text-only: remove image = true")
        return self


Workload = Annotated[NavWorkload | DescribeWorkload | ChatWorkload, Field(discriminator="kind")]
KindName = Literal["nav", "describe", "chat"]
DEFAULT_WORKLOADS: tuple[Workload, ...] = (
    NavWorkload(name="nav", kind="nav"),
    DescribeWorkload(name="describe", kind="describe"),
)


def _check_url(url: str) -> str:
    """An http(s) URL on this machine: swapbench never sends traffic beyond loopback."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:  # an unclosed [::1, a port that is not a number or beyond 65535
        raise ValueError(f"{url!r} is not a usable URL ({exc}); write it like http://127.0.0.1:11435") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", url) or port == 0:
        raise ValueError(f"must be an http(s) URL such as http://127.0.0.1:11435, not {url!r}")
    if not _is_loopback(parts.hostname):
        raise ValueError(
            f"{parts.hostname} is not loopback: swapbench only talks to servers on this machine "
            "(127.0.0.1, ::1 or localhost)"
        )
    return url.rstrip("/")


PUBLIC_HOSTS = {"0.0.0.0", "::", "", "[::]", "*"}  # noqa: S104 -- the list of what is refused


class LaunchBase(StrictModel):
    """How swapbench starts a candidate `llama-server`: what both kinds share."""

    port: int = Field(ge=1, le=65535, description="Host port, e.g. 11437 (never production's).")
    model: PlanPath = Field(description="GGUF model file on the host.")
    mmproj: PlanPath | None = Field(None, description="Vision projector (--mmproj).")
    chat_template_file: PlanPath | None = None
    flags: list[str] = Field(default_factory=list, description="More llama-server flags, e.g. ['-ngl', '99'].")
    jinja: bool = Field(
        True, description="Pass --jinja, so chat_template_kwargs reach the template; false needs allow_no_jinja = true."
    )
    allow_no_jinja: bool = False
    host: str = Field("127.0.0.1", description="Bind address: loopback; anything else needs allow_public_bind = true.")
    allow_public_bind: bool = False
    ready_timeout_s: float = Field(300.0, gt=0, le=3600)
    settle_s: float = Field(1.0, ge=0, le=600, description="/health must stay 200 this long to count as ready.")

    @model_validator(mode="after")
    def _safe(self) -> LaunchBase:
        _settles_before_timeout(self.settle_s, self.ready_timeout_s)
        if not self.jinja and not self.allow_no_jinja:
            raise ValueError(
                "jinja = false would ignore chat_template_kwargs (thinking stays on); "
                "set allow_no_jinja = true to do it anyway"
            )
        if any(f in ("--no-jinja",) for f in self.flags) and not self.allow_no_jinja:
            raise ValueError("flags contain --no-jinja; set allow_no_jinja = true to do it anyway")
        if "--api-key" in self.flags:
            raise ValueError(
                "flags contain --api-key: use --api-key-file PATH, so the key never lands in the plan, "
                "the journal, the dry run or a log"
            )
        if any(f in ("--host", "-p", "--publish", "--port") for f in self.flags):
            raise ValueError("set host, port and publish with their own keys, not in flags")
        if not self.allow_public_bind and (self.host in PUBLIC_HOSTS or not _is_loopback(self.host)):
            raise ValueError(f"host = {self.host!r} is not loopback; set allow_public_bind = true to allow it")
        return self


class NativeLaunch(LaunchBase):
    """llama-server started as a process of swapbench's own (its own process group)."""

    kind: Literal["native"]
    binary: PlanPath = Field(description="The llama-server binary.")


class DockerLaunch(LaunchBase):
    """llama-server in a container (`docker run -d`, removed at teardown)."""

    kind: Literal["docker"]
    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX, description="Container name.")
    image: str = Field(description="Image, e.g. ghcr.io/ggml-org/llama.cpp:server-cuda.")
    models_dir: PlanPath = Field(description="Host folder mounted read-only at /models.")
    gpus: str | None = Field(
        None,
        pattern=r"^[\w,=:\"-]+$",
        description='The --gpus value ("all" on an NVIDIA host); left out, no --gpus is passed '
        "(a CPU host: Docker without the NVIDIA runtime refuses --gpus).",
    )
    publish: str | None = Field(None, description="-p value; default 127.0.0.1:PORT:8080.")

    @model_validator(mode="after")
    def _published_on_loopback(self) -> DockerLaunch:
        if not self.allow_public_bind and self.publish is not None and not self.publish.startswith("127.0.0.1:"):
            raise ValueError(
                f"publish = {self.publish!r} exposes the port beyond loopback; start it with 127.0.0.1: "
                "or set allow_public_bind = true"
            )
        return self


Launch = Annotated[NativeLaunch | DockerLaunch, Field(discriminator="kind")]


def _is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost; never a name that merely starts with 127."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Target(StrictModel):
    """A server to measure: `[baseline]` or one of `[[candidates]]`."""

    label: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX)
    url: str | None = Field(None, description="Base URL of a running OpenAI-compatible server.")
    model: str | None = Field(None, description="`model` field sent in requests, if the server needs it.")
    api_key_file: PlanPath | None = Field(None, description="File holding a bearer token; never logged.")
    launch: Launch | None = Field(None, description="How swapbench starts this candidate in `swapbench run`.")
    results: PlanPath | None = Field(
        None, description="baseline only: a results file from an earlier run, compared instead of a live bench."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @model_validator(mode="after")
    def _url_or_launch(self) -> Target:
        if self.url is not None and self.launch is not None:
            raise ValueError("give url (a running server) or launch (swapbench starts it), not both")
        return self

    @property
    def endpoint(self) -> str | None:
        if self.url is not None:
            return self.url
        if self.launch is not None:
            host = "127.0.0.1" if self.launch.host in PUBLIC_HOSTS else self.launch.host
            host = f"[{host}]" if ":" in host else host
            return f"http://{host}:{self.launch.port}"
        return None


class HealthCheck(StrictModel):
    """An HTTP check: status, and optionally one JSON field's value (e.g. model_loaded == true)."""

    url: str
    status: int = 200
    json_field: str | None = Field(None, description="Dotted path into the JSON body, e.g. model_loaded.")
    json_equals: Any = None
    timeout_s: float = Field(5.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)


class ServiceBase(StrictModel):
    """What every service has, whatever its manager. Each manager's model below holds what that manager needs;
    its driver (host/services/MANAGER.py) is the only code that reads it."""

    observed_only: ClassVar[bool] = False  # watched, never stopped or started (a `process`)
    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX)
    health: HealthCheck | None = None
    ready_timeout_s: float = Field(120.0, gt=0, le=3600, description="How long a restart may take to be ready.")
    settle_s: float = Field(2.0, ge=0, le=600, description="Ready must hold this long (and NRestarts stay put).")
    stop_timeout_s: float = Field(60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _sane_waits(self) -> ServiceBase:
        _settles_before_timeout(self.settle_s, self.ready_timeout_s)
        return self


UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer", ".mount", ".automount", ".path", ".swap", ".slice",
                 ".scope", ".device")  # fmt: skip


class SystemdService(ServiceBase):
    manager: Literal["systemd"]
    unit: str = Field(pattern=r"^[\w@.:-]+$")
    sudo: bool = Field(True, description="Run systemctl through `sudo -n`.")

    @property
    def unit_name(self) -> str:
        """The full unit name swapbench passes to systemctl: `panda-llamacpp` is `panda-llamacpp.service`.
        sudoers rules match argv exactly, so the name must be the one the rule names — always the full one."""
        return self.unit if self.unit.endswith(UNIT_SUFFIXES) else f"{self.unit}.service"


class DockerService(ServiceBase):
    manager: Literal["docker"]
    container: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX)


class CommandService(ServiceBase):
    manager: Literal["command"]
    start: list[str] = Field(min_length=1, description="argv of the start script, e.g. ['./start.sh'].")
    stop: list[str] = Field(min_length=1, description="argv of the stop script.")
    cwd: PlanPath | None = None
    pattern: str | None = Field(None, description="pgrep -f pattern of its process: up = found.")

    _pattern = field_validator("pattern")(_regex)

    @model_validator(mode="after")
    def _observable(self) -> CommandService:
        if self.health is None and self.pattern is None:
            raise ValueError("a command service needs health or pattern, so swapbench can tell it is up")
        return self


class ProcessService(ServiceBase):
    observed_only: ClassVar[bool] = True
    manager: Literal["process"]
    pattern: str = Field(description="pgrep -f pattern; the process is observed, never stopped.")

    _pattern = field_validator("pattern")(_regex)


class SupervisordService(ServiceBase):
    manager: Literal["supervisord"]
    # A word of supervisorctl's argv: never one that starts with `-` (it would be read as an option).
    program: str = Field(pattern=r"^[A-Za-z0-9_][\w.@:-]*$", max_length=128,
                         description="The supervisord program supervisorctl stops and starts ([program:NAME], or "
                         "GROUP:NAME).")  # fmt: skip
    config: PlanPath | None = Field(
        None, description="supervisorctl -c CONFIG: the supervisord.conf naming its socket (default: its own search)."
    )
    supervisorctl: str = Field(
        "supervisorctl", min_length=1, description="The supervisorctl to run: a name on PATH or a path."
    )
    sudo: bool = Field(False, description="Run supervisorctl through `sudo -n` (a socket only root may use).")


Service = Annotated[
    SystemdService | DockerService | CommandService | ProcessService | SupervisordService,
    Field(discriminator="manager"),
]


class SudoCheck(StrictModel):
    kind: Literal["sudo"]


class PortFreeCheck(StrictModel):
    kind: Literal["port_free"]
    port: int = Field(ge=1, le=65535)


class PortOwnerCheck(StrictModel):
    kind: Literal["port_owner"]
    port: int = Field(ge=1, le=65535)
    process: str = Field(description="Substring of the owning process's name or command line.")


class FilePatternCheck(StrictModel):
    kind: Literal["file_pattern"]
    path: PlanPath
    pattern: str = Field(description="A regular expression.")
    lines: IntPair | None = Field(None, description="[first, last] line (1-based) it must be within.")

    _pattern = field_validator("pattern")(_regex)

    @field_validator("lines")
    @classmethod
    def _line_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1 <= value[0] <= value[1]:
            raise ValueError(f"must be [first, last] with 1 <= first <= last; got {list(value)}")
        return value


class FileCheck(StrictModel):
    kind: Literal["file"]
    path: PlanPath
    sha256: str | None = Field(None, pattern=SHA256_PATTERN)
    min_bytes: int | None = Field(None, ge=0)


class DiskFreeCheck(StrictModel):
    kind: Literal["disk_free"]
    path: PlanPath
    min_gb: float = Field(gt=0)


class GpuCheck(StrictModel):
    kind: Literal["gpu"]
    index: int = Field(0, ge=0)


def _ordered(low: float, high: float, what: str) -> None:
    if low > high:
        raise ValueError(f"{what}: the lower bound ({low:g}) is above the upper bound ({high:g})")


class VramCheck(StrictModel):
    kind: Literal["vram"]
    index: int = Field(0, ge=0)
    min_gb: float = Field(0.0, ge=0)
    max_gb: float = Field(gt=0)

    @model_validator(mode="after")
    def _range(self) -> VramCheck:
        _ordered(self.min_gb, self.max_gb, "min_gb, max_gb")
        return self


Check = Annotated[
    SudoCheck | PortFreeCheck | PortOwnerCheck | FilePatternCheck | FileCheck | DiskFreeCheck | GpuCheck | VramCheck,
    Field(discriminator="kind"),
]


class HttpVerify(HealthCheck):
    kind: Literal["http"]


class PortRefusedVerify(StrictModel):
    kind: Literal["port_refused"]
    port: int = Field(ge=1, le=65535)
    host: str = "127.0.0.1"


class WavVerify(StrictModel):
    kind: Literal["wav"]
    url: str
    json_body: dict[str, Any] = Field(alias="json", description="POSTed as JSON, e.g. {text = 'test one two'}")
    min_bytes: int = Field(5000, ge=44)
    timeout_s: float = Field(30.0, gt=0, le=600)

    model_config = ConfigDict(**StrictModel.model_config, populate_by_name=True)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)


class PgrepVerify(StrictModel):
    kind: Literal["pgrep"]
    pattern: str

    _pattern = field_validator("pattern")(_regex)


class VramVerify(StrictModel):
    kind: Literal["vram"]
    index: int = Field(0, ge=0)
    min_gb: float = Field(0.0, ge=0)
    max_gb: float = Field(gt=0)
    processes: int | None = Field(None, ge=0, description="Expected number of GPU compute processes.")

    @model_validator(mode="after")
    def _range(self) -> VramVerify:
        _ordered(self.min_gb, self.max_gb, "min_gb, max_gb")
        return self


VerifyStep = Annotated[
    HttpVerify | PortRefusedVerify | WavVerify | PgrepVerify | VramVerify, Field(discriminator="kind")
]


class Band(StrictModel):
    """VRAM bands in GB, from the bottom up: healthy, then warn above it, then the abort line above both."""

    healthy: FloatPair
    warn: FloatPair | None = None
    abort_above: float | None = None

    @field_validator("healthy", "warn")
    @classmethod
    def _low_to_high(cls, band: tuple[float, float] | None) -> tuple[float, float] | None:
        if band is not None and band[0] < 0:
            raise ValueError(f"{_pair(band)}: GB cannot be negative")
        if band is not None and band[0] > band[1]:
            raise ValueError(
                f"the lower bound ({band[0]:g}) is above the upper bound ({band[1]:g}); "
                f"write [low, high]: {_pair((band[1], band[0]))}"
            )
        return band

    @model_validator(mode="after")
    def _ordered_bands(self) -> Band:
        if self.warn is not None and self.warn[0] < self.healthy[1]:
            fix = f" (e.g. warn = {_pair((self.healthy[1], self.warn[1]))})" if self.warn[1] > self.healthy[1] else ""
            raise ValueError(
                f"warn = {_pair(self.warn)} starts below the top of healthy = {_pair(self.healthy)}: the warn band "
                f"lies above the healthy one{fix}"
            )
        top = max(self.healthy[1], self.warn[1] if self.warn else self.healthy[1])
        if self.abort_above is not None and self.abort_above < top:
            raise ValueError(
                f"abort_above ({self.abort_above:g}) must not be below the healthy or warn band ({top:g}): a reading "
                "inside a band would abort the run; set abort_above at or above the top of the bands"
            )
        return self


def _pair(pair: tuple[float, float]) -> str:
    return f"[{pair[0]:g}, {pair[1]:g}]"


class Gates(StrictModel):
    """`[gates]`: VRAM bands (not yet carried out)."""

    candidate_vram_gb: Band | None = None


class Decision(StrictModel):
    """`[decision]`: the adopt/reject rule. A rule that cannot apply to the plan (no nav workload, no GPU) is
    reported as not applicable, never as NOT met."""

    min_schema_adherence: float = Field(0.95, ge=0, le=1, description="nav: share of answers meeting the contract.")
    describe_must_improve: bool = Field(True, description="A person judges the describe answers materially better.")
    vram_in_band: bool = Field(True, description="The candidate's VRAM footprint is inside [gates] candidate_vram_gb.")
    latency_gate_p50_ms: float | None = Field(
        None, gt=0, description="nav: the candidate's p50 must be at most this (judged on its 95 % interval)."
    )
    latency_must_not_regress: bool = Field(
        False, description="The judged nav workload's latency verdict must be faster or equivalent, not slower."
    )
    min_pass_rate: float | None = Field(
        None, ge=0, le=1, description="chat: share of the lines with an expected answer or regex that must pass."
    )
    max_degenerate_share: float = Field(
        0.05, ge=0, le=1, description="Most answers that may be empty or cut before anything usable, per workload."
    )
    tolerance: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Equivalence margin of the verdicts: a ratio whose whole 95 % interval is within 1 +- tolerance "
        "is 'equivalent'; the baseline's before/after drift beyond it makes a verdict untrustworthy.",
    )


class ReportSettings(StrictModel):
    """`[report]`: the user's documents swapbench keeps up to date after a run (each update idempotent by run id)."""

    research_doc: PlanPath | None = Field(None, description="Gets the measured numbers between markers.")
    research_title: str = Field("Benchmarks", description="Title of a research document swapbench creates.")
    registry_doc: PlanPath | None = Field(
        None, description="Gets the model row, the steady-state peak, a change-log line."
    )


NotifyOutcome = Literal["complete", "aborted-restored", "not-restored"]
NOTIFY_ALWAYS: tuple[NotifyOutcome, ...] = ("complete", "aborted-restored", "not-restored")


class Notify(StrictModel):
    """`[[notify]]`: a command run on the box when a window ends, with the outcome as JSON on stdin and in
    SWAPBENCH_* environment variables. Bounded by `timeout_s` and logged; never run before production is
    restored and verified, and never able to delay that."""

    command: Annotated[list[str], Field(min_length=1)] = Field(description="argv, never a shell string.")
    on: list[NotifyOutcome] = Field(
        default_factory=lambda: list(NOTIFY_ALWAYS),
        description="The outcomes it is run for: complete, aborted-restored, not-restored (act now).",
    )
    timeout_s: float = Field(10.0, gt=0, le=300, description="Its deadline; then its process group is killed.")


class Plan(StrictModel):
    """A whole plan file."""

    run: RunSettings = Field(default_factory=RunSettings)
    image: ImageSpec | None = None
    workloads: Annotated[list[Workload], Field(min_length=1)] = Field(default_factory=lambda: list(DEFAULT_WORKLOADS))
    baseline: Target | None = None
    candidates: list[Target] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    verify: list[VerifyStep] = Field(default_factory=list)
    gates: Gates | None = None
    decision: Decision | None = None
    report: ReportSettings | None = None
    notify: list[Notify] = Field(default_factory=list)

    @model_validator(mode="after")
    def _coherent(self) -> Plan:
        _unique("workloads: names", [w.name for w in self.workloads])
        _unique("baseline, candidates: labels", [t.label for t in self.targets()])
        _unique("services: names", [s.name for s in self.services])
        needs_image = [f"workloads[{i}] ({w.name})" for i, w in enumerate(self.workloads) if w.image]
        if needs_image and self.image is None:
            raise ValueError(
                f"{needs_image[0]} sends the image (image = true) but the plan has no [image]; "
                'add [image] path = "..." (or set image = false on the workload)'
            )
        _check_orders(self)
        _check_ports(self)
        _check_container_names(self)
        _check_gpus(self)
        if any(t.results is not None for t in self.candidates):
            raise ValueError("candidates[].results: only the baseline may come from an earlier results file")
        if self.baseline is not None and self.baseline.launch is not None:
            raise ValueError("baseline.launch: the baseline is production; swapbench never launches it (give url)")
        return self

    def targets(self) -> list[Target]:
        return ([self.baseline] if self.baseline else []) + list(self.candidates)

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    @property
    def effective_restore_order(self) -> list[str]:
        return self.run.restore_order or list(reversed(self.run.stop_order))


def _unique(what: str, names: list[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{what} must be unique; repeated: {', '.join(dupes)}")


def _check_orders(plan: Plan) -> None:
    known = {s.name: s for s in plan.services}
    for key, names in (("run.stop_order", plan.run.stop_order), ("run.restore_order", plan.run.restore_order)):
        _unique(key, names)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(
                f"{key} names {unknown[0]!r}, which is not a [[services]] name{did_you_mean(unknown[0], known)}; "
                f"the services are: {', '.join(known) or 'none (add [[services]] entries)'}"
            )
    observed = [n for n in plan.run.stop_order if known[n].observed_only]
    if observed:
        raise ValueError(f"run.stop_order names {observed[0]!r}, a process service: those are observed, never stopped")
    if plan.run.restore_order and set(plan.run.restore_order) != set(plan.run.stop_order):
        missing = sorted(set(plan.run.stop_order) - set(plan.run.restore_order))
        extra = sorted(set(plan.run.restore_order) - set(plan.run.stop_order))
        detail = f"stopped but never restored: {', '.join(missing)}" if missing else f"not stopped: {', '.join(extra)}"
        raise ValueError(f"run.restore_order must name exactly the services in run.stop_order ({detail})")


def _check_container_names(plan: Plan) -> None:
    """Teardown is `docker rm -f NAME`: a candidate named like a production container would remove it."""
    production = {s.container for s in plan.services if isinstance(s, DockerService)}
    for i, t in enumerate(plan.candidates):
        if t.launch is not None and t.launch.kind == "docker" and t.launch.name in production:
            raise ValueError(
                f"candidates[{i}].launch.name {t.launch.name!r} is a production container ([[services]]): "
                "teardown removes the candidate's container by name; pick another name"
            )


def _check_gpus(plan: Plan) -> None:
    """A docker candidate gets no GPU unless the plan says `gpus`; a plan that checks for a GPU means one."""
    if not any(isinstance(c, GpuCheck) for c in plan.checks):
        return
    for i, t in enumerate(plan.candidates):
        if t.launch is not None and t.launch.kind == "docker" and t.launch.gpus is None:
            raise ValueError(
                f"candidates[{i}].launch.gpus is not set, so the container would get no GPU, but the plan checks "
                'for one ([[checks]] kind = "gpu"): set gpus = "all" (docker --gpus), or drop the GPU check on a '
                "CPU host"
            )


def port_of(url: str) -> int | None:
    """The explicit port of an http(s) URL, or None."""
    match = re.match(r"^https?://[^/]*:(\d+)", url)
    return int(match.group(1)) if match else None


def _check_ports(plan: Plan) -> None:
    launched = [
        (f"candidates[{i}] ({t.label})", t.launch.port) for i, t in enumerate(plan.candidates) if t.launch is not None
    ]
    ports = [p for _, p in launched]
    _unique("candidates: launch ports", [str(p) for p in ports])
    taken: dict[int, str] = {}
    if plan.baseline is not None and plan.baseline.url and (port := port_of(plan.baseline.url)):
        taken[port] = "baseline.url"
    for i, svc in enumerate(plan.services):
        if svc.health is not None and (port := port_of(svc.health.url)):
            taken.setdefault(port, f"services[{i}] ({svc.name}).health.url")
    for key, port in launched:
        if port in taken:
            raise ValueError(
                f"{key}.launch.port {port} is already used by {taken[port]}; pick a port nothing in production uses"
            )
