"""The command line: parse options, call one function of app.py, print, map errors to exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from swapbench import __version__, app, demo
from swapbench.errors import SwapbenchError
from swapbench.plan.load import plan_json_schema
from swapbench.report.terminal import BenchProgress, print_summary, ratio_table

cli = typer.Typer(
    name="swapbench",
    help="Benchmark a candidate local model against production on one GPU box, and put production back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


def reported(command: Callable[P, R]) -> Callable[P, R]:
    """Print a SwapbenchError as 'error' + 'what to do' and exit with its class's code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except SwapbenchError as exc:
            err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
            if exc.hint:
                err.print(f"[bold]what to do:[/] {exc.hint}", highlight=False)
            raise typer.Exit(exc.exit_code) from exc

    return wrapper


@cli.command()
@reported
def bench(
    url: Annotated[str | None, typer.Option(help="Base URL of a running server, e.g. http://127.0.0.1:11435")] = None,
    plan: Annotated[Path | None, typer.Option(help="Plan file; with --target picks the server.")] = None,
    target: Annotated[str, typer.Option(help="With --plan: 'baseline' or a candidate's label.")] = "baseline",
    label: Annotated[str, typer.Option(help="With --url: the name of this target in results.")] = "target",
    workload: Annotated[list[str] | None, typer.Option(help="nav, describe (repeatable); default all.")] = None,
    image: Annotated[Path | None, typer.Option(help="With --url: the camera image; default the bundled one.")] = None,
    samples: Annotated[int, typer.Option("-n", "--samples", help="With --url: measured requests per workload.")] = 20,
    warmup: Annotated[int, typer.Option(help="With --url: warm-up requests per workload (excluded).")] = 3,
    stream: Annotated[bool, typer.Option(help="With --url: stream, and measure time to first token.")] = False,
    output_dir: Annotated[Path | None, typer.Option(help="Where results go (default [run].output_dir).")] = None,
    wait_ready: Annotated[float, typer.Option(help="Seconds to wait while the server answers 503 loading.")] = 0.0,
) -> None:
    """Benchmark a running OpenAI-compatible server without touching it."""
    loaded = app.load_for_bench(
        plan,
        url,
        label=label,
        workloads=workload or [],
        image=image or app.bundled_image(),
        run={"samples": samples, "warmup": warmup, "stream": stream},
    )
    with BenchProgress(out, app.pick_target(loaded, target).label) as progress:
        outcome = app.bench(
            loaded,
            target,
            only=(workload or []) if plan else [],
            wait_ready_s=wait_ready,
            output_dir=output_dir,
            on_sample=progress,
            expect=progress.expect,
        )
    print_summary(out, [outcome.results])
    out.print(f"results: {outcome.path}")


@cli.command()
@reported
def summary(results: Annotated[list[Path], typer.Argument(help="Results files written by swapbench.")]) -> None:
    """Re-analyse results files from their recorded samples and print the table (no server needed)."""
    print_summary(out, app.summarize(results))


@cli.command("demo")
@reported
def demo_command(
    samples: Annotated[int, typer.Option("-n", "--samples", help="Measured requests per workload.")] = 20,
    output_dir: Annotated[Path, typer.Option(help="Where results go.")] = Path("swapbench-results"),
) -> None:
    """Start the two rig models on loopback, bench both on the bundled image, print the comparison."""
    outcomes = demo.run_demo(samples=samples, output_dir=output_dir, console=out)
    print_summary(out, [o.results for o in outcomes], title="swapbench demo: baseline vs candidate")
    out.print(ratio_table(outcomes[0].results, outcomes[1].results))
    for o in outcomes:
        out.print(f"results: {o.path}")


@cli.command("plan-schema")
def plan_schema() -> None:
    """Print the JSON Schema of the plan file (for editor completion)."""
    print(plan_json_schema())


@cli.command()
def version() -> None:
    """Print the swapbench version."""
    print(__version__)


def main() -> None:
    cli()
