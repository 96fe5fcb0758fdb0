"""The architecture, as rules a newcomer can read (docs/architecture.md draws the same picture):

    cli ──> app ──> host ──> workloads ──> adapters ──> core ──> plan ──> errors
              ├───> demo                                      │
              └───> report ───────────────────────────────────┘

Every arrow points down: nothing imports the package that uses it. `core` is pure (no I/O, no processes, no
threads, no clocks it did not get handed); `cli` parses, makes one call into `app`, prints, and exits."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

from swapbench.core.kinds import KINDS, kind_of
from swapbench.plan.models import KindName, Workload

SRC = Path(__file__).resolve().parents[2] / "src" / "swapbench"

# package -> the swapbench packages it may import (besides itself)
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),  # the exception tree: imports nothing of ours
    "plan": {"errors"},  # the plan's schema and its loading
    "core": {"plan", "errors"},  # pure: bench loop, metrics, statistics, swap orchestration, vram, decision
    "adapters": {"core", "errors"},  # the HTTP client and the image reader
    "workloads": {"adapters", "core", "plan", "errors"},  # nav, describe, the user's prompt builders and parsers
    "report": {"core", "plan", "errors"},  # renderers (text in, text out) and the files of swapbench's records
    "host": {"workloads", "adapters", "core", "plan", "errors"},  # the real machine behind core's Host
    "demo": {"host", "plan", "errors"},  # the test rig and the sandbox host
    "app": {"host", "demo", "workloads", "adapters", "report", "core", "plan", "errors"},  # the use cases
    "cli": {"app", "report", "core", "errors"},  # options -> one app call -> print -> exit code
    "__main__": {"cli"},
}
# what pure code may import from outside swapbench: the standard library's pure parts, pydantic and numpy
CORE_MAY_IMPORT = {"__future__", "bisect", "collections", "contextlib", "dataclasses", "enum", "functools", "hashlib",
                   "itertools", "json", "math", "re", "statistics", "typing", "pydantic", "numpy"}  # fmt: skip
APP_SUFFIX = "_app"  # how cli.py names the app modules: bench_app, swap_app, ...
NOT_A_USE_CASE = {"signals_noted"}  # the process's signal policy, held by the CLI through its last printed line


def package_of(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, absolute: `from swapbench import app` is swapbench.app, and a relative
    import is resolved against the file's package."""
    names: set[str] = set()
    package = ["swapbench", *path.relative_to(SRC).parent.parts]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            if module == "swapbench" or not node.module:  # `from swapbench import app`, `from .. import x`
                names |= {f"{module}.{a.name}" for a in node.names}
    return names


SOURCES = sorted(p for p in SRC.rglob("*.py") if package_of(p) != "__init__")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    me = package_of(path)
    assert me in MAY_IMPORT, f"{me} is a new package: give it its place in MAY_IMPORT and docs/architecture.md"
    ours = {n.split(".")[1] for n in imports_of(path) if n.startswith("swapbench.") and n != "swapbench.__version__"}
    bad = ours - MAY_IMPORT[me] - {me}
    assert not bad, f"{path.relative_to(SRC)} ({me}) imports {sorted(bad)}"


@pytest.mark.parametrize("path", sorted((SRC / "core").rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_core_is_pure(path: Path) -> None:
    outside = {n.split(".")[0] for n in imports_of(path) if not n.startswith("swapbench")}
    assert outside <= CORE_MAY_IMPORT, f"core/{path.name} imports {sorted(outside - CORE_MAY_IMPORT)}"
    text = path.read_text()
    assert "sleep(" not in text and "open(" not in text, f"core/{path.name} sleeps or opens a file"


def _app_functions(node: ast.AST) -> set[str]:
    """app functions a piece of cli.py refers to (`swap_app.run_plan`); request types (`BenchRequest`) aside."""
    return {
        n.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id.endswith(APP_SUFFIX)
        and n.attr[0].islower() and n.attr not in NOT_A_USE_CASE
    }  # fmt: skip


def test_every_cli_function_makes_at_most_one_app_call() -> None:
    tree = ast.parse((SRC / "cli.py").read_text())
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    commands = [f for f in functions if any("command" in ast.unparse(d) for d in f.decorator_list)]
    assert len(commands) >= 11
    for function in functions:
        called = _app_functions(function)
        assert len(called) <= 1, f"cli.{function.name} calls {sorted(called)}: make it one app function"


def test_the_cli_decides_no_exit_code_itself() -> None:
    """No comparison with a string (an enum's value or a status word) and no exit code but 0 written in cli.py:
    codes come from the error raised (SwapbenchError.exit_code) or the outcome returned (Status.exit_code)."""
    tree = ast.parse((SRC / "cli.py").read_text())
    strings = [
        ast.unparse(n)
        for n in ast.walk(tree)
        if isinstance(n, ast.Compare)
        and any(isinstance(c, ast.Constant) and isinstance(c.value, str) for c in [n.left, *n.comparators])
    ]
    codes = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func).endswith("Exit")
             and any(isinstance(a, ast.Constant) and a.value not in (0,) for a in n.args)]  # fmt: skip
    assert not strings and not codes, strings + codes


def test_every_module_has_a_docstring() -> None:
    missing = [
        p.relative_to(SRC)
        for p in SRC.rglob("*.py")
        if ast.get_docstring(ast.parse(p.read_text())) is None and p.stat().st_size > 0
    ]
    assert not missing, missing


# A service manager is its plan model (plan/models.py), its driver (host/services/MODULE.py) and one case of the
# dispatch table (host/services/drivers.py): nothing else names it, so a new manager touches nothing else.
MANAGERS = {"SystemdService": "systemd", "DockerService": "docker", "CommandService": "command",
            "ProcessService": "process", "SupervisordService": "supervisord"}  # fmt: skip


def _names_used(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
    }


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_a_service_manager_is_named_only_in_its_own_modules(path: Path) -> None:
    where = str(path.relative_to(SRC))
    allowed = {model for model, module in MANAGERS.items() if where == f"host/services/{module}.py"}
    if where in ("plan/models.py", "host/services/drivers.py"):
        allowed = set(MANAGERS)
    named = (_names_used(path) & set(MANAGERS)) - allowed
    assert not named, f"{where} names {sorted(named)}: ask the service's driver (host/services/) instead"


def test_the_dispatch_table_has_every_manager_and_assert_never() -> None:
    """Every manager has a driver module and a case; a manager left out fails mypy (assert_never), not a run."""
    table = (SRC / "host" / "services" / "drivers.py").read_text()
    cases = {
        n.cls.id for n in ast.walk(ast.parse(table)) if isinstance(n, ast.MatchClass) and isinstance(n.cls, ast.Name)
    }
    assert cases == set(MANAGERS) and "assert_never(service)" in table
    assert all((SRC / "host" / "services" / f"{module}.py").is_file() for module in MANAGERS.values())


KIND_NAMES = set(get_args(KindName))
KIND_TABLE = "core/kinds/__init__.py"
MANAGER_NAMES = set(MANAGERS.values())


def _constants(tree: ast.AST, names: set[str]) -> set[str]:
    """Every string constant among `names` (a Literal's, a comparison's, a case's), docstrings aside."""
    docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)
            and n.body and isinstance(n.body[0], ast.Expr)}  # fmt: skip
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in names and id(n) not in docs}


def _compared(tree: ast.AST, names: set[str]) -> set[str]:
    """Strings among `names` that code compares with (==, in, a match case): a dispatch on them."""
    found = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Compare):
            sides = [c for side in [n.left, *n.comparators] for c in getattr(side, "elts", [side])]
            found |= {c.value for c in sides if isinstance(c, ast.Constant) and c.value in names}
        elif isinstance(n, ast.MatchValue) and isinstance(n.value, ast.Constant) and n.value.value in names:
            found.add(n.value.value)
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_a_workload_kind_is_named_only_in_its_own_modules(path: Path) -> None:
    """A kind's name appears in its plan model, its module and the dispatch table; the demo, which writes a plan
    as a user does (its `nav` is the sandbox's nav sidecar), aside. Everything else asks the registry."""
    where = str(path.relative_to(SRC))
    if where.startswith("demo/"):
        return
    allowed = KIND_NAMES if where in ("plan/models.py", KIND_TABLE) else {where.removeprefix("core/kinds/")[:-3]}
    named = _constants(ast.parse(path.read_text()), KIND_NAMES) - allowed
    assert not named, f"{where} names the workload kind {sorted(named)}: ask its WorkloadKind (core/kinds/) instead"


@pytest.mark.parametrize("path", sorted((SRC / "report" / "templates").glob("*.j2")), ids=lambda p: p.name)
def test_no_template_names_a_workload_kind(path: Path) -> None:
    text = path.read_text()
    named = [k for k in KIND_NAMES if f'"{k}"' in text or f"'{k}'" in text]
    assert not named, f"{path.name} names {named}: use kind(w.workload.kind) and what the kind says of itself"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_code_dispatches_on_a_manager_name(path: Path) -> None:
    """`service.manager == "docker"` outside the drivers is the scattered match the drivers replaced. (A candidate's
    launch kind "docker" is a launch kind: plan/models.py compares it.)"""
    where = str(path.relative_to(SRC))
    if where.startswith("host/services/") or where == "plan/models.py":
        return
    compared = _compared(ast.parse(path.read_text()), MANAGER_NAMES)
    assert not compared, f"{where} compares with the manager name {sorted(compared)}: ask the service's driver"


def test_the_kind_registry_has_every_kind_of_the_plan_and_assert_never() -> None:
    """Every kind the plan takes has a module and a case; a kind left out fails mypy (assert_never), not a run."""
    models = {get_args(m.model_fields["kind"].annotation)[0] for m in get_args(get_args(Workload)[0])}
    assert models == KIND_NAMES == {k.name for k in KINDS}
    assert all(kind_of(name).name == name for name in KIND_NAMES)
    table = (SRC / KIND_TABLE).read_text()
    cases = {n.value.value for n in ast.walk(ast.parse(table)) if isinstance(n, ast.MatchValue)
             and isinstance(n.value, ast.Constant)}  # fmt: skip
    assert cases == KIND_NAMES and "assert_never(name)" in table
    assert all((SRC / "core" / "kinds" / f"{name}.py").is_file() for name in KIND_NAMES)


# host/ in rooms: each may import the rooms listed (and itself), never a module of host/'s top level
HOST_ROOMS: dict[str, set[str]] = {
    "processes": set(),  # processes, waits, probes, programs: the floor every room stands on
    "services": {"processes"},  # a driver per manager, and the ops every manager shares
    "gpu": {"processes"},  # NVML and nvidia-smi readings, the ledger, the sampler
    "candidate": {"processes"},  # llama-server, the candidate's launch and teardown, GGUF, the prepare step
    # window safety (journal, lock, registry, watchdog, signals, supervisor, files) must work when a service driver
    # or NVML is what broke: it imports neither
    "window": {"processes"},
    "preflight": {"processes", "services", "candidate", "gpu"},  # Phase 0's contracts, and the declared checks
}
HOST_TOP = {"__init__", "real", "claims", "info", "history_db", "ssh"}  # what puts the rooms together


def _host_parts(name: str) -> list[str]:
    return name.split(".")[2:] if name.startswith("swapbench.host.") else []


@pytest.mark.parametrize("path", sorted((SRC / "host").rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_each_room_of_host_imports_only_the_rooms_below_it(path: Path) -> None:
    parts = path.relative_to(SRC / "host").parts
    if len(parts) == 1:
        assert path.stem in HOST_TOP, f"host/{path.name} is in no room: put it in one of {sorted(HOST_ROOMS)}"
        return
    room = parts[0]
    assert room in HOST_ROOMS, f"host/{room}/ is a new room: give it its rule in HOST_ROOMS and docs/architecture.md"
    used = {p[0] for name in imports_of(path) if (p := _host_parts(name))}
    bad = used - HOST_ROOMS[room] - {room}
    assert not bad, f"host/{room}/{path.name} imports host's {sorted(bad)}"
