"""Workload inputs against real files and real child processes: schema files, prompt builders and parsers."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from pydantic import TypeAdapter

from swapbench.core.bench import BenchWorkload
from swapbench.errors import InputError, SwapbenchError, WorkloadError
from swapbench.plan.models import Workload
from swapbench.workloads.isolated import Ending, call_isolated
from swapbench.workloads.requests import MAX_SCHEMA_BYTES, PARSER_SAMPLES, prepare

SHORT_S = 2.0  # the hang tests' deadline, instead of CALL_TIMEOUT_S


def prepared(tmp_path: Path, timeout_s: float = SHORT_S, **fields: Any) -> BenchWorkload:
    workload = TypeAdapter(Workload).validate_python({"name": "nav", "kind": "nav", **fields})
    return prepare(workload, 0, [], 42, None, lambda p: tmp_path / p, call_timeout_s=timeout_s)


def refused(kind: type[SwapbenchError], tmp_path: Path, **fields: Any) -> str:
    with pytest.raises(kind) as info:
        prepared(tmp_path, **fields)
    assert type(info.value) is kind
    assert info.value.hint
    return info.value.message


@pytest.fixture
def module(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Write a module into tmp_path under a name unique to the test; returns its name."""

    def write(source: str) -> str:
        name = "user_" + "".join(c if c.isalnum() else "_" for c in request.node.name) + f"_{len(os.listdir(tmp_path))}"
        (tmp_path / f"{name}.py").write_text(source)
        return name

    return write


def ref(name: str, func: str, **kwargs: Any) -> dict[str, Any]:
    return {"callable": f"{name}:{func}", "kwargs": kwargs, "python_path": ["."]}


# --- JSON schema files ------------------------------------------------------------------------------------


def schema_file(tmp_path: Path, schema: Any, name: str = "schema.json") -> str:
    (tmp_path / name).write_text(json.dumps(schema))
    return name


LOCAL = {
    "type": "object",
    "required": ["action"],
    "properties": {"action": {"$ref": "#/$defs/action"}, "note": {"const": {"$ref": "https://example.com/x"}}},
    "$defs": {"action": {"enum": ["left", "right"]}},
}


def test_valid_schema_with_local_refs_is_used(tmp_path: Path) -> None:
    w = prepared(tmp_path, prompt="go", json_schema=schema_file(tmp_path, LOCAL))
    assert w.info.json_schema == LOCAL
    assert w.parse is not None and w.parse('{"action": "left"}').adheres
    assert not w.parse('{"action": "up"}').adheres


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": 5}, "is not a valid JSON Schema: at type: 5 is not valid"),
        ({"$ref": "https://example.com/nav.json"}, "remote or file $ref 'https://example.com/nav.json'"),
        ({"properties": {"a": {"$ref": "common.json#/$defs/a"}}}, "remote or file $ref 'common.json#/$defs/a'"),
        ({"prefixItems": [{"$dynamicRef": "http://x/y"}]}, "remote or file $ref 'http://x/y'"),
        ({"$ref": "#/$defs/missing"}, "$ref '#/$defs/missing' points to nothing in the file"),
        ([{"type": "object"}], "is not a JSON object"),
    ],
    ids=["type-5", "remote-ref", "file-ref", "dynamic-ref", "dangling-ref", "array"],
)
def test_bad_schema_is_an_input_error_naming_key_and_path(tmp_path: Path, schema: Any, expected: str) -> None:
    message = refused(InputError, tmp_path, prompt="go", json_schema=schema_file(tmp_path, schema))
    assert message.startswith(f"workloads[0].json_schema: {tmp_path / 'schema.json'}")
    assert expected in message


def test_unreadable_schema_files(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_bytes(b'{"type": "obj\xff"}')
    assert "is not UTF-8 JSON" in refused(InputError, tmp_path, prompt="go", json_schema="bad.json")
    (tmp_path / "broken.json").write_text('{"type": ')
    assert "is not UTF-8 JSON" in refused(InputError, tmp_path, prompt="go", json_schema="broken.json")
    (tmp_path / "dir.json").mkdir()
    message = refused(InputError, tmp_path, prompt="go", json_schema="dir.json")
    assert message.startswith("workloads[0].json_schema: JSON schema ") and "is a directory" in message
    assert "does not exist" in refused(InputError, tmp_path, prompt="go", json_schema="missing.json")
    with (tmp_path / "big.json").open("wb") as f:
        f.truncate(MAX_SCHEMA_BYTES + 1)
    assert "over the 1 MiB limit" in refused(InputError, tmp_path, prompt="go", json_schema="big.json")


# --- prompt builders: run once, isolated ---------------------------------------------------------------------


def test_builder_runs_once_in_a_child_and_its_text_is_sent(tmp_path: Path, module: Callable[[str], str]) -> None:
    log = tmp_path / "calls.log"
    name = module(
        "import os\n"
        "def build(goal, log):\n"
        "    print('loading the prompt table...')\n"
        "    with open(log, 'a') as f:\n"
        "        f.write(f'{os.getpid()}\\n')\n"
        "    return f'Goal: {goal}. Answer with JSON.'\n"
    )
    builder = ref(name, "build", goal="the red box", log=str(log))
    first = prepared(tmp_path, prompt_builder=builder)
    again = prepared(tmp_path, prompt_builder=builder)  # Phase 0, then the window: same process
    assert first.info.prompt == again.info.prompt == "Goal: the red box. Answer with JSON."
    assert first.body["messages"][-1]["content"][-1]["text"] == "Goal: the red box. Answer with JSON."
    pids = log.read_text().split()
    assert len(pids) == 1 and int(pids[0]) != os.getpid()


BUILDERS = {
    "exits-0": ("import sys\ndef build():\n    sys.exit(0)\n", "exited (sys.exit(0)) without returning"),
    "os-exit": ("import os\ndef build():\n    os._exit(3)\n", "exited (exit code 3) without returning"),
    "exits-at-import": ("import sys\nsys.exit(0)\ndef build():\n    return 'x'\n", "exited (sys.exit(0)) while being"),
    "raises": (
        "def build():\n    print('camera?')\n    raise RuntimeError('no camera')\n",
        "raised RuntimeError: no camera (at {name}.py:3) (its output ended: 'camera?')",
    ),
    "returns-5": ("def build():\n    return 5\n", "returned int, not a non-empty prompt string"),
    "returns-none": ("def build():\n    return None\n", "returned NoneType, not a non-empty prompt string"),
    "returns-blank": ("def build():\n    return '  '\n", "returned str '  ', not a non-empty prompt string"),
    "too-long": ("def build():\n    return 'x' * 100_001\n", "returned a prompt of 100001 bytes, over the 100000"),
    "forges-report": (
        "import os, sys\ndef build():\n    os.write(int(sys.argv[1]), b'{not json\\n')\n    return 'x'\n",
        "could not be tried: its report channel holds something swapbench did not write",
    ),
    "syntax-error": ("def build(:\n", "cannot import '{name}': SyntaxError"),
    "missing-import": ("import not_a_module_anywhere\n", "cannot import '{name}': ModuleNotFoundError"),
    "no-function": ("def other():\n    return 'x'\n", "'{name}' has no function 'build'"),
}


@pytest.mark.parametrize("case", BUILDERS, ids=list(BUILDERS))
def test_builder_failures_are_workload_errors(tmp_path: Path, module: Callable[[str], str], case: str) -> None:
    source, expected = BUILDERS[case]
    name = module(source)
    message = refused(WorkloadError, tmp_path, prompt_builder=ref(name, "build"))
    assert message.startswith(f"workloads[0].prompt_builder ({name}:build): ")
    assert expected.format(name=name) in message


def test_builder_with_wrong_kwargs(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module("def build():\n    return 'x'\n")
    message = refused(WorkloadError, tmp_path, prompt_builder=ref(name, "build", goal="x"))
    assert "raised TypeError: build() got an unexpected keyword argument 'goal'" in message


def test_builder_printing_to_stdout_cannot_forge_its_answer(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module(
        "import json, sys\n"
        "def build():\n"
        "    print(json.dumps({'event': 'returned', 'kind': 'str', 'json': '\"forged\"'}))\n"
        "    sys.stderr.write('noise\\n')\n"
        "    return 'the real prompt'\n"
    )
    assert prepared(tmp_path, prompt_builder=ref(name, "build")).info.prompt == "the real prompt"


def test_hanging_builder_is_killed_with_its_children(tmp_path: Path, module: Callable[[str], str]) -> None:
    pid_file = tmp_path / "child.pid"
    name = module(
        "import subprocess, time\n"
        "def build(pid_file):\n"
        "    child = subprocess.Popen(['sleep', '600'])\n"
        "    open(pid_file, 'w').write(str(child.pid))\n"
        "    time.sleep(600)\n"
    )
    start = time.monotonic()
    message = refused(WorkloadError, tmp_path, prompt_builder=ref(name, "build", pid_file=str(pid_file)))
    assert SHORT_S <= time.monotonic() - start < SHORT_S + 10
    assert message.startswith(f"workloads[0].prompt_builder ({name}:build): did not return within 2 s")
    assert "its process group was killed" in message
    assert not _alive(int(pid_file.read_text()))


def _alive(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        time.sleep(0.05)
    return True


# --- parsers: tried isolated on sample answers, then called in process --------------------------------------

PARSE_OK = "def parse(content, strict=True):\n    return ({'raw': content}, 2 if strict else 3)\n"


def test_good_parser_is_tried_then_used_in_process(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module(PARSE_OK)
    w = prepared(tmp_path, prompt="go", parser=ref(name, "parse", strict=False))
    assert w.parse is not None
    outcome = w.parse("left")
    assert (outcome.strategy, outcome.value) == (3, {"raw": "left"})


def test_parser_raising_on_some_samples_is_accepted(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module(
        "import json\n"
        "def parse(content):\n"
        "    return (json.loads(content), 1)\n"  # raises on prose, fences and the empty answer
    )
    w = prepared(tmp_path, prompt="go", parser=ref(name, "parse"))
    assert w.parse is not None
    assert w.parse('{"action": "left"}').adheres
    failed = w.parse("I'd go left")
    assert failed.strategy is None and failed.error and failed.error.startswith("parser raised JSONDecodeError")


PARSERS = {
    "returns-5": ("def parse(content):\n    return 5\n", "returned int 5, not a (value, strategy) tuple"),
    "bad-strategy": ("def parse(content):\n    return ({}, 4)\n", "returned strategy int 4; it must be 1, 2, 3"),
    "bool-strategy": ("def parse(content):\n    return ({}, True)\n", "returned strategy bool True"),
    "not-json": ("def parse(content):\n    return ({1, 2}, 1)\n", "returned tuple ({1, 2}, 1), which is not JSON"),
    "raises-always": (
        "def parse(content):\n    raise ValueError('cannot parse')\n",
        'raised on every sample answer, e.g. on \'{"action": "forward"}\': raised ValueError: cannot parse',
    ),
    "exits": ("import sys\ndef parse(content):\n    sys.exit(0)\n", "exited (sys.exit(0)) without returning on the"),
    "exits-on-empty": (
        "import sys\ndef parse(content):\n    if not content:\n        sys.exit(2)\n    return (None, None)\n",
        "exited (sys.exit(2)) without returning on the sample answer ''",
    ),
    "hangs-on-prose": (
        "import time\ndef parse(content):\n    if 'left' in content and '{' not in content:\n        time.sleep(600)\n"
        "    return (None, None)\n",
        'did not return within 2 s on the sample answer "I\'d go left"',
    ),
    "no-function": ("x = 1\n", "has no function 'parse'"),
}


@pytest.mark.parametrize("case", PARSERS, ids=list(PARSERS))
def test_parser_failures_are_workload_errors(tmp_path: Path, module: Callable[[str], str], case: str) -> None:
    source, expected = PARSERS[case]
    name = module(source)
    message = refused(WorkloadError, tmp_path, prompt="go", parser=ref(name, "parse"))
    assert message.startswith(f"workloads[0].parser ({name}:parse): ")
    assert expected in message


def test_parser_misbehaving_at_bench_time_fails_that_answer_only(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module(
        "import sys\n"
        "def parse(content):\n"
        "    if content == 'quit':\n"
        "        sys.exit(0)\n"
        "    if content == 'five':\n"
        "        return 5\n"
        "    if content == 'ctrl-c':\n"
        "        raise KeyboardInterrupt\n"
        "    return ({'action': 'left'}, 1)\n"
    )
    w = prepared(tmp_path, prompt="go", parser=ref(name, "parse"))
    assert w.parse is not None
    exited = w.parse("quit")
    assert exited.strategy is None and exited.error == "parser raised SystemExit: 0"
    garbage = w.parse("five")
    assert garbage.strategy is None and garbage.error == "parser returned int 5, not a (value, strategy) tuple"
    assert w.parse("fine").adheres
    with pytest.raises(KeyboardInterrupt):
        w.parse("ctrl-c")


# --- the isolated call itself -------------------------------------------------------------------------------


def test_isolated_call_reports_each_sample(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module(
        "def parse(content):\n    if not content:\n        raise ValueError('empty')\n    return (content, 2)\n"
    )
    call = call_isolated(f"{name}:parse", {}, [[s] for s in PARSER_SAMPLES], [tmp_path], timeout_s=SHORT_S)
    assert call.ending is Ending.FINISHED and call.imported
    assert [getattr(o, "value", None) for o in call.outcomes[:3]] == [(s, 2) for s in PARSER_SAMPLES[:3]]
    assert getattr(call.outcomes[3], "error", None) == "ValueError: empty"
