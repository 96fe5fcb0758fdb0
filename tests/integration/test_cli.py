"""The command line as a user runs it: real subprocesses, real servers, exit codes and messages."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swapbench.host.candidate.llama_server import LlamaServer, free_port

pytestmark = pytest.mark.rig


def swapbench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swapbench", *args],
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
        cwd=cwd,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )


def test_bench_url_then_summary(smol: LlamaServer, tmp_path: Path) -> None:
    run = swapbench(
        "bench",
        "--url",
        smol.spec.url,
        "--label",
        "gemma-4-E2B",
        "--workload",
        "nav",
        "-n",
        "3",
        "--warmup",
        "1",
        "--output-dir",
        str(tmp_path),
    )
    assert run.returncode == 0, run.stderr
    assert "gemma-4-E2B" in run.stdout and "nav" in run.stdout
    results = next(tmp_path.rglob("results-gemma-4-E2B.json"))
    assert f"results: {results}" in run.stdout.replace("\n", "")
    again = swapbench("summary", str(results))
    assert again.returncode == 0 and "gemma-4-E2B" in again.stdout


def test_bench_url_with_frames_fresh(smol: LlamaServer, tmp_path: Path) -> None:
    frames = Path(__file__).parents[2] / "src" / "swapbench" / "demo" / "frames"
    args = ["bench", "--url", smol.spec.url, "--workload", "describe", "-n", "5", "--warmup", "0"]
    run = swapbench(*args, "--frames", str(frames), "--fresh", "--output-dir", str(tmp_path))
    assert run.returncode == 0, run.stderr
    data = json.loads(next(tmp_path.rglob("results-target.json")).read_text())
    [describe] = data["workloads"]
    assert [s["frame"] for s in describe["samples"]] == [0, 1, 2, 3, 0] and len(data["frames"]) == 4
    assert describe["workload"]["cache_prompt"] is False and describe["metrics"]["cache_share"] == 0.0
    both = swapbench(*args, "--frames", str(frames), "--image", str(frames / "frame-1.jpg"))
    assert both.returncode == 2 and "give either --image or --frames, not both" in both.stderr


def test_bench_with_plan_and_target(smol: LlamaServer, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    (tmp_path / "car-view.jpg").write_bytes(
        (Path(__file__).parents[2] / "src/swapbench/demo/car-view.jpg").read_bytes()
    )
    plan.write_text(
        '[run]\nsamples = 2\nwarmup = 0\noutput_dir = "out"\n[image]\npath = "car-view.jpg"\n'
        '[[workloads]]\nname = "nav"\nkind = "nav"\n'
        '[[workloads]]\nname = "describe"\nkind = "describe"\nmax_tokens = 8\n'
        f'[[candidates]]\nlabel = "e4b"\nurl = "{smol.spec.url}"\n'
    )
    run = swapbench("bench", "--plan", str(plan), "--target", "e4b", "--workload", "describe")
    assert run.returncode == 0, run.stderr
    data = json.loads(next((tmp_path / "out").rglob("results-e4b.json")).read_text())
    assert [w["workload"]["name"] for w in data["workloads"]] == ["describe"]
    assert data["provenance"]["plan_sha256"]


def test_unreachable_exit_code_and_hint() -> None:
    run = swapbench("bench", "--url", f"http://127.0.0.1:{free_port()}", "-n", "1")
    assert run.returncode == 5
    assert "error:" in run.stderr and "nothing answers" in run.stderr and "what to do:" in run.stderr


def test_bad_plan_exit_code_names_key(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text("[run]\nsamples = 0\n")
    run = swapbench("bench", "--plan", str(plan))
    assert run.returncode == 2
    assert "plan.toml: run.samples: Input should be greater than 0" in run.stderr


def test_unknown_target_lists_the_choices(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[[workloads]]\nname="d"\nkind="describe"\nimage=false\n[baseline]\nlabel="e2b"\nurl="http://127.0.0.1:9"\n'
    )
    run = swapbench("bench", "--plan", str(plan), "--target", "e4b")
    assert run.returncode == 2 and "one of: baseline, e2b" in run.stderr


def test_missing_image_exit_code(tmp_path: Path) -> None:
    run = swapbench("bench", "--url", "http://127.0.0.1:9", "--image", str(tmp_path / "none.jpg"))
    assert run.returncode == 3 and "does not exist" in run.stderr


def test_plan_schema_is_json() -> None:
    run = swapbench("plan-schema")
    assert run.returncode == 0 and "workloads" in json.loads(run.stdout)["properties"]


def test_demo_runs_the_whole_swap(tmp_path: Path) -> None:
    run = swapbench("demo", "-n", "2", "--output-dir", str(tmp_path), "--status-every", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    # not a terminal: a plain status line every second, whose downtime clock moves while the phase stays
    bench_downtimes = re.findall(r"status: bench gemma3-270m · elapsed \S+ · production DOWN (\d+):(\d\d)", run.stdout)
    seconds = [int(m) * 60 + int(s) for m, s in bench_downtimes]
    assert len(set(seconds)) >= 2 and seconds == sorted(seconds), run.stdout
    assert re.search(r"status: .* · time cap \d+:\d\d left \| gemma3-270m · \S+ \d+/\d+", run.stdout), run.stdout
    for phase in (
        "baseline-bench",
        "stop tts",
        "stop llama-prod",
        "launch gemma3-270m",
        "smoke",
        "restore tts",
        "verify",
    ):
        assert phase in run.stdout
    assert "complete" in run.stdout and "production downtime" in run.stdout
    files = sorted(p.name for p in tmp_path.rglob("results-*.json"))
    assert files == ["results-gemma3-270m.json", "results-smollm2-135m.after.json", "results-smollm2-135m.json"]
    # the sandbox is taken down afterwards: none of its ports answers
    plan = next(tmp_path.rglob("plan.toml")).read_text()
    for port in {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", plan)}:
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
            pass


@pytest.mark.skipif(shutil.which("script") is None, reason="util-linux's script gives the run a terminal")
def test_on_a_terminal_the_status_line_ticks_between_events(tmp_path: Path) -> None:
    """In a real pseudo-terminal (util-linux `script`) the status line is redrawn in place twice a second: while
    the candidate is benched, with no phase change, its downtime clock shows several successive values."""
    command = shlex.join([sys.executable, "-m", "swapbench", "demo", "-n", "2", "--output-dir", str(tmp_path)])
    run = subprocess.run(["script", "-qfec", command, "/dev/null"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "COLUMNS": "200", "LINES": "50"}, check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", run.stdout)  # the cursor moves of the redraws
    during_bench = set(re.findall(r"bench gemma3-270m · elapsed \S+ · production DOWN (\d+:\d\d)", screen))
    assert len(during_bench) >= 3, screen[-3000:]
    assert "status:" not in screen  # the plain lines are for pipes and files only


def requests_begun(server: LlamaServer) -> int:
    """Requests the server has begun: llama-server logs one `processing task` line for each."""
    return server.spec.log_path.read_text(errors="replace").count("| processing task")


def test_ctrl_c_keeps_the_samples(smol: LlamaServer, tmp_path: Path) -> None:
    earlier = requests_begun(smol)  # the session's server: other tests used it too
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swapbench",
            "bench",
            "--url",
            smol.spec.url,
            "--workload",
            "describe",
            "-n",
            "200",
            "--warmup",
            "0",
            "--output-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # One request at a time, no warm-up: once the server begins this run's second request, the first answer is a
    # recorded sample. (Its stdout is not a terminal, so swapbench shows no progress before it ends.)
    deadline = time.monotonic() + 120
    while requests_begun(smol) < earlier + 2:
        assert proc.poll() is None, f"swapbench exited {proc.returncode} before a second request: {proc.communicate()}"
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("llama-server began no second request of this bench in 120 s")
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted during workload 'describe'" in stderr
    saved = json.loads(next(tmp_path.rglob("results-target.json")).read_text())
    assert saved["status"] == "partial" and 0 < len(saved["workloads"][0]["samples"]) < 200


def test_compare_judges_against_the_tolerance_reports_the_drift_and_refuses_other_frames(tmp_path: Path) -> None:
    from tests.unit.test_verdict import results

    files = {
        "base": results("e2b", 18.4, 20),
        "cand": results("e4b", 18.5, 20),
        "after": results("e2b", 21.0, 20),
        "other": results("e4b", 18.5, 20, image="b" * 64),
    }
    for name, res in files.items():
        (tmp_path / f"{name}.json").write_text(res.model_dump_json())
    base, cand = str(tmp_path / "base.json"), str(tmp_path / "cand.json")
    run = swapbench("compare", base, cand, "--after", str(tmp_path / "after.json"))
    assert run.returncode == 0, run.stderr
    assert "equivalent (untrusted: drift)" in run.stdout and "DRIFTED beyond the tolerance" in run.stdout
    assert "verdict against ±5%" in run.stdout
    tight = swapbench("compare", base, cand, "--tolerance", "0.001")
    p50 = next(line for line in tight.stdout.splitlines() if "│ p50 ms" in line)
    assert tight.returncode == 0 and p50.rstrip(" │").endswith("inconclusive")  # ±0.1 %: the interval straddles it
    refused = swapbench("compare", base, str(tmp_path / "other.json"))
    assert refused.returncode == 2 and "frames (not the same camera frames" in refused.stderr
    unlike = swapbench("compare", base, cand, "--after", str(tmp_path / "other.json").replace("other", "after_other"))
    assert unlike.returncode == 3  # no such file
    (tmp_path / "after_other.json").write_text(results("e2b", 18.4, 20, image="b" * 64).model_dump_json())
    unlike = swapbench("compare", base, cand, "--after", str(tmp_path / "after_other.json"))
    assert unlike.returncode == 2 and "was not measured like base.json: frames" in unlike.stderr
    wrong = swapbench("compare", base, cand, "--after", cand)
    assert wrong.returncode == 3 and "measures 'e4b', not the baseline 'e2b'" in wrong.stderr
