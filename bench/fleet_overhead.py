"""The fleet's overhead per host, beyond the windows themselves: the canary playbook on the two rehearsal twins.

Boots the rehearsal host and its second twin (rehearsal.host, Link), then runs `swapbench.fleet.canary` over
real SSH `--runs` times, each a new session (so each is a whole rollout: Phase 0 on both, the canary's window,
the other's). Each run reports:
  wall      ansible-playbook's own wall time, start to exit;
  windows   the two windows' own time on the boxes (the first to the last event of each window's events.jsonl:
            the window as its job runs it, its own Phase 0 included);
  overhead  (wall - windows) / hosts: Ansible's start, SSH, module transfer, the playbook's Phase 0 check mode,
            the fetch of each run folder, the REMOTE.md note, the fleet report and history on the controller;
and where the overhead went, from ansible-core's own junit callback (each task's time, summed per kind).
Ansible's ControlPersist masters are on (its default), in a folder of this run's own, ended after each run.

    PYTHONPATH=. .venv/bin/python bench/fleet_overhead.py [--runs 3] [--keep]   # rehearsal/ lives beside src/
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from rehearsal.fleet import Fleet
from rehearsal.host import OPERATOR_UID, Link, RehearsalHost, cgroups

from swapbench.demo.rig import find_rig

QUICK = {
    "samples = 20 ": "samples = 2 ",
    "extended_samples = 100 ": "extended_samples = 2 ",
    "warmup = 3": "warmup = 1",
    "max_tokens = 128": "max_tokens = 16",
}  # fmt: skip  (tests/rehearsal/conftest.py QUICK)
KINDS = {"Phase 0": "phase 0 (check mode)", "The window (": "window module", "fetched": "fetch",
         "came from": "REMOTE.md", "fleet report": "fleet report", "history": "history", "stop rules": "stop rules",
         "canary": "canary pick"}  # fmt: skip


def quick_plan(twin: RehearsalHost) -> Path:
    text = twin.plan.read_text()
    for old, new in QUICK.items():
        text = text.replace(old, new)
    path = twin.home / "quick.toml"
    path.write_text(text)
    os.chown(path, OPERATOR_UID, OPERATOR_UID)
    return path


def window_seconds(run_dir: Path) -> float:
    """The window's own span: its first event to its last (events.jsonl, the box's monotonic clock)."""
    times = [float(json.loads(line)["t"]) for line in (run_dir / "events.jsonl").read_text().splitlines() if line]
    return max(times) - min(times)


def task_times(folder: Path) -> dict[str, float]:
    found: dict[str, float] = {}
    for report in folder.glob("*.xml"):
        for case in ET.parse(report).getroot().iter("testcase"):
            name = case.get("name", "")
            kind = next((k for key, k in KINDS.items() if key in name), "other")
            found[kind] = found.get(kind, 0.0) + float(case.get("time", "0"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave both twins up")
    args = parser.parse_args()
    before = cgroups()
    rig = find_rig().root
    twins = {"panda": RehearsalHost(rig=rig), "panda-b": RehearsalHost(rig=rig, link=Link())}
    for twin in twins.values():
        twin.up()
    try:
        with tempfile.TemporaryDirectory(prefix="swapbench-fleet-bench-") as work:
            fleet = Fleet.make(Path(work), twins, {name: quick_plan(twin) for name, twin in twins.items()})
            rows: list[tuple[float, float, float, dict[str, float]]] = []
            for index in range(args.runs):
                junit = Path(work) / f"junit-{index}"
                env = {**fleet.env(), "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.junit",
                       "JUNIT_OUTPUT_DIR": str(junit), "JUNIT_TASK_CLASS": "yes"}  # fmt: skip
                argv = fleet.argv(f"bench-{index}-{os.getpid()}")
                t0 = time.monotonic()
                done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, check=False)
                wall = time.monotonic() - t0
                fleet.close_masters()
                if done.returncode != 0:
                    raise SystemExit(f"run {index}: ansible-playbook exited {done.returncode}\n{done.stdout[-3000:]}")
                folders = [p for runs in fleet.fetched().values() for p in runs]
                windows = sum(window_seconds(p) for p in folders[-len(twins) :])
                subprocess.run(["rm", "-rf", str(fleet.results)], check=True)
                rows.append((wall, windows, (wall - windows) / len(twins), task_times(junit)))
                print(f"run {index + 1}: wall {wall:.1f} s, windows {windows:.1f} s, "
                      f"overhead {rows[-1][2]:.1f} s per host", flush=True)  # fmt: skip
    finally:
        if not args.keep:
            for twin in twins.values():
                twin.down()
    if cgroups() != before:
        raise SystemExit("HAZARD: the cgroup of PID 1 or of this process changed")
    print(f"\nmedian of {len(rows)} runs, 2 hosts, ControlPersist on:")
    wall, windows, overhead = (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows),
                               statistics.median(r[2] for r in rows))  # fmt: skip
    print(f"  wall {wall:.1f} s, windows {windows:.1f} s, overhead {overhead:.1f} s per host")
    kinds = sorted({k for r in rows for k in r[3]})
    for kind in kinds:
        per_host = statistics.median(r[3].get(kind, 0.0) for r in rows) / len(twins)
        print(f"  {kind:<22} {per_host:6.2f} s per host (task time, junit)")


if __name__ == "__main__":
    main()
