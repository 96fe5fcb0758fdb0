"""The class of malformed plans that used to stop production before failing, or crash or hang Phase 0: each is
refused by `swapbench run` before anything is touched, with its exit code, the key named, no traceback."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from swapbench.demo.sandbox import Sandbox
from tests.helpers import assert_production_up, swapbench, variant

pytestmark = pytest.mark.rig

MODULE = """
import sys, time
def sleeps(): time.sleep(3600)
def exits(): sys.exit(0)
def raises(): raise RuntimeError("no camera attached")
def five(): return 5
def garbage(content): return "not a (value, strategy) tuple"
def always_raises(content): raise ValueError("cannot parse anything")
def parser_exits(content): sys.exit(3)
"""

Edit = tuple[str, str]


@dataclass(frozen=True)
class Case:
    name: str
    code: int
    says: str  # must appear in stderr: the key, and what is wrong
    edits: Callable[[Sandbox, Path], list[Edit]] = field(default=lambda box, d: [])


def nav(extra: str) -> Callable[[Sandbox, Path], list[Edit]]:
    """Add keys to the nav workload (the first [[workloads]])."""
    return lambda box, d: [
        ('name = "nav"\nkind = "nav"\n', f'name = "nav"\nkind = "nav"\n{extra.replace("{d}", str(d))}\n')
    ]


def builder(function: str) -> Callable[[Sandbox, Path], list[Edit]]:
    return nav(f'prompt_builder = {{ callable = "badmod:{function}", python_path = ["{{d}}"] }}')


def parser(function: str) -> Callable[[Sandbox, Path], list[Edit]]:
    return nav(f'parser = {{ callable = "badmod:{function}", python_path = ["{{d}}"] }}')


def schema(text: str) -> Callable[[Sandbox, Path], list[Edit]]:
    def edits(box: Sandbox, d: Path) -> list[Edit]:
        (d / "nav.schema.json").write_text(text)
        return nav(f'json_schema = "{d / "nav.schema.json"}"')(box, d)

    return edits


FRAMES = Path(__file__).parents[2] / "src" / "swapbench" / "demo" / "frames"


def image(make: Callable[[Path], Path]) -> Callable[[Sandbox, Path], list[Edit]]:
    """The sandbox's [image] frames replaced by one image path."""

    def edits(box: Sandbox, d: Path) -> list[Edit]:
        return [(f'frames = "{FRAMES}"', f'path = "{make(d)}"')]

    return edits


def frames(make: Callable[[Path], Path]) -> Callable[[Sandbox, Path], list[Edit]]:
    """The sandbox's [image] frames folder replaced by another."""

    def edits(box: Sandbox, d: Path) -> list[Edit]:
        return [(f'frames = "{FRAMES}"', f'frames = "{make(d)}"')]

    return edits


def one_frame_truncated(d: Path) -> Path:
    for frame in sorted(FRAMES.iterdir()):
        (d / frame.name).write_bytes(frame.read_bytes())
    data = (d / "frame-3.jpg").read_bytes()
    (d / "frame-3.jpg").write_bytes(data[: len(data) // 2])
    return d


def truncated(d: Path) -> Path:
    data = (Path(__file__).parents[2] / "src" / "swapbench" / "demo" / "car-view.jpg").read_bytes()
    (d / "cut.jpg").write_bytes(data[: len(data) // 2])
    return d / "cut.jpg"


def junk_appended(d: Path) -> Path:
    data = (Path(__file__).parents[2] / "src" / "swapbench" / "demo" / "car-view.jpg").read_bytes()
    (d / "junk.jpg").write_bytes(data + os.urandom(50 << 20))
    return d / "junk.jpg"


def fifo(d: Path) -> Path:
    os.mkfifo(d / "frame.jpg")
    return d / "frame.jpg"


def run_key(line: str) -> Callable[[Sandbox, Path], list[Edit]]:
    return lambda box, d: [("time_cap_s = 600.0", f"time_cap_s = 600.0\n{line}")]


def launch(old: str, new: str) -> Callable[[Sandbox, Path], list[Edit]]:
    return lambda box, d: [(old, new.format(d=d))]


def launch_key(line: str) -> Callable[[Sandbox, Path], list[Edit]]:
    return lambda box, d: [("settle_s = 0.3\n\n[[services]]", f"settle_s = 0.3\n{line.format(d=d)}\n\n[[services]]")]


def copy_model(d: Path, name: str, data: bytes | None = None) -> Path:
    path = d / name
    path.write_bytes(data if data is not None else b"this is not a model\n")
    return path


def candidate_model(box: Sandbox) -> str:
    return box.plan_path.read_text().split('model = "', 1)[1].split('"', 1)[0]  # the only `model =`: the launch's


def corrupt_model(box: Sandbox, d: Path) -> list[Edit]:
    return [(f'model = "{candidate_model(box)}"', f'model = "{copy_model(d, "model.gguf")}"')]


def output_dir_a_file(box: Sandbox, d: Path) -> list[Edit]:
    (d / "afile").touch()
    return [(f'output_dir = "{box.folder / "results"}"', f'output_dir = "{d / "afile"}"')]


def non_executable_binary(box: Sandbox, d: Path) -> list[Edit]:
    text = box.plan_path.read_text()
    binary = text.split('binary = "', 1)[1].split('"', 1)[0]
    copy = d / "llama-server"
    shutil.copyfile(binary, copy)
    copy.chmod(0o644)
    return [(f'binary = "{binary}"', f'binary = "{copy}"')]


def service_program(which: str, program: Callable[[Path], str]) -> Callable[[Sandbox, Path], list[Edit]]:
    """Replace the tts service's start or stop command with `program`."""

    def edits(box: Sandbox, d: Path) -> list[Edit]:
        text = box.plan_path.read_text()
        tts = text[text.index('name = "tts"') :]
        line = next(ln for ln in tts.splitlines() if ln.startswith(f"{which} = ["))
        return [(line, f'{which} = ["{program(d)}"]')]

    return edits


def not_executable(d: Path) -> str:
    script = d / "stop.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return str(script)


def tts_key(line: str) -> Callable[[Sandbox, Path], list[Edit]]:
    return lambda box, d: [('name = "tts"\n', f'name = "tts"\n{line.format(d=d)}\n')]


CASES = [
    # the plan itself: exit 2, refused while loading
    Case("time_cap_s = inf", 2, "run.time_cap_s: Input should be a finite number",
         lambda box, d: [("time_cap_s = 600.0", "time_cap_s = inf")]),
    Case("request_timeout_s nan", 2, "run.request_timeout_s: Input should be a finite number",
         run_key("request_timeout_s = nan")),
    Case("drain_timeout_s absurd", 2, "run.drain_timeout_s: Input should be less than or equal to 3600",
         lambda box, d: [("drain_timeout_s = 30.0", "drain_timeout_s = 1e9")]),
    Case("label traversal", 2, "run.label: String should match pattern",
         lambda box, d: [('label = "sandbox-swap"', 'label = "/../../x"')]),
    Case("label NUL", 2, "run.label: String should match pattern",
         lambda box, d: [('label = "sandbox-swap"', 'label = "a\\u0000b"')]),
    Case("label 300 characters", 2, "run.label: String should have at most 64 characters",
         lambda box, d: [('label = "sandbox-swap"', f'label = "{"x" * 300}"')]),
    Case("verify pgrep bad regex", 2, "verify[5].pattern: not a valid regular expression",
         lambda box, d: [(f'pattern = "phone_call.py auto {box.ports["nav"]}"\n\n[[verify]]',
                          'pattern = "[p"\n\n[[verify]]')]),
    Case("file_pattern bad regex", 2, "checks[2].pattern: not a valid regular expression",
         lambda box, d: [('pattern = "TTSStoppedFrame"', 'pattern = "(TTSStoppedFrame"')]),
    Case("process pattern bad regex", 2, "services[3].pattern: not a valid regular expression",
         lambda box, d: [(f'pattern = "phone_call.py auto {box.ports["nav"]}"\n\n[decision]',
                          'pattern = "*phone"\n\n[decision]')]),
    Case("service settle_s absurd", 2, "services[1].settle_s: Input should be less than or equal to 600",
         lambda box, d: [("settle_s = 0.3\nready_timeout_s = 30.0", "settle_s = 1e9\nready_timeout_s = 30.0")]),
    Case("candidate settle longer than its timeout", 2, "settle_s (120) must be shorter than ready_timeout_s",
         lambda box, d: [("settle_s = 0.3\n\n[[services]]", "settle_s = 120.0\n\n[[services]]")]),
    Case("lines inverted", 2, "checks[2].lines: must be [first, last]",
         lambda box, d: [("lines = [159, 161]", "lines = [161, 159]")]),
    Case("verify VRAM band inverted", 2, "the lower bound (90) is above the upper bound (80)",
         lambda box, d: [("min_gb = 0.0\nmax_gb = 80.0", "min_gb = 90.0\nmax_gb = 80.0")]),
    Case("candidate on production's port", 2, "launch.port",
         lambda box, d: [(f"port = {box.ports['candidate']}", f"port = {box.ports['llama']}")]),
    Case("candidate public bind", 2, "host = '0.0.0.0' is not loopback", launch_key('host = "0.0.0.0"')),
    Case("api key in flags", 2, "flags contain --api-key",
         launch('flags = ["-c", "2048", "-np", "1"]', 'flags = ["--api-key", "sk-1"]')),
    Case("restore order forgets a service", 2, "run.restore_order must name exactly the services",
         lambda box, d: [('restore_order = ["llama-prod", "tts"]', 'restore_order = ["llama-prod"]')]),
    Case("restore reserve eats the cap", 2, "restore_reserve_s (600) must be less than time_cap_s",
         run_key("restore_reserve_s = 600")),
    Case("unknown key", 2, "run.stop_ordr: unknown key", run_key('stop_ordr = ["tts"]')),
    Case("image path with NUL", 2, "image.path: contains a NUL character",
         image(lambda d: Path("a\\u0000b.jpg"))),
    # inputs: exit 3
    Case("image missing", 3, "does not exist", image(lambda d: d / "nope.jpg")),
    Case("image is a FIFO", 3, "named pipe (FIFO), not a regular file", image(fifo)),
    Case("image is a folder", 3, "image.path", image(lambda d: d)),
    Case("image truncated", 3, "image.path", image(truncated)),
    Case("image with 50 MB of junk appended", 3, "image.path", image(junk_appended)),
    Case("frames folder empty", 3, "image.frames: folder", frames(lambda d: d)),
    Case("frames folder missing", 3, "image.frames: folder", frames(lambda d: d / "nope")),
    Case("one frame truncated", 3, "image.frames: image", frames(one_frame_truncated)),
    Case("schema type 5", 3, "workloads[0].json_schema", schema('{"type": 5}')),
    Case("schema remote ref", 3, "workloads[0].json_schema",
         schema('{"$ref": "https://example.invalid/nav.json"}')),
    Case("schema not JSON", 3, "workloads[0].json_schema", schema("{not json")),
    Case("schema a list", 3, "workloads[0].json_schema", schema("[1, 2]")),
    # the user's code, tried in a bounded child process: exit 4
    Case("builder hangs", 4, "workloads[0].prompt_builder (badmod:sleeps)", builder("sleeps")),
    Case("builder sys.exit(0)", 4, "workloads[0].prompt_builder (badmod:exits)", builder("exits")),
    Case("builder raises", 4, "no camera attached", builder("raises")),
    Case("builder returns 5", 4, "workloads[0].prompt_builder (badmod:five)", builder("five")),
    Case("builder module missing", 4, "workloads[0].prompt_builder", builder("missing_function")),
    Case("parser returns garbage", 4, "workloads[0].parser (badmod:garbage)", parser("garbage")),
    Case("parser raises on everything", 4, "workloads[0].parser (badmod:always_raises)", parser("always_raises")),
    Case("parser exits", 4, "workloads[0].parser (badmod:parser_exits)", parser("parser_exits")),
    # Phase 0 contracts: exit 6, nothing touched
    Case("model missing", 6, "launch.model", lambda box, d: [(candidate_model(box), str(d / "gone.gguf"))]),
    Case("model not GGUF", 6, "is not a GGUF file", corrupt_model),
    Case("mmproj missing", 6, "launch.mmproj",
         lambda box, d: [(".mmproj.gguf\"\nchat_template_file", ".missing.gguf\"\nchat_template_file")]),
    Case("chat template missing", 6, "launch.chat_template_file",
         lambda box, d: [("gemma3.jinja", "gemma3-missing.jinja")]),
    Case("unknown llama-server flag", 6, "--no-such-flag",
         launch('flags = ["-c", "2048", "-np", "1"]', 'flags = ["-c", "2048", "--no-such-flag"]')),
    Case("binary not executable", 6, "launch.binary", non_executable_binary),
    Case("api key file missing", 6, "api_key_file",
         lambda box, d: [('label = "gemma3-270m"\n', f'label = "gemma3-270m"\napi_key_file = "{d / "key"}"\n')]),
    Case("start program missing", 6, "services[1] (tts).start[0]",
         service_program("start", lambda d: str(d / "start.sh"))),
    Case("stop program not executable", 6, "services[1] (tts).stop[0]", service_program("stop", not_executable)),
    Case("service cwd missing", 6, "services[1] (tts).cwd", tts_key('cwd = "{d}/nowhere"')),
    Case("pattern moved in the file", 6, "not at lines 100-101",
         lambda box, d: [("lines = [159, 161]", "lines = [100, 101]")]),
    Case("port owner is someone else", 6, "expected 'uvicorn'",
         lambda box, d: [('process = "swapbench.demo.sandbox nav"', 'process = "uvicorn"')]),
    Case("disk too small", 6, "disk free at", lambda box, d: [("min_gb = 0.5", "min_gb = 100000.0")]),
    Case("output_dir is a file", 6, "run.output_dir", output_dir_a_file),
    Case("baseline not serving", 6, "service llama-prod up now",
         lambda box, d: [(f'url = "http://127.0.0.1:{box.ports["llama"]}/health"',
                          f'url = "http://127.0.0.1:{box.ports["llama"]}/no-such-health"')]),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_plan_is_refused_before_anything_is_touched(box: Sandbox, tmp_path: Path, case: Case) -> None:
    (tmp_path / "badmod.py").write_text(MODULE)
    plan = variant(box, tmp_path / "plan", *case.edits(box, tmp_path))
    before = sorted((box.folder / "results").glob("*")) if (box.folder / "results").exists() else []
    run = swapbench("run", str(plan), timeout_s=120)
    assert run.returncode == case.code, run.stderr[-3000:]
    assert case.says in run.stderr, run.stderr[-3000:]
    assert "Traceback" not in run.stdout + run.stderr
    assert "what to do:" in run.stderr
    after = sorted((box.folder / "results").glob("*")) if (box.folder / "results").exists() else []
    assert [p for p in after if p not in before and p.is_dir()] == []  # no run folder: nothing began
    assert_production_up(box)


def test_the_corpus_is_the_whole_class() -> None:
    """The issue's count: 52 malformed plans tried from outside; this corpus holds at least as many."""
    assert len(CASES) >= 52, len(CASES)
