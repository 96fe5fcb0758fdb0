"""`swapbench fleet-report FOLDER…`: the windows of a fleet, from their fetched run folders, in one report."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from swapbench.app import history, verdict
from swapbench.core.compare import Comparison
from swapbench.core.fleet import FleetHost, FleetReport, FleetWorkload, fleet_report
from swapbench.errors import InputError, SwapbenchError
from swapbench.report.fleet import render_fleet_csv, render_fleet_html, render_fleet_markdown
from swapbench.report.results_file import write_text

NAMES = {"md": "fleet-report.md", "html": "fleet-report.html", "json": "fleet-report.json", "csv": "fleet-report.csv"}


@dataclass(frozen=True)
class FleetWritten:
    report: FleetReport
    files: list[Path]
    skipped: list[str]


def write_fleet_report(folders: Sequence[Path], out: Path, expected: Sequence[str] = ()) -> FleetWritten:
    """Each host's newest window in `folders` (fetched INTO/HOST/RUN_ID folders, or local run folders), the fleet
    verdict (no adopt while an `expected` host has no window), and the report written to `out` in every format."""
    roots = [f.expanduser().resolve() for f in folders]
    for folder in roots:
        if not folder.is_dir():
            raise InputError(f"{folder} is not a folder", hint="give fetched run folders, or folders that hold them")
    skipped: list[str] = []
    newest: dict[str, list[FleetHost]] = {}
    for run_dir in history.run_folders(roots):
        try:
            host = host_of(run_dir)
        except SwapbenchError as exc:
            skipped.append(f"{run_dir}: {exc.message}")
            continue
        newest.setdefault(host.host, []).append(host)
    hosts = []
    for runs in newest.values():
        runs.sort(key=lambda h: (h.started_at or "", h.run_id), reverse=True)
        hosts.append(runs[0].model_copy(update={"earlier_runs": [r.run_id for r in runs[1:]]}))
    if not hosts:
        raise InputError(
            f"no run folder under {', '.join(map(str, roots))}",
            hint="fetch the windows first (`swapbench remote fetch`), then give their folders",
        )
    report = fleet_report(hosts, expected)
    rendered = {"md": render_fleet_markdown(report), "html": render_fleet_html(report),
                "json": report.model_dump_json(indent=2) + "\n", "csv": render_fleet_csv(report)}  # fmt: skip
    files = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for kind, text in rendered.items():
            write_text(out / NAMES[kind], text)
            files.append(out / NAMES[kind])
    except OSError as exc:
        raise InputError(
            f"cannot write the fleet report in {out}: {exc.strerror or exc}",
            hint="pass --out FOLDER on a writable disk; the run folders were only read",
        ) from exc
    return FleetWritten(report, files, skipped)


def host_of(run_dir: Path) -> FleetHost:
    """One host's row from its run folder: what history holds of it, and the comparison's headline figures."""
    row = history.row_of(run_dir)
    window = history.window_of(row)
    comparison: Comparison | None = None
    with contextlib.suppress(SwapbenchError):
        comparison, _ = verdict.decided(verdict.RunFolder.open(run_dir))
    return FleetHost(
        host=row.host, run_id=row.run_id, run_dir=row.run_dir, started_at=row.started_at, gpu=row.gpu,
        build=row.build, baseline=row.baseline, candidates=row.candidates, outcome=row.outcome, decision=row.decision,
        decision_reasons=window.decision_reasons, downtime_s=row.downtime_s,
        vram_peak_mib=_candidate_figure(comparison, "VRAM peak MiB"), workloads=_workloads(comparison),
    )  # fmt: skip


def _workloads(comparison: Comparison | None) -> list[FleetWorkload]:
    if comparison is None:
        return []
    found = []
    for w in comparison.workloads:
        rows = {r.metric: r for r in w.rows}
        p50, p95, adherence = rows.get("p50 ms"), rows.get("p95 ms"), rows.get("schema adherence")
        if not w.judged or p50 is None or p95 is None:
            continue
        found.append(FleetWorkload(
            workload=w.workload, p50_ms=(p50.baseline, p50.candidate), p50_verdict=p50.verdict,
            p95_ms=(p95.baseline, p95.candidate), p95_verdict=p95.verdict,
            adherence=(adherence.baseline, adherence.candidate) if adherence else (None, None),
        ))  # fmt: skip
    return found


def _candidate_figure(comparison: Comparison | None, metric: str) -> float | None:
    for w in comparison.workloads if comparison else []:
        for r in w.rows:
            if r.metric == metric and r.candidate is not None:
                return r.candidate
    return None
