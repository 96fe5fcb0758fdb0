"""Terminal output: the summary table of one or more results, and live progress while a bench runs.

Text that came from a user, a file or a server is never markup: it goes through `escape` or `Text`, so
`[[services]]`, `[p]hone_call.py` and an error message holding `[/x]` print exactly as written."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from rich.console import Console, Group
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from swapbench.core.bench import WorkloadRun
from swapbench.core.command_json import HistoryRecord
from swapbench.core.compare import Comparison
from swapbench.core.decision import DecisionResult
from swapbench.core.kinds import SCORE_LEGEND, first_score
from swapbench.core.phases import Phase
from swapbench.core.results import LatencyStats, Results, Sample
from swapbench.core.steps import DowntimeSplit, Outcome, PreparedCandidate, SwapReport, WarmRead
from swapbench.core.vram import GpuSummary
from swapbench.errors import SwapbenchError
from swapbench.report.docs import DocumentChange
from swapbench.report.results_file import read_results, reanalysed


class EndedWindow(Protocol):
    """A window's end as an attached terminal reads it back: the swap report, or the rollback's, or none."""

    @property
    def report(self) -> SwapReport | None: ...
    @property
    def run_dir(self) -> Path: ...
    @property
    def comparison(self) -> Comparison | None: ...
    @property
    def decision(self) -> DecisionResult | None: ...
    @property
    def report_md(self) -> Path | None: ...
    @property
    def write_failures(self) -> list[str]: ...


class RunOutcomeLike(EndedWindow, Protocol):
    """A window that ran in this process: its swap report is there."""

    @property
    def report(self) -> SwapReport: ...


def _ms(stats: LatencyStats | None, attr: str) -> str:
    return "—" if stats is None else f"{getattr(stats, attr):.1f}"


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "—" if value is None else fmt.format(value)


def _degenerate(count: int) -> str:
    return f"[bold red]{count}[/]" if count else "0"


def summary_table(results: Sequence[Results], title: str = "swapbench") -> Table:
    """One row per target and workload, in the user plan's terms."""
    table = Table(
        title=title,
        header_style="bold",
        caption="latency in ms (client, send to last byte) over usable answers; mode: fresh = every prompt "
        "evaluated (cache_prompt = false), cached = the server may reuse it; cache: share of prompt tokens from "
        "the server's cache; prefill: server prompt_ms p50; CI: bootstrap 95% of p50; Hz: 1000/p50; "
        f"score: {SCORE_LEGEND}; degen: empty or cut answers (not timed); err: failed requests",
    )
    for name in ("target", "workload", "mode", "n", "p50", "p95", "p99", "p50 CI", "prefill", "cache", "tok/s",
                 "Hz", "score", "think", "degen", "err"):  # fmt: skip
        left = name in ("target", "workload", "mode")
        table.add_column(name, justify="left" if left else "right", no_wrap=True, overflow="fold")
    for res in results:
        for w in res.workloads:
            m = w.metrics
            c = m.client_latency_ms
            ci = f"{c.p50_ci95[0]:.1f}-{c.p50_ci95[1]:.1f}" if c and c.p50_ci95 else "—"
            score = _share(first_score(w))
            table.add_row(
                escape(res.label), escape(w.workload.name), w.workload.cache_mode, str(m.samples),
                _ms(c, "p50"), _ms(c, "p95"), _ms(c, "p99"), ci, _ms(m.prompt_ms, "p50"), _share(m.cache_share),
                _num(m.decode_tok_s), _num(m.effective_hz), score, str(m.thinking_leaks),
                _degenerate(m.degenerate), f"[red]{m.errors}[/]" if m.errors else "0",
            )  # fmt: skip
    return table


def print_summary(console: Console, results: Sequence[Results], title: str = "swapbench") -> None:
    console.print(summary_table(results, title))
    for res in results:
        if res.error:
            console.print(Text(f"{res.label}: stopped early: {res.error}", style="yellow"))
        for w in res.workloads:
            for warning in w.metrics.warnings:
                console.print(Text(f"warning: {res.label} · {w.workload.name}: {warning}", style="yellow"),
                              soft_wrap=True)  # fmt: skip


class BenchProgress:
    """Live progress: one bar per target and workload, warm-up included; the last sample's latency shown."""

    def __init__(self, console: Console, label: str = "bench") -> None:
        self.label = label
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[last]}"), console=console, transient=False,
        )  # fmt: skip
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> BenchProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def expect(self, target: str, workload: str, total: int) -> None:
        """A new bar for this target's workload (a later target gets its own bar)."""
        self._tasks[workload] = self._progress.add_task(escape(f"{target} · {workload}"), total=total, last="")

    def __call__(self, run: WorkloadRun, sample: Sample, is_warmup: bool) -> None:
        name = run.workload.info.name
        if name not in self._tasks:
            self.expect(self.label, name, 0)
        ex = sample.exchange
        last = (
            f"[red]{escape(ex.error[:60])}[/]" if ex.error else f"{ex.latency_ms:.1f} ms" + (" (warm-up)" * is_warmup)
        )
        self._progress.update(self._tasks[name], advance=1, last=last)


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or a == 0 else f"{b / a:.2f}x"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def ratio_table(baseline: Results, candidate: Results) -> Table:
    """Candidate against baseline per shared workload, as ratios (candidate / baseline)."""
    title = escape(f"{candidate.label} vs {baseline.label} (ratio = candidate / baseline)")
    table = Table(title=title, header_style="bold")
    for name in ("workload", "p50 base", "p50 cand", "p50 ratio", "tok/s ratio", "score base", "score cand"):
        table.add_column(name, justify="left" if name == "workload" else "right", no_wrap=True)
    cand = {w.workload.name: w.metrics for w in candidate.workloads}
    theirs = {w.workload.name: w for w in candidate.workloads}
    for w in baseline.workloads:
        if w.workload.name not in cand:
            continue
        b, c = w.metrics, cand[w.workload.name]
        bp = b.client_latency_ms.p50 if b.client_latency_ms else None
        cp = c.client_latency_ms.p50 if c.client_latency_ms else None
        table.add_row(
            escape(w.workload.name),
            _num(bp),
            _num(cp),
            _ratio(bp, cp),
            _ratio(b.decode_tok_s, c.decode_tok_s),
            _share(first_score(w)),
            _share(first_score(theirs[w.workload.name])),
        )
    return table


STATUS_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow", "warn": "bold yellow"}


def outcomes_table(outcomes: Sequence[Outcome], title: str) -> Table:
    table = Table(title=escape(title), header_style="bold")  # the title names the plan's path
    table.add_column("", no_wrap=True)
    table.add_column("check")
    table.add_column("detail")
    for o in outcomes:
        table.add_row(Text(o.status.value.upper(), style=STATUS_STYLE[o.status.value]), Text(o.name), Text(o.detail))
    return table


def dry_run_table(steps: Sequence[tuple[Phase, str]], title: str) -> Table:
    table = Table(title=escape(title), header_style="bold", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("phase", no_wrap=True)
    table.add_column("what would run", overflow="fold")
    for i, (phase, what) in enumerate(steps, start=1):
        table.add_row(str(i), phase.value, Text(what))
    return table


class PhasePrinter:
    """One line per phase: elapsed time and the production downtime clock (first stop -> last verify)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.t0 = time.monotonic()
        self.down_since: float | None = None
        self.up_at: float | None = None

    def __call__(self, phase: Phase, target: str | None) -> None:
        now = time.monotonic()
        if phase is Phase.STOP and self.down_since is None:
            self.down_since = now
        if phase is Phase.DRIFT_BENCH and self.down_since is not None and self.up_at is None:
            self.up_at = now  # restored and verified: the drift is measured with production up
        if self.down_since is None:
            down = "production up   "
        elif self.up_at is not None:
            down = f"up again, down {self.up_at - self.down_since:.1f} s"
        else:
            down = f"downtime {now - self.down_since:6.1f} s"
        clock = Text(f"[{now - self.t0:6.1f} s | {down}]", style="dim")
        self.console.print(Text.assemble(clock, " ", (phase, "bold"), " ", target or ""))


def _mib(value: float | None) -> str:
    return "unknown" if value is None else f"{value / 1024:.2f} GiB"


def print_gpu(console: Console, gpu: GpuSummary) -> None:
    if gpu.unavailable_reason:
        console.print(
            Text(f"GPU: no readings ({gpu.unavailable_reason}); VRAM footprints, gates and drain not measured")
        )
        return
    services = ", ".join(f"{n} {_mib(v)}" for n, v in gpu.service_mib.items())
    used = _mib(gpu.used_before_stop_mib)
    console.print(Text(f"GPU {gpu.device} (driver {gpu.driver}): {used} used before the stop; {services}"))
    for label, fp in gpu.candidates.items():
        console.print(Text(
            f"  {label}: resident {_mib(fp.resident_mib)}, peak {_mib(fp.peak_mib)} ({fp.source}), "
            f"gate {fp.verdict.value}; "
            f"projected steady-state peak {_mib(gpu.projected_peak_mib.get(label))}"
        ))  # fmt: skip
    console.print(Text("  drain: " + ", ".join(f"{k} {v:.2f} s" for k, v in gpu.drain_s.items())))


def downtime_line(d: DowntimeSplit) -> str:
    """The window, split: what the candidate cost (load, bench), putting production back (restore), stopping it
    (stop) and swapbench's own time between its steps (other)."""
    head = f"production downtime {d.total_s:.1f} s = load {d.load_s:.1f} + bench {d.bench_s:.1f}"
    head += f" + restore {d.restore_s:.1f}"
    if d.stop_s is None or d.own_s is None:  # a swap.json written before stop was split out of overhead
        return f"{head} + other {d.overhead_s:.1f} (stop, drain, swapbench)"
    return f"{head} + stop {d.stop_s:.1f} + other {d.own_s:.2f} (swapbench's own, between steps)"


def _read(read: WarmRead, cached: str) -> str:
    share = "" if read.cached_share is None else f" ({read.cached_share:.0%} {cached})"
    return f"{read.seconds:.2f} s{share}"


def print_prepared(console: Console, prepared: PreparedCandidate) -> None:
    """One candidate's prepare step: its build, and its model files read into the page cache before the window."""
    version = (prepared.version or "version unknown").split(";")[0]
    text = f"prepare {prepared.label}: {version}; {prepared.size_bytes / 2**20:,.0f} MiB of model files"
    if prepared.first_read is not None:
        text += f" read into the page cache in {_read(prepared.first_read, 'cached already')} before the window"
    if prepared.reread is not None:
        text += f", again in {_read(prepared.reread, 'still cached')} right before the first stop"
    console.print(Text(text), soft_wrap=True)
    if prepared.note:
        console.print(Text(f"  {prepared.note}", style="yellow"), soft_wrap=True)


def print_swap_report(console: Console, report: SwapReport, run_dir: str) -> None:
    console.print(outcomes_table(report.verify, "verify (after restore)"))
    if report.gpu is not None:
        print_gpu(console, report.gpu)
    for prepared in report.prepare:
        print_prepared(console, prepared)
    if report.downtime is not None:
        console.print(downtime_line(report.downtime))
    if report.drift_note:
        console.print(Text(f"drift: the baseline was not measured again after the window: {report.drift_note}",
                           style="yellow"), soft_wrap=True)  # fmt: skip
    style = {"complete": "bold green", "aborted": "bold yellow", "restore-failed": "bold red"}[report.status.value]
    console.print(Text.assemble((f"run {report.run_id}: {report.status.value}", style),
                                f" — {report.error}" if report.error else ""))  # fmt: skip
    if report.ended_by:
        console.print(Text(report.ended_by, style="bold yellow"), soft_wrap=True)
    console.print(Text(f"run folder: {run_dir}"), soft_wrap=True)
    for failure in report.write_failures:
        console.print(Text(f"not written where it belongs: {failure}", style="yellow"), soft_wrap=True)


VERDICT_STYLE = {"faster": "green", "better": "green", "equivalent": "cyan", "slower": "bold red",
                 "worse": "red", "inconclusive": "yellow"}  # fmt: skip


def _interval(ci: tuple[float, float] | None) -> str:
    return "—" if ci is None else f"x{ci[0]:.3f} to x{ci[1]:.3f}"


def comparison_tables(comparison: Comparison) -> Group:
    parts: list[Table | Text] = []
    for w in comparison.workloads:
        judged = "" if w.judged else " — shown, not judged: the fresh workload of its kind is"
        title = f"{w.workload} ({w.cache_mode}): {comparison.candidate} vs {comparison.baseline}{judged}"
        table = Table(title=escape(title), header_style="bold",
                      caption=f"ratio = candidate / baseline; verdict against ±{comparison.tolerance:.0%}")  # fmt: skip
        for name in ("metric", comparison.baseline, comparison.candidate, "ratio", "95% interval", "verdict"):
            table.add_column(escape(name), justify="left" if name in ("metric", "verdict") else "right")
        for r in w.rows:
            fmt = _share if r.share else _num
            ratio = "—" if r.ratio is None else f"x{r.ratio:.3f}"
            verdict = Text(r.verdict, style=VERDICT_STYLE.get(r.verdict, ""))
            if not w.trusted and r.verdict in ("faster", "slower", "equivalent"):
                verdict.append(" (untrusted: drift)", style="yellow")
            table.add_row(r.metric, fmt(r.baseline), fmt(r.candidate), ratio, _interval(r.ci95), verdict)
        parts.append(table)
        if w.drift is not None:
            d = w.drift
            parts.append(Text(f"{w.workload}: baseline before vs after the window x{d.ratio:.3f} "
                              f"({_interval(d.ci95)}, n {d.n_before}/{d.n_after}): "
                              + ("steady" if d.trusted else "DRIFTED beyond the tolerance"),
                              style="" if d.trusted else "bold yellow"))  # fmt: skip
        parts += [Text(f"warning: {m}", style="yellow") for m in w.warnings]
    if comparison.differences:
        parts.append(Text(f"compared although the runs differ in: {', '.join(comparison.differences)}"))
    return Group(*parts)


def print_decision(
    console: Console,
    decision: DecisionResult | None,
    report: Path | None,
    documents: Sequence[DocumentChange] = (),
    left_alone: str | None = None,
) -> None:
    """The decision with every reason; then each document written (created, updated, unchanged, left alone) with
    its path, or, without that list (a `run`), where the report is."""
    if decision is not None:
        style = {"adopt": "bold green", "reject": "bold red", "pending": "bold yellow",
                 "inconclusive": "bold magenta"}[decision.status.value]  # fmt: skip
        console.print(f"[{style}]decision: {decision.status.value.upper()}[/]")
        for reason in decision.reasons:
            console.print(Text(f"  {reason}"), highlight=False, soft_wrap=True)  # a command in it stays pasteable
    for doc in documents:
        console.print(Text(f"{doc.change.value + ':':<11} {doc.path}"), soft_wrap=True, highlight=False)
    if left_alone is not None:
        console.print(Text(f"note: {left_alone}", style="yellow"), soft_wrap=True, highlight=False)
    if report is not None and not documents:
        console.print(Text(f"report: {report} (and {report.with_suffix('.html').name} beside it)"), soft_wrap=True)


def print_run(console: Console, outcome: RunOutcomeLike, title: str = "swapbench", ratios: bool = False) -> None:
    """Everything `run` (and the demo) prints after the window: numbers, comparison, verify, decision, and any
    file that could not be written where it belongs."""
    _print_run(console, outcome.report, outcome, title, ratios)


def _print_run(
    console: Console, report: SwapReport, outcome: EndedWindow | RunOutcomeLike, title: str = "swapbench",
    ratios: bool = False,
) -> None:  # fmt: skip
    results = [reanalysed(r) for r in _readable(report.results_files)]
    if results:
        print_summary(console, results, title=title)
    if ratios and len(results) == 2:
        console.print(ratio_table(results[0], results[1]))
    if outcome.comparison is not None:
        console.print(comparison_tables(outcome.comparison))
    print_swap_report(console, report, str(outcome.run_dir))
    for failure in outcome.write_failures[len(report.write_failures) :]:
        console.print(Text(f"not written where it belongs: {failure}", style="yellow"), soft_wrap=True)
    print_decision(console, outcome.decision, outcome.report_md)


def print_window(console: Console, ended: EndedWindow) -> None:
    """What an attached terminal prints at a window's end: the whole run; or the rollback that ended it (its job
    died or was killed); or nothing before the error (refused before its first step)."""
    if ended.report is None:
        return
    if (ended.run_dir / "swap.json").exists():
        _print_run(console, ended.report, ended)
    else:
        print_swap_report(console, ended.report, str(ended.run_dir))


def _readable(paths: Sequence[str]) -> list[Results]:
    found = []
    for path in paths:
        try:
            found.append(read_results(Path(path)))
        except SwapbenchError:
            continue  # named in the swap report's write failures
    return found


def history_table(record: HistoryRecord) -> Table:
    """`swapbench history`: one row per run, newest first."""
    shown = f"{len(record.runs)} of {record.total}" if len(record.runs) != record.total else f"{record.total}"
    table = Table(title=f"history: {shown} run(s) in {record.db}", title_justify="left")
    for column in ("started", "host", "run", "baseline → candidate", "outcome", "decision", "down s"):
        table.add_column(column, overflow="fold")
    for run in record.runs:
        started = (run.started_at or "?")[:19].replace("T", " ")
        models = f"{run.baseline or '—'} → {', '.join(run.candidates) or '—'}"
        table.add_row(escape(started), escape(run.host), escape(run.run_id), escape(models), escape(run.outcome),
                      escape(run.decision or "—"), _num(run.downtime_s))  # fmt: skip
    return table
