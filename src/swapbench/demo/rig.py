"""Where the test rig lives (built by scripts/setup-rig.sh): llama-server, the small models, their mmproj."""

from __future__ import annotations

import os
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


def find_rig() -> Rig:
    """The rig at $SWAPBENCH_RIG or the default cache folder; InputError if any part is missing."""
    default = Path.home() / ".cache" / "swapbench" / f"rig-b{LLAMA_BUILD}"
    rig = Rig(Path(os.environ.get("SWAPBENCH_RIG", default)))
    missing = rig.missing()
    if missing:
        raise InputError(
            f"the test rig at {rig.root} is incomplete (missing {missing[0].name})",
            hint="run scripts/setup-rig.sh (it builds llama-server and fetches the models), or set SWAPBENCH_RIG",
        )
    return rig
