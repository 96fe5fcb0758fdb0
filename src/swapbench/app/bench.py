"""Use cases: each CLI command is one call into this module."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from swapbench import __version__
from swapbench.adapters.openai_client import ChatEndpoint, Health
from swapbench.core.bench import (
    BenchSettings,
    OnSample,
    WorkloadRun,
    extension_verdict,
    run_workloads,
)
from swapbench.core.kinds import KINDS
from swapbench.core.kinds.chat import CHAT
from swapbench.core.results import Provenance, Results, RunStatus
from swapbench.errors import EndpointLoading, EndpointRequestFailed, InputError, PlanError, SwapbenchError
from swapbench.host.info import host_info
from swapbench.host.processes.waiting import wait_until
from swapbench.plan.load import LoadedPlan, load_plan, pick_target, validate_plan
from swapbench.plan.models import Target
from swapbench.report.results_file import read_results, reanalysed, render_json, workload_results, write_text
from swapbench.workloads.bench_call import BenchCall, Save
from swapbench.workloads.requests import prepare_workloads

BUILTIN_WORKLOADS = tuple(k.name for k in KINDS if k.default_prompt() is not None)  # what needs no plan
READY_POLL_S = 0.1


def bundled_image() -> Path:
    """The demo camera frame shipped with swapbench."""
    return Path(str(resources.files("swapbench.demo").joinpath("car-view.jpg")))


def bundled_frames() -> Path:
    """The demo's camera frames: a car driving on, one frame per request in turn."""
    return Path(str(resources.files("swapbench.demo").joinpath("frames")))


@dataclass(frozen=True)
class BenchRequest:
    """`swapbench bench`: a plan's target, or one running server at `url` with the options below."""

    url: str | None = None
    plan: Path | None = None
    target: str = "baseline"  # with plan: "baseline" or a candidate's label
    label: str = "target"  # with url: the target's name in results
    workloads: tuple[str, ...] = ()
    prompts: Path | None = None  # with url: a JSONL file of text prompts, measured as a chat workload
    image: Path | None = None
    frames: Path | None = None
    fresh: bool = False
    samples: int = 20
    warmup: int = 3
    stream: bool = False
    output_dir: Path | None = None
    wait_ready_s: float = 0.0


def bench_server(
    request: BenchRequest,
    on_sample: OnSample | None = None,
    expect: Callable[[str, str, int], None] | None = None,
) -> BenchOutcome:
    """`swapbench bench`: measure a running server without touching it."""
    return measure(
        BenchCall(_load_for_bench(request), request.target, only=request.workloads if request.plan else (),
                  wait_ready_s=request.wait_ready_s, output_dir=request.output_dir, on_sample=on_sample, expect=expect)
    )  # fmt: skip


def _load_for_bench(request: BenchRequest) -> LoadedPlan:
    """Either a plan file or --url options; not both, not neither."""
    if request.plan is not None and request.url is not None:
        raise PlanError("give either --plan or --url, not both", hint="--url measures one server without a plan")
    if request.plan is None and request.url is None:
        raise PlanError("nothing to benchmark", hint="pass --url http://127.0.0.1:PORT or --plan plan.toml")
    if request.image is not None and request.frames is not None:
        raise PlanError("give either --image or --frames, not both", hint="--frames sends a folder's images in turn")
    if request.plan is not None and request.prompts is not None:
        raise PlanError("--prompts goes with --url", hint="with --plan, give the chat workload's prompts in the plan")
    if request.plan is not None:
        return load_plan(request.plan)
    assert request.url is not None
    return plan_from_options(request)


def plan_from_options(request: BenchRequest) -> LoadedPlan:
    """A plan built from `swapbench bench --url ...` options, validated like a plan file."""
    chat = [w for w in request.workloads if w == CHAT.name]
    if chat and request.prompts is None:
        line = '{"prompt": "...", "expected": "..."}'
        raise PlanError(f"--workload {CHAT.name} needs --prompts FILE.jsonl",
                        hint=f"one JSON object per line, {line}; or give --prompts alone")  # fmt: skip
    unknown = [w for w in request.workloads if w not in BUILTIN_WORKLOADS and w not in chat]
    if unknown:
        raise PlanError(
            f"--workload {unknown[0]!r} is not a built-in workload",
            hint=f"use {', '.join(BUILTIN_WORKLOADS)} or {CHAT.name} (with --prompts FILE.jsonl), or define it in a "
            "plan file and pass --plan",
        )
    run = {"samples": request.samples, "warmup": request.warmup, "stream": request.stream}
    names = [w for w in request.workloads if w not in chat] or ([] if request.prompts else list(BUILTIN_WORKLOADS))
    workloads: list[dict[str, object]] = [{"name": w, "kind": w, "cache_prompt": not request.fresh} for w in names]
    if request.prompts is not None:
        workloads.append({"name": CHAT.name, "kind": CHAT.name, "prompts": str(request.prompts),
                          "cache_prompt": not request.fresh})  # fmt: skip
    data: dict[str, object] = {
        "run": {"extended_samples": None, **run},  # the 20 -> 100 extension belongs to `swapbench run`
        "workloads": workloads,
        "baseline": {"label": request.label, "url": request.url},
        "image": {"frames": str(request.frames)} if request.frames else {"path": str(request.image or bundled_image())},
    }
    try:
        plan = validate_plan(data, "command line")
    except PlanError as exc:  # name the options the user typed, not the plan keys they became
        for key, option in (("baseline.url", "--url"), ("baseline.label", "--label"), ("run.", "--")):
            exc.message = exc.message.replace(key, option)
        raise PlanError(exc.message, hint="fix the option named above; `swapbench bench --help` lists them") from exc
    return LoadedPlan(plan=plan, path=None, sha256=None)


def _api_key(loaded: LoadedPlan, target: Target) -> str | None:
    if target.api_key_file is None:
        return None
    path = loaded.resolve(target.api_key_file)
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputError(f"cannot read api_key_file {path}: {why}", hint="check the path") from exc


def wait_until_serving(endpoint: ChatEndpoint, wait_s: float) -> None:
    """Fail fast when the server is loading (503), unless asked to wait up to `wait_s` for it."""
    reports = []

    def serving() -> bool:
        reports.append(endpoint.health())
        return reports[-1].state is Health.OK

    if wait_until(serving, wait_s, poll_s=READY_POLL_S):
        return
    report = reports[-1]
    if report.state is Health.LOADING:
        raise EndpointLoading(
            f"{endpoint.base_url} is still loading its model (HTTP 503: {report.message})",
            hint="wait until /health answers 200, or pass --wait-ready SECONDS",
        )
    raise EndpointRequestFailed(
        f"{endpoint.base_url}/health answered HTTP {report.status}: {report.message}",
        hint="check that the URL points at an OpenAI-compatible server such as llama-server",
        status=report.status,
    )


@dataclass(frozen=True)
class BenchOutcome:
    results: Results
    path: Path


def new_run_id(label: str) -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{label}-{secrets.token_hex(2)}"


def measure(call: BenchCall) -> BenchOutcome:
    """Benchmark one running server without touching it; save results even when it stops early. The results
    are written once, the candidate's VRAM in them."""
    loaded = call.loaded
    plan = loaded.plan
    target = pick_target(loaded, call.target)
    url = target.endpoint
    assert url is not None  # pick_target guarantees it
    image, workloads = prepare_workloads(loaded, target, call.only)
    extension = (plan.run.extended_samples or plan.run.samples) - plan.run.samples if call.extend else 0
    in_band = call.vram_in_band
    settings = BenchSettings(
        warmup=plan.run.warmup, samples=plan.run.samples, stream=plan.run.stream, deadline_ns=call.deadline_ns,
        should_stop=call.should_stop, extension=extension, precision=plan.run.p50_precision,
        extend_if=lambda samples: extension_verdict(samples, in_band() if in_band else None),
    )  # fmt: skip
    for w in workloads:
        if call.expect:
            call.expect(target.label, w.info.name, settings.warmup + settings.samples + settings.extension)
    started = datetime.now(UTC).isoformat()
    with ChatEndpoint(url, api_key=_api_key(loaded, target), timeout_s=plan.run.request_timeout_s) as ep:
        wait_until_serving(ep, call.wait_ready_s)
        server = ep.server_info()
        runs = run_workloads(ep, workloads, settings, time.perf_counter_ns, call.on_sample)
    error = next((r.error for r in runs if r.error is not None), None)
    results = Results(
        run_id=call.run_id or new_run_id(target.label),
        label=target.label,
        status=RunStatus.PARTIAL if error else RunStatus.COMPLETE,
        error=str(error.message) if error else None,
        provenance=_provenance(loaded, started, settings, plan.run.seed),
        host=host_info(),
        server=server,
        image=image.frames[0].info if image else None,
        frames=image.infos if image else [],
        frames_sha256=image.digest if image else None,
        workloads=workload_results(runs),
        vram=call.vram() if call.vram else None,
    )
    out_dir = (call.output_dir or loaded.resolve(plan.run.output_dir)) / results.run_id
    path = _save(out_dir / (call.file_name or f"results-{target.label}.json"), render_json(results), call.save, runs)
    if error is not None:
        raise _with_saved(error, runs, path)
    return BenchOutcome(results=results, path=path)


def _save(path: Path, text: str, save: Save | None, runs: Sequence[WorkloadRun]) -> Path:
    """Write the results file: through the window's SafeWriter (which may put it in a rescue folder and says
    where), or directly. Returns where it is."""
    gathered = sum(len(r.samples) for r in runs)
    if save is not None:
        written = save(path, text)
        if written is None:
            raise InputError(f"the results ({gathered} samples) could not be written to {path} nor to a rescue "
                             "folder", hint="free space on a disk swapbench can write to")  # fmt: skip
        return written
    try:
        write_text(path, text)
    except OSError as exc:
        raise InputError(
            f"cannot write the results ({gathered} samples) to {path}: {exc.strerror or exc}",
            hint="give a writable --output-dir (or [run].output_dir) with free space",
        ) from exc
    return path


def _provenance(loaded: LoadedPlan, started: str, settings: BenchSettings, seed: int) -> Provenance:
    return Provenance(
        swapbench_version=__version__,
        plan_path=str(loaded.path) if loaded.path else None,
        plan_sha256=loaded.sha256,
        seed=seed,
        warmup=settings.warmup,
        samples=settings.samples,
        stream=settings.stream,
        started_at=started,
        ended_at=datetime.now(UTC).isoformat(),
    )


def _with_saved(error: SwapbenchError, runs: Sequence[WorkloadRun], path: Path) -> SwapbenchError:
    gathered = sum(len(r.samples) for r in runs)
    saved = type(error)(f"{error.message}\n  {gathered} samples gathered so far are saved in {path}", hint=error.hint)
    saved.__cause__ = error
    return saved


def summarize(paths: Sequence[Path]) -> list[Results]:
    """Results files, and run folders (their targets, baseline first: what `run` printed), with the metrics
    recomputed from the recorded samples."""
    from swapbench.app.verdict import RunFolder  # noqa: PLC0415 -- its report libraries load for a folder only

    found: list[Results] = []
    for path in paths:
        found += RunFolder.open(path).results if path.is_dir() else [reanalysed(read_results(path))]
    return found
