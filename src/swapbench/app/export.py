"""Use cases that hand results to other tools: every sample as CSV or JSON lines, and the results' JSON Schema."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from swapbench.errors import InputError
from swapbench.report.export import Source, render_csv, render_jsonl
from swapbench.report.results_file import read_results, reanalysed, results_json_schema, write_text

ExportFormat = Literal["csv", "jsonl"]
RENDERERS: dict[ExportFormat, Callable[[Sequence[Source]], str]] = {"csv": render_csv, "jsonl": render_jsonl}


@dataclass(frozen=True)
class ExportRequest:
    """`swapbench export`: results files or run folders, a format, and a file to write (None: stdout)."""

    paths: tuple[Path, ...]
    format: ExportFormat = "csv"
    output: Path | None = None


@dataclass(frozen=True)
class ExportOutcome:
    """What was exported: the text itself when it goes to stdout, else the file written."""

    samples: int
    text: str | None = None
    output: Path | None = None


def export_samples(request: ExportRequest) -> ExportOutcome:
    """`swapbench export`: one row per sample (warm-up included) of every results file given or in a folder."""
    sources = [(name, reanalysed(results)) for name, results in read_sources(request.paths)]
    text = RENDERERS[request.format](sources)
    samples = sum(len(w.warmup) + len(w.samples) for _, r in sources for w in r.workloads)
    if request.output is None:
        return ExportOutcome(samples, text=text)
    try:
        write_text(request.output, text)
    except OSError as exc:
        raise InputError(
            f"cannot write {request.output}: {exc.strerror or exc}",
            hint="give --output a file in a writable folder, or leave --output out to print to stdout",
        ) from exc
    return ExportOutcome(samples, output=request.output)


def read_sources(paths: Sequence[Path]) -> list[Source]:
    """Each results file as given; a run folder's results files in the order they were measured (the
    baseline, the candidates, then the baseline measured again after the window: results-LABEL.after.json)."""
    found: list[Source] = []
    for path in paths:
        if not path.is_dir():
            found.append((path.name, read_results(path)))
            continue
        inside = [(p.name, read_results(p)) for p in path.glob("results-*.json")]
        if not inside:
            raise InputError(f"{path} holds no results-*.json files",
                             hint="give a run folder written by `swapbench run`, or results files")  # fmt: skip
        found += sorted(inside, key=lambda source: source[1].provenance.started_at)
    return found


def results_schema() -> str:
    """`swapbench results-schema`: the JSON Schema of the results file, for validators and other tools."""
    return results_json_schema()
