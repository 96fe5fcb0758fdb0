"""Results files: assemble a Results from bench runs, render it as JSON, read one back and re-analyse it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from swapbench.core.bench import WorkloadRun, degenerate
from swapbench.core.metrics import workload_metrics
from swapbench.core.results import READABLE_VERSIONS, SCHEMA_VERSION, Results, WorkloadResult
from swapbench.errors import InputError
from swapbench.report.records import load_json, validate


def workload_results(runs: Sequence[WorkloadRun]) -> list[WorkloadResult]:
    return [
        WorkloadResult(
            workload=run.workload.info,
            warmup=run.warmup,
            samples=run.samples,
            metrics=workload_metrics(run.samples, run.workload.info.scores, run.workload.info.cache_prompt),
            extension=run.extension,
        )
        for run in runs
    ]


def reanalysed(results: Results) -> Results:
    """The same results with every metric recomputed from the recorded samples."""
    workloads = []
    for w in results.workloads:
        # a results file written before degenerate answers were told apart (schema 1) is judged alike
        samples = [s.model_copy(update={"degenerate": degenerate(s.exchange, s.parse)}) for s in w.samples]
        metrics = workload_metrics(samples, w.workload.scores, w.workload.cache_prompt)
        workloads.append(w.model_copy(update={"samples": samples, "metrics": metrics}))
    return results.model_copy(update={"workloads": workloads})


def render_json(results: Results) -> str:
    return results.model_dump_json(indent=2) + "\n"


def results_json_schema() -> str:
    """The JSON Schema of the results file this swapbench writes (its schema_version is the default)."""
    schema = Results.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"  # the draft pydantic generates
    schema["title"] = f"swapbench results file, schema_version {SCHEMA_VERSION}"
    return json.dumps(schema, indent=2) + "\n"


def read_results(path: Path) -> Results:
    data = load_json(path, "results file", hint="give a swapbench results file")
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(data, dict) or version not in READABLE_VERSIONS:
        raise InputError(
            f"results file {path} has schema_version {version!r}; this swapbench reads "
            f"{' or '.join(map(str, READABLE_VERSIONS))}",
            hint="re-run the benchmark with this version, or use the swapbench that wrote it",
        )
    data["schema_version"] = SCHEMA_VERSION  # read as the current version: newer fields take their defaults
    return validate(Results, data, path, "results file", hint="the file was altered or truncated")


def write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a results file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
