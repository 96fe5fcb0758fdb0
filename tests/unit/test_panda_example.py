"""The user's Panda / Gemma 4 E4B session stays expressible: the example plan loads and its dry run lists the
user plan's sequence, decisions and eight verifications."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from swapbench.app.dry_run import dry_run
from swapbench.core.phases import Phase
from swapbench.plan.load import load_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "panda-gemma4-e4b.toml"


def test_the_user_plan_as_a_dry_run() -> None:
    loaded = load_plan(EXAMPLE)
    plan = loaded.plan
    assert plan.run.time_cap_s == 1500 and (plan.run.samples, plan.run.extended_samples) == (20, 100)
    assert plan.run.stop_order == ["chatterbox", "panda-llamacpp"]
    assert plan.effective_restore_order == [
        "panda-llamacpp",
        "chatterbox",
    ]  # the user plan: the E2B server first, then the TTS
    steps = dry_run(loaded)
    text = "\n".join(f"{phase} {what}" for phase, what in steps)
    launch = next(what for phase, what in steps if phase == "launch")
    assert "-p 127.0.0.1:11437:8080" in launch and "--jinja" in launch  # loopback, --jinja, docker: the user plan's
    assert "--restart no" in launch and "--name panda-llamacpp-e4b" in launch
    # sudo as the user plan grants it, the exact argv sudoers matches; a least-privilege rule refuses `sudo -n true`
    sudo = [what for phase, what in steps if phase == "check" and what.startswith("sudo")]
    assert sudo == [
        "sudo -k -n -l systemctl stop panda-llamacpp.service",
        "sudo -k -n -l systemctl start panda-llamacpp.service",
        "sudo -k -n systemctl start panda-llamacpp.service (the unit runs: a no-op that proves no password)",
    ]
    assert "pattern=TTSStoppedFrame lines=(159, 161)" in text  # the user plan: its TTS stop frame
    assert "port_free port=11437" in text and "port_owner port=11436 process=uvicorn" in text
    assert "extended to 100 unless a thinking marker trips" in text  # the user plan's 20 -> 100 extension
    verify = [what for phase, what in steps if phase == "verify"]
    for expected in (
        "min_gb=13.0 max_gb=13.8 processes=3",
        "11435/health",
        "11436/health",
        "port_refused port=11437",
        "json_field=model_loaded",
        "8770",
        "wav url=http://127.0.0.1:8772/synthesize",
        "phone_call.py auto",
    ):
        assert any(expected in v for v in verify), expected
    phases = [p for p, _ in steps]
    assert phases.index(Phase.TEARDOWN) < phases.index(Phase.RESTORE) < phases.index(Phase.VERIFY)
    # the camera image is on Panda, not here: the bodies cannot be built, and the dry run says why
    missing = Path.home() / "car-view.jpg"
    assert (Phase.BENCH, f"request bodies not shown: image.path: image {missing} does not exist (`swapbench check` "
            "lists what to fix)") in steps  # fmt: skip


def test_check_dry_run_command_prints_the_sequence() -> None:
    run = subprocess.run([sys.executable, "-m", "swapbench", "check", "--dry-run", str(EXAMPLE)],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "would do, in order" in run.stdout and "docker rm -f panda-llamacpp-e4b" in run.stdout
