"""Machine-readable renderers: samples as flat CSV / JSON-lines rows, and the `--json` output of commands."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field

from swapbench.core.compare import Comparison
from swapbench.core.decision import DecisionResult
from swapbench.core.frozen import Frozen
from swapbench.core.metrics import decode_rates, e2e_rates
from swapbench.core.phases import Phase
from swapbench.core.results import Degenerate, Results, RunStatus, Sample, WorkloadMetrics, WorkloadResult
from swapbench.core.steps import Outcome, failures
from swapbench.plan.models import KindName
from swapbench.report.docs import Change, DocumentChange

ROW_VERSION = 2  # the columns of an exported sample; a new column is a new version (2: item, scores)
JSON_VERSION = 1  # the layout of each command's `--json` output
Source = tuple[str, Results]  # a results file's name and what it holds


class SampleRow(Frozen):
    """One exported sample, warm-up included: the columns of `swapbench export`, in order. A missing value is
    null in JSON lines and an empty cell in CSV; booleans are true/false."""

    schema_version: int = Field(ROW_VERSION, description="The layout of these columns.")
    run_id: str = Field(description="The run that measured it.")
    target: str = Field(description="The target's label: the baseline's or a candidate's.")
    results_file: str = Field(description="The results file's name (the drift's is results-LABEL.after.json).")
    after_window: bool = Field(description="The baseline measured again after the window, for the drift check: "
                               "leave these rows out to compare the baseline with a candidate.")  # fmt: skip
    model: str | None = Field(description="The model file the server reported (llama-server's model_path).")
    workload: str = Field(description="The workload's name in the plan.")
    workload_kind: KindName
    cache_mode: str = Field(description="fresh: the server was asked to evaluate every prompt; else cached.")
    warmup: bool = Field(description="A warm-up request: never in the figures.")
    sample_index: int = Field(description="Its place among the workload's warm-up or measured requests.")
    frame: int | None = Field(description="Index of the camera frame sent, in the order sent; empty: no image.")
    frame_sha256: str | None
    offset_ms: float = Field(description="Start of the request, ms after the workload's first request.")
    ok: bool = Field(description="No transport or HTTP error (the answer may still be degenerate).")
    usable: bool = Field(description="Answered with something usable: what latency and tok/s are computed over.")
    degenerate: Degenerate | None = Field(description="empty, or cut by max_tokens before a usable answer.")
    error: str | None = Field(description="The transport or HTTP error.")
    http_status: int | None
    finish_reason: str | None
    latency_ms: float = Field(description="Client latency: first byte sent to last byte received.")
    ttft_ms: float | None = Field(description="Time to first token (streaming runs only).")
    prompt_tokens: int | None = Field(description="usage.prompt_tokens of the answer.")
    completion_tokens: int | None
    cached_tokens: int | None = Field(description="usage's cached prompt tokens.")
    server_prompt_tokens: int | None = Field(description="timings.prompt_n: prompt tokens the server evaluated.")
    server_cached_tokens: int | None = Field(description="timings.cache_n: prompt tokens taken from its cache.")
    server_prompt_ms: float | None = Field(description="timings.prompt_ms: prefill time.")
    server_decode_tokens: int | None = Field(description="timings.predicted_n.")
    server_decode_ms: float | None = Field(description="timings.predicted_ms: decode time.")
    decode_tok_s: float | None = Field(description="server_decode_tokens / server_decode_ms, per second.")
    e2e_tok_s: float | None = Field(description="completion_tokens / latency_ms, per second.")
    reconnects: int
    parse_strategy: Literal[1, 2, 3] | None = Field(
        description="nav: 1 the whole answer is the object, 2 extracted from it, 3 keyword fallback (a failure)."
    )
    schema_valid: bool | None = Field(description="nav: the parsed object met the JSON schema.")
    schema_adherent: bool | None = Field(description="nav: parsed by strategy 1 or 2 and schema-valid.")
    parse_error: str | None
    item: int | None = Field(description="Which of the workload's prompts was sent (chat: its JSONL line, 0-based).")
    scores: dict[str, bool] = Field(description="The kind's per-sample scores (nav: adheres; chat: passed, on lines "
                                    "that say what to answer); in CSV, a JSON object.")  # fmt: skip
    thinking_leaked: bool = Field(description="A thinking marker showed in the answer.")
    thinking_leak_where: Literal["content", "reasoning_content"] | None
    content: str | None = Field(description="The answer's text.")
    reasoning_content: str | None


COLUMNS = tuple(SampleRow.model_fields)


def _first(rates: list[float]) -> float | None:
    return rates[0] if rates else None


def sample_row(source: Source, work: WorkloadResult, sample: Sample, warmup: bool) -> SampleRow:
    """The flat row of one sample; per-sample rates are computed as the workload's metrics compute them."""
    name, results = source
    ex, parse, leak = sample.exchange, sample.parse, sample.thinking_leak
    usage, timings = ex.usage, ex.timings
    frame = results.frames[sample.frame] if sample.frame is not None and sample.frame < len(results.frames) else None
    return SampleRow(
        run_id=results.run_id, target=results.label, results_file=name, after_window=name.endswith(".after.json"),
        model=results.server.model_path,
        workload=work.workload.name, workload_kind=work.workload.kind, cache_mode=work.workload.cache_mode,
        warmup=warmup, sample_index=sample.index, frame=sample.frame, frame_sha256=frame.sha256 if frame else None,
        offset_ms=sample.offset_ms, ok=sample.ok, usable=sample.usable, degenerate=sample.degenerate,
        error=ex.error, http_status=ex.http_status, finish_reason=ex.finish_reason, latency_ms=ex.latency_ms,
        ttft_ms=ex.ttft_ms, prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        cached_tokens=usage.cached_tokens if usage else None,
        server_prompt_tokens=timings.prompt_n if timings else None,
        server_cached_tokens=timings.cache_n if timings else None,
        server_prompt_ms=timings.prompt_ms if timings else None,
        server_decode_tokens=timings.predicted_n if timings else None,
        server_decode_ms=timings.predicted_ms if timings else None,
        decode_tok_s=_first(decode_rates([sample])), e2e_tok_s=_first(e2e_rates([sample])),
        reconnects=ex.reconnects, parse_strategy=parse.strategy if parse else None,
        schema_valid=parse.schema_ok if parse else None, schema_adherent=parse.adheres if parse else None,
        parse_error=parse.error if parse else None, item=sample.item, scores=sample.scores,
        thinking_leaked=leak is not None,
        thinking_leak_where=leak.where if leak else None, content=ex.content, reasoning_content=ex.reasoning_content,
    )  # fmt: skip


def sample_rows(sources: Sequence[Source]) -> Iterator[SampleRow]:
    """Every sample of every file, in the order recorded: per workload, the warm-up first."""
    for source in sources:
        for work in source[1].workloads:
            yield from (sample_row(source, work, s, warmup=True) for s in work.warmup)
            yield from (sample_row(source, work, s, warmup=False) for s in work.samples)


def _cell(value: object) -> object:
    """CSV as pandas reads it without options: true/false, an empty cell for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return value


def render_csv(sources: Sequence[Source]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in sample_rows(sources):
        writer.writerow(_cell(v) for v in row.model_dump(mode="json").values())
    return buffer.getvalue()


def render_jsonl(sources: Sequence[Source]) -> str:
    return "".join(row.model_dump_json() + "\n" for row in sample_rows(sources))


# --- `--json` of the commands: each a record with its schema_version -------------------------------------------


class WorkloadSummary(Frozen):
    workload: str
    kind: KindName
    cache_mode: str
    metrics: WorkloadMetrics


class TargetSummary(Frozen):
    run_id: str
    label: str
    status: RunStatus
    error: str | None
    started_at: str
    workloads: list[WorkloadSummary]


class Summary(Frozen):
    """`swapbench summary --json`: the figures of the table, recomputed from the recorded samples."""

    schema_version: int = JSON_VERSION
    targets: list[TargetSummary]


class CheckReport(Frozen):
    """`swapbench check --json`: every Phase 0 contract; ok is false when one failed (exit 6)."""

    schema_version: int = JSON_VERSION
    plan: str
    ok: bool
    checks: list[Outcome]


class DryRunStep(Frozen):
    phase: Phase
    action: str


class DryRun(Frozen):
    """`swapbench check --dry-run --json`: every check and command a run would do, in order."""

    schema_version: int = JSON_VERSION
    plan: str
    steps: list[DryRunStep]


class DocumentRow(Frozen):
    path: str
    change: Change


class DecisionReport(Frozen):
    """`swapbench decide --json`: the decision with every reason, and the report rewritten."""

    schema_version: int = JSON_VERSION
    decision: DecisionResult | None
    report: str | None
    documents: list[DocumentRow] = Field(default_factory=list, description="Every document written or not.")
    left_alone: str | None = Field(None, description="Why the plan's documents outside the folder were untouched.")


def _dumped(record: Frozen) -> str:
    return record.model_dump_json(indent=2) + "\n"


def summary_json(results: Sequence[Results]) -> str:
    targets = [
        TargetSummary(
            run_id=r.run_id, label=r.label, status=r.status, error=r.error, started_at=r.provenance.started_at,
            workloads=[WorkloadSummary(workload=w.workload.name, kind=w.workload.kind,
                                       cache_mode=w.workload.cache_mode, metrics=w.metrics) for w in r.workloads],
        )
        for r in results
    ]  # fmt: skip
    return _dumped(Summary(targets=targets))


def comparison_json(comparison: Comparison) -> str:
    """The same record as the run folder's comparison.json."""
    return _dumped(comparison)


def check_json(plan: Path, outcomes: Sequence[Outcome]) -> str:
    return _dumped(CheckReport(plan=str(plan), ok=not failures(list(outcomes)), checks=list(outcomes)))


def dry_run_json(plan: Path, steps: Sequence[tuple[Phase, str]]) -> str:
    return _dumped(DryRun(plan=str(plan), steps=[DryRunStep(phase=p, action=a) for p, a in steps]))


def decision_json(
    decision: DecisionResult | None,
    report: Path | None,
    documents: Sequence[DocumentChange] = (),
    left_alone: str | None = None,
) -> str:
    rows = [DocumentRow(path=str(d.path), change=d.change) for d in documents]
    return _dumped(DecisionReport(decision=decision, report=str(report) if report else None, documents=rows,
                                  left_alone=left_alone))  # fmt: skip
