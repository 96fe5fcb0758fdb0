"""Phase 0's program, file, secret and flag checks on real files and real executables. Docker cannot run here:
a stand-in `docker` on PATH records the exact argv swapbench runs and answers as docker does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swapbench.adapters.phase0 import (
    check_flags,
    check_gguf,
    check_program,
    check_secret,
    check_text_file,
    docker_image_checks,
    parse_options,
    user_options,
)
from swapbench.core.steps import Status
from swapbench.plan.models import Launch

HELP = """-m,    --model FNAME                    model path
-ngl,  --gpu-layers, --n-gpu-layers N   max. number of layers to store in VRAM
-c,    --ctx-size N                     size of the prompt context (default: 4096, 0 = loaded from model)
-mm,   --mmproj FILE                    path to a multimodal projector file
--host HOST                             IP addresses to listen on
--port PORT                             port to listen (default: 8080)
--jinja, --no-jinja                     whether to use jinja template engine for chat (default: enabled)
--temp N                                temperature (default: 0.8, e.g. -1 means off)
"""


def native(**kw: object) -> Launch:
    return Launch.model_validate({"kind": "native", "binary": "/x", "model": "m.gguf", "port": 11437, **kw})


def test_options_are_read_from_help_text() -> None:
    options = parse_options(HELP)
    assert {"-m", "-ngl", "--gpu-layers", "--n-gpu-layers", "-c", "--mmproj", "--jinja", "--no-jinja"} <= options
    assert "-1" not in options and "--temp" in options


def test_user_options_skip_values_and_split_equals() -> None:
    assert user_options(["-ngl", "99", "--temp", "-1", "--ctx-size=4096", "-"]) == ["-ngl", "--temp", "--ctx-size"]


def test_flags_must_all_be_listed() -> None:
    options = parse_options(HELP)
    ok = check_flags(native(flags=["-ngl", "99", "--temp", "-1"]), options, "candidates[0].launch.flags", "srv")
    assert ok.status is Status.PASS
    bad = check_flags(native(flags=["--no-such-flag", "-ngl", "9"]), options, "candidates[0].launch.flags", "srv")
    assert bad.failed and bad.detail.startswith("--no-such-flag: not an option of srv (from its --help)")
    template = check_flags(native(chat_template_file="t.jinja"), options, "k", "srv")
    assert template.failed and "--chat-template-file" in template.detail  # swapbench's own flags are checked too
    why = check_flags(native(), "cannot read the options: `srv --help` exited 1", "k", "srv")
    assert why.failed and "cannot read the options" in why.detail


def test_programs(tmp_path: Path) -> None:
    script = tmp_path / "start.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    assert check_program("./start.sh", tmp_path, "services[1] (tts).start[0]").detail.startswith("is not executable")
    script.chmod(0o755)
    assert check_program("./start.sh", tmp_path, "k").status is Status.PASS
    missing = check_program("./nope.sh", tmp_path, "services[1] (tts).start[0]")
    assert missing.failed and missing.name == f"services[1] (tts).start[0] {tmp_path / 'nope.sh'}"
    assert check_program("no-such-program-xyz", tmp_path, "k").failed
    assert check_program("sh", tmp_path, "k").status is Status.PASS


def test_model_files(tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF\x03\x00\x00\x00rest")
    assert check_gguf(tmp_path / "m.gguf", "k").status is Status.PASS
    (tmp_path / "t.gguf").write_text("<html>not found</html>")
    assert check_gguf(tmp_path / "t.gguf", "k").detail == "is not a GGUF file (starts with b'<htm')"
    os.mkfifo(tmp_path / "fifo.gguf")
    assert check_gguf(tmp_path / "fifo.gguf", "k").detail == "is a FIFO"  # and it did not block
    assert check_gguf(tmp_path, "k").detail == "is a directory"
    assert check_gguf(tmp_path / "gone.gguf", "k").detail == "does not exist"


def test_template_and_secret(tmp_path: Path) -> None:
    (tmp_path / "t.jinja").write_bytes(b"\xff\xfe junk")
    assert check_text_file(tmp_path / "t.jinja", "k").detail.startswith("is not UTF-8 text")
    (tmp_path / "key").write_text("sk-secret-value\n")
    ok = check_secret(tmp_path / "key", "candidates[0] (c).api_key_file")
    assert ok.status is Status.PASS and "sk-secret" not in ok.detail + ok.name
    (tmp_path / "empty").write_text("\n")
    assert check_secret(tmp_path / "empty", "k").detail == "is empty"


FAKE_DOCKER = """#!/bin/sh
echo "$@" >> "{log}"
case "$1 $2" in
  "image inspect") [ "$5" = "present:tag" ] && echo "sha256:0123456789abcdef0123" && exit 0
                   echo "Error: No such image: $5" >&2; exit 1 ;;
  "run --rm") printf '%s' "{help}" ; exit 0 ;;
esac
exit 2
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "argv.log"
    tool = tmp_path / "bin" / "docker"
    tool.parent.mkdir()
    tool.write_text(FAKE_DOCKER.format(log=log, help=HELP))
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    return log


def docker(image: str, flags: list[str]) -> Launch:
    return Launch.model_validate({"kind": "docker", "name": "e4b", "image": image, "models_dir": "/m",
                                  "model": "/m/a.gguf", "port": 11437, "flags": flags})  # fmt: skip


def test_docker_image_must_be_present_before_the_window(fake_docker: Path) -> None:
    found = list(docker_image_checks(docker("absent:tag", []), "candidates[0] (e4b).launch"))
    assert [o.status for o in found] == [Status.FAIL]
    assert "not present locally" in found[0].detail and "docker pull absent:tag" in found[0].detail
    assert fake_docker.read_text().splitlines() == ["image inspect --format {{.Id}} absent:tag"]


def test_docker_flags_are_checked_against_the_image(fake_docker: Path) -> None:
    found = list(docker_image_checks(docker("present:tag", ["-ngl", "99", "--bogus"]), "candidates[0] (e4b).launch"))
    assert [o.status for o in found] == [Status.PASS, Status.FAIL]
    assert found[1].detail.startswith("--bogus: not an option of present:tag")
    assert fake_docker.read_text().splitlines() == [
        "image inspect --format {{.Id}} present:tag",
        "run --rm --pull=never present:tag --help",
    ]
