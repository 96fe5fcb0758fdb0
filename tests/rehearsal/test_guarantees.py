"""The hardening guarantees again, on the real managers: the operator's SSH session hanging up, one owner per
window, a disk that fills mid-window, and a production service that docker manages."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from rehearsal.host import OPERATOR_UID, RehearsalHost

from swapbench.host.window.journal import active_journal_path, read_journal
from tests.helpers import Terminal
from tests.rehearsal.conftest import QUICK, Production, assert_restored, variant, wait_window_closed

DEMO_FRAMES = Path(__file__).resolve().parents[2] / "src" / "swapbench" / "demo" / "frames"

CANDIDATE = "gemma-4-E4B-Q4_K_M"


running: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_window_left() -> Iterator[None]:
    """A test that failed half-way leaves no `swapbench run` behind (the repair fixture then heals the twin)."""
    yield
    while running:
        proc = running.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)


class Window:
    """`swapbench run` inside, in the background, stopped at a barrier (`WHERE:barrier`) until `go()`."""

    def __init__(
        self, host: RehearsalHost, plan: Path, where: str, name: str, pty: bool = False, foreground: bool = False,
        env: dict[str, str] | None = None,
    ):  # fmt: skip
        """`foreground`: the window in this process (a test that fills its disk: no events reach a viewer)."""
        self.barrier = host.home / ".rehearsal" / f"barrier-{name}"
        env = {**(env or {}), "SWAPBENCH_TESTING": "1", "SWAPBENCH_FAULT": f"{where}:barrier"}
        env["SWAPBENCH_BARRIER"] = str(self.barrier)
        argv = ["swapbench", "run", *(["--foreground"] if foreground else []), str(plan)]
        if pty:  # on a terminal of its own, as an SSH login gives: `script` holds the pty's other end
            argv = ["script", "-qefc", shlex.join(["exec", *argv]), "/dev/null"]
        pipe = subprocess.PIPE
        self.proc = subprocess.Popen(host.exec_argv(argv, env=env), env=host.env, text=True,
                                     stdin=subprocess.DEVNULL, stdout=pipe, stderr=pipe)  # fmt: skip
        running.append(self.proc)

    def reached(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not (self.barrier / "reached").exists():
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.monotonic() < deadline, "the run never reached its barrier"
            time.sleep(0.05)

    def go(self) -> None:
        (self.barrier / "go").touch()

    def finish(self, timeout_s: float = 300.0) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout_s)
        return self.proc.returncode, out, err


def swapbench_process(plan: Path) -> psutil.Process:
    """The operator's `swapbench run PLAN`, seen from this machine (the host's PID namespace)."""
    for proc in psutil.process_iter(["cmdline", "uids"]):
        cmdline = proc.info["cmdline"] or []
        ours = proc.info["uids"] and proc.info["uids"].real == OPERATOR_UID and cmdline[-2:] == ["run", str(plan)]
        if ours and any("swapbench" in part for part in cmdline[:3]):
            return proc
    raise AssertionError(f"no swapbench run {plan} found")


def latest_run_dir(folder: Path) -> Path:
    return max(folder.glob("*/swap.json"), key=os.path.getmtime).parent


def test_the_operators_ssh_session_hangs_up_mid_window(host: RehearsalHost, quick: Path, before: Production) -> None:
    """swapbench runs on a pty (`script`, as an SSH login gives one) and the pty's other end goes away with the
    candidate up: the kernel sends SIGHUP to the attached terminal. It detaches; the window, a job of no
    terminal, measures to its end and restores; `swapbench attach` shows it whole and exits 0."""
    window = Window(host, quick, "bench", "sighup", pty=True)
    window.reached()
    run = swapbench_process(quick)
    terminal = psutil.Process(run.ppid())
    assert terminal.name() == "script"
    terminal.kill()  # the session's terminal is gone
    run.wait(timeout=60)  # the attached terminal detaches; its exit code went to `script`, which is gone
    window.go()
    window.finish()
    shown = host.swapbench("attach", str(quick))
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr
    run_dir = latest_run_dir(host.results)
    swap = json.loads((run_dir / "swap.json").read_text())
    assert (swap["status"], swap["error"]) == ("complete", None)
    candidate = json.loads((run_dir / f"results-{CANDIDATE}.json").read_text())
    assert candidate["status"] == "complete" and [len(w["samples"]) for w in candidate["workloads"]] == [2, 2]
    assert_restored(host, before)


def test_one_owner_per_window_on_real_managers(host: RehearsalHost, quick: Path, before: Production) -> None:
    window = Window(host, quick, "bench", "lock")
    window.reached()
    second = host.swapbench("run", str(quick))
    rollback = host.swapbench("rollback", str(quick))
    status = host.swapbench("status", str(quick))
    window.go()
    code, out, err = window.finish()
    assert (second.returncode, rollback.returncode) == (9, 9), second.stderr + rollback.stderr
    assert "another swapbench owns this window: `swapbench run` of run" in second.stderr
    assert "another swapbench owns this window: `swapbench run` of run" in rollback.stderr
    assert status.stdout.startswith("RUNNING:")
    assert code == 0, out[-2000:] + err
    assert_restored(host, before)


@contextmanager
def filled(disk: Path) -> Iterator[None]:
    """Fill the disk to the last byte (from outside, as another program on the box would), then free it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        block = b"\0" * (1 << 20)
        while block:
            try:
                os.write(fd, block)
            except OSError:
                block = block[: len(block) // 2]
        yield
    finally:
        os.close(fd)
        filler.unlink()


def test_disk_filled_mid_bench_loses_nothing(host: RehearsalHost, before: Production) -> None:
    output = host.small_disk / "results"
    plan = variant(host, "small-disk", {**QUICK, 'output_dir = "~/workplace/her/her-os/benchmark-results"':
                                        f'output_dir = "{output}"'})  # fmt: skip
    window = Window(host, plan, "bench", "disk", foreground=True)
    window.reached()
    with filled(host.small_disk):
        window.go()
        code, out, err = window.finish()
    assert code == 0, out[-2000:] + err  # the ballast gave back the room the records needed
    assert "Traceback" not in out + err
    run_dir = latest_run_dir(output)
    results = json.loads((run_dir / f"results-{CANDIDATE}.json").read_text())
    assert results["status"] == "complete" and [len(w["samples"]) for w in results["workloads"]] == [2, 2]
    assert json.loads((run_dir / "swap.json").read_text())["status"] == "complete"
    assert_restored(host, before)


@pytest.fixture
def echo_container(host: RehearsalHost) -> str:
    """A production service docker manages: a small HTTP server in a container with a restart policy."""
    name = "panda-echo"
    started = host.exec(["docker", "run", "-d", "--name", name, "--label", "swapbench.rehearsal=service",
                         "--restart", "unless-stopped", "-p", "127.0.0.1:8790:8790", host.image_tag(),
                         "python3", "-m", "http.server", "8790"])  # fmt: skip
    assert started.returncode == 0, started.stderr
    return name  # removed by the repair after each test (label swapbench.rehearsal=service)


def test_docker_managed_production_service(
    host: RehearsalHost, quick: Path, before: Production, echo_container: str
) -> None:
    plan = variant(host, "with-docker-service", {
        'stop_order = ["chatterbox", "panda-llamacpp"]': 'stop_order = ["panda-echo", "chatterbox", "panda-llamacpp"]',
        'restore_order = ["panda-llamacpp", "chatterbox"]':
            'restore_order = ["panda-llamacpp", "chatterbox", "panda-echo"]',
        **QUICK,
    })  # fmt: skip
    with plan.open("a") as out:  # one more production service, the docker-managed one
        out.write('\n[[services]]\nname = "panda-echo"\nmanager = "docker"\ncontainer = "panda-echo"\n'
                  'health = { url = "http://127.0.0.1:8790/" }\nsettle_s = 1\n')  # fmt: skip
    started_at = host.exec(["docker", "inspect", "-f", "{{.State.StartedAt}}", echo_container]).stdout.strip()
    run = host.swapbench("run", str(plan))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    state = host.exec(["docker", "inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}", echo_container]).stdout
    running, restarted_at = state.split(maxsplit=1)
    assert running == "true" and restarted_at.strip() != started_at  # stopped and started for real
    swap = json.loads((latest_run_dir(host.results) / "swap.json").read_text())
    verified = {v["name"]: v["status"] for v in swap["verify"]}
    assert verified["service panda-echo up"] == "pass"
    assert_restored(host, before)


# --- hung but alive, on the real managers ---------------------------------------------------------------------

HEARTBEAT = {**QUICK, "time_cap_s = 1500": "time_cap_s = 1500\nheartbeat_timeout_s = 4"}


def window_owner(host: RehearsalHost) -> int:
    """The window's own process as its lock names it (a PID of the rehearsal host's namespace)."""
    return int(json.loads((host.results / "swapbench.lock").read_text())["pid"])


def rolled_back(host: RehearsalHost, why: str) -> tuple[dict[str, object], float]:
    """The watchdog's rollback record once written (`why` in its ended_by), and when (wall clock: after the
    restore and its verify)."""
    run_dir = max((p for p in host.results.iterdir() if p.is_dir()), key=os.path.getmtime)  # the window's
    deadline = time.monotonic() + 180
    while not (run_dir / "rollback.json").exists():
        assert time.monotonic() < deadline, "no rollback.json: the watchdog did not act"
        time.sleep(0.2)
    wait_window_closed(host)
    written = (run_dir / "rollback.json").stat().st_mtime
    record = dict(json.loads((run_dir / "rollback.json").read_text()))
    assert record["status"] == "complete", record
    ended_by = str(record["ended_by"])
    assert ended_by.startswith("the watchdog killed the run at ") and why in ended_by, ended_by
    status = host.swapbench("status", str(host.plan)).stdout
    assert "was rolled back: complete" in status and "the watchdog killed the run at " in status, status
    return record, written


def test_sigstop_mid_bench_on_real_managers(host: RehearsalHost, before: Production) -> None:
    """SIGSTOP of the window (the job) with the candidate container up: no heartbeat, so its watchdog kills it,
    takes the lock over and restores through the real sudo rule; the attached terminal ends with exit 7."""
    window = Window(host, variant(host, "sigstop", HEARTBEAT), "bench", "sigstop")
    window.reached()
    host.root(f"kill -STOP {window_owner(host)}")
    stopped = time.time()
    code, out, err = window.finish(180)
    assert code == 7, out[-3000:] + err
    assert "no heartbeat for " in out + err and "process state: stopped" in out + err
    _, written = rolled_back(host, "no heartbeat for ")
    print(f"[figure] rehearsal SIGSTOP: stopped -> production verified {written - stopped:.1f} s (heartbeat 4 s)")
    assert_restored(host, before)


def test_ctrl_z_of_a_foreground_window_in_a_real_terminal_on_real_managers(
    host: RehearsalHost, before: Production
) -> None:
    """`swapbench run --foreground` in an interactive bash on a real pty inside the host (`podman exec -it`),
    Ctrl-Z mid-bench: bash stops the job; the watchdog, in a session of its own, kills it and restores."""
    plan = variant(host, "ctrl-z", HEARTBEAT)
    gate = host.home / ".rehearsal" / "barrier-ctrl-z"
    env = {"SWAPBENCH_TESTING": "1", "SWAPBENCH_FAULT": "bench:barrier", "SWAPBENCH_BARRIER": str(gate), "PS1": "$ "}
    argv = host.exec_argv(["bash", "--norc", "--noprofile", "-i"], env=env)
    terminal = Terminal([*argv[:2], "-it", *argv[2:]], host.env)
    try:
        terminal.type(f"swapbench run --foreground {plan}\n")
        deadline = time.monotonic() + 180
        while not (gate / "reached").exists():
            assert time.monotonic() < deadline, f"the run never reached its barrier: {terminal.seen[-2000:]}"
            time.sleep(0.05)
        terminal.type("\x1a")  # Ctrl-Z: bash stops the job; the watchdog's record names the stopped state
        stopped = time.time()
        _, written = rolled_back(host, "process state: stopped")
    finally:
        terminal.close()
    print(f"[figure] rehearsal Ctrl-Z (foreground): stopped -> production verified {written - stopped:.1f} s")
    assert_restored(host, before)


def hanging_parser(host: RehearsalHost, name: str) -> tuple[Path, Path]:
    """A plan whose nav parser passes Phase 0 and the smoke test, then never returns (it swallows every
    interruption, so its deadline cannot free the window's thread) once the marker exists; cap 60 s."""
    code, marker = host.home / "hang", host.home / ".rehearsal" / f"{name}.now-hang"
    code.mkdir(exist_ok=True)
    (code / "hangparser.py").write_text(
        "import os\n\n\ndef parse(content):\n"
        f"    while os.path.exists({str(marker)!r}):\n"
        "        try:\n            while True:\n                pass\n        except BaseException:\n            pass\n"
        '    return {"action": "forward"}, 1\n'
    )
    for path in (code, code / "hangparser.py"):
        os.chown(path, OPERATOR_UID, OPERATOR_UID)
    parser = '\nparser = { callable = "hangparser:parse", python_path = ["~/hang"] }\n'
    plan = variant(host, name, {**QUICK, 'name = "nav"\nkind = "nav"\n': f'name = "nav"\nkind = "nav"{parser}',
                                "time_cap_s = 1500": "time_cap_s = 60\nhang_grace_s = 2\nparse_timeout_s = 0.3",
                                "restore_reserve_s = 300": "restore_reserve_s = 20",
                                "bench_baseline = true": "bench_baseline = false"})  # fmt: skip
    return plan, marker


def test_a_parser_that_swallows_its_deadline_meets_the_cap_on_real_managers(
    host: RehearsalHost, before: Production
) -> None:
    """The window's own thread never comes back from the parser; its heartbeat goes on (another thread), so the
    cap decides: killed hang_grace_s after it, and production restored and verified."""
    plan, marker = hanging_parser(host, "swallow")
    window = Window(host, plan, "bench", "swallow")
    window.reached()
    begun = datetime.fromisoformat(str(read_journal(active_journal_path(host.results)).records[0]["t"]))
    marker.touch()
    window.go()
    code, out, err = window.finish(240)
    marker.unlink()
    assert code == 7, out[-3000:] + err
    assert "past its time cap (hang_grace_s 2)" in out + err
    _, written = rolled_back(host, "past its time cap")
    print(
        f"[figure] rehearsal parser past the cap: cap -> production verified {written - begun.timestamp() - 60:.1f} s"
    )
    assert_restored(host, before)


def test_a_frame_swapped_for_a_fifo_after_phase_0_on_real_managers(host: RehearsalHost, before: Production) -> None:
    """The plan's frames folder gets a FIFO in place of a frame while the candidate is up: its bench refuses to
    open it (no read that could block), and the window stops and restores at once."""
    frames = host.home / "frames"
    shutil.rmtree(frames, ignore_errors=True)
    shutil.copytree(DEMO_FRAMES, frames)
    for path in [frames, *frames.iterdir()]:
        os.chown(path, OPERATOR_UID, OPERATOR_UID)
    old = 'path = "~/car-view.jpg"     # the same camera frame for E2B and E4B'
    window = Window(host, variant(host, "fifo", {**QUICK, old: 'frames = "~/frames"'}), "bench", "fifo")
    window.reached()
    second = sorted(frames.iterdir())[1]
    second.unlink()
    os.mkfifo(second)
    window.go()
    code, out, err = window.finish(180)
    assert code == 7, out[-3000:] + err
    assert f"{second} is a named pipe (FIFO), not a regular file" in out + err
    assert "production was restored and verified" in out + err
    assert_restored(host, before)


# --- the window as a transient unit of the operator's own systemd manager -------------------------------------

USER_RUNTIME = f"/run/user/{OPERATOR_UID}"


@pytest.fixture
def user_manager(host: RehearsalHost) -> Iterator[dict[str, str]]:
    """The operator's own systemd user manager inside the host (as a login with lingering gives one); the
    environment that reaches it (XDG_RUNTIME_DIR, as pam_systemd sets it at login). The image has no pam_systemd,
    so a runtime drop-in gives the manager its XDG_RUNTIME_DIR."""
    drop_in = f"/run/systemd/system/user@{OPERATOR_UID}.service.d"
    units = f"user-runtime-dir@{OPERATOR_UID}.service user@{OPERATOR_UID}.service"
    started = host.root(
        f"mkdir -p {drop_in} && printf '[Service]\\nEnvironment=XDG_RUNTIME_DIR={USER_RUNTIME}\\n' >{drop_in}/x.conf"
        f" && systemctl daemon-reload && timeout 60 systemctl start {units} && test -S {USER_RUNTIME}/systemd/private"
    )
    assert started.returncode == 0, started.stdout + started.stderr
    yield {"XDG_RUNTIME_DIR": USER_RUNTIME}
    # --no-block: under this machine's hybrid cgroups the container's systemd never hears that the emptied
    # user@ cgroup is empty, and would wait out its 90 s stop timeout (seen: "deactivating (final-sigkill)")
    host.root(f"systemctl stop --no-block {units}; rm -rf {drop_in}; systemctl daemon-reload")


def test_the_window_is_a_transient_unit_of_the_operators_manager(
    host: RehearsalHost, quick: Path, before: Production, user_manager: dict[str, str]
) -> None:
    """With a user manager to take it, the job runs as `swapbench-window-RUN_ID.service` there: its last limit
    (the cap, the grace, 30 s), KillMode=process, the job its main process and in its cgroup, the caller's
    environment handed over (the barrier's variables reached it), output in window.log; the unit is collected
    once the window has completed and restored production."""
    window = Window(host, quick, "bench", "unit", env=user_manager)
    window.reached()
    run_id = json.loads((host.results / "swapbench.lock").read_text())["run_id"]
    unit = f"swapbench-window-{run_id}.service"
    shown = host.exec(["systemctl", "--user", "show", "-p", "ActiveState,MainPID,KillMode,RuntimeMaxUSec", unit],
                      env=user_manager)  # fmt: skip
    props = dict(line.split("=", 1) for line in shown.stdout.splitlines())
    assert props["ActiveState"] == "active" and props["KillMode"] == "process", props
    assert props["RuntimeMaxUSec"] == "25min 40s", props  # time_cap_s 1500 + hang_grace_s 10 + 30
    assert int(props["MainPID"]) == window_owner(host)
    cgroup = host.exec(["cat", f"/proc/{props['MainPID']}/cgroup"]).stdout
    assert f"/{unit}" in cgroup, cgroup
    window.go()
    code, out, err = window.finish()
    assert code == 0, out[-3000:] + err
    gone = host.exec(["systemctl", "--user", "is-active", unit], env=user_manager)
    assert (gone.returncode, gone.stdout.strip()) == (3, "inactive"), gone  # collected: no failed unit left
    run_dir = host.results / run_id
    assert "bench " in (run_dir / "window.log").read_text()
    assert json.loads((run_dir / "job.json").read_text())["unit"] == unit
    assert_restored(host, before)
