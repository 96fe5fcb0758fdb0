"""Use cases after the measuring: compare two results, decide adopt/reject, and write a run folder's report."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import Field

from swapbench.core.blinded import BlindedJudging
from swapbench.core.compare import DEFAULT_TOLERANCE, Comparison, compare, differences
from swapbench.core.decision import DecisionResult, Judgment, decide
from swapbench.core.frozen import Frozen
from swapbench.core.kinds import kind_of
from swapbench.core.results import Results
from swapbench.core.steps import SwapReport
from swapbench.errors import ComparisonRefused, InputError, PlanError, SwapbenchError
from swapbench.plan.load import load_plan
from swapbench.plan.models import Band, Decision, Plan, ReportSettings
from swapbench.report.docs import Change, DocumentChange, update_registry, update_research
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


def _recorded_plan(plan_file: Path) -> Plan:
    """The copy of the plan the run used, read as leniently as the swapbench that ran it did (strings that read
    as numbers were converted then); a copy that still does not load is named in full."""
    try:
        return load_plan(plan_file, lenient=True).plan
    except PlanError as exc:
        raise PlanError(f"{plan_file.resolve()} (the copy of the plan this run used) no longer loads: {exc.message}",
                        hint="fix the key named in that copy, not in your plan; or move the copy aside: the run "
                        "is then judged by the default decision rule") from exc  # fmt: skip


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
    written_at: Path | None = None  # where its run wrote it: a folder elsewhere now was moved or copied

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
        plan = _recorded_plan(plan_file) if plan_file.exists() else None
        earlier = plan.baseline.results if plan and plan.baseline and not plan.baseline.url else None
        if earlier is not None:  # the baseline comes from an earlier run's results file
            first = read_results(files[0])
            base = Path(first.provenance.plan_path or plan_file).parent
            files.insert(0, earlier.expanduser() if earlier.expanduser().is_absolute() else base / earlier)
        rule = (plan.decision if plan else None) or Decision()
        band = plan.gates.candidate_vram_gb if plan and plan.gates else None
        after = _readable(_in_folder(path, Path(swap.drift_files[0]))) if swap and swap.drift_files else None
        results = [reanalysed(read_results(f)) for f in files]
        settings = plan.report if plan else None
        return cls(path, results, swap, rule, settings, band, after, _written_at(plan, results[-1]))

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

    schema_version: int = Field(1, description="The layout of this record; a file without one is version 1.")
    judgment: Judgment | None = None
    note: str | None = None
    blinded: BlindedJudging | None = None  # `swapbench judge`: who was A and B on each frame, and each pick


SWAP_HINT = ("the run folder was altered or its disk failed; its results-*.json files may still be read with "
             "`swapbench summary`")  # fmt: skip


def _in_folder(folder: Path, recorded: Path) -> Path:
    """A file the run recorded: the one of that name in the folder (which may have been moved or copied since),
    else where it was recorded (a rescue folder when the disk was full; an error then names that path)."""
    here = folder / recorded.name
    return here if here.is_file() else recorded


def _written_at(plan: Plan | None, candidate: Results) -> Path | None:
    """Where `swapbench run` put this run folder: the output_dir of the plan it ran (resolved beside the plan's
    recorded path, as the run resolved it), then the run id."""
    if plan is None or candidate.provenance.plan_path is None:
        return None
    output_dir = plan.run.output_dir.expanduser()
    if not output_dir.is_absolute():
        output_dir = Path(candidate.provenance.plan_path).parent / output_dir
    return output_dir / candidate.run_id


def _readable(path: Path) -> Results | None:
    """The drift's results: a file that cannot be read costs the drift figure, never the report."""
    try:
        return read_results(path)
    except SwapbenchError:
        return None


@dataclass(frozen=True)
class ReportWritten:
    """What `report` and `decide` did: the decision, report.md, and every document with what became of it."""

    comparison: Comparison | None
    decision: DecisionResult | None
    report: Path
    documents: list[DocumentChange] = field(default_factory=list)
    left_alone: str | None = None  # why the [report] documents outside the run folder were not touched, and how


def write_report(folder: RunFolder) -> tuple[Comparison | None, DecisionResult | None, Path]:
    """`swapbench run`: the report of the run folder it has just written, so the documents are its own to update."""
    written = write_run_report(folder, update_moved_docs=True)
    return written.comparison, written.decision, written.report


def write_run_report(folder: RunFolder, update_moved_docs: bool = False) -> ReportWritten:
    """comparison.json, report.md and report.html from the folder's results alone (no GPU, no server), then the
    plan's [report] documents — left alone if the folder is not where its run wrote it, unless asked."""
    comparison, decision = decided(folder)
    documents = [] if comparison is None else [_write(folder.path / "comparison.json", _json(comparison))]
    report = folder.path / "report.md"
    documents.append(_write(report, render_markdown(folder.results, comparison, decision, folder.swap)))
    html = render_html(folder.results, comparison, decision, folder.swap, folder.band, decide_dir=_decide_dir(folder))
    documents.append(_write(folder.path / "report.html", html))
    outside = _document_paths(folder) if comparison is not None else []
    moved = None if update_moved_docs or not outside else _moved(folder)
    if moved is not None:
        documents += [DocumentChange(p, Change.LEFT_ALONE) for p in outside]
    elif comparison is not None:
        documents += update_documents(folder, comparison, decision)
    return ReportWritten(comparison, decision, report, documents, moved)


def _json(comparison: Comparison) -> str:
    return comparison.model_dump_json(indent=2) + "\n"


def decided(folder: RunFolder) -> tuple[Comparison | None, DecisionResult | None]:
    """The comparison of the first target (the baseline) with the last, and the plan's rule applied to it."""
    if len(folder.results) < 2:
        return None, None
    after = folder.after if folder.after and folder.after.label == folder.results[0].label else None
    comparison = compare(folder.results[0], folder.results[-1], force=True, tolerance=folder.rule.tolerance,
                         after=after)  # fmt: skip
    judgment, note = folder.judgment()
    decision = decide(folder.rule, folder.results[-1], judgment, note, comparison, run_dir=_quoted(folder.path))
    return comparison, decision


def _quoted(path: Path) -> str:
    """The run folder as a command to paste names it: absolute, quoted for the shell."""
    return shlex.quote(str(path.resolve()))


def _decide_dir(folder: RunFolder) -> str | None:
    """The run folder for the report's `decide` command, when the rule asks a person to judge describe."""
    judged = folder.rule.describe_must_improve and len(folder.results) >= 2
    if judged and any(kind_of(w.workload.kind).judged_by_person for w in folder.results[-1].workloads):
        return _quoted(folder.path)
    return None


def _moved(folder: RunFolder) -> str | None:
    """Why the plan's [report] documents are not this folder's to change: it is not where its run wrote it (a
    copy's report must not rewrite what the original's run wrote there), or it does not say where that was."""
    here = folder.path.resolve()
    if folder.written_at is not None and folder.written_at.resolve() == here:
        return None
    where = f"was written at {folder.written_at}" if folder.written_at else "does not record where it was written"
    return (f"this run folder {where}, not here: the plan's [report] documents outside it were left alone; "
            f"to update them from here: swapbench report {_quoted(here)} --update-moved-docs")  # fmt: skip


def _write(path: Path, text: str) -> DocumentChange:
    """Write a document unless it already holds exactly this text; say which."""
    data = text.encode("utf-8")
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = None
    if old == data:
        return DocumentChange(path, Change.UNCHANGED)
    write_text(path, text)
    return DocumentChange(path, Change.CREATED if old is None else Change.UPDATED)


def _resolved(folder: RunFolder, doc: Path | None) -> Path | None:
    """A [report] document's path as the run resolved it: beside the plan it ran (its recorded path)."""
    if doc is None:
        return None
    doc, plan = doc.expanduser(), folder.results[-1].provenance.plan_path
    return doc if doc.is_absolute() else Path(plan or folder.path / "plan.toml").parent / doc


def _document_paths(folder: RunFolder) -> list[Path]:
    settings = folder.report
    docs = (settings.research_doc, settings.registry_doc) if settings else ()
    return [p for doc in docs if (p := _resolved(folder, doc)) is not None]


def update_documents(
    folder: RunFolder, comparison: Comparison, decision: DecisionResult | None
) -> list[DocumentChange]:
    """The plan's [report] documents: research section, registry row, peak and change log (idempotent)."""
    settings = folder.report
    if settings is None:
        return []
    research, registry = _resolved(folder, settings.research_doc), _resolved(folder, settings.registry_doc)
    baseline, candidate = folder.results[0], folder.results[-1]
    written = []
    if research is not None:
        body = render_markdown([baseline, candidate], comparison, decision).split("\n", 1)[1]  # no report title
        section = f"Measured by swapbench, run {candidate.run_id}.\n{body}"
        text = research.read_text() if research.exists() else None
        written.append(_write(research, update_research(text, settings.research_title, section)))
    if registry is not None:
        text = registry.read_text() if registry.exists() else None
        written.append(_write(registry, update_registry(text, candidate.label, *_registry_lines(folder, decision))))
    return written


def _registry_lines(folder: RunFolder, decision: DecisionResult | None) -> tuple[str, str, str, str]:
    baseline, candidate = folder.results[0], folder.results[-1]
    run_id = candidate.run_id
    fp = candidate.vram.footprint if candidate.vram else None
    nav = next((w.metrics for w in candidate.workloads if kind_of(w.workload.kind).headline), None)
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


def write_report_safely(folder: RunFolder, update_moved_docs: bool = False) -> ReportWritten:
    """`report` and `decide`: a run folder or document that cannot be written is an input error (3)."""
    try:
        return write_run_report(folder, update_moved_docs)
    except (OSError, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"cannot write the report of {folder.path}: {why}",
                         hint="make the run folder and the [report] documents writable") from exc  # fmt: skip


def report_folder(path: Path, update_moved_docs: bool = False) -> ReportWritten:
    """`swapbench report RUN_DIR`: comparison.json, report.md, report.html and the [report] documents."""
    return write_report_safely(RunFolder.open(path), update_moved_docs)


def record_judgment(
    path: Path,
    judgment: Judgment,
    note: str | None,
    blinded: BlindedJudging | None = None,
    update_moved_docs: bool = False,
) -> ReportWritten:
    """`swapbench decide` and `judge`: record the person's describe verdict, then decide and rewrite the report."""
    folder = RunFolder.open(path)
    if len(folder.results) < 2:
        raise InputError(f"{path} holds one target only", hint="a decision needs a baseline and a candidate")
    try:
        record = JudgmentRecord(judgment=judgment, note=note, blinded=blinded)
        recorded = _write(folder.judgment_file, record.model_dump_json(indent=2) + "\n")
    except OSError as exc:
        raise InputError(f"cannot record the judgment in {folder.judgment_file}: {exc.strerror}",
                         hint="make the run folder writable") from exc  # fmt: skip
    written = write_report_safely(folder, update_moved_docs)
    return replace(written, documents=[recorded, *written.documents])
