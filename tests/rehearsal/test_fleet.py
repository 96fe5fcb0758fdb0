"""The swapbench.fleet.canary playbook, driven by real ansible-core over real SSH across two real systemd hosts.

`panda` is the rehearsal host (host networking, sshd on 127.0.0.1:11422, the candidate a sibling container);
`panda-b` is a second twin of the same image in a network namespace of its own (sshd on its end of a veth /30,
the candidate a native llama-server, since it has no container engine): both with real sudo rules and units.
A host "not touched" is asserted from its own state: the unit's journal since the play began, its main PID and
restarts, Chatterbox's PID, no run folder and no session marker.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from rehearsal.fleet import BIN, Fleet
from rehearsal.host import Link, RehearsalHost, cgroups

from swapbench.demo.rig import Rig
from tests.helpers import Barrier, started
from tests.rehearsal.conftest import (
    QUICK,
    Production,
    assert_restored,
    run_folders,
    snapshot,
    variant,
    wait_window_closed,
)

CANDIDATE = "gemma-4-E4B-Q4_K_M"
# A rule no candidate meets (its p50 at most 1 µs), with enough samples for an interval: a REJECT, not INCONCLUSIVE.
REJECTED = {**QUICK, "samples = 20 ": "samples = 8 ", "extended_samples = 100 ": "extended_samples = 8 ",
            "[decision]\n": "[decision]\nlatency_gate_p50_ms = 0.001\n"}  # fmt: skip


@pytest.fixture(scope="module")
def twin_b(rig: Rig, host: RehearsalHost) -> Iterator[RehearsalHost]:
    before = cgroups()
    box = RehearsalHost(rig=rig.root, link=Link())
    box.up()
    assert cgroups() == before, "HAZARD: a cgroup changed after booting the second twin"
    yield box
    box.down()
    assert cgroups() == before, "HAZARD: a cgroup changed after removing the second twin"


@pytest.fixture(scope="module")
def fleet(host: RehearsalHost, twin_b: RehearsalHost, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    hosts = {"panda": host, "panda-b": twin_b}
    return Fleet.make(
        tmp_path_factory.mktemp("controller"), hosts, {n: variant(t, "quick", QUICK) for n, t in hosts.items()}
    )


@pytest.fixture
def clean(fleet: Fleet) -> Iterator[dict[str, Production]]:
    """Each test starts with no fetched results, no history and no session marker, and leaves both twins whole."""
    for twin in fleet.hosts.values():
        twin.root(f"rm -rf {twin.home}/.swapbench/sessions")
    subprocess.run(["rm", "-rf", str(fleet.results), str(fleet.history_db.parent)], check=True)
    yield {name: snapshot(twin) for name, twin in fleet.hosts.items()}
    for twin in fleet.hosts.values():
        twin.repair()


def now(twin: RehearsalHost) -> str:
    return twin.root("date +%s").stdout.strip()


def assert_not_touched_since(twin: RehearsalHost, before: Production, since: str, folders: set[Path]) -> None:
    """From the box itself: no unit job on production's llama-server since `since` (its journal), the same main
    PID and restarts, the same Chatterbox, no new run folder, no session marker, every service healthy."""
    unit = twin.root(f"journalctl -u panda-llamacpp.service --since @{since} -o cat --no-pager").stdout
    assert not any(w in unit for w in ("Stopping", "Stopped", "Starting", "Started")), unit
    assert snapshot(twin) == before
    assert twin.unit_property("ActiveState") == "active"
    assert run_folders(twin) == folders
    sessions = twin.home / ".swapbench" / "sessions"
    assert not sessions.exists() or list(sessions.iterdir()) == []
    assert twin.unhealthy() == []


def fleet_report(fleet: Fleet) -> dict[str, object]:
    found: dict[str, object] = json.loads((fleet.results / "fleet-report" / "fleet-report.json").read_text())
    return found


def history(fleet: Fleet) -> list[dict[str, object]]:
    shown = subprocess.run([str(BIN / "swapbench"), "history", "--json"],
                           capture_output=True, text=True, env=fleet.env(), timeout=120, check=True)  # fmt: skip
    runs: list[dict[str, object]] = json.loads(shown.stdout)["runs"]
    return runs


def test_end_to_end_canary_then_the_rest(fleet: Fleet, clean: dict[str, Production]) -> None:
    """Phase 0 on both, the canary's window, then the other's: both run folders fetched, the fleet report
    rendered, the controller's history holding both runs, production restored on both."""
    folders = {name: run_folders(twin) for name, twin in fleet.hosts.items()}
    t0 = time.monotonic()
    done = fleet.play("e2e")
    wall = time.monotonic() - t0
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    fetched = fleet.fetched()
    assert sorted(fetched) == ["panda", "panda-b"] and all(len(v) == 1 for v in fetched.values()), fetched
    for name, twin in fleet.hosts.items():
        ran = run_folders(twin) - folders[name]
        assert {p.name for p in ran} == {fetched[name][0].name}
        local = fetched[name][0]
        for file in ("swap.json", "report.md", "report.html", f"results-{CANDIDATE}.json", "REMOTE.md"):
            assert (local / file).is_file(), f"{name}: {file}"
        assert json.loads((local / "swap.json").read_text())["status"] == "complete"
        assert_restored(twin, clean[name])
    report = fleet_report(fleet)
    assert {h["host"] for h in report["hosts"]} == {"panda", "panda-b"}  # type: ignore[attr-defined]
    assert report["verdict"] == "pending"  # describe is judged by a person on both: never a stronger verdict
    for ext in ("md", "html", "csv"):
        assert (fleet.results / "fleet-report" / f"fleet-report.{ext}").is_file()
    runs = {str(r["host"]): r for r in history(fleet)}
    assert sorted(runs) == ["panda", "panda-b"]
    assert {r["outcome"] for r in runs.values()} == {"complete"}
    assert str(runs["panda"]["ended_at"]) <= str(runs["panda-b"]["started_at"])  # the canary's window first
    windows = sum(float(str(r["downtime_s"] or 0)) for r in runs.values())
    print(f"[figure] fleet e2e: playbook {wall:.1f} s for 2 hosts (production down {windows:.1f} s in all)")


def test_the_canary_rejects_and_the_other_host_is_not_touched(fleet: Fleet, clean: dict[str, Production]) -> None:
    """The canary (panda-b, named by swapbench_canary) decides REJECT on a rule no candidate meets: the play stops
    there, its run folder is fetched, and panda has no window: its own journal and unit say so."""
    rejected = variant(fleet.hosts["panda-b"], "rejected", REJECTED)
    panda = fleet.hosts["panda"]
    since, folders = now(panda), run_folders(panda)
    done = fleet.play("reject", {"swapbench_canary": "panda-b"}, plans={"panda-b": rejected})
    assert done.returncode == 2, done.stdout[-5000:]
    stops = "The rollout stops at panda-b: the decision on panda-b is REJECT: NOT met: nav p50 (nav) 95 % interval"
    assert stops in done.stdout, done.stdout[-3000:]
    assert sorted(fleet.fetched()) == ["panda-b"]
    assert fleet_report(fleet)["verdict"] == "reject"
    assert_not_touched_since(panda, clean["panda"], since, folders)
    assert_restored(fleet.hosts["panda-b"], clean["panda-b"])


def test_production_not_restored_on_the_canary_stops_the_play(fleet: Fleet, clean: dict[str, Production]) -> None:
    """Chatterbox will not start again on the canary (panda-b): the module fails naming the box, the play stops,
    the folder still comes back (the role's `always`), and panda is not touched."""
    b, panda = fleet.hosts["panda-b"], fleet.hosts["panda"]
    hook = b.her_os / "services" / "chatterbox" / ".fail-every-start"
    hook.touch()
    since, folders = now(panda), run_folders(panda)
    done = fleet.play("not-restored", {"swapbench_canary": "panda-b"})
    assert done.returncode == 2, done.stdout[-5000:]
    assert "fatal: [panda-b]: FAILED!" in done.stdout
    assert '"msg": "production was NOT restored on panda-b: PRODUCTION IS NOT VERIFIED:' in done.stdout
    assert "service chatterbox did not come back after 2 attempts" in done.stdout
    fetched = fleet.fetched()
    assert sorted(fetched) == ["panda-b"]
    assert json.loads((fetched["panda-b"][0] / "swap.json").read_text())["status"] == "restore-failed"
    assert fleet_report(fleet)["verdict"] == "reject"  # production NOT restored on a host: never adopt
    assert_not_touched_since(panda, clean["panda"], since, folders)
    assert b.unhealthy() == ["chatterbox"]  # as the module said: a person must act (the fixture repairs it)
    hook.unlink()


def test_phase_0_failing_on_the_second_host_touches_nothing_anywhere(
    fleet: Fleet, clean: dict[str, Production]
) -> None:
    """panda-b's sudo rule lost `start`: Phase 0 fails there alone, and neither host has a window."""
    b = fleet.hosts["panda-b"]
    b.root(b.sudoers_script(verbs=("stop",)))
    marks = {name: (now(twin), run_folders(twin)) for name, twin in fleet.hosts.items()}
    done = fleet.play("phase-0")
    assert done.returncode == 2, done.stdout[-5000:]
    assert "fatal: [panda-b]: FAILED!" in done.stdout
    assert "panda-b: Phase 0 failed, nothing was touched: sudo -k -n -l systemctl start panda-llamacpp.service" in (
        done.stdout
    )
    assert "fatal: [panda]" not in done.stdout  # its Phase 0 passed; any_errors_fatal ended the play for it too
    assert fleet.fetched() == {}
    for name, twin in fleet.hosts.items():
        assert_not_touched_since(twin, clean[name], *marks[name])


def test_the_controllers_ssh_dies_mid_window_and_a_rerun_resumes(fleet: Fleet, clean: dict[str, Production]) -> None:
    """ansible-playbook and every ssh of the controller SIGKILLed while the canary (panda) benches: the window
    completes there; the rerun of the same session attaches to it (never a second window there) and goes on to
    panda-b."""
    panda = fleet.hosts["panda"]
    gate = panda.home / "barrier-fleet"
    subprocess.run(["rm", "-rf", str(gate)], check=True)
    barrier = Barrier(gate, f"bench {CANDIDATE}")
    folders = run_folders(panda)
    proc = subprocess.Popen(fleet.argv("resume", env={"panda": barrier.env}), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=fleet.env(), start_new_session=True)  # fmt: skip
    started.append(proc)
    barrier.reached(proc, timeout_s=300.0)
    masters = str(fleet.folder / "cp")
    controller = [p for p in psutil.process_iter(["name", "cmdline"])
                  if p.info["name"] == "ssh" and masters in " ".join(p.info["cmdline"] or [])]  # fmt: skip
    os.killpg(proc.pid, signal.SIGKILL)
    for ssh in controller:
        with contextlib.suppress(psutil.NoSuchProcess):  # it may end with ansible-playbook, before this
            ssh.kill()
    proc.communicate(timeout=60)
    assert controller, "the controller had no ssh to the canary"
    (ran,) = run_folders(panda) - folders
    barrier.go()
    wait_window_closed(panda)
    assert json.loads((ran / "swap.json").read_text())["status"] == "complete"
    assert_restored(panda, clean["panda"])
    done = fleet.play("resume")
    assert done.returncode == 0, done.stdout[-5000:]
    assert run_folders(panda) - folders == {ran}  # the window it started, attached to: never a second one
    fetched = fleet.fetched()
    assert [p.name for p in fetched["panda"]] == [ran.name] and len(fetched["panda-b"]) == 1
    assert_restored(fleet.hosts["panda-b"], clean["panda-b"])
