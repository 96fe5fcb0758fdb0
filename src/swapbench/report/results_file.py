"""Results files: assemble a Results from bench runs, render it as JSON, read one back and re-analyse it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from swapbench.core.bench import WorkloadRun, degenerate
from swapbench.core.metrics import workload_metrics
from swapbench.core.results import READABLE_VERSIONS, SCHEMA_VERSION, Results, WorkloadResult
from swapbench.errors import InputError


def workload_results(runs: Sequence[WorkloadRun]) -> list[WorkloadResult]:
    return [
        WorkloadResult(
            workload=run.workload.info,
            warmup=run.warmup,
            samples=run.samples,
            metrics=workload_metrics(
                run.samples, parsed=run.workload.parse is not None, cache_prompt=run.workload.info.cache_prompt
            ),
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
        metrics = workload_metrics(samples, w.workload.kind == "nav", w.workload.cache_prompt)
        workloads.append(w.model_copy(update={"samples": samples, "metrics": metrics}))
    return results.model_copy(update={"workloads": workloads})


def render_json(results: Results) -> str:
    return results.model_dump_json(indent=2) + "\n"


def read_results(path: Path) -> Results:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"results file {path} does not exist", hint="check the path") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"results file {path} is not readable JSON: {exc}", hint="give a swapbench results file"
        ) from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in READABLE_VERSIONS:
        raise InputError(
            f"results file {path} has schema_version {version!r}; this swapbench reads "
            f"{' or '.join(map(str, READABLE_VERSIONS))}",
            hint="re-run the benchmark with this version, or use the swapbench that wrote it",
        )
    data["schema_version"] = SCHEMA_VERSION  # read as the current version: newer fields take their defaults
    try:
        return Results.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(
            f"results file {path}: {where}: {first['msg']}", hint="the file was altered or truncated"
        ) from exc


def write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a results file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
