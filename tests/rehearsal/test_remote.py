"""`swapbench remote` from a laptop (this test process, with the real `ssh` and `scp` and a known_hosts of its own)
to the rehearsal host's real `ssh.service` on 127.0.0.1:11422: key login for the operator only, no password.

The user's plan runs remotely end to end; the laptop's ssh is SIGKILLed, or its link cut by a firewall rule on
that port alone, mid-bench: the window completes on the box, and `remote attach` shows and fetches it. An
unknown host key and another swapbench version are refused in ssh's and our own words; `--install` puts this
swapbench on the box.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from rehearsal.host import OPERATOR_UID, SSH_PORT, RehearsalHost

from swapbench import __version__
from tests.helpers import Barrier, end_started, started, wait_until
from tests.rehearsal.conftest import BOX, Laptop, Production, assert_restored

CANDIDATE = "gemma-4-E4B-Q4_K_M"


def run_laptop(argv: list[str], timeout_s: float = 600.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)


def events(run_dir: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def first(found: list[dict[str, object]], phase: str) -> float:
    return float(next(e["t"] for e in found if e.get("phase") == phase))  # type: ignore[arg-type]


def test_the_users_plan_runs_remotely_end_to_end(
    host: RehearsalHost, quick: Path, laptop: Laptop, before: Production
) -> None:
    """From the laptop: the plan shipped, the supervised window started and shown, every verify step passing on
    the box, the run folder and the report copied back, saying that no figure crossed the network."""
    into = laptop.folder / "runs"
    t0 = time.monotonic()  # CLOCK_MONOTONIC: one clock for this process and the box's (one kernel)
    done = run_laptop([*laptop.remote("run", str(quick), "--json"), "--into", str(into)])
    back = time.monotonic()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads(done.stdout)
    assert (record["schema_version"], record["host"], record["exit_code"], record["link_lost"]) == (1, BOX, 0, False)
    assert record["window"]["outcome"] == "complete" and record["window"]["changed"] is True
    local = Path(record["local_dir"])
    assert local == into / BOX / record["window"]["run_id"]
    swap = json.loads((local / "swap.json").read_text())
    statuses = {v["name"]: v["status"] for v in swap["verify"]}
    assert len(statuses) == 13 and statuses.pop("VRAM of GPU 0") == "skip", swap["verify"]  # no GPU here
    assert set(statuses.values()) == {"pass"}, swap["verify"]
    assert record["report_md"] == str(local / "report.md")
    assert (
        "Every figure was measured on panda@127.0.0.1 by its own client over loopback"
        in (local / "report.md").read_text()
    )
    assert (local / f"results-{CANDIDATE}.json").exists()
    # the laptop is told as well: no notify-send here, so the bell and the line
    assert f"\aswapbench on {BOX}: complete: " in done.stderr
    seen = events(local)
    print(
        f"[figure] remote: swapbench remote -> first stop on the box {first(seen, 'stop') - t0:.2f} s; "
        f"verify -> report on the laptop {back - first(seen, 'verify'):.2f} s; whole {back - t0:.1f} s"
    )
    assert_restored(host, before)


@contextlib.contextmanager
def link_cut(port: int) -> Iterator[None]:
    """Every TCP segment to or from `port` dropped (an nftables table of the test's own): the link is gone
    without a reset, as when Wi-Fi drops. Only this port, only while the block runs."""
    table = f"swapbench_cut_{port}"
    rules = (f"table inet {table} {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n"
             f"  tcp dport {port} drop\n  tcp sport {port} drop\n }}\n}}\n")  # fmt: skip
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], check=True)


@pytest.mark.parametrize("how", ["ssh-killed", "link-cut"])
def test_a_lost_link_mid_bench_leaves_the_window_to_complete(
    host: RehearsalHost, quick: Path, laptop: Laptop, before: Production, how: str
) -> None:
    """The laptop's ssh SIGKILLed, or every packet of its link dropped, with the candidate up and being
    measured: the laptop says the link is lost (exit 11) and how to get back; the window completes on the box;
    `remote attach` shows it and fetches everything."""
    gate = host.home / f"barrier-{how}"
    shutil.rmtree(gate, ignore_errors=True)
    barrier = Barrier(gate, f"bench {CANDIDATE}")
    into = laptop.folder / how
    argv = [*laptop.remote("run", str(quick), env=barrier.env), "--into", str(into)]
    desktop = desktop_of(laptop.folder / f"desktop-{how}") if how == "ssh-killed" else dict(os.environ)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=desktop)
    started.append(proc)
    barrier.reached(proc, timeout_s=300.0)
    cut = time.monotonic()
    with link_cut(SSH_PORT) if how == "link-cut" else contextlib.nullcontext():
        if how == "ssh-killed":
            next(p for p in psutil.Process(proc.pid).children() if p.name() == "ssh").kill()
        out, err = proc.communicate(timeout=120)
        noticed = time.monotonic() - cut
    assert proc.returncode == 11, out + err
    lost = f"the link to {BOX} was lost; the window goes on there: `swapbench remote {BOX} attach "
    assert lost in out
    if how == "link-cut":  # no desktop: the bell and the line
        assert f"\aswapbench on {BOX}: link lost: {lost}" in err
    else:  # a desktop: notify-send told, critical, and no bell
        told = [json.loads(line) for line in (laptop.folder / f"desktop-{how}" / "told").read_text().splitlines()]
        assert told[0][:4] == ["--app-name=swapbench", "--urgency=critical", "--", f"swapbench on {BOX}: link lost"]
        assert told[0][4].startswith(lost) and "\a" not in err
    run_dir = json.loads((host.results / "swapbench.lock").read_text())["run_id"]  # the window still owns it
    barrier.go()
    shown = subprocess.run([*laptop.remote("attach", str(host.results / run_dir)), "--into", str(into)],
                           capture_output=True, text=True, timeout=600, check=False, env=desktop)  # fmt: skip
    print(f"[figure] remote {how}: the laptop noticed in {noticed:.1f} s; attach exit {shown.returncode}")
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr[-3000:]
    local = into / BOX / run_dir
    assert json.loads((local / "swap.json").read_text())["status"] == "complete"
    assert (local / "report.md").exists() and (local / f"results-{CANDIDATE}.json").exists()
    if how == "ssh-killed":
        told = [json.loads(line) for line in (laptop.folder / f"desktop-{how}" / "told").read_text().splitlines()]
        assert told[1][:4] == ["--app-name=swapbench", "--urgency=normal", "--", f"swapbench on {BOX}: complete"]
    assert_restored(host, before)


def desktop_of(folder: Path) -> dict[str, str]:
    """The laptop's environment with a `notify-send` first on PATH that records each call's argv in folder/told:
    a desktop's notification daemon cannot run here, so the exact call is what is checked."""
    folder.mkdir()
    fake = folder / "notify-send"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({str(folder / 'told')!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")  # fmt: skip
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"}


def test_an_unknown_host_key_is_refused_in_ssh_s_words(host: RehearsalHost, quick: Path, laptop: Laptop) -> None:
    empty = laptop.folder / "empty_known_hosts"
    empty.write_text("")
    done = run_laptop(laptop.remote("check", str(quick), known=empty), 120.0)
    assert done.returncode == 11, done.stdout + done.stderr
    assert (f"No ED25519 host key is known for [127.0.0.1]:{SSH_PORT} and you have requested strict checking."
            in done.stderr and "Host key verification failed." in done.stderr)  # fmt: skip
    assert "swapbench never turns host-key checking off" in done.stderr


def test_another_version_is_refused_and_install_puts_this_one_there(
    host: RehearsalHost, quick: Path, laptop: Laptop, before: Production
) -> None:
    """An old swapbench on the box: refused before anything is touched, with the install command. With
    `--install`, this swapbench's wheel goes to ~/.swapbench/venv there (its dependencies from the box's own
    wheelhouse: no registry here) and is then the one used."""
    old = host.home / "old-swapbench"
    old.write_text("#!/bin/sh\necho 'swapbench 0.0.1'\n")
    old.chmod(0o755)
    pip_conf = host.home / ".config" / "pip" / "pip.conf"  # the box's own index: an offline wheelhouse
    pip_conf.parent.mkdir(parents=True, exist_ok=True)
    pip_conf.write_text("[global]\nno-index = true\nfind-links = /opt/wheelhouse\n")
    for path in (old, pip_conf, pip_conf.parent, pip_conf.parent.parent):
        shutil.chown(path, OPERATOR_UID, OPERATOR_UID)
    records = set(host.results.iterdir())
    try:
        refused = run_laptop([*laptop.remote("check", str(quick)), "--swapbench", "./old-swapbench"], 120.0)
        assert refused.returncode == 11, refused.stdout + refused.stderr
        assert f"{BOX} runs swapbench 0.0.1, this laptop swapbench {__version__}: refused, nothing was touched" in (
            refused.stderr
        )
        assert f"swapbench remote {BOX} check PLAN --install" in refused.stderr
        assert set(host.results.iterdir()) == records
        installed = run_laptop([*laptop.remote("check", str(quick), "--install"), "--swapbench", "./old-swapbench"])
        assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
        said = host.exec([f"{host.home}/.swapbench/venv/bin/swapbench", "--version"])
        assert said.stdout.strip() == f"swapbench {__version__}"
        # from now on the user venv's is found without --swapbench (a `check` through it passes)
        again = run_laptop(laptop.remote("check", str(quick)), 120.0)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        assert set(host.results.iterdir()) == records
    finally:
        host.root(f"rm -rf {host.home}/.swapbench/venv {host.home}/.swapbench/wheels {host.home}/.config/pip")
        old.unlink()
    assert_restored(host, before)


@pytest.fixture(autouse=True)
def _no_laptop_left() -> Iterator[None]:
    yield
    end_started()
    wait_until("the laptop's ssh clients to end", lambda: not [
        p for p in psutil.process_iter(["name", "cmdline"]) if p.info["name"] == "ssh"
        and f"Port={SSH_PORT}" in " ".join(p.info["cmdline"] or [])], 30)  # fmt: skip
