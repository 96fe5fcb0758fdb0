"""The plan file's schema: frozen pydantic models, unknown keys refused.

The whole layout is here so later features fill it rather than reshape it. Sections marked "not yet
carried out" are validated for shape but refused by the loader until swapbench can act on them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
CALLABLE_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"

DEFAULT_MAX_TOKENS = {"nav": 20, "describe": 128}


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSettings(StrictModel):
    """`[run]`: how one session is carried out."""

    label: str = Field("swapbench", description="Names the run in results and reports.")
    output_dir: Path = Field(Path("swapbench-results"), description="Where results are written.")
    samples: int = Field(20, gt=0, description="Measured requests per workload.")
    extended_samples: int | None = Field(
        100, gt=0, description="Extension N -> N2 in `swapbench run` (statistical refinement, not a gate)."
    )
    warmup: int = Field(3, ge=0, description="Requests per workload run first and excluded.")
    time_cap_s: float = Field(1500.0, gt=0, description="Hard cap on the whole session, seconds.")
    seed: int = Field(42, description="Sampling seed sent with every request.")
    concurrency: Literal[1] = Field(1, description="Requests in flight; sequential, like a nav loop.")
    stream: bool = Field(False, description="Stream responses and measure time to first token.")
    request_timeout_s: float = Field(120.0, gt=0, description="Deadline for one request, seconds.")

    @model_validator(mode="after")
    def _extension_not_smaller(self) -> RunSettings:
        if self.extended_samples is not None and self.extended_samples < self.samples:
            raise ValueError("extended_samples must be >= samples (the extension only adds samples)")
        return self


class ImageSpec(StrictModel):
    """`[image]`: the one camera image every image workload and every target sees."""

    path: Path
    sha256: str | None = Field(None, pattern=SHA256_PATTERN, description="Refuse the image if it differs.")


class CallableRef(StrictModel):
    """A user function, `module:function`, importable with `python_path` prepended to sys.path."""

    callable: str = Field(pattern=CALLABLE_PATTERN, description="`package.module:function`")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    python_path: list[Path] = Field(default_factory=list)


class Workload(StrictModel):
    """`[[workloads]]`: one kind of request, measured on every target."""

    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["nav", "describe"]
    prompt: str | None = Field(None, description="Literal prompt text; or use prompt_builder.")
    prompt_builder: CallableRef | None = Field(None, description="Function returning the prompt text.")
    system: str | None = Field(None, description="Optional system message.")
    max_tokens: int | None = Field(None, gt=0, description="Default: nav 20, describe 128.")
    image: bool = Field(True, description="Send the run's image with each request.")
    parser: CallableRef | None = Field(
        None, description="nav only: function(content) -> (value, strategy 1|2|3 or None)."
    )
    json_schema: Path | None = Field(None, description="nav only: JSON Schema file for the parsed value.")
    enable_thinking: bool = Field(False, description="Sent as chat_template_kwargs.enable_thinking.")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="Merged into every request body.")

    @property
    def effective_max_tokens(self) -> int:
        return self.max_tokens or DEFAULT_MAX_TOKENS[self.kind]

    @model_validator(mode="after")
    def _coherent(self) -> Workload:
        if self.prompt is not None and self.prompt_builder is not None:
            raise ValueError("give either prompt or prompt_builder, not both")
        if self.kind == "describe" and (self.parser or self.json_schema):
            raise ValueError("parser and json_schema apply to nav workloads only")
        return self


def _check_url(url: str) -> str:
    if not re.match(r"^https?://[^/\s]+(/[^\s]*)?$", url):
        raise ValueError("must be an http(s) URL such as http://127.0.0.1:11435")
    return url.rstrip("/")


class Target(StrictModel):
    """A server to measure: `[baseline]` or one of `[[candidates]]`."""

    label: str = Field(pattern=NAME_PATTERN)
    url: str | None = Field(None, description="Base URL of a running OpenAI-compatible server.")
    model: str | None = Field(None, description="`model` field sent in requests, if the server needs it.")
    api_key_file: Path | None = Field(None, description="File holding a bearer token; never logged.")
    launch: dict[str, Any] | None = Field(
        None, description="How swapbench starts this candidate (docker or native); not yet carried out."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)


class HealthCheck(StrictModel):
    url: str
    status: int = 200
    json_field: str | None = None
    json_equals: Any = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)


class Service(StrictModel):
    """`[[services]]`: a production service (not yet carried out)."""

    name: str = Field(pattern=NAME_PATTERN)
    manager: Literal["systemd", "docker", "command", "process"]
    unit: str | None = None
    container: str | None = None
    start: list[str] | None = None
    stop: list[str] | None = None
    cwd: Path | None = None
    pattern: str | None = None
    health: HealthCheck | None = None


class Check(StrictModel):
    """`[[checks]]`: a Phase 0 contract (not yet carried out)."""

    kind: Literal["sudo", "port_free", "port_owner", "file_pattern", "file_exists", "disk_free", "gpu", "vram"]
    model_config = ConfigDict(extra="allow", frozen=True)


class VerifyStep(StrictModel):
    """`[[verify]]`: a post-restore check (not yet carried out)."""

    kind: Literal["http", "port_refused", "wav", "pgrep", "vram"]
    model_config = ConfigDict(extra="allow", frozen=True)


class Band(StrictModel):
    healthy: tuple[float, float]
    warn: tuple[float, float] | None = None
    abort_above: float | None = None


class Gates(StrictModel):
    """`[gates]`: VRAM bands (not yet carried out)."""

    candidate_vram_gb: Band | None = None


class Decision(StrictModel):
    """`[decision]`: the adopt/reject rule (not yet carried out)."""

    min_schema_adherence: float = Field(0.95, ge=0, le=1)
    describe_must_improve: bool = True
    vram_in_band: bool = True
    latency_gate_p50_ms: float | None = None


class Plan(StrictModel):
    """A whole plan file."""

    run: RunSettings = Field(default_factory=RunSettings)
    image: ImageSpec | None = None
    workloads: Annotated[list[Workload], Field(min_length=1)] = Field(
        default_factory=lambda: [Workload(name="nav", kind="nav"), Workload(name="describe", kind="describe")]
    )
    baseline: Target | None = None
    candidates: list[Target] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    verify: list[VerifyStep] = Field(default_factory=list)
    gates: Gates | None = None
    decision: Decision | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Plan:
        names = [w.name for w in self.workloads]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"workload names must be unique; repeated: {', '.join(dupes)}")
        labels = [t.label for t in self.targets()]
        dupes = sorted({n for n in labels if labels.count(n) > 1})
        if dupes:
            raise ValueError(f"target labels (baseline and candidates) must be unique; repeated: {', '.join(dupes)}")
        needs_image = [f"workloads[{i}] ({w.name})" for i, w in enumerate(self.workloads) if w.image]
        if needs_image and self.image is None:
            raise ValueError(
                f"{needs_image[0]} sends the image (image = true) but the plan has no [image]; "
                'add [image] path = "..." (or set image = false on the workload)'
            )
        return self

    def targets(self) -> list[Target]:
        return ([self.baseline] if self.baseline else []) + list(self.candidates)
