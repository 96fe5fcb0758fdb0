"""The recorded facts of a benchmark: samples, metrics and the results file, as frozen typed models."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from swapbench.core.frozen import Frozen
from swapbench.core.vram import Footprint, VramSample
from swapbench.plan.models import KindName

SCHEMA_VERSION = 3
# version 1 lacks frames, cache and degenerate fields: their defaults apply; versions 1 and 2 lack the scores,
# which their parse outcomes give (the one score they had: a nav answer's adherence)
READABLE_VERSIONS = (1, 2, 3)
READABLE_TEXT = " and ".join(map(str, READABLE_VERSIONS))


class ServerTimings(Frozen):
    """llama-server's own `timings` for one request (absent fields stay None)."""

    cache_n: int | None = None
    prompt_n: int | None = None
    prompt_ms: float | None = None
    predicted_n: int | None = None
    predicted_ms: float | None = None

    @property
    def total_ms(self) -> float | None:
        if self.prompt_ms is None or self.predicted_ms is None:
            return None
        return self.prompt_ms + self.predicted_ms


class Usage(Frozen):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None


class ParseOutcome(Frozen):
    """How a nav answer met its contract. Strategy 1 = whole content is the object, 2 = extracted from
    fences or surrounding text, 3 = loose keyword fallback (a failure), None = nothing usable."""

    strategy: Literal[1, 2, 3] | None
    value: Any = None
    schema_ok: bool | None = None
    error: str | None = None

    @property
    def adheres(self) -> bool:
        return self.strategy in (1, 2) and self.schema_ok is not False


ADHERES = "adheres"  # the score of a kind with a parse contract: the answer met it (strategy 1 or 2, schema ok)


class ScoreSpec(Frozen):
    """One per-sample score a workload kind records: its key in `Sample.scores`, and how it reads."""

    key: str
    label: str = Field(description="How reports and comparisons name its share, e.g. 'schema adherence'.")
    higher_is_better: bool = True


ADHERENCE = ScoreSpec(key=ADHERES, label="schema adherence")


class ScoreFigure(Frozen):
    """A score over a workload's samples: how many carry it, how many passed, and the share."""

    n: int
    passed: int
    share: float | None


class ThinkingLeak(Frozen):
    marker: str
    where: Literal["content", "reasoning_content"]


class Exchange(Frozen):
    """What the HTTP client saw for one request, before interpretation."""

    latency_ms: float
    ttft_ms: float | None = None
    http_status: int | None = None
    error: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    timings: ServerTimings | None = None
    reconnects: int = 0


Degenerate = Literal["empty", "cut"]


class Sample(Frozen):
    """One measured request: the exchange plus its interpretation."""

    index: int
    offset_ms: float = Field(description="Start of this request, ms after the workload's first request.")
    exchange: Exchange
    parse: ParseOutcome | None = None
    thinking_leak: ThinkingLeak | None = None
    frame: int | None = Field(None, description="Index into Results.frames of the image sent; None: no image.")
    degenerate: Degenerate | None = Field(
        None,
        description="The server answered but nothing usable came back: 'empty' (no text, or whitespace only) or "
        "'cut' (stopped by max_tokens before a nav answer met its contract). Neither an error nor a pass.",
    )
    scores: dict[str, bool] = Field(
        default_factory=dict,
        description="The kind's per-sample scores, by key (nav: adheres; chat: passed, on lines that say what to "
        "answer); a failed request scores false.",
    )
    item: int | None = Field(None, description="Which of the workload's prompts was sent (chat: its line, 0-based).")

    @model_validator(mode="before")
    @classmethod
    def _scores_of_old_files(cls, data: Any) -> Any:
        """Files before schema 3 have no scores: a parse outcome gives the one they had."""
        if (
            isinstance(data, dict)
            and "scores" not in data
            and isinstance(parse := data.get("parse"), dict | ParseOutcome)
        ):
            return {**data, "scores": {ADHERES: ParseOutcome.model_validate(parse).adheres}}
        return data

    @property
    def ok(self) -> bool:
        """The request itself succeeded (no transport or HTTP error); its answer may still be degenerate."""
        return self.exchange.error is None

    @property
    def usable(self) -> bool:
        """Answered with something usable: the samples latency and throughput are computed over."""
        return self.exchange.error is None and self.degenerate is None


class LatencyStats(Frozen):
    n: int
    p50: float
    p95: float
    p99: float
    mean: float
    stdev: float
    min: float
    max: float
    p50_ci95: tuple[float, float] | None = Field(None, description="Bootstrap 95% CI of the p50.")


class WorkloadMetrics(Frozen):
    samples: int
    ok: int = Field(description="Usable answers: no error, not degenerate. Latency and tok/s are over these.")
    errors: int = Field(description="Transport or HTTP errors.")
    degenerate: int = Field(0, description="Answered, but empty or cut before anything usable.")
    degenerate_kinds: dict[str, int] = Field(default_factory=dict)
    client_latency_ms: LatencyStats | None
    server_latency_ms: LatencyStats | None
    ttft_ms: LatencyStats | None
    decode_tok_s: float | None = Field(description="Median of predicted_n / predicted_ms.")
    e2e_tok_s: float | None = Field(description="Median of completion tokens / client latency.")
    effective_hz: float | None = Field(description="1000 / client p50.")
    achieved_hz: float | None = Field(description="Samples completed per second of the measured loop.")
    schema_adherence: float | None = Field(
        description="nav: share of all samples parsed by strategy 1 or 2 (the share of scores['adheres'])."
    )
    parse_strategies: dict[str, int] = Field(default_factory=dict)
    thinking_leaks: int = 0
    cache_share: float | None = Field(
        None,
        description="Share of prompt tokens the server took from its cache: sum(cache_n) / sum(cache_n + prompt_n).",
    )
    prompt_ms: LatencyStats | None = Field(None, description="Server prompt (prefill) time, timings.prompt_ms.")
    decode_ms: LatencyStats | None = Field(None, description="Server decode time, timings.predicted_ms.")
    p50_precision: float | None = Field(
        None, description="Half-width of the distribution-free 95 % interval of the p50, relative to it."
    )
    warnings: list[str] = Field(default_factory=list, description="Spread, outliers, cache: what weakens the figures.")
    scores: dict[str, ScoreFigure] = Field(default_factory=dict, description="Each of the kind's scores, by key.")

    @model_validator(mode="before")
    @classmethod
    def _figures_of_old_files(cls, data: Any) -> Any:
        """Files before schema 3 kept adherence alone: it is the one score they had."""
        if not isinstance(data, dict) or "scores" in data or data.get("schema_adherence") is None:
            return data
        n, share = data.get("samples", 0), data["schema_adherence"]
        return {**data, "scores": {ADHERES: {"n": n, "passed": round(share * n), "share": share}}}


class WorkloadInfo(Frozen):
    """The workload as it was sent: enough to refuse comparing unlike runs."""

    name: str
    kind: KindName
    max_tokens: int
    prompt: str
    prompt_sha256: str
    system: str | None
    image: bool
    enable_thinking: bool
    json_schema: dict[str, Any] | None = None
    cache_prompt: bool = Field(True, description="false: the server was asked to evaluate every prompt afresh.")
    scores: list[ScoreSpec] = Field(default_factory=list, description="The per-sample scores its kind records.")

    @property
    def cache_mode(self) -> str:
        return "cached" if self.cache_prompt else "fresh"


class WorkloadResult(Frozen):
    workload: WorkloadInfo
    warmup: list[Sample]
    samples: list[Sample]
    metrics: WorkloadMetrics
    extension: str | None = Field(None, description="Whether the N -> N2 extension ran, and why.")

    @model_validator(mode="before")
    @classmethod
    def _score_specs_of_old_files(cls, data: Any) -> Any:
        """Files before schema 3 name no scores: a workload whose samples were parsed scored adherence."""
        if not isinstance(data, dict) or not isinstance(info := data.get("workload"), dict) or "scores" in info:
            return data
        parsed = any(isinstance(s, dict) and s.get("parse") is not None for s in data.get("samples", []))
        return {**data, "workload": {**info, "scores": [ADHERENCE.model_dump()] if parsed else []}}


class RunStatus(StrEnum):
    COMPLETE = "complete"
    PARTIAL = "partial"


class ImageInfo(Frozen):
    path: str
    sha256: str
    bytes: int
    format: str
    width: int
    height: int


class ServerInfo(Frozen):
    url: str
    build_info: str | None = None
    model_path: str | None = None
    models_meta: dict[str, Any] | None = None
    modalities: dict[str, Any] | None = None
    chat_template_sha256: str | None = None
    total_slots: int | None = None


class GpuInfo(Frozen):
    name: str | None = None
    driver: str | None = None
    unavailable_reason: str | None = None


class HostInfo(Frozen):
    hostname: str
    platform: str
    python: str
    gpu: GpuInfo


class Provenance(Frozen):
    swapbench_version: str
    plan_path: str | None
    plan_sha256: str | None
    seed: int
    warmup: int
    samples: int
    stream: bool
    started_at: str
    ended_at: str


class VramReport(Frozen):
    """The candidate's VRAM over the run (from NVML), or why there is none."""

    footprint: Footprint | None = None
    samples: list[VramSample] = Field(default_factory=list)
    unavailable_reason: str | None = None


class Results(Frozen):
    """One results file: one target, one run."""

    schema_version: int = Field(
        SCHEMA_VERSION, description=f"The layout of this file; swapbench reads {READABLE_TEXT}."
    )
    run_id: str
    label: str
    status: RunStatus
    error: str | None = None
    provenance: Provenance
    host: HostInfo
    server: ServerInfo
    image: ImageInfo | None = Field(description="The first (or only) frame.")
    frames: list[ImageInfo] = Field(default_factory=list, description="Every frame, in the order sent.")
    frames_sha256: str | None = Field(None, description="sha256 of the frames' sha256s, in order.")
    workloads: list[WorkloadResult]
    vram: VramReport | None = None
