"""A hostile day, from outside: disks that fill or turn read-only mid-window, second actors racing the owner,
signals of every kind, listeners that never answer. Real mounts, real signals, real processes. After each:
production up, the candidate gone, samples kept, the documented exit code — and never a traceback."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from swapbench.app import swap
from swapbench.demo.sandbox import CANDIDATE_LABEL, Sandbox
from swapbench.host.processes.proc import pgrep, port_open
from swapbench.host.services import ServiceOps
from swapbench.host.window.lock import lock_path
from tests.faults.conftest import Mounts, fill
from tests.helpers import (
    Barrier,
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
# `run --foreground` where a test acts on the window's own process (kills it, turns its disk read-only): the
# window is then the test's child, as it was before runs became jobs of no terminal. Elsewhere `run` is the
# supervised job and the test's child only its attached terminal.


def output_dir_line(box: Sandbox) -> str:
    return f'output_dir = "{box.folder / "results"}"'


def on(box: Sandbox, folder: Path, output_dir: Path, *more: tuple[str, str]) -> Path:
    """The sandbox plan with its run folder moved to `output_dir` (a tmpfs, a read-only view...)."""
    return variant(box, folder, (output_dir_line(box), f'output_dir = "{output_dir}"'), *more)


def no_traceback(proc: subprocess.CompletedProcess[str] | tuple[str, str]) -> None:
    out, err = (proc.stdout, proc.stderr) if isinstance(proc, subprocess.CompletedProcess) else proc
    assert "Traceback" not in out + err, out[-3000:] + err[-3000:]


def watchdog_pids() -> list[int]:
    return pgrep(r"-m swapbench watchdog ")


def wait_watchdog_gone(timeout_s: float = 180.0) -> None:
    wait_until("the watchdog to finish", lambda: not watchdog_pids(), timeout_s)


# --- disks --------------------------------------------------------------------------------------------------


def test_full_output_disk_is_refused_in_phase_0(box: Sandbox, tmp_path: Path, mounts: Mounts) -> None:
    disk = mounts.tmpfs(4)
    fill(disk)
    run = swapbench("run", str(on(box, tmp_path, disk)))
    assert run.returncode == 6, run.stderr
    assert f"run.output_dir {disk} writable" in run.stderr and "nothing was touched" in run.stderr
    no_traceback(run)
    assert_production_up(box)


def test_read_only_output_dir_is_refused_in_phase_0(box: Sandbox, tmp_path: Path, mounts: Mounts) -> None:
    view = mounts.read_only_view(mounts.tmpfs(64))
    run = swapbench("run", str(on(box, tmp_path, view)))
    assert run.returncode == 6, run.stderr
    assert "cannot write there: Read-only file system" in run.stderr
    no_traceback(run)
    assert_production_up(box)


def test_disk_filled_mid_bench_loses_nothing(box: Sandbox, tmp_path: Path, mounts: Mounts) -> None:
    disk = mounts.tmpfs(64)
    plan = on(box, tmp_path / "plan", disk)
    barrier = Barrier(tmp_path / "barrier", BENCH)
    proc = start_swapbench("run", "--foreground", str(plan), env=barrier.env)
    barrier.reached(proc)
    fill(disk)  # the disk is full while the candidate is measured
    barrier.go()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:] + err  # the ballast gave back the room the records needed
    no_traceback((out, err))
    run_dir = latest_run_dir(disk)
    results = json.loads((run_dir / f"results-{CANDIDATE_LABEL}.json").read_text())
    assert results["status"] == "complete" and [len(w["samples"]) for w in results["workloads"]] == [2, 2, 2]
    assert json.loads((run_dir / "swap.json").read_text())["status"] == "complete"
    assert_production_up(box, plan)


def test_disk_turning_read_only_mid_window_restores_and_rescues_the_samples(
    box: Sandbox, tmp_path: Path, mounts: Mounts
) -> None:
    disk = mounts.ext4(64)
    plan = on(box, tmp_path / "plan", disk)
    barrier = Barrier(tmp_path / "barrier", BENCH)
    proc = start_swapbench("run", "--foreground", str(plan), env=barrier.env)
    barrier.reached(proc)
    mounts.fail(disk)  # the kernel turns the run folder's disk read-only under swapbench's open files
    barrier.go()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 7, out[-2000:] + err
    assert "production was restored and verified, but the run's records are incomplete" in err
    no_traceback((out, err))
    run_id = latest_run_dir(disk).name
    rescued = Path.home() / ".cache" / "swapbench" / "rescue" / run_id / f"results-{CANDIDATE_LABEL}.json"
    assert f"{rescued.name} was saved to {rescued.parent}" in out
    assert [len(w["samples"]) for w in json.loads(rescued.read_text())["workloads"]] == [2, 2, 2]
    assert not port_open(box.ports["candidate"])
    loaded = loaded_of(box, plan)
    assert all(ServiceOps(s, loaded.resolve).is_up() for s in loaded.plan.services)
    # the journal could not be closed on the read-only disk: it asks for a rollback, which only closes it
    mounts.repair(disk)
    again = swapbench("run", str(plan))
    assert again.returncode == 9 and "swapbench rollback PLAN" in again.stderr
    assert swapbench("rollback", str(plan)).returncode == 0
    assert_production_up(box, plan)


def test_watchdog_restores_on_a_disk_turned_read_only(box: Sandbox, tmp_path: Path, mounts: Mounts) -> None:
    disk = mounts.ext4(64)
    plan = on(box, tmp_path / "plan", disk)
    barrier = Barrier(tmp_path / "barrier", BENCH)
    proc = start_swapbench("run", "--foreground", str(plan), env=barrier.env)
    barrier.reached(proc)
    mounts.fail(disk)
    proc.kill()  # swapbench dies with production down and its journal open, on a disk that refuses writes
    proc.communicate()
    wait_watchdog_gone()
    loaded = loaded_of(box, plan)
    for svc in ("tts", "llama-prod"):
        assert ServiceOps(loaded.plan.service(svc), loaded.resolve).is_up(), svc
    assert not port_open(box.ports["candidate"]) and not pgrep(f"--port {box.ports['candidate']}")
    mounts.repair(disk)
    assert swapbench("rollback", str(plan)).returncode == 0  # closes the journal the watchdog could not
    assert_production_up(box, plan)


def test_damaged_run_files_never_crash_status(box: Sandbox, tmp_path: Path) -> None:
    plan = variant(box, tmp_path / "plan", (output_dir_line(box), f'output_dir = "{tmp_path / "out"}"'))
    good = tmp_path / "out" / "20260101-000000-good"
    good.mkdir(parents=True)
    (good / "swap.json").write_text(
        json.dumps({"run_id": "good", "status": "complete", "checks": [], "verify": [], "spans": [], "downtime": None})
    )
    empty = tmp_path / "out" / "20260102-000000-empty"
    empty.mkdir()
    (empty / "swap.json").write_text("")
    os.utime(empty / "swap.json", (time.time() + 5, time.time() + 5))
    status = swapbench("status", str(plan))
    assert status.returncode == 0, status.stderr
    assert "swap.json is damaged" in status.stdout and "last finished run good: complete" in status.stdout
    report = swapbench("report", str(empty))
    assert report.returncode == 3 and "what to do" in report.stderr
    no_traceback(report)


# --- races: one owner per window ------------------------------------------------------------------------------


def test_rollback_during_a_live_run_is_refused(box: Sandbox, tmp_path: Path) -> None:
    barrier = Barrier(tmp_path / "barrier", BENCH)
    proc = start_swapbench("run", "--foreground", str(box.plan_path), env=barrier.env)
    barrier.reached(proc)
    second = swapbench("rollback", str(box.plan_path))
    assert second.returncode == 9, second.stderr
    assert f"(pid {proc.pid}," in second.stderr and "another swapbench owns this window" in second.stderr
    assert port_open(box.ports["candidate"])  # the live candidate was left alone
    status = swapbench("status", str(box.plan_path))
    assert "RUNNING: `swapbench run` of run" in status.stdout
    assert "no swapbench owns it" not in status.stdout
    barrier.go()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:] + err
    assert_production_up(box)


def slow_tts(box: Sandbox, folder: Path) -> Path:
    """The plan with a TTS that takes 4 s to load when restarted: restore is slow enough to race."""
    return variant(box, folder, ('"--load-s", "0.5"', '"--load-s", "4"'))


def tts_servers(box: Sandbox) -> list[int]:
    return pgrep(f"swapbench.demo.sandbox tts --port {box.ports['tts']} ")


def assert_one_tts(box: Sandbox) -> None:
    servers = tts_servers(box)
    assert len(servers) == 1, f"TTS started twice: {servers}"
    pid, _ = (box.folder / "tts.pid").read_text().split()
    assert int(pid) == servers[0], "the TTS pidfile drifted from the running TTS"


def test_manual_rollback_while_the_watchdog_rolls_back(box: Sandbox, tmp_path: Path) -> None:
    plan = slow_tts(box, tmp_path / "plan")
    barrier = Barrier(tmp_path / "barrier", BENCH)
    proc = start_swapbench("run", "--foreground", str(plan), env=barrier.env)
    barrier.reached(proc)
    proc.kill()
    proc.communicate()
    lock = lock_path(swap.output_dir(loaded_of(box, plan)))
    wait_until("the watchdog to own the window", lambda: '"role": "watchdog"' in lock.read_text(), 60)
    second = swapbench("rollback", str(plan))
    assert second.returncode == 9 and "`swapbench watchdog`" in second.stderr, second.stderr
    wait_watchdog_gone()
    assert_one_tts(box)
    journal = journal_records(latest_run_dir(swap.output_dir(loaded_of(box, plan))) / "journal.jsonl")
    seqs = [int(str(r["seq"])) for r in journal]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), seqs  # one writer: the sequence never goes back
    assert_production_up(box, plan)


def test_sigkill_during_restore_never_starts_a_service_twice(box: Sandbox, tmp_path: Path) -> None:
    plan = slow_tts(box, tmp_path / "plan")
    barrier = Barrier(tmp_path / "barrier", "restore tts")
    proc = start_swapbench("run", "--foreground", str(plan), env=barrier.env)
    barrier.reached(proc)
    assert not tts_servers(box)  # stopped for the window: restore has not started it yet
    barrier.go()
    wait_until("restore to start the TTS (it then loads for 4 s)", lambda: bool(tts_servers(box)), 60)
    proc.kill()
    proc.communicate()
    wait_watchdog_gone()
    assert_one_tts(box)
    assert_production_up(box, plan)


# --- signals ------------------------------------------------------------------------------------------------


def test_sighup_mid_bench_detaches_and_the_window_goes_on(box: Sandbox, tmp_path: Path) -> None:
    """The operator's SSH session drops: the terminal is gone (a pty closed) and SIGHUP arrives. The attached
    terminal detaches; the window measures to its end and restores; `attach` shows it and exits 0."""
    plan = variant(box, tmp_path / "plan", ("samples = 1\n", "samples = 20\n"),
                   ("extended_samples = 2", "extended_samples = 20"),
                   ("time_cap_s = 600.0", "time_cap_s = 600.0\nbench_baseline = false"))  # fmt: skip
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "swapbench", "run", str(plan)], stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)  # fmt: skip
    os.close(slave)
    seen = ""
    while f"bench {CANDIDATE_LABEL}" not in seen:  # the phase line, colours stripped
        assert proc.poll() is None, seen
        seen += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", os.read(master, 65536).decode(errors="replace"))
    os.kill(proc.pid, signal.SIGHUP)
    os.close(master)  # the terminal is gone: any write to it now fails with EIO
    assert proc.wait(timeout=60) == 0  # detached: the window is not this terminal's to end
    run_dir = latest_run_dir(swap.output_dir(loaded_of(box, plan)))
    assert (run_dir / "job.json").exists()
    shown = swapbench("attach", str(plan))
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr
    assert f"run {run_dir.name}: complete" in shown.stdout and "verify (after restore)" in shown.stdout
    results = json.loads((run_dir / f"results-{CANDIDATE_LABEL}.json").read_text())
    assert results["status"] == "complete" and [len(w["samples"]) for w in results["workloads"]] == [20, 20, 20]
    status = swapbench("status", str(plan))
    assert f"last finished run {run_dir.name}: complete" in status.stdout
    assert_production_up(box, plan)


def test_ctrl_c_again_and_again_during_restore(box: Sandbox, tmp_path: Path) -> None:
    barrier = Barrier(tmp_path / "barrier", "restore llama-prod")
    proc = start_swapbench("run", str(box.plan_path), env=barrier.env)
    barrier.reached(proc)
    barrier.go()
    while proc.poll() is None:  # an impatient operator
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.05)
    out, err = proc.communicate()
    assert proc.returncode == 0, out[-2000:] + err  # the work was done before the first Ctrl-C
    no_traceback((out, err))
    assert "decision: REJECT" in out and "verify (after restore)" in out
    assert (latest_run_dir(box.folder / "results") / "report.md").exists()
    assert_production_up(box)


def test_sigkill_of_swapbench_and_its_watchdog(box: Sandbox, tmp_path: Path) -> None:
    barrier = Barrier(tmp_path / "barrier", BENCH)
    proc = start_swapbench("run", "--foreground", str(box.plan_path), env=barrier.env)
    barrier.reached(proc)
    for pid in watchdog_pids():
        os.kill(pid, signal.SIGKILL)
    proc.kill()
    proc.communicate()
    run = swapbench("run", str(box.plan_path))
    assert run.returncode == 9, run.stderr  # the unfinished journal, before any contract (port taken...)
    assert "no swapbench owns it" in run.stderr and "swapbench rollback PLAN" in run.stderr
    status = swapbench("status", str(box.plan_path))
    assert "UNFINISHED run" in status.stdout and "production may be down" in status.stdout
    rolled = swapbench("rollback", str(box.plan_path))
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert_production_up(box)


# --- "refused" means refused --------------------------------------------------------------------------------


@pytest.fixture
def deaf_listener(box: Sandbox) -> Iterator[int]:
    """A listener on the candidate's port that never accepts: its backlog is full, connects time out."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", box.ports["candidate"]))
    server.listen(0)
    queued = []
    for _ in range(4):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", box.ports["candidate"]))
        queued.append(client)
    yield box.ports["candidate"]
    for s in [*queued, server]:
        s.close()


def test_a_listener_that_never_accepts_is_not_a_free_port(box: Sandbox, deaf_listener: int) -> None:
    run = swapbench("run", str(box.plan_path))
    assert run.returncode == 6, run.stderr
    assert f"port {deaf_listener} does not answer (connect timed out); held by pid {os.getpid()}" in run.stderr
    loaded = loaded_of(box)
    assert all(ServiceOps(s, loaded.resolve).is_up() for s in loaded.plan.services)


def test_a_listener_that_never_accepts_fails_verify(deaf_listener: int) -> None:
    from swapbench.host.preflight.checks import run_verify_step
    from swapbench.plan.models import PortRefusedVerify

    found = run_verify_step(PortRefusedVerify(kind="port_refused", port=deaf_listener))
    assert found.failed and f"no answer, not refused: pid {os.getpid()}" in found.detail


# --- markup ---------------------------------------------------------------------------------------------------


def test_user_text_prints_as_written(box: Sandbox, tmp_path: Path) -> None:
    phone = f'pattern = "phone_call.py auto {box.ports["nav"]}"\n\n[[verify]]'
    bracketed = f'pattern = "[p]hone_call.py auto {box.ports["nav"]}"\n\n[[verify]]'
    plan = variant(box, tmp_path / "plan", (phone, bracketed))
    dry = swapbench("check", "--dry-run", str(plan))
    assert dry.returncode == 0 and f"[p]hone_call.py auto {box.ports['nav']}" in dry.stdout
    broken = variant(box, tmp_path / "broken", ('stop_order = ["tts", "llama-prod"]', 'stop_order = ["tts", "[/x]"]'))
    bad = swapbench("check", str(broken))
    assert bad.returncode == 2 and "'[/x]', which is not a [[services]] name" in bad.stderr
    no_traceback(bad)


def test_no_process_outlives_the_suite(box: Sandbox) -> None:
    """Last in the module: no watchdog and no candidate are left behind by the scenarios above."""
    assert not watchdog_pids()
    assert not [p for p in psutil.process_iter(["cmdline"]) if f"--port {box.ports['candidate']}" in
                " ".join(p.info["cmdline"] or [])]  # fmt: skip
