"""Load a plan file: TOML -> validated Plan, with errors that name the file and the key path."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from swapbench.errors import PlanError
from swapbench.plan.explain import did_you_mean, explain
from swapbench.plan.models import Plan, Target

MAX_PLAN_BYTES = 2**20  # a plan is a page of TOML; a megabyte of it is something else


@dataclass(frozen=True)
class LoadedPlan:
    """A validated plan with where it came from; relative paths resolve against `base_dir`."""

    plan: Plan
    path: Path | None
    sha256: str | None
    base: Path | None = None  # where relative paths resolve, when not beside `path` (a run folder's copy)

    @property
    def base_dir(self) -> Path:
        return self.base or (self.path.parent if self.path else Path.cwd())

    def resolve(self, path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else (self.base_dir / path)


@functools.cache
def _schema() -> dict[str, Any]:
    """The plan's JSON Schema: where a key's allowed values and sibling keys are found for an error message."""
    return Plan.model_json_schema()


def validate_plan(data: dict[str, Any], source: str, lenient: bool = False) -> Plan:
    """Validate a parsed plan; raise PlanError listing every problem as `source: key.path: message`. Lenient:
    TOML strings that read as numbers or booleans are converted, as swapbench did before its plans were strict
    (for a run folder's copy of the plan it ran with)."""
    try:
        plan = Plan.model_validate(data, strict=False if lenient else None)
    except ValidationError as exc:
        lines = [f"{source}: {line}" for line in explain(exc.errors(), _schema())]
        raise PlanError(
            "\n".join(lines), hint="fix the keys named above; `swapbench plan-schema` prints the schema"
        ) from exc
    return plan


def load_plan(path: Path, base_dir: Path | None = None, lenient: bool = False) -> LoadedPlan:
    """Read and validate a plan file; relative paths resolve beside it, or against `base_dir`."""
    try:
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise PlanError(f"{path} is larger than {MAX_PLAN_BYTES // 1024} KiB: not a plan", hint="check the path")
        raw = path.read_bytes()
    except OSError as exc:
        raise PlanError(f"cannot read plan {path}: {exc.strerror}", hint="check the path") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
        plan = validate_plan(data, path.name, lenient)
    except UnicodeDecodeError as exc:
        raise PlanError(f"{path.name}: not UTF-8 text (byte {exc.start} is {raw[exc.start:exc.start + 1]!r})",
                        hint="save the plan as UTF-8 (TOML files are UTF-8)") from exc  # fmt: skip
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{path.name}: not valid TOML: {exc}{_twice(exc, raw)}",
                        hint="fix the syntax at the place named") from exc  # fmt: skip
    except RecursionError as exc:
        raise PlanError(f"{path.name}: nested too deeply to be a plan", hint="flatten the arrays and tables") from exc
    return LoadedPlan(plan=plan, path=path.resolve(), sha256=hashlib.sha256(raw).hexdigest(), base=base_dir)


def _twice(exc: tomllib.TOMLDecodeError, raw: bytes) -> str:
    """tomllib names the place of a key given twice, not the key: name it from that line."""
    found = re.match(r"Cannot overwrite a value \(at line (\d+),", str(exc))
    if found is None:
        return ""
    lines = raw.decode("utf-8", errors="replace").splitlines()
    number = int(found.group(1))
    key = re.match(r"\s*([\w.\"'-]+)\s*=", lines[number - 1]) if 0 < number <= len(lines) else None
    return f": the key {key.group(1)} is given twice in its table" if key else ""


def plan_json_schema() -> str:
    """The JSON Schema of the plan file, for editor completion (e.g. taplo, Even Better TOML)."""
    return json.dumps(Plan.model_json_schema(), indent=2)


def pick_target(loaded: LoadedPlan, name: str) -> Target:
    """`baseline`, or a target's label."""
    plan = loaded.plan
    if name == "baseline" and plan.baseline is not None:
        target = plan.baseline
    else:
        found = [t for t in plan.targets() if t.label == name]
        if not found:
            labels = ["baseline"] + [t.label for t in plan.targets()]
            raise PlanError(
                f"the plan has no target {name!r}{did_you_mean(name, labels)}",
                hint=f"use --target with one of: {', '.join(labels)}",
            )
        target = found[0]
    if target.endpoint is None:
        raise PlanError(
            f"target {target.label!r} has no url", hint="`swapbench bench` measures a running server: set its url"
        )
    return target
