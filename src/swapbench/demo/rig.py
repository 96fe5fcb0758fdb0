"""The test rig: where it lives (llama-server, the small models, their mmproj) and building it (setup_rig.sh)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from swapbench.errors import InputError

LLAMA_BUILD = "11434"


@dataclass(frozen=True)
class Rig:
    root: Path

    @property
    def llama_server(self) -> Path:
        return self.root / "bin" / "llama-server"

    @property
    def smollm2(self) -> Path:
        return self.root / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

    @property
    def gemma3(self) -> Path:
        return self.root / "models" / "gemma-3-270m-q4_k_m.gguf"

    @property
    def gemma3_template(self) -> Path:
        return self.root / "models" / "gemma3.jinja"

    @property
    def gemma4_template(self) -> Path:
        return self.root / "models" / "gemma4.jinja"

    @staticmethod
    def mmproj(model: Path) -> Path:
        return model.with_name(model.name.replace(".gguf", ".mmproj.gguf"))

    def missing(self) -> list[Path]:
        needed = [self.llama_server, self.smollm2, self.gemma3, self.gemma3_template, self.gemma4_template]
        needed += [self.mmproj(self.smollm2), self.mmproj(self.gemma3)]
        return [p for p in needed if not p.exists()]


BUILD_TIME = "once, roughly 6 minutes of compiling llama-server on 2 cores and ~400 MB of downloads"
BUILDER = Path(__file__).with_name("setup_rig.sh")


def rig_root() -> Path:
    default = Path.home() / ".cache" / "swapbench" / f"rig-b{LLAMA_BUILD}"
    return Path(os.environ.get("SWAPBENCH_RIG", default))


def find_rig() -> Rig:
    """The rig at $SWAPBENCH_RIG or the default cache folder; InputError if any part is missing."""
    rig = Rig(rig_root())
    missing = rig.missing()
    if missing:
        raise InputError(
            f"the test rig at {rig.root} is incomplete (missing {missing[0].name})",
            hint=f"run `swapbench setup-rig` ({BUILD_TIME}); or set SWAPBENCH_RIG to a built rig",
        )
    return rig


def build_rig(say: Callable[[str], None]) -> tuple[Rig, float]:
    """Run the packaged setup_rig.sh with this Python (idempotent: what is cached is kept); each of its log
    lines goes to `say`. Returns the rig and the seconds it took."""
    started = time.monotonic()
    env = {**os.environ, "PYTHON": sys.executable, "SWAPBENCH_RIG": str(rig_root())}
    try:
        with subprocess.Popen(["bash", str(BUILDER)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) as builder:  # fmt: skip
            assert builder.stderr is not None
            tail: list[str] = []
            for line in builder.stderr:
                say(line.rstrip())
                tail = [*tail[-4:], line.rstrip()]
    except OSError as exc:
        raise InputError(f"cannot run the rig's builder: {exc}", hint="it needs bash; install it and retry") from exc
    if builder.returncode != 0:
        raise InputError(
            f"building the test rig failed (exit {builder.returncode}): {' | '.join(tail[-2:])}",
            hint=f"read the lines above; it needs cmake, ninja, g++ and libssl-dev (installed with apt-get when run "
            f"as root) and PyPI; run `swapbench setup-rig` again: what is built is kept in {rig_root()}",
        )
    return find_rig(), time.monotonic() - started
