"""Use cases after the measuring: compare two results, decide adopt/reject, and write a run folder's report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from swapbench.core.compare import DEFAULT_TOLERANCE, Comparison, compare, differences
from swapbench.core.decision import DecisionResult, Judgment, decide
from swapbench.core.frozen import Frozen
from swapbench.core.results import Results
from swapbench.core.steps import SwapReport
from swapbench.errors import ComparisonRefused, InputError, SwapbenchError
from swapbench.plan.load import load_plan
from swapbench.plan.models import Band, Decision, ReportSettings
from swapbench.report.docs import update_registry, update_research
from swapbench.report.html import render_html
from swapbench.report.markdown import render_markdown
from swapbench.report.records import read_model
from swapbench.report.results_file import read_results, reanalysed, write_text


def compare_files(
    baseline: Path,
    candidate: Path,
    force: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    after: Path | None = None,
) -> Comparison:
    """Two results files (metrics recomputed from their samples); `after`: the baseline measured again later."""
    a, b = reanalysed(read_results(baseline)), reanalysed(read_results(candidate))
    later = reanalysed(read_results(after)) if after is not None else None
    if later is not None and later.label != a.label:
        raise InputError(
            f"--after {after} measures {later.label!r}, not the baseline {a.label!r}",
            hint="give the baseline's results from after the window (results-LABEL.after.json)",
        )
    if later is not None and (unlike := differences(a, later)):
        raise ComparisonRefused(
            f"--after {after} was not measured like {baseline.name}: {', '.join(unlike)}",
            hint="the drift compares the baseline with itself: the same frames, prompts and settings",
        )
    try:
        return compare(a, b, force=force, tolerance=tolerance, after=later)
    except ValueError as exc:
        raise ComparisonRefused(
            f"{baseline.name} and {candidate.name} differ in: {exc}",
            hint="measure both on the same frames, prompts, max_tokens and cache_prompt, or pass --force to compare "
            "anyway",
        ) from exc


@dataclass(frozen=True)
class RunFolder:
    """A run folder: its results (baseline first), its swap report, its plan's decision rule."""

    path: Path
    results: list[Results]
    swap: SwapReport | None
    rule: Decision
    report: ReportSettings | None = None
    band: Band | None = None
    after: Results | None = None  # the baseline measured again after verify, for the drift

    @classmethod
    def open(cls, path: Path) -> RunFolder:
        if not path.is_dir():
            raise InputError(f"{path} is not a folder", hint="give a run folder written by `swapbench run`")
        swap_file = path / "swap.json"
        swap = read_model(swap_file, SwapReport, "swap report", SWAP_HINT) if swap_file.exists() else None
        found = sorted(p for p in path.glob("results-*.json") if not p.name.endswith(".after.json"))
        files = [_in_folder(path, Path(p)) for p in swap.results_files] if swap else found
        if not files:
            raise InputError(f"{path} holds no results", hint="give a run folder written by `swapbench run`")
        plan_file = path / "plan.toml"
        plan = load_plan(plan_file).plan if plan_file.exists() else None
        earlier = plan.baseline.results if plan and plan.baseline and not plan.baseline.url else None
        if earlier is not None:  # the baseline comes from an earlier run's results file
            first = read_results(files[0])
            base = Path(first.provenance.plan_path or plan_file).parent
            files.insert(0, earlier.expanduser() if earlier.expanduser().is_absolute() else base / earlier)
        rule = (plan.decision if plan else None) or Decision()
        band = plan.gates.candidate_vram_gb if plan and plan.gates else None
        after = _readable(_in_folder(path, Path(swap.drift_files[0]))) if swap and swap.drift_files else None
        return cls(
            path, [reanalysed(read_results(f)) for f in files], swap, rule, plan.report if plan else None, band, after
        )

    @property
    def judgment_file(self) -> Path:
        return self.path / "decision.json"

    def judgment(self) -> tuple[Judgment | None, str | None]:
        if not self.judgment_file.exists():
            return None, None
        hint = f"record the judgment again: swapbench decide {self.path} --describe better|same|worse"
        record = read_model(self.judgment_file, JudgmentRecord, "recorded judgment", hint)
        return record.judgment, record.note


class JudgmentRecord(Frozen):
    """decision.json: the person's verdict on the describe outputs."""

    judgment: Judgment | None = None
    note: str | None = None


SWAP_HINT = ("the run folder was altered or its disk failed; its results-*.json files may still be read with "
             "`swapbench summary`")  # fmt: skip


def _in_folder(folder: Path, recorded: Path) -> Path:
    """A file the run recorded: the one of that name in the folder (which may have been moved or copied since),
    else where it was recorded (a rescue folder when the disk was full; an error then names that path)."""
    here = folder / recorded.name
    return here if here.is_file() else recorded


def _readable(path: Path) -> Results | None:
    """The drift's results: a file that cannot be read costs the drift figure, never the report."""
    try:
        return read_results(path)
    except SwapbenchError:
        return None


def write_report(folder: RunFolder) -> tuple[Comparison | None, DecisionResult | None, Path]:
    """comparison.json and report.md from the folder's results alone (no GPU, no server)."""
    comparison = decision = None
    if len(folder.results) >= 2:
        after = folder.after if folder.after and folder.after.label == folder.results[0].label else None
        comparison = compare(folder.results[0], folder.results[-1], force=True, tolerance=folder.rule.tolerance,
                             after=after)  # fmt: skip
        write_text(folder.path / "comparison.json", comparison.model_dump_json(indent=2) + "\n")
        judgment, note = folder.judgment()
        decision = decide(folder.rule, folder.results[-1], judgment, note, comparison)
    path = folder.path / "report.md"
    write_text(path, render_markdown(folder.results, comparison, decision, folder.swap))
    html = render_html(folder.results, comparison, decision, folder.swap, folder.band)
    write_text(folder.path / "report.html", html)
    if comparison is not None:
        update_documents(folder, comparison, decision)
    return comparison, decision, path


def update_documents(folder: RunFolder, comparison: Comparison, decision: DecisionResult | None) -> list[Path]:
    """The plan's [report] documents: research section, registry row, peak and change log (idempotent)."""
    settings = folder.report
    if settings is None:
        return []
    base = Path(folder.results[0].provenance.plan_path or folder.path / "plan.toml").parent  # the original plan's

    def resolve(p: Path) -> Path:
        return p.expanduser() if p.expanduser().is_absolute() else base / p

    baseline, candidate = folder.results[0], folder.results[-1]
    run_id = candidate.run_id
    written = []
    if settings.research_doc is not None:
        doc = resolve(settings.research_doc)
        body = render_markdown([baseline, candidate], comparison, decision).split("\n", 1)[1]  # no report title
        section = f"Measured by swapbench, run {run_id}.\n{body}"
        write_text(doc, update_research(doc.read_text() if doc.exists() else None, settings.research_title, section))
        written.append(doc)
    if settings.registry_doc is not None:
        doc = resolve(settings.registry_doc)
        text = doc.read_text() if doc.exists() else None
        write_text(doc, update_registry(text, candidate.label, *_registry_lines(folder, decision)))
        written.append(doc)
    return written


def _registry_lines(folder: RunFolder, decision: DecisionResult | None) -> tuple[str, str, str, str]:
    baseline, candidate = folder.results[0], folder.results[-1]
    run_id = candidate.run_id
    fp = candidate.vram.footprint if candidate.vram else None
    nav = next((w.metrics for w in candidate.workloads if w.workload.kind == "nav"), None)
    p50 = nav.client_latency_ms.p50 if nav and nav.client_latency_ms else None
    adherence = "—" if nav is None or nav.schema_adherence is None else f"{nav.schema_adherence:.0%}"
    p50_text = "—" if p50 is None else f"{p50:.1f} ms"
    row = f"| {candidate.label} | {_gib(fp.peak_mib if fp else None)} | {p50_text} | {adherence} | {run_id} |"
    gpu = folder.swap.gpu if folder.swap else None
    peak = gpu.projected_peak_mib.get(candidate.label) if gpu else None
    peak_line = f"Projected steady-state peak with {candidate.label} instead of {baseline.label}: {_gib(peak)}."
    status = decision.status.value.upper() if decision else "no decision"
    entry = f"{candidate.provenance.started_at[:10]} benchmarked {candidate.label} against {baseline.label}: {status}"
    return row, peak_line, run_id, entry


def _gib(mib: float | None) -> str:
    return "unknown" if mib is None else f"{mib / 1024:.2f} GiB"


def write_report_safely(folder: RunFolder) -> tuple[Comparison | None, DecisionResult | None, Path]:
    """`report` and `decide`: a run folder or document that cannot be written is an input error (3)."""
    try:
        return write_report(folder)
    except (OSError, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"cannot write the report of {folder.path}: {why}",
                         hint="make the run folder and the [report] documents writable") from exc  # fmt: skip


def report_folder(path: Path) -> tuple[DecisionResult | None, Path]:
    """`swapbench report RUN_DIR`: comparison.json, report.md, report.html and the [report] documents."""
    _, decision, report = write_report_safely(RunFolder.open(path))
    return decision, report


def record_judgment(path: Path, judgment: Judgment, note: str | None) -> tuple[DecisionResult | None, Path]:
    """`swapbench decide`: record the person's describe verdict, then decide and rewrite the report."""
    folder = RunFolder.open(path)
    if len(folder.results) < 2:
        raise InputError(f"{path} holds one target only", hint="a decision needs a baseline and a candidate")
    try:
        write_text(folder.judgment_file, JudgmentRecord(judgment=judgment, note=note).model_dump_json(indent=2) + "\n")
    except OSError as exc:
        raise InputError(f"cannot record the judgment in {folder.judgment_file}: {exc.strerror}",
                         hint="make the run folder writable") from exc  # fmt: skip
    _, decision, report = write_report_safely(folder)
    return decision, report
