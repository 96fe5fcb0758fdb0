"""Start-up stays light: `--version`, `--help` and a command's `--help` load none of the heavy libraries
(matplotlib alone was 0.6 s of every call); they load on first use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = str(Path(sys.executable).with_name("swapbench"))  # the console script pip installed beside this Python
HEAVY = ("matplotlib", "numpy", "httpx", "PIL", "jinja2", "psutil", "pynvml")  # pydantic: typer itself uses it
PROBE = """
import sys
from swapbench.cli import main
sys.argv = ["swapbench", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("LOADED", sorted(m for m in {heavy!r} if m in sys.modules), "EXIT", code)
"""


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["run", "--help"], ["version"]])
def test_light_commands_load_no_heavy_library(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.stdout.splitlines()[-1] == "LOADED [] EXIT 0", done.stdout + done.stderr


def test_a_real_command_loads_what_it_needs() -> None:
    """The lazy modules do load when used: `summary` of a missing file reaches the app (and its numpy)."""
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), "summary", "/nonexistent/results.json"],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    last = done.stdout.splitlines()[-1]
    assert "'numpy'" in last and last.endswith("EXIT 3"), done.stdout + done.stderr


def test_shell_completion_completes_commands() -> None:
    """What bash's completion function asks (`swapbench st<TAB>`), answered by the real executable."""
    env = {**os.environ, "_SWAPBENCH_COMPLETE": "complete_bash", "COMP_WORDS": "swapbench st", "COMP_CWORD": "1"}
    done = subprocess.run([TOOL], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert (done.returncode, done.stdout.split()) == (0, ["status"]), done.stderr
    script = subprocess.run(
        [TOOL, "--show-completion", "bash"], capture_output=True, text=True, timeout=60, check=False
    )
    assert script.returncode == 0 and "complete -o default -F _swapbench_completion swapbench" in script.stdout
