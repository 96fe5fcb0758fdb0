"""`swapbench check` / `run` / `rollback` on a sandbox host of real processes: real llama-servers, a real
TTS answering WAV, real signals, real files. One sandbox serves the whole module: every run must leave its
production up, so each test also proves the previous one restored it."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swapbench.app import swap
from swapbench.app.dry_run import dry_run
from swapbench.core.steps import Status, SwapStatus
from swapbench.demo import sandbox as sandbox_module
from swapbench.demo.rig import Rig
from swapbench.demo.sandbox import Sandbox, build_sandbox
from swapbench.errors import JournalError, PreflightFailed
from swapbench.host.candidate.prepare import LOST_SHARE
from swapbench.host.services import ServiceOps
from swapbench.host.window.journal import JournalState, read_journal
from swapbench.plan.load import load_plan
from tests.helpers import assert_production_up, loaded_of, swapbench

pytestmark = pytest.mark.rig


@pytest.fixture(scope="module")
def box(rig: Rig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sandbox = build_sandbox(tmp_path_factory.mktemp("sandbox"), rig, samples=1, extended=2)
    yield sandbox
    sandbox.teardown()


def test_check_passes_on_the_sandbox(box: Sandbox) -> None:
    found = swap.check(loaded_of(box))
    assert not [o for o in found if o.status is Status.FAIL], found
    names = " ".join(o.name for o in found)
    assert "port" in names and "TTSStoppedFrame" in names and "service tts up now" in names
    by_name = {o.name: o for o in found}
    version = by_name["candidates[0] (gemma3-270m).launch.version"]
    assert version.status is Status.PASS and "(build 11434, " in version.detail
    cache = by_name["page cache for the candidates' model files"]
    assert cache.status is Status.PASS and cache.detail.startswith("242 MiB to read before the window; ")


def test_end_to_end_swap(box: Sandbox) -> None:
    loaded = loaded_of(box)
    assert_production_up(box)
    outcome = swap.run(loaded, on_phase=lambda phase, target: None)
    report = outcome.report
    assert report.status is SwapStatus.COMPLETE, report.error
    assert [o.name for o in report.verify if o.status is Status.FAIL] == []
    assert any(o.status is Status.SKIP and "VRAM" in o.name for o in report.verify)  # no GPU here: shown, not passed
    assert_production_up(box)
    files = sorted(Path(p).name for p in report.results_files)
    assert files == ["results-gemma3-270m.json", "results-smollm2-135m.json"]
    cand = json.loads(Path(report.results_files[1]).read_text())
    assert all(w["extension"].startswith("extended") for w in cand["workloads"])
    assert all(len(w["samples"]) == 2 for w in cand["workloads"])  # 1 -> 2: the extension ran
    journal = read_journal(outcome.run_dir / "journal.jsonl")
    assert journal.closed and journal.records[-1]["status"] == "complete"
    steps = [(r["type"], r.get("step"), r.get("target")) for r in journal.records]
    assert steps.index(("intent", "stop", "tts")) < steps.index(("done", "stop", "tts"))
    assert steps.index(("done", "restore", "llama-prod")) < steps.index(("intent", "restore", "tts"))
    assert report.downtime is not None and report.downtime.total_s > 0
    # the window holds the models and production's own stop and start; swapbench's own time between its steps
    # ("other") is under a second, and the model files were read before the first stop, not inside the window
    down = report.downtime
    assert down.own_s is not None and down.stop_s is not None and down.own_s <= 1.0, down
    assert down.overhead_s == pytest.approx(down.stop_s + down.own_s)
    phases = [s.phase.value for s in report.spans]
    assert phases[:3] == ["baseline-bench", "prepare", "stop"]
    (prepared,) = report.prepare
    assert prepared.label == "gemma3-270m" and "(build 11434, " in (prepared.version or "")
    assert prepared.first_read is not None and prepared.reread is not None
    # what the page cache lost during the baseline bench is this host's doing; the report names more than 5 %
    assert prepared.reread.cached_share is not None and 0.0 <= prepared.reread.cached_share <= 1.0
    assert (prepared.note is not None) == (1 - prepared.reread.cached_share > LOST_SHARE), prepared
    assert (outcome.run_dir / "swap.json").exists() and (outcome.run_dir / "plan.toml").exists()
    # the comparison and the decision: PENDING until a person judges the describe outputs
    assert (outcome.run_dir / "comparison.json").exists() and outcome.report_md is not None
    html = (outcome.run_dir / "report.html").read_text()
    assert html.count("<svg") >= 3 and "data:image/jpeg;base64," in html  # latency plots, phases, the image
    # Gemma 3 270M with the rig's random-weight projector answers describe with whitespace only: degenerate
    # answers, counted apart from errors, reject it whatever a person says of the describe outputs
    describe = next(w for w in cand["workloads"] if w["workload"]["name"] == "describe")
    assert [s["degenerate"] for s in describe["samples"]] == ["empty", "empty"]
    assert describe["metrics"]["degenerate"] == 2 and describe["metrics"]["errors"] == 0
    assert outcome.decision is not None and outcome.decision.status.value == "reject"
    assert "NOT met: describe: 2 of 2 answers degenerate (2 empty) > 5%" in outcome.decision.reasons
    assert "open: describe outputs not judged yet" in " ".join(outcome.decision.reasons)
    better = swapbench("decide", str(outcome.run_dir), "--describe", "better", "--note", "blank answers")
    assert better.returncode == 20 and "REJECT" in better.stdout and "degenerate" in better.stdout
    md = (outcome.run_dir / "report.md").read_text()
    assert "## Decision: REJECT" in md and "2 of 2 answers were degenerate" in md and "(empty answer)" in md
    assert "- met: describe judged better" in md
    # a person who accepts blank describe answers and gates on latency: 2 samples give no interval of the p50,
    # so the gate can be neither met nor failed — INCONCLUSIVE (22); without the gate, ADOPT (0)
    copy = outcome.run_dir / "plan.toml"
    relaxed = copy.read_text().replace("[decision]\n", "[decision]\nmax_degenerate_share = 1.0\n")
    copy.write_text(relaxed.replace("[decision]\n", "[decision]\nlatency_gate_p50_ms = 60000.0\n"))
    gated = swapbench("decide", str(outcome.run_dir), "--describe", "better")
    assert gated.returncode == 22 and "INCONCLUSIVE" in gated.stdout and "too few for an interval" in gated.stdout
    copy.write_text(relaxed)
    better = swapbench("decide", str(outcome.run_dir), "--describe", "better")
    assert better.returncode == 0 and "ADOPT" in better.stdout and "met: describe judged better" in better.stdout
    # the [report] documents: written at the end of the run and again by each decide, changed once per run
    registry = (box.folder / "docs" / "RESOURCE-REGISTRY.md").read_text()
    assert registry.count(f"(run {report.run_id})") == 1 and "ADOPT" in registry and "REJECT" not in registry
    assert registry.count("| gemma3-270m |") == 1
    research = (box.folder / "docs" / "RESEARCH-CANDIDATE.md").read_text()
    assert research.count("swapbench:results:begin") == 1 and f"run {report.run_id}" in research


def test_dry_run_lists_everything_in_order(box: Sandbox) -> None:
    steps = dry_run(loaded_of(box))
    phases = [phase for phase, _ in steps]
    order = ["check", "baseline-bench", "prepare", "stop", "drain", "launch", "ready", "smoke", "bench", "teardown",
             "drain-candidate", "restore", "verify", "drift-bench", "report"]  # fmt: skip
    collapsed = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert collapsed == order
    stops = [what.split(":")[0] for phase, what in steps if phase == "stop"]
    restores = [what.split(":")[0] for phase, what in steps if phase == "restore"]
    assert stops == ["tts", "llama-prod"] and restores == ["llama-prod", "tts"]
    launch = next(what for phase, what in steps if phase == "launch")
    assert "--jinja" in launch and "--host 127.0.0.1" in launch and f"--port {box.ports['candidate']}" in launch
    decision = [what for phase, what in steps if phase == "report"][1:]
    assert decision[0].startswith("[decision]: adopt if schema adherence >= 95% AND describe judged better AND at ")
    assert "verdicts against ±5%" in decision[0]
    assert decision[1:] == []  # every rule of the sandbox's [decision] applies (vram_in_band is false there)
    # each workload's request, exactly as sent (the image elided): the part a reviewer most wants to see
    bodies = {what.split(":")[0]: what for phase, what in steps if phase == "bench" and "/v1/chat/completions" in what}
    assert list(bodies) == ["nav", "nav-cached", "describe"]
    nav = json.loads(bodies["nav"].split("\n", 1)[1])
    assert (nav["max_tokens"], nav["chat_template_kwargs"], nav["cache_prompt"]) == (
        20,
        {"enable_thinking": False},
        False,
    )
    image = nav["messages"][0]["content"][0]["image_url"]["url"]
    first = sorted((Path(sandbox_module.__file__).parents[1] / "frames").iterdir())[0]  # the demo's frames
    assert image == f"<image/jpeg image, {first.stat().st_size:,} bytes, elided>"  # the file's exact size
    assert "base64" not in "\n".join(bodies.values())
    run = swapbench("run", "--dry-run", str(box.plan_path))
    assert run.returncode == 0 and "would do, in order" in run.stdout
    assert_production_up(box)  # nothing ran


def test_failed_contract_touches_nothing(box: Sandbox) -> None:
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the last candidate's TIME_WAIT
        blocker.bind(("127.0.0.1", box.ports["candidate"]))
        blocker.listen()
        with pytest.raises(PreflightFailed) as info:
            swap.run(loaded_of(box), on_phase=lambda phase, target: None)
    assert f"port {box.ports['candidate']} is in use" in info.value.message
    assert_production_up(box)


def test_unfinished_journal_blocks_run_until_rollback(box: Sandbox) -> None:
    loaded = loaded_of(box)
    path = swap.journal_path(loaded)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"seq":1,"type":"begin","run_id":"crashed-run"}\n{"seq":2,"type":"intent","step":"stop"')
    with pytest.raises(JournalError, match="crashed-run did not finish and no swapbench owns it"):
        swap.run(loaded, on_phase=lambda phase, target: None)
    run = swapbench("run", str(box.plan_path))
    assert run.returncode == 9 and "swapbench rollback PLAN" in run.stderr  # 9 before any contract (not 6)
    status = swapbench("status", str(box.plan_path))
    assert "UNFINISHED run crashed-run" in status.stdout and "production may be down" in status.stdout
    rolled = swapbench("rollback", str(box.plan_path))
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert_production_up(box)
    assert swapbench("rollback", str(box.plan_path), "--if-unfinished").stdout.startswith("no unfinished run")


# --- the fault matrix ------------------------------------------------------------------------------------------

BOUNDARIES = ["baseline bench", "prepare", "stop tts", "stop llama-prod", "drain", "launch", "ready", "smoke", "bench",
              "teardown", "restore llama-prod", "restore tts"]  # fmt: skip
FAULTS = ["exception", "sigint", "sigterm", "sighup", "sigkill", "candidate-crash", "timecap"]
MATRIX = [(b, f) for b in BOUNDARIES for f in FAULTS]


def wait_for_rollback(box: Sandbox, timeout_s: float = 120.0) -> None:
    journal = swap.journal_path(loaded_of(box))
    deadline = time.monotonic() + timeout_s
    while journal.exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def expected_exit(boundary: str, fault: str) -> int:
    """The exit code each fault must give, as the README promises."""
    if fault == "sigkill":
        return 7  # the window's job is gone; its watchdog restores, and the attached terminal says so
    if fault == "sighup":
        return 0  # the terminal went away, not a reason to stop: the window goes on to its end
    if boundary.startswith("restore"):
        return 0  # the work is done; restore is never cut short (an exception there only skips the hook)
    if boundary == "teardown" and fault != "exception":
        return 0  # the work is done: a signal, a cap or a dead candidate now only meets teardown and restore
    if fault == "candidate-crash":
        return 7 if boundary in ("ready", "smoke", "bench") else 0  # before the launch there is nothing to kill
    return 7  # stopped early; production restored and verified


def expected_error(at: str, fault: str, candidate_url: str) -> str:
    """What the swap's recorded error must say when the fault stopped it (exit 7): the fault, where it fired."""
    if fault == "exception":
        return f"swapbench failed: RuntimeError: injected fault at {at}"
    if fault in ("sigint", "sigterm"):
        return f"{fault.upper()} received before {at}"
    if fault == "timecap":
        return f"time cap reached before {at} ("
    assert fault == "candidate-crash", fault
    step, _, label = at.partition(" ")
    if step == "ready":  # the ready wait sees the process gone
        return f"candidate {label} died while loading: llama-server exited with code "
    return f"nothing answers at {candidate_url} (ConnectError: "  # the smoke's request, the bench's health probe


def fired_at(log: Path, boundary: str, fault: str) -> str:
    """The step boundary the fault fired at, from the hook's log: exactly once, at a step named by `boundary`."""
    lines = log.read_text().splitlines() if log.exists() else []
    assert len(lines) == 1, f"the fault fired {len(lines)} times, not once: {lines}"
    at, _, fired = lines[0].rpartition(" ")
    assert fired == fault and at.startswith(boundary), lines[0]
    return at


def swap_records(results: Path) -> set[Path]:
    return set(results.glob("*/swap.json"))


def assert_recorded(written: set[Path], exit_code: int, at: str, fault: str, candidate_url: str) -> None:
    """The one swap.json the run wrote: aborted with the fault named (exit 7), else complete with no error. A
    fault fires between steps, so no step fails, except the one a killed candidate makes fail: the one after."""
    assert len(written) == 1, written
    record = json.loads(written.pop().read_text())
    failed = [span["phase"] for span in record["spans"] if not span["ok"]]
    if exit_code != 7:
        assert (record["status"], record["error"], failed) == (SwapStatus.COMPLETE.value, None, []), record
        return
    assert record["status"] == SwapStatus.ABORTED.value
    assert expected_error(at, fault, candidate_url) in record["error"], record["error"]
    assert failed == ([at.partition(" ")[0]] if fault == "candidate-crash" else []), record["spans"]


@pytest.mark.parametrize(("boundary", "fault"), MATRIX, ids=[f"{b}-{f}".replace(" ", "_") for b, f in MATRIX])
def test_fault_matrix(box: Sandbox, tmp_path: Path, boundary: str, fault: str) -> None:
    log, results = tmp_path / "faults.log", box.folder / "results"
    before = swap_records(results)
    env = {"SWAPBENCH_TESTING": "1", "SWAPBENCH_FAULT": f"{boundary}:{fault}", "SWAPBENCH_FAULT_LOG": str(log)}
    run = swapbench("run", str(box.plan_path), env=env)
    assert run.returncode == expected_exit(boundary, fault), run.stdout[-2000:] + run.stderr
    at = fired_at(log, boundary, fault)
    written = swap_records(results) - before
    if fault == "sigkill":
        assert written == set()  # killed where the fault fired: the run wrote no record of its own
        wait_for_rollback(box)  # the watchdog's rollback
    else:
        assert "Traceback" not in run.stdout + run.stderr
        assert_recorded(written, run.returncode, at, fault, f"http://127.0.0.1:{box.ports['candidate']}")
    if run.returncode == 7:
        assert "production was restored and verified" in run.stderr
    if fault == "sigkill":
        assert "the watchdog rolled back at " in run.stderr and "swapbench died with the window open" in run.stderr
    assert_production_up(box)


def test_candidate_never_ready(box: Sandbox, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    text = box.plan_path.read_text().replace(
        '"1"]\nready_timeout_s = 60.0\nsettle_s = 0.3', '"1"]\nready_timeout_s = 0.05\nsettle_s = 0.0'
    )
    assert "ready_timeout_s = 0.05" in text
    plan.write_text(text)
    run = swapbench("run", str(plan))
    assert run.returncode == 7 and "not ready" in run.stderr + run.stdout
    assert_production_up(box)


def test_smoke_refuses_a_candidate_whose_every_answer_is_empty(box: Sandbox, tmp_path: Path) -> None:
    """Describe only: Gemma 3 270M with the rig's projector answers it with whitespace, so nothing the candidate
    says is usable — the smoke test stops the swap before the bench, and production comes back."""
    text = re.sub(r'\[\[workloads\]\]\nname = "nav.*?\n\n', "", box.plan_path.read_text(), flags=re.DOTALL)
    assert text.count("[[workloads]]") == 1 and 'name = "describe"' in text
    plan = tmp_path / "plan.toml"
    plan.write_text(text.replace("time_cap_s = 600.0", "time_cap_s = 600.0\nbench_baseline = false"))
    run = swapbench("run", str(plan))
    assert run.returncode == 7, run.stdout[-2000:] + run.stderr
    assert "smoke gemma3-270m: every answer was empty: describe (finish_reason length)" in run.stderr
    assert_production_up(box)


@pytest.mark.parametrize("service", ["tts", "llama-prod"])
def test_service_fails_its_first_restart(box: Sandbox, service: str) -> None:
    box.fail_next_start(service)
    run = swapbench("run", str(box.plan_path))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    latest = max(box.folder.glob("results/*/swap.json"), key=os.path.getmtime)
    swap_json = json.loads(latest.read_text())
    assert swap_json["status"] == SwapStatus.COMPLETE.value
    journal = read_journal(latest.parent / "journal.jsonl")
    assert any(r["type"] == "failed" and r["target"] == service for r in journal.records)
    assert_production_up(box)


def test_real_time_cap(box: Sandbox, tmp_path: Path) -> None:
    """A cap so short that it runs out during the bench: the bench stops, production comes back."""
    text = box.plan_path.read_text().replace(
        "time_cap_s = 600.0", "time_cap_s = 9.0\nrestore_reserve_s = 1.0\nbench_baseline = false"
    )
    text = text.replace("samples = 1\n", "samples = 500\n").replace("extended_samples = 2", "extended_samples = 500")
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    run = swapbench("run", str(plan))
    assert run.returncode == 7 and "time cap" in run.stderr + run.stdout
    assert_production_up(box)


# --- the journal, cut anywhere -----------------------------------------------------------------------------------


def a_real_journal(box: Sandbox) -> bytes:
    journals = sorted(box.folder.glob("results/*/journal.jsonl"), key=os.path.getmtime)
    if not journals:
        swap.run(loaded_of(box), on_phase=lambda phase, target: None)
        journals = sorted(box.folder.glob("results/*/journal.jsonl"), key=os.path.getmtime)
    return journals[-1].read_bytes()


def test_journal_cut_at_every_byte_offset_reads_or_refuses(box: Sandbox, tmp_path: Path) -> None:
    data = a_real_journal(box)
    full = read_journal_bytes(tmp_path, data).records
    for cut in range(len(data) + 1):
        # a cut only ever tears the last line, which is dropped: never refused, never an invented record
        state = read_journal_bytes(tmp_path, data[:cut])
        assert state.records == full[: len(state.records)]
        assert not state.closed or cut >= data.rindex(b'"type":"end"')
        assert len(state.records) >= data[:cut].count(b"\n") - 0


def read_journal_bytes(tmp_path: Path, data: bytes) -> JournalState:
    path = tmp_path / "cut.jsonl"
    path.write_bytes(data)
    return read_journal(path)


def test_rollback_converges_from_any_cut_journal(box: Sandbox) -> None:
    """At every record boundary and in the middle of every record: rollback from that journal leaves production
    up. Before some of them production is really stopped, so rollback has to bring it back."""
    loaded = loaded_of(box)
    data = a_real_journal(box)
    ends = [i + 1 for i, b in enumerate(data) if b == ord("\n")]
    cuts = sorted({0, *ends, *[e - 7 for e in ends if e > 7]})
    for n, cut in enumerate(cuts):
        if n % 8 == 3:  # the real thing: production down when rollback starts
            for name in ("tts", "llama-prod"):
                ServiceOps(loaded.plan.service(name), loaded.resolve).stop(30.0)
        swap.journal_path(loaded).write_bytes(data[:cut].replace(b'"type":"end"', b'"type":"xend"'))
        report = swap.do_rollback(loaded)
        assert report is not None and report.status is SwapStatus.COMPLETE, (cut, report)
        assert_production_up(box)


def test_damaged_journal_is_refused_with_a_way_out(box: Sandbox) -> None:
    loaded = loaded_of(box)
    swap.journal_path(loaded).parent.mkdir(parents=True, exist_ok=True)
    swap.journal_path(loaded).write_text('{"seq":1,"type":"begin","run_id":"x"}\nGARBAGE\n{"seq":3,"type":"done"}\n')
    with pytest.raises(JournalError, match="damaged at line 2"):
        swap.run(loaded, on_phase=lambda phase, target: None)
    report = swap.do_rollback(loaded)  # converges on the plan alone
    assert report is not None and report.status is SwapStatus.COMPLETE
    assert_production_up(box)


def test_baseline_from_an_earlier_results_file(box: Sandbox, tmp_path: Path) -> None:
    """[baseline].results: production is not measured again; the comparison uses the earlier run's file."""
    earlier = sorted(box.folder.glob("results/*/results-smollm2-135m.json"), key=os.path.getmtime)
    if not earlier:
        swap.run(loaded_of(box), on_phase=lambda phase, target: None)
        earlier = sorted(box.folder.glob("results/*/results-smollm2-135m.json"), key=os.path.getmtime)
    text = box.plan_path.read_text()
    url_line = f'url = "http://127.0.0.1:{box.ports["llama"]}"\n'
    assert url_line in text
    plan = tmp_path / "plan.toml"
    plan.write_text(text.replace(url_line, f'results = "{earlier[-1]}"\n', 1))
    outcome = swap.run(load_plan(plan), on_phase=lambda phase, target: None)
    assert [Path(p).name for p in outcome.report.results_files] == ["results-gemma3-270m.json"]
    comparison = json.loads((outcome.run_dir / "comparison.json").read_text())
    assert (comparison["baseline"], comparison["candidate"]) == ("smollm2-135m", "gemma3-270m")
    assert_production_up(box)


def test_a_chat_workload_in_a_window(box: Sandbox, tmp_path: Path) -> None:
    """A plan of one chat workload: the window stops production, benches the candidate on the JSONL prompts
    (text only), restores, and the decision and the report carry the chat kind's pass rate."""
    text = box.plan_path.read_text()
    workloads = text[text.index("[[workloads]]") : text.index("[baseline]")]
    (tmp_path / "qa.jsonl").write_text('{"prompt": "What is 2+2? Answer with the digit only.", "expected": "4"}\n'
                                       '{"prompt": "Say hello."}\n')  # fmt: skip
    chat = f'[[workloads]]\nname = "qa"\nkind = "chat"\nprompts = "{tmp_path / "qa.jsonl"}"\nmax_tokens = 8\n\n'
    plan = tmp_path / "plan.toml"
    plan.write_text(text.replace(workloads, chat).replace("[decision]\n", "[decision]\nmin_pass_rate = 0.5\n"))
    outcome = swap.run(load_plan(plan), on_phase=lambda phase, target: None)
    assert outcome.report.status is SwapStatus.COMPLETE, outcome.report.error
    assert_production_up(box)
    candidate = json.loads((outcome.run_dir / "results-gemma3-270m.json").read_text())
    [qa] = candidate["workloads"]
    assert (qa["workload"]["kind"], qa["workload"]["image"], qa["workload"]["max_tokens"]) == ("chat", False, 8)
    assert [s["item"] for s in qa["samples"]] == [0, 1]  # samples = 1, extended to 2: each line once
    assert "passed" in qa["samples"][0]["scores"] and qa["samples"][1]["scores"] == {}
    passed = qa["samples"][0]["scores"]["passed"]
    assert qa["metrics"]["scores"]["passed"] == {"n": 1, "passed": int(passed), "share": float(passed)}
    assert outcome.decision is not None
    rule = next(r for r in outcome.decision.reasons if "pass rate" in r)
    assert rule == ("met: pass rate 100% >= 50% (qa, 1 of 1 checked answers)" if passed
                    else "NOT met: pass rate 0% < 50% (qa, 0 of 1 checked answers)")  # fmt: skip
    report = (outcome.run_dir / "report.md").read_text()
    assert "| pass rate |" in report and "schema adherence |" not in report
