"""Phase 0's program, file, secret and flag checks against real things: the rig's llama-server and its --help,
its GGUF models, real scripts, FIFOs, symlinks and PATHs. No container engine runs here: a stand-in `docker`
first on PATH records the exact argv swapbench runs and answers as docker does, with the rig's real --help."""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from swapbench.core.steps import Outcome, Status
from swapbench.demo.rig import Rig
from swapbench.host.candidate.llama_server import free_port
from swapbench.host.preflight.contracts import (
    TEMPLATE_MAX_BYTES,
    check_gguf,
    flag_checks,
    model_file_checks,
    plan_preflight,
    program_checks,
    secret_checks,
)
from swapbench.host.processes.proc import run_argv
from swapbench.plan.load import LoadedPlan, load_plan

pytestmark = pytest.mark.rig

CAND = "candidates[0] (cand).launch"
GOOD_FLAGS = ["-ngl", "99", "-c", "2048", "--temp", "0", "-t", "1", "--flash-attn", "auto", "--top-k", "-1"]
WORKLOAD = '[[workloads]]\nname = "describe"\nkind = "describe"\nimage = false\n'
TTS = """
[[services]]
name = "tts"
manager = "command"
start = {start}
stop = ["./stop.sh"]
{cwd}
health = {{ url = "http://127.0.0.1:18772/health" }}
"""


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f"'{i}'" for i in items) + "]"


def native(binary: Path, model: Path, flags: list[str] | None = None, extra: str = "") -> str:
    return (
        f"[[candidates]]\nlabel = 'cand'\n{extra}\n[candidates.launch]\nkind = 'native'\nbinary = '{binary}'\n"
        f"model = '{model}'\nport = 18437\nflags = {toml_list(flags or [])}\n"
    )


def plan(tmp_path: Path, *sections: str) -> LoadedPlan:
    path = tmp_path / "plan.toml"
    path.write_text(WORKLOAD + "\n".join(sections))
    return load_plan(path)


def script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(mode)
    return path


def by_name(found: list[Outcome]) -> dict[str, tuple[Status, str]]:
    return {o.name: (o.status, o.detail) for o in found}


def statuses(found: list[Outcome]) -> list[tuple[str, Status]]:
    return [(o.name, o.status) for o in found]


# --- the candidate's flags, against the real llama-server --help ---------------------------------------------


def test_good_flags_are_accepted(rig: Rig, tmp_path: Path) -> None:
    found = flag_checks(plan(tmp_path, native(rig.llama_server, rig.smollm2, GOOD_FLAGS)))
    assert statuses(found) == [(f"{CAND}.binary", Status.PASS), (f"{CAND}.flags", Status.PASS)]
    assert found[0].detail == "takes -m --host --port --no-webui --jinja"
    assert found[1].detail == f"12 entries accepted by {rig.llama_server}"


def test_unknown_flag_is_refused_with_its_key(rig: Rig, tmp_path: Path) -> None:
    found = flag_checks(plan(tmp_path, native(rig.llama_server, rig.smollm2, ["-ngl", "99", "--no-such-flag"])))
    assert statuses(found) == [(f"{CAND}.binary", Status.PASS), (f"{CAND}.flags", Status.FAIL)]
    assert found[1].detail == (
        f"--no-such-flag is not an option of {rig.llama_server} (from its --help); fix {CAND}.flags"
    )


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--temp", "-1"], None),  # -1 is --temp's value, not a flag
        (["--control-vector-layer-range", "1", "-1"], None),  # two values
        (["-1"], "'-1' is not the value of any option"),
        (["99"], "'99' is not the value of any option"),
        (["--ctx-size=2048"], '--ctx-size=2048: {b} takes no --option=value form; write "--ctx-size", "2048"'),
        (["-ngl"], "-ngl expects 1 value(s) after it (`-ngl, --gpu-layers, --n-gpu-layers N`)"),
        (["-c", "--jinja"], "-c expects 1 value(s) after it"),
        (["--no-mmap"], "--no-mmap is not an option of {b}"),  # gone from this build (see --load-mode)
        (["--flash-atn", "on"], "--flash-atn is not an option of {b} (from its --help); did you mean --flash-attn?"),
    ],
)
def test_preflight_agrees_with_the_binarys_own_parser(
    rig: Rig, tmp_path: Path, flags: list[str], says: str | None
) -> None:
    """What Phase 0 refuses, the real llama-server refuses too (and the reverse): it runs here with the same
    flags and a model that does not exist, so it either stops at its argument parser or at the model."""
    found = flag_checks(plan(tmp_path, native(rig.llama_server, rig.smollm2, flags)))
    flag_outcome = found[1]
    if says is None:
        assert flag_outcome.status is Status.PASS, flag_outcome.detail
    else:
        assert flag_outcome.status is Status.FAIL and says.format(b=rig.llama_server) in flag_outcome.detail
    argv = [str(rig.llama_server), "-m", str(tmp_path / "none.gguf"), "--host", "127.0.0.1", "--port"]
    real = run_argv([*argv, str(free_port()), "--no-webui", "--jinja", *flags], 30.0)
    output = real.stdout + real.stderr
    refused = re.search(r"invalid argument|error while handling argument|expected value", output) is not None
    assert not real.ok and refused == (says is not None), output[-500:]


def wrapper(tmp_path: Path, rig: Rig, drop: str = "^$") -> tuple[Path, Path]:
    """A real executable that logs each run and prints the rig's --help without the lines matching `drop`:
    a llama-server build that lacks those options."""
    log = tmp_path / "runs.log"
    body = f"#!/bin/sh\necho run >> '{log}'\n'{rig.llama_server}' \"$@\" | grep -v -e '{drop}'\n"
    return script(tmp_path / "bin" / "llama-server", body), log


def test_a_build_without_an_option_swapbench_passes_fails_on_the_binary(rig: Rig, tmp_path: Path) -> None:
    binary, _ = wrapper(tmp_path, rig, drop="--no-webui")
    found = flag_checks(plan(tmp_path, native(binary, rig.smollm2)))
    assert statuses(found) == [(f"{CAND}.binary", Status.FAIL), (f"{CAND}.flags", Status.PASS)]
    assert found[0].detail.startswith(f"--no-webui is not an option of {binary} (from its --help)")
    assert found[0].detail.endswith("use a llama-server that takes them")


def test_swapbench_own_mmproj_and_template_flags_are_checked(rig: Rig, tmp_path: Path) -> None:
    binary, _ = wrapper(tmp_path, rig, drop="--chat-template-file")
    extra = f"mmproj = '{rig.mmproj(rig.smollm2)}'\nchat_template_file = '{rig.gemma3_template}'\n"
    found = flag_checks(plan(tmp_path, native(binary, rig.smollm2) + extra))
    assert statuses(found) == [(f"{CAND}.binary", Status.FAIL), (f"{CAND}.flags", Status.PASS)]
    assert found[0].detail.startswith(f"--chat-template-file is not an option of {binary}")


def test_help_is_read_once_per_binary_version(rig: Rig, tmp_path: Path) -> None:
    binary, log = wrapper(tmp_path, rig)
    loaded = plan(tmp_path, native(binary, rig.smollm2))
    assert [o.status for o in flag_checks(loaded) + flag_checks(loaded)] == [Status.PASS] * 4
    assert log.read_text().splitlines() == ["run"]  # cached by path, size and mtime
    os.utime(binary, ns=(time.time_ns(), time.time_ns() + 10**9))
    flag_checks(loaded)
    assert log.read_text().splitlines() == ["run", "run"]  # a new build is read again


def test_a_binary_whose_help_fails_is_named_with_its_output(rig: Rig, tmp_path: Path) -> None:
    body = "#!/bin/sh\necho 'llama-server: error while loading shared libraries: libcuda.so.1' >&2\nexit 127\n"
    binary = script(tmp_path / "llama-server", body)
    found = flag_checks(plan(tmp_path, native(binary, rig.smollm2)))
    assert statuses(found) == [(f"{CAND}.binary", Status.FAIL)]
    assert f"`{binary} --help` exited 127: llama-server: error while loading shared libraries" in found[0].detail


def test_a_help_that_hangs_is_cut_at_its_deadline(rig: Rig, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    binary = script(tmp_path / "llama-server", f"#!/bin/sh\necho $$ > '{pid_file}'\nsleep 60\n")
    start = time.monotonic()
    found = flag_checks(plan(tmp_path, native(binary, rig.smollm2)), help_timeout_s=0.5)
    assert time.monotonic() - start < 10
    assert statuses(found) == [(f"{CAND}.binary", Status.FAIL)] and "timed out after" in found[0].detail
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)  # its process group was killed: nothing stays running


def test_a_binary_that_cannot_run_skips_the_flags(rig: Rig, tmp_path: Path) -> None:
    binary = script(tmp_path / "llama-server", "#!/bin/sh\n", mode=0o644)
    loaded = plan(tmp_path, native(binary, rig.smollm2))
    assert statuses(flag_checks(loaded)) == [(f"{CAND}.flags", Status.SKIP)]
    assert by_name(program_checks(loaded))[f"{CAND}.binary"] == (
        Status.FAIL,
        f"{binary} is not executable by this user: `chmod +x {binary}`; fix {CAND}.binary",
    )


# --- model files ------------------------------------------------------------------------------------------------


def test_the_rigs_model_projector_and_template_pass(rig: Rig, tmp_path: Path) -> None:
    extra = f"mmproj = '{rig.mmproj(rig.smollm2)}'\nchat_template_file = '{rig.gemma3_template}'\n"
    found = model_file_checks(plan(tmp_path, native(rig.llama_server, rig.smollm2) + extra))
    assert statuses(found) == [
        (f"{CAND}.model", Status.PASS),
        (f"{CAND}.mmproj", Status.PASS),
        (f"{CAND}.chat_template_file", Status.PASS),
    ]
    assert found[0].detail == f"{rig.smollm2}: GGUF v3, 272 tensors whole in 93.8 MiB"


def _cut(source: Path, to: Path, keep: int) -> Path:
    with source.open("rb") as f:
        to.write_bytes(f.read(keep))
    return to


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (
            lambda rig, d: (d / "m.gguf").write_text("GGUF is the format llama.cpp reads\n") and d / "m.gguf",
            "starts like a GGUF but is not a whole one: GGUF version 544434464 (llama.cpp reads 2, 3)",
        ),
        (
            lambda rig, d: _cut(rig.smollm2, d / "m.gguf", 2 << 20),  # past the tensor table (1.7 MiB)
            "starts like a GGUF but is not a whole one: its 272 tensors need 98362432 bytes, the file has 2097152 "
            "(91.8 MiB missing): cut short",
        ),
        (
            lambda rig, d: _cut(rig.smollm2, d / "m.gguf", 4096),
            "starts like a GGUF but is not a whole one: the file ends inside ",
        ),
    ],
    ids=["text-starting-with-GGUF", "cut-after-the-table", "cut-inside-the-header"],
)
def test_a_gguf_that_is_not_whole_is_refused(rig: Rig, tmp_path: Path, make: Any, says: str) -> None:
    """Phase 0 walks the header and the tensor table as llama.cpp does, and measures the file against them."""
    model = make(rig, tmp_path)
    found = model_file_checks(plan(tmp_path, native(rig.llama_server, model)))
    assert statuses(found) == [(f"{CAND}.model", Status.FAIL)]
    assert found[0].detail.startswith(f"{model} {says}"), found[0].detail


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"<html>404 Not Found</html>", "is not a GGUF file (starts with b'<htm'): an HTML or XML page"),
        (b"version https://git-lfs.github.com/spec/v1\n", "is not a GGUF file (starts with b'vers'): a Git LFS"),
        (b"", "is not a GGUF file (starts with b'')"),
    ],
)
def test_a_file_named_gguf_that_is_not_one(rig: Rig, tmp_path: Path, content: bytes, says: str) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(content)
    found = model_file_checks(plan(tmp_path, native(rig.llama_server, model)))
    assert statuses(found) == [(f"{CAND}.model", Status.FAIL)]
    assert found[0].detail.startswith(f"{model} {says}")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    found: list[Outcome] = []
    worker = threading.Thread(target=lambda: found.append(check_gguf(fifo, f"{CAND}.model")), daemon=True)
    worker.start()
    worker.join(5)
    assert found and found[0].status is Status.FAIL
    assert found[0].detail == f"{fifo} is a FIFO; fix {CAND}.model"


def test_missing_directory_and_broken_link(rig: Rig, tmp_path: Path) -> None:
    (tmp_path / "link.gguf").symlink_to(tmp_path / "gone.gguf")
    for path, says in [
        (tmp_path / "none.gguf", "does not exist"),
        (tmp_path, "is a directory"),
        (tmp_path / "link.gguf", f"is a broken symlink (to {tmp_path / 'gone.gguf'})"),
    ]:
        found = model_file_checks(plan(tmp_path, native(rig.llama_server, path)))
        assert by_name(found) == {f"{CAND}.model": (Status.FAIL, f"{path} {says}; fix {CAND}.model")}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b"{{ messages }}\xff", "is not UTF-8 text (at byte 14)"),
        (b"x" * (TEMPLATE_MAX_BYTES + 1), "is larger than 1024 KiB: not a chat template"),
    ],
)
def test_a_bad_chat_template(rig: Rig, tmp_path: Path, content: bytes, says: str) -> None:
    template = tmp_path / "t.jinja"
    template.write_bytes(content)
    loaded = plan(tmp_path, native(rig.llama_server, rig.smollm2) + f"chat_template_file = '{template}'\n")
    assert by_name(model_file_checks(loaded))[f"{CAND}.chat_template_file"] == (
        Status.FAIL,
        f"{template} {says}; fix {CAND}.chat_template_file",
    )


# --- programs ---------------------------------------------------------------------------------------------------


def tts(start: list[str], cwd: str | None = None) -> str:
    return TTS.format(start=toml_list(start), cwd=f"cwd = '{cwd}'" if cwd else "")


def service_outcomes(tmp_path: Path, section: str) -> dict[str, tuple[Status, str]]:
    return by_name(program_checks(plan(tmp_path, section)))


def test_start_and_stop_scripts_in_the_plans_folder(tmp_path: Path) -> None:
    script(tmp_path / "start.sh", "#!/bin/sh\nexit 0\n")
    script(tmp_path / "stop.sh", "#!/usr/bin/env sh\nexit 0\n")
    assert service_outcomes(tmp_path, tts(["./start.sh", "--fast"])) == {
        "services[0] (tts).start[0]": (Status.PASS, f"{tmp_path}/start.sh: executable"),
        "services[0] (tts).stop[0]": (Status.PASS, f"{tmp_path}/stop.sh: executable"),
    }


def test_scripts_resolve_against_the_services_cwd(tmp_path: Path) -> None:
    script(tmp_path / "svc" / "start.sh", "#!/bin/sh\n")
    script(tmp_path / "svc" / "stop.sh", "#!/bin/sh\n")
    found = service_outcomes(tmp_path, tts(["./start.sh"], cwd="svc"))
    assert [s for s, _ in found.values()] == [Status.PASS, Status.PASS]
    assert found["services[0] (tts).start[0]"][1] == f"{tmp_path}/svc/start.sh: executable"


def test_a_missing_cwd(tmp_path: Path) -> None:
    assert service_outcomes(tmp_path, tts(["./start.sh"], cwd="nowhere")) == {
        "services[0] (tts).cwd": (
            Status.FAIL,
            f"{tmp_path}/nowhere does not exist or is not a folder; fix services[0] (tts).cwd",
        )
    }


def test_a_start_script_without_the_execute_bit(tmp_path: Path) -> None:
    start = script(tmp_path / "start.sh", "#!/bin/sh\n", mode=0o644)
    script(tmp_path / "stop.sh", "#!/bin/sh\n")
    assert service_outcomes(tmp_path, tts(["./start.sh"]))["services[0] (tts).start[0]"] == (
        Status.FAIL,
        f"{start} is not executable by this user: `chmod +x {start}`; fix services[0] (tts).start[0]",
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("exit 0\n", "has no #! line and is not a binary: running it fails with 'Exec format error'"),
        ("#!/bin/sh\r\nexit 0\r\n", "has Windows line endings (CRLF) in its #! line"),
        ("#!/opt/nowhere/python3\n", "names an interpreter that cannot be run: #!/opt/nowhere/python3"),
        ("#!/usr/bin/env no-such-interpreter-xyz\n", "runs 'no-such-interpreter-xyz' through #!/usr/bin/env"),
    ],
)
def test_a_script_the_kernel_would_not_run(tmp_path: Path, body: str, says: str) -> None:
    start = script(tmp_path / "start.sh", body)
    script(tmp_path / "stop.sh", "#!/bin/sh\n")
    status, detail = service_outcomes(tmp_path, tts(["./start.sh"]))["services[0] (tts).start[0]"]
    assert status is Status.FAIL and detail.startswith(f"{start} {says}")
    assert not run_argv(["./start.sh"], 10.0, cwd=tmp_path).ok  # and running it really fails


def test_a_start_program_not_on_path(tmp_path: Path) -> None:
    script(tmp_path / "stop.sh", "#!/bin/sh\n")
    status, detail = service_outcomes(tmp_path, tts(["no-such-program-xyz", "up"]))["services[0] (tts).start[0]"]
    assert status is Status.FAIL and detail.startswith("'no-such-program-xyz' is not on PATH (")
    status, detail = service_outcomes(tmp_path, tts(["sh", "-c", "exit 0"]))["services[0] (tts).start[0]"]
    assert status is Status.PASS and detail.endswith("/sh: executable")


SYSTEMD = '[[services]]\nname = "llama"\nmanager = "systemd"\nunit = "panda-llamacpp"\nsudo = {sudo}\n'
SYSTEMD += 'health = {{ url = "http://127.0.0.1:11435/health" }}\n'
DOCKER_SVC = '[[services]]\nname = "asr"\nmanager = "docker"\ncontainer = "asr"\n'
DOCKER_SVC += 'health = { url = "http://127.0.0.1:8770/health" }\n'


def test_systemd_and_docker_services_need_their_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    found = program_checks(plan(tmp_path, SYSTEMD.format(sudo="true"), DOCKER_SVC))
    assert statuses(found) == [
        ("services[0] (llama).manager", Status.FAIL),
        ("services[0] (llama).sudo", Status.FAIL),
        ("services[1] (asr).manager", Status.FAIL),
    ]
    assert found[0].detail == f"'systemctl' is not on PATH ({tmp_path / 'empty'}); install it or fix " + (
        "services[0] (llama).manager"
    )
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert statuses(program_checks(plan(tmp_path, SYSTEMD.format(sudo="false")))) == [
        ("services[0] (llama).manager", Status.PASS)
    ]


# --- secrets ----------------------------------------------------------------------------------------------------


def baseline(key_file: Path) -> str:
    return f"[baseline]\nlabel = 'prod'\nurl = 'http://127.0.0.1:11435'\napi_key_file = '{key_file}'\n"


@pytest.mark.parametrize(
    ("content", "status", "says"),
    [
        (b"sk-live-0123456789\n", Status.PASS, "readable, not empty (content not shown)"),
        (b"", Status.FAIL, "is empty; write the key into it"),
        (b" \n\n", Status.FAIL, "is empty; write the key into it"),
        (b"sk-live-0123\nsk-old-4567\n", Status.FAIL, "holds more than one line"),
        (b"sk-live-\xe9", Status.FAIL, "is not UTF-8 text (content not shown)"),
    ],
)
def test_api_key_files(rig: Rig, tmp_path: Path, content: bytes, status: Status, says: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(content)
    extra = f"api_key_file = '{key_file}'"
    found = secret_checks(plan(tmp_path, baseline(key_file), native(rig.llama_server, rig.smollm2, extra=extra)))
    assert statuses(found) == [("baseline.api_key_file", status), ("candidates[0] (cand).api_key_file", status)]
    assert says in found[0].detail
    assert all(b"sk-" not in (o.name + o.detail).encode() for o in found)  # never the key


def test_an_api_key_fifo_does_not_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "key")
    found = secret_checks(plan(tmp_path, baseline(tmp_path / "key")))
    assert by_name(found) == {
        "baseline.api_key_file": (Status.FAIL, f"{tmp_path / 'key'} is a FIFO; fix baseline.api_key_file")
    }


# --- the whole plan ---------------------------------------------------------------------------------------------


def test_a_good_plan_passes_everything_quickly(rig: Rig, tmp_path: Path) -> None:
    script(tmp_path / "start.sh", "#!/bin/sh\n")
    script(tmp_path / "stop.sh", "#!/bin/sh\n")
    (tmp_path / "key").write_text("sk-0123\n")
    extra = f"mmproj = '{rig.mmproj(rig.smollm2)}'\nchat_template_file = '{rig.gemma3_template}'\n"
    section = native(rig.llama_server, rig.smollm2, GOOD_FLAGS, extra="api_key_file = 'key'") + extra
    start = time.monotonic()
    found = plan_preflight(plan(tmp_path, tts(["./start.sh"]), section))
    assert time.monotonic() - start < 5
    assert [o.name for o in found if o.status is not Status.PASS] == []
    assert [o.name for o in found] == [
        "services[0] (tts).start[0]",
        "services[0] (tts).stop[0]",
        f"{CAND}.binary",
        f"{CAND}.model",
        f"{CAND}.mmproj",
        f"{CAND}.chat_template_file",
        "candidates[0] (cand).api_key_file",
        f"{CAND}.binary",
        f"{CAND}.flags",
    ]


# --- docker candidates ------------------------------------------------------------------------------------------

FAKE_DOCKER = """#!/bin/sh
echo "$@" >> '{log}'
case "$1 $2" in
  "image inspect") [ "$5" = "absent:tag" ] && {{ echo "Error: No such image: $5" >&2; exit 1; }}
                   echo "{image_id}"; exit 0 ;;
  "run --rm") [ "$7" = "hangs:tag" ] && exec sleep 60
              exec '{server}' --help ;;
  "rm -f") exit 0 ;;
esac
exit 2
"""


@pytest.fixture
def fake_docker(rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "docker-argv.log"
    image_id = "sha256:" + secrets.token_hex(32)  # a fresh image per test: the help cache is per image id
    script(tmp_path / "bin" / "docker", FAKE_DOCKER.format(log=log, image_id=image_id, server=rig.llama_server))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return log


def docker(tmp_path: Path, image: str, flags: list[str] | None = None, model: Path | None = None) -> LoadedPlan:
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    (models / "m.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(24))
    section = (
        f"[[candidates]]\nlabel = 'cand'\n[candidates.launch]\nkind = 'docker'\nname = 'e4b'\nimage = '{image}'\n"
        f"models_dir = '{models}'\nmodel = '{model or models / 'm.gguf'}'\nport = 18437\n"
        f"flags = {toml_list(flags or [])}\n"
    )
    return plan(tmp_path, section)


HELP_RUN = r"run --rm --pull=never --network=none --name (swapbench-help-[0-9a-f]{8}) present:tag --help"


def test_docker_image_present_and_flags_read_from_it(fake_docker: Path, tmp_path: Path) -> None:
    loaded = docker(tmp_path, "present:tag", ["-ngl", "99", "--no-such-flag"])
    found = flag_checks(loaded)
    assert statuses(found) == [
        (f"{CAND}.image", Status.PASS),
        (f"{CAND}.image", Status.PASS),
        (f"{CAND}.flags", Status.FAIL),
    ]
    assert found[1].detail == "takes -m --host --port --jinja"
    assert found[2].detail.startswith("--no-such-flag is not an option of present:tag (from its --help)")
    lines = fake_docker.read_text().splitlines()
    assert lines[0] == "image inspect --format {{.Id}} present:tag"
    assert len(lines) == 2 and re.fullmatch(HELP_RUN, lines[1])
    flag_checks(loaded)  # the same image id: its help is not read again
    assert fake_docker.read_text().splitlines()[2:] == ["image inspect --format {{.Id}} present:tag"]


def test_docker_image_absent_is_refused_before_the_window(fake_docker: Path, tmp_path: Path) -> None:
    found = flag_checks(docker(tmp_path, "absent:tag"))
    assert statuses(found) == [(f"{CAND}.image", Status.FAIL)]
    assert found[0].detail.startswith("absent:tag is not present here (")
    assert found[0].detail.endswith("run `docker pull absent:tag` before the window")
    assert fake_docker.read_text().splitlines() == ["image inspect --format {{.Id}} absent:tag"]


def test_docker_help_that_hangs_is_removed(fake_docker: Path, tmp_path: Path) -> None:
    found = flag_checks(docker(tmp_path, "hangs:tag"), docker_timeout_s=0.5)
    assert statuses(found) == [(f"{CAND}.image", Status.PASS), (f"{CAND}.image", Status.FAIL)]
    assert "timed out after" in found[1].detail
    inspect, run, rm = fake_docker.read_text().splitlines()
    started = re.fullmatch(HELP_RUN.replace("present:tag", "hangs:tag"), run)
    assert inspect == "image inspect --format {{.Id}} hangs:tag" and started is not None
    assert rm == f"rm -f {started[1]}"  # the container does not outlive Phase 0


def test_docker_model_outside_models_dir(fake_docker: Path, rig: Rig, tmp_path: Path) -> None:
    loaded = docker(tmp_path, "present:tag", model=rig.smollm2)
    found = model_file_checks(loaded)
    assert statuses(found) == [(f"{CAND}.model", Status.PASS), (f"{CAND}.model", Status.FAIL)]
    assert f"{rig.smollm2} is not under launch.models_dir {tmp_path / 'models'}" in found[1].detail
    assert statuses(flag_checks(loaded))[-1] == (f"{CAND}.flags", Status.SKIP)


def test_docker_model_symlinked_out_of_models_dir(fake_docker: Path, rig: Rig, tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "link.gguf").symlink_to(rig.smollm2)
    found = model_file_checks(docker(tmp_path, "present:tag", model=tmp_path / "models" / "link.gguf"))
    assert statuses(found) == [(f"{CAND}.model", Status.PASS), (f"{CAND}.model", Status.FAIL)]
    assert "is a symlink to" in found[1].detail and "inside the container the link is broken" in found[1].detail


def test_the_real_docker_cli_without_a_daemon(tmp_path: Path) -> None:
    """This machine has the docker CLI and no engine: the image cannot be inspected, which is not 'absent'."""
    if os.path.exists("/var/run/docker.sock") or not Path("/usr/local/bin/docker").exists():
        pytest.skip("needs the docker CLI without an engine")
    found = flag_checks(docker(tmp_path, "llama:cuda"))
    assert statuses(found) == [(f"{CAND}.image", Status.FAIL)]
    assert found[0].detail.startswith("llama:cuda cannot be inspected (") and "daemon" in found[0].detail
    help_argv = ["docker", "run", "--rm", "--pull=never", "--network=none", "--name", "x", "llama:cuda", "--help"]
    real = run_argv(help_argv, 30.0)  # the CLI parses the argv swapbench uses and stops only at the daemon
    assert real.returncode == 125 and "unknown flag" not in real.stderr and "daemon" in real.stderr
