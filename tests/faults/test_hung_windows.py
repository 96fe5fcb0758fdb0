"""A window alive but stuck, a second window on the same host, a rollback with a broken plan: production comes
back every time, and says how. Real processes, real signals, a real pty with a real interactive shell."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from swapbench.app import swap
from swapbench.demo.sandbox import CANDIDATE_LABEL, Sandbox
from swapbench.host.processes.proc import pgrep, port_open
from swapbench.host.window.lock import lock_path
from tests.helpers import (
    Barrier,
    Terminal,
    assert_production_up,
    journal_records,
    latest_run_dir,
    loaded_of,
    start_swapbench,
    swapbench,
    variant,
    wait_until,
)

pytestmark = pytest.mark.rig
BENCH = f"bench {CANDIDATE_LABEL}"
RUN_KEYS = "drain_timeout_s = 30.0"  # the [run] line the variants add their keys after
HEARTBEAT = f"{RUN_KEYS}\nheartbeat_timeout_s = 4\n"


def with_notifiers(plan: Path, told: Path) -> Path:
    """Two `[[notify]]` commands: one writes what it was told to `told`, one hangs past its 1 s deadline."""
    tell = ("import json, os, sys; open(sys.argv[1], 'w').write(json.dumps({'stdin': json.load(sys.stdin), "
            "'outcome': os.environ['SWAPBENCH_OUTCOME'], 'run_id': os.environ['SWAPBENCH_RUN_ID']}))")  # fmt: skip
    with plan.open("a") as f:
        f.write(f"\n[[notify]]\ncommand = {json.dumps([sys.executable, '-c', tell, str(told)])}\n")
        f.write(f"\n[[notify]]\ncommand = {json.dumps(['sleep', '100'])}\ntimeout_s = 1\n")
    return plan


def assert_told(told: Path, run_dir: Path, outcome: str) -> None:
    """The notifier got the outcome on stdin and in its environment; the hanging one was cut and logged."""
    said = json.loads(told.read_text())
    assert (said["outcome"], said["run_id"], said["stdin"]["outcome"]) == (outcome, run_dir.name, outcome)
    log = (run_dir / "notify.log").read_text()
    assert f"notify[0] {sys.executable}: exit 0" in log and "notify[1] sleep: timed out after 1 s (killed)" in log


def owner_pid(box: Sandbox, plan: Path) -> int:
    """The window's own process (the job, or the foreground run), as its lock names it."""
    return int(json.loads(lock_path(swap.output_dir(loaded_of(box, plan))).read_text())["pid"])


def rolled_back(box: Sandbox, plan: Path) -> dict[str, object]:
    run_dir = latest_run_dir(swap.output_dir(loaded_of(box, plan)))
    wait_until("the watchdog's rollback", (run_dir / "rollback.json").exists, 120)
    wait_until("the watchdog to finish", lambda: not pgrep(r"-m swapbench watchdog "), 60)
    return dict(json.loads((run_dir / "rollback.json").read_text()))


def assert_killed_and_restored(box: Sandbox, plan: Path, why: str) -> None:
    """The watchdog killed the run for `why`, restored and verified production, closed the journal; the
    candidate is gone; status and the rollback's record say so."""
    record = rolled_back(box, plan)
    assert record["status"] == "complete", record
    assert str(record["ended_by"]).startswith("the watchdog killed the run at ") and why in str(record["ended_by"])
    assert_production_up(box, plan)
    status = swapbench("status", str(plan))
    assert "was rolled back: complete" in status.stdout and "the watchdog killed the run at " in status.stdout, (
        status.stdout
    )


# --- hung but alive -----------------------------------------------------------------------------------------


def test_sigstop_mid_window(box: Sandbox, tmp_path: Path) -> None:
    """SIGSTOP of the window with the candidate up: no heartbeat, so the watchdog kills it and restores; the
    attached terminal ends with exit 7 and says why."""
    plan = with_notifiers(variant(box, tmp_path / "plan", (RUN_KEYS, HEARTBEAT)), tmp_path / "told.json")
    barrier = Barrier(tmp_path / "barrier", BENCH)
    proc = start_swapbench("run", "--json", str(plan), env=barrier.env)
    barrier.reached(proc)
    os.kill(owner_pid(box, plan), signal.SIGSTOP)
    stopped_at = time.monotonic()
    out, err = proc.communicate(timeout=120)
    print(f"[figure] SIGSTOP: stopped -> attached terminal ended {time.monotonic() - stopped_at:.1f} s")
    assert proc.returncode == 7, out[-2000:] + err
    assert "the watchdog killed the run at " in err and "no heartbeat for " in err and "process state: stopped" in err
    assert "production was restored and verified" in err
    record = json.loads(out)  # stdout holds the outcome alone
    assert (record["schema_version"], record["outcome"], record["exit_code"], record["changed"]) == (
        1, "aborted-restored", 7, True)  # fmt: skip
    assert record["ended_by"].startswith("the watchdog killed the run at ") and record["decision"] is None
    assert_killed_and_restored(box, plan, "no heartbeat for ")
    wait_until("the watchdog's notifications", (tmp_path / "told.json").exists, 30)
    assert_told(tmp_path / "told.json", latest_run_dir(swap.output_dir(loaded_of(box, plan))), "aborted-restored")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    barrier = Barrier(tmp_path / "barrier", BENCH)
    term = Terminal(["bash", "--norc", "--noprofile", "-i"], {**os.environ, **barrier.env, "PS1": "$ "})
    yield term
    term.close()


def test_ctrl_z_of_a_foreground_window_in_a_real_terminal(box: Sandbox, tmp_path: Path, terminal: Terminal) -> None:
    """`run --foreground` in an interactive shell, Ctrl-Z mid-window: the shell stops the job (SIGTSTP from the
    tty); the watchdog, in a session of its own, sees no heartbeat, kills the stopped run and restores."""
    plan = variant(box, tmp_path / "plan", (RUN_KEYS, HEARTBEAT))
    terminal.type(f"{sys.executable} -m swapbench run --foreground {plan}\n")
    Barrier(tmp_path / "barrier", BENCH).reached(timeout_s=120)
    run = psutil.Process(owner_pid(box, plan))
    terminal.type("\x1a")  # Ctrl-Z
    wait_until("the shell to stop the run", lambda: run.status() == psutil.STATUS_STOPPED, 10)
    stopped_at = time.monotonic()
    assert_killed_and_restored(box, plan, "process state: stopped")
    print(f"[figure] Ctrl-Z (foreground): stopped -> verified {time.monotonic() - stopped_at:.1f} s")
    assert not psutil.pid_exists(run.pid) or run.status() == psutil.STATUS_ZOMBIE


def test_ctrl_z_at_an_attached_terminal_stops_only_the_terminal(
    box: Sandbox, tmp_path: Path, terminal: Terminal
) -> None:
    """The default `run`: Ctrl-Z stops the attached terminal, never the window, which is a job of no terminal;
    it completes, and `attach` from another terminal shows it whole."""
    plan = variant(box, tmp_path / "plan", (RUN_KEYS, HEARTBEAT))
    terminal.type(f"{sys.executable} -m swapbench run {plan}\n")
    barrier = Barrier(tmp_path / "barrier", BENCH)
    barrier.reached(timeout_s=120)
    terminal.type("\x1a")
    wait_until("the shell to say the job stopped", lambda: "Stopped" in terminal.seen, 10)
    barrier.go()
    shown = swapbench("attach", "--json", str(plan))
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr
    run_dir = latest_run_dir(swap.output_dir(loaded_of(box, plan)))
    record = json.loads(shown.stdout)
    assert (record["outcome"], record["exit_code"], record["changed"], record["run_dir"]) == (
        "complete", 0, True, str(run_dir))  # fmt: skip
    assert record["decision"] == "reject" and [h["workload"] for h in record["headline"]] == ["nav", "describe"]
    assert json.loads((run_dir / "swap.json").read_text())["status"] == "complete"
    assert_production_up(box, plan)


def parser_module(folder: Path, marker: Path, body: str) -> str:
    """A nav parser that passes Phase 0 and the smoke test, and runs `body` once `marker` exists (the bench)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hangparser.py").write_text(
        "import itertools\nimport os\n\n\ndef parse(content):\n"
        f"    if os.path.exists({str(marker)!r}):\n{body}"
        '    return {"action": "forward"}, 1\n'
    )
    return f'parser = {{ callable = "hangparser:parse", python_path = [{json.dumps(str(folder))}] }}\n'


def with_parser(box: Sandbox, tmp_path: Path, body: str, *more: tuple[str, str]) -> tuple[Path, Path]:
    marker = tmp_path / "now-hang"
    parser = parser_module(tmp_path / "code", marker, body)
    plan = variant(box, tmp_path / "plan", ('name = "nav"\nkind = "nav"\n', f'name = "nav"\nkind = "nav"\n{parser}'),
                   *more)  # fmt: skip
    return plan, marker


def test_a_parser_that_loops_on_a_bench_answer_fails_that_answer_only(box: Sandbox, tmp_path: Path) -> None:
    """The parser loops for ever on the bench's answers: each call is cut at parse_timeout_s, the answer counts
    as not parsed, and the window completes on time."""
    plan, marker = with_parser(box, tmp_path, "        while True:\n            pass\n",
                               (RUN_KEYS, f"{RUN_KEYS}\nparse_timeout_s = 0.3\n"))  # fmt: skip
    with_notifiers(plan, tmp_path / "told.json")
    barrier = Barrier(tmp_path / "barrier", BENCH)
    proc = start_swapbench("run", str(plan), env=barrier.env)
    barrier.reached(proc)
    marker.touch()
    barrier.go()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:] + err
    run_dir = latest_run_dir(swap.output_dir(loaded_of(box, plan)))
    wait_until("the window's notifications", (run_dir / "notify.log").exists, 30)
    assert_told(tmp_path / "told.json", run_dir, "complete")
    nav = json.loads((run_dir / f"results-{CANDIDATE_LABEL}.json").read_text())["workloads"][0]
    errors = {s["parse"]["error"] for s in nav["samples"]}
    assert errors == {"parser did not return within 0.3 s ([run].parse_timeout_s); stopped"}, errors
    assert_production_up(box, plan)


def test_a_parser_that_swallows_its_deadline_meets_the_cap(box: Sandbox, tmp_path: Path) -> None:
    """The parser catches every interruption and loops on: the window's own thread never comes back. Its
    heartbeat goes on (another thread), so the time cap decides: killed hang_grace_s after it, and restored."""
    swallow = "        while True:\n            try:\n                while True:\n                    pass\n" \
              "            except BaseException:\n                pass\n"  # fmt: skip
    cap = "time_cap_s = 20.0\nrestore_reserve_s = 5.0\nhang_grace_s = 2.0\nbench_baseline = false"
    plan, marker = with_parser(box, tmp_path, swallow, ("time_cap_s = 600.0", cap),
                               (RUN_KEYS, f"{RUN_KEYS}\nparse_timeout_s = 0.3\n"))  # fmt: skip
    barrier = Barrier(tmp_path / "barrier", BENCH)
    proc = start_swapbench("run", str(plan), env=barrier.env)
    started = time.monotonic()
    barrier.reached(proc)
    marker.touch()
    barrier.go()
    out, err = proc.communicate(timeout=180)
    print(f"[figure] parser that swallows its deadline: start -> ended {time.monotonic() - started:.1f} s (cap 20 s)")
    assert proc.returncode == 7, out[-2000:] + err
    assert "past its time cap (hang_grace_s 2)" in err
    assert_killed_and_restored(box, plan, "past its time cap")
    run_dir = latest_run_dir(swap.output_dir(loaded_of(box, plan)))
    begun = datetime.fromisoformat(str(journal_records(run_dir / "journal.jsonl")[0]["t"])).timestamp()
    print(f"[figure] cap -> rollback.json written: {(run_dir / 'rollback.json').stat().st_mtime - begun - 20:.1f} s")


def test_a_frame_swapped_for_a_fifo_after_phase_0(box: Sandbox, tmp_path: Path) -> None:
    """A frame becomes a FIFO while the baseline is measured: the candidate's bench refuses to open it (no read
    that could block), and the window stops and restores at once."""
    source = Path(tomllib.loads(box.plan_path.read_text())["image"]["frames"])
    frames = tmp_path / "frames"
    frames.mkdir()
    for frame in sorted(source.iterdir()):
        (frames / frame.name).write_bytes(frame.read_bytes())
    plan = variant(
        box, tmp_path / "plan", (f"frames = {json.dumps(str(source))}", f"frames = {json.dumps(str(frames))}")
    )
    barrier = Barrier(tmp_path / "barrier", BENCH)
    proc = start_swapbench("run", str(plan), env=barrier.env)
    barrier.reached(proc)
    second = sorted(frames.iterdir())[1]
    second.unlink()
    os.mkfifo(second)
    barrier.go()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 7, out[-2000:] + err
    assert f"{second} is a named pipe (FIFO), not a regular file" in err, err
    assert "production was restored and verified" in err
    assert_production_up(box, plan)


# --- one window per host ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["baseline bench", BENCH], ids=["during-the-baseline-bench", "mid-window"])
def test_a_second_window_on_the_same_services_is_refused(box: Sandbox, tmp_path: Path, where: str) -> None:
    """Plan B names the same services in another output folder: refused before its first step, naming A."""
    barrier = Barrier(tmp_path / "barrier", where)
    first = start_swapbench("run", str(box.plan_path), env=barrier.env)
    barrier.reached(first)
    other = tmp_path / "other-results"
    plan_b = variant(box, tmp_path / "b", (f'output_dir = "{box.folder / "results"}"', f'output_dir = "{other}"'))
    second = swapbench("run", "--json", str(plan_b))
    assert second.returncode == 9, second.stdout[-2000:] + second.stderr
    record = json.loads(second.stdout)
    assert (record["outcome"], record["exit_code"], record["changed"]) == ("refused", 9, False)
    run_a = json.loads(lock_path(box.folder / "results").read_text())
    assert f"another window is live on this host: plan {box.plan_path} run {run_a['run_id']}" in second.stderr
    assert f"owned by `swapbench run` (pid {run_a['pid']})" in second.stderr and "service llama-prod" in second.stderr
    assert not list(other.glob("*/plan.toml")), "the refused window began a run"
    assert (port_open(box.ports["candidate"])) == (where == BENCH)  # A's candidate, and only A's, if any
    barrier.go()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, out[-2000:] + err
    assert_production_up(box)


# --- rollback never depends on the plan's current content ---------------------------------------------------


def test_rollback_with_a_broken_plan_uses_the_windows_own_copy(box: Sandbox, tmp_path: Path) -> None:
    """swapbench and its watchdog are SIGKILLed mid-window; the plan on disk is then edited to be invalid. A
    person's rollback converges on the window's copy (the one Phase 0 checked), says so, and warns."""
    plan = variant(box, tmp_path / "plan")
    barrier = Barrier(tmp_path / "barrier", BENCH)
    proc = start_swapbench("run", "--foreground", str(plan), env=barrier.env)
    barrier.reached(proc)
    for pid in pgrep(r"-m swapbench watchdog "):
        os.kill(pid, signal.SIGKILL)
    proc.kill()
    proc.communicate()
    with plan.open("a") as f:
        f.write('\n[[verify]]\nkind = "pgrep"\npattern = "phone_call(("\n')
    assert swapbench("check", str(plan)).returncode == 2  # the plan on disk no longer loads
    rolled = swapbench("rollback", str(plan))
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    run_dir = latest_run_dir(swap.output_dir(loaded_of(box, box.plan_path)))
    assert f"rolling back run {run_dir.name} with the window's own plan copy {run_dir / 'plan.toml'}" in rolled.stdout
    assert "warning: the plan on disk does not load now (plan.toml: verify[" in rolled.stdout
    assert journal_records(run_dir / "journal.jsonl")[-1]["type"] == "end"
    assert_production_up(box, box.plan_path)


# --- a stranger on the candidate's port ---------------------------------------------------------------------


def test_a_stranger_on_the_candidates_port_is_told_from_the_candidate(box: Sandbox, tmp_path: Path) -> None:
    """Another program takes the candidate's port between teardown and verify: the candidate is gone and said
    to be; the stranger is named, as a warning; production is verified (exit 0)."""
    barrier = Barrier(tmp_path / "barrier", "restore llama-prod")
    proc = start_swapbench("run", str(box.plan_path), env=barrier.env)
    barrier.reached(proc)
    port = box.ports["candidate"]
    with socket.socket() as stranger:
        stranger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        stranger.bind(("127.0.0.1", port))
        stranger.listen(8)
        barrier.go()
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:] + err
    verify = {v["name"]: v for v in json.loads((latest_run_dir(box.folder / "results") / "swap.json").read_text())
              ["verify"]}  # fmt: skip
    gone = verify[f"candidate {CANDIDATE_LABEL} gone"]
    assert gone["status"] == "warn"
    assert gone["detail"].startswith(f"gone (no process of it left), but port {port} is held by a stranger: "
                                     f"pid {os.getpid()} (")  # fmt: skip
    refused = verify[f"port {port} refused"]
    assert refused["status"] == "warn" and refused["detail"].endswith(
        f"a stranger, not candidate {CANDIDATE_LABEL} (gone)"
    )
    assert "memory not freed" not in out + err
    assert_production_up(box)
