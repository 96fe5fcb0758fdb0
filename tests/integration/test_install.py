"""Installed as a user installs it: the wheel built from this checkout, put in a fresh environment by pipx, run
from a folder outside the checkout. It carries everything it runs: the rig's builder, the sandbox template, the
demo frames and the judging page."""

from __future__ import annotations

import csv
import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from swapbench import __version__
from swapbench.demo.rig import Rig
from swapbench.report.export import COLUMNS

REPO = Path(__file__).resolve().parents[2]


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 600) -> (
    subprocess.CompletedProcess[str]
):  # fmt: skip
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})  # fmt: skip


@pytest.fixture(scope="module")
def pipx_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pipx install swapbench-*.whl` into a folder of its own: the `swapbench` it puts on the PATH."""
    home = tmp_path_factory.mktemp("pipx")
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(home / "dist"), str(REPO)],
                cwd=home)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (home / "dist").glob("swapbench-*.whl")
    env = {"PIPX_HOME": str(home / "venvs"), "PIPX_BIN_DIR": str(home / "bin"), "PIPX_MAN_DIR": str(home / "man")}
    installed = run([sys.executable, "-m", "pipx", "install", "--python", sys.executable, str(wheel)], home, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return home / "bin" / "swapbench"


def test_the_installed_tool_runs_outside_the_checkout(pipx_install: Path, rig: Rig, tmp_path: Path) -> None:
    tool = str(pipx_install)
    env = {"SWAPBENCH_RIG": str(rig.root)}
    version = run([tool, "--version"], tmp_path)
    assert (version.returncode, version.stdout) == (0, f"swapbench {__version__}\n")
    where = run([str(pipx_install.resolve().parent / "python"), "-c", "import swapbench; print(swapbench.__file__)"],
                tmp_path)  # fmt: skip
    assert where.stdout.startswith(str(pipx_install.parents[1] / "venvs")), where.stdout  # not this checkout

    setup = run([tool, "setup-rig"], tmp_path, env)  # the packaged setup_rig.sh, on a rig that is built: kept
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert f"llama-server b11434 cached: {rig.llama_server}" in setup.stdout

    demo = run([tool, "demo", "-n", "2", "--output-dir", str(tmp_path / "demo")], tmp_path, env)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr
    (run_dir,) = {p.parent for p in (tmp_path / "demo").rglob("results-*.json")}

    exported = run([tool, "export", str(run_dir), "--format", "csv"], tmp_path)
    assert exported.returncode == 0, exported.stderr
    header, *rows = list(csv.reader(io.StringIO(exported.stdout, newline="")))
    assert header == list(COLUMNS) and len(rows) >= 3 * 3 * 2  # targets x workloads x samples
    assert {row[COLUMNS.index("target")] for row in rows} == {"smollm2-135m", "gemma3-270m"}

    judge = subprocess.Popen([tool, "judge", str(run_dir)], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert judge.stdout is not None
        url = judge.stdout.readline().split()[2]  # "judging page: http://127.0.0.1:PORT/ ..."
        assert url.startswith("http://127.0.0.1:"), url
        with urllib.request.urlopen(url, timeout=30) as page:  # the page and its template came from the wheel
            assert page.status == 200 and "describe" in page.read().decode()
    finally:
        judge.send_signal(signal.SIGINT)
        judge.communicate(timeout=30)
    assert judge.returncode == 130  # stopped without recording
    assert not (run_dir / "decision.json").exists()


def test_a_demo_without_a_rig_says_how_to_build_it(tmp_path: Path) -> None:
    """Not a terminal: nobody to ask, so the answer is no, with the command and what it costs."""
    demo = run([sys.executable, "-m", "swapbench", "demo", "--output-dir", str(tmp_path / "out")], tmp_path,
               {"SWAPBENCH_RIG": str(tmp_path / "no-rig")})  # fmt: skip
    assert demo.returncode == 3, demo.stdout + demo.stderr
    assert f"the test rig at {tmp_path / 'no-rig'} is incomplete (missing llama-server)" in demo.stderr
    assert "run `swapbench setup-rig` (once, roughly 6 minutes of compiling llama-server" in demo.stderr
    assert not (tmp_path / "out").exists()  # nothing was started


@pytest.mark.skipif(shutil.which("script") is None, reason="util-linux's script gives the demo a terminal")
def test_at_a_terminal_the_demo_offers_to_build_the_rig(tmp_path: Path) -> None:
    command = shlex.join([sys.executable, "-m", "swapbench", "demo", "--output-dir", str(tmp_path / "out")])
    asked = subprocess.run(["script", "-qec", command, "/dev/null"], input="n\n", capture_output=True, text=True,
                           timeout=120, check=False,
                           env={**os.environ, "SWAPBENCH_RIG": str(tmp_path / "no-rig")})  # fmt: skip
    assert asked.returncode == 3, asked.stdout
    assert "Build it now (once, roughly 6 minutes of compiling llama-server on 2 cores" in asked.stdout
    assert not (tmp_path / "no-rig" / "bin" / "llama-server").exists()  # "n": nothing built


def test_setup_rig_from_the_wheel_writes_the_mmproj_files_without_gguf(
    pipx_install: Path, rig: Rig, tmp_path: Path
) -> None:
    """The pipx environment has no `gguf`: the rig's builder gives its asset writer a small venv of its own. On a
    rig whose llama-server and models are there (linked) and whose mmproj files are not, it writes them again,
    byte for byte (their weights are seeded)."""
    copy = tmp_path / "rig"
    subprocess.run(["cp", "-al", str(rig.root), str(copy)], check=True)
    for small in copy.joinpath("models").glob("*.jinja"):
        small.unlink()
        shutil.copy(rig.root / "models" / small.name, small)  # rewritten in place: not the real rig's inode
    for mmproj in copy.joinpath("models").glob("*.mmproj.gguf"):
        mmproj.unlink()
    built = run([str(pipx_install), "setup-rig"], tmp_path, {"SWAPBENCH_RIG": str(copy)})
    assert built.returncode == 0, built.stdout + built.stderr
    assert f"installing gguf into {copy / 'dl' / 'assets-venv'}" in built.stdout
    for model in (rig.smollm2, rig.gemma3):
        assert Rig.mmproj(copy / "models" / model.name).read_bytes() == Rig.mmproj(model).read_bytes()
