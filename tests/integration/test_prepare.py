"""The prepare step on real files and the real page cache: model files read into it before the window, what each
read found there, the warning when they do not fit in memory, and the candidate's version from its binary."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psutil
import pytest

from swapbench.core.steps import Status
from swapbench.demo.rig import Rig
from swapbench.errors import StepFailed
from swapbench.host.candidate.page_cache import CHUNK_BYTES, evict, warm
from swapbench.host.candidate.prepare import PAGE_CACHE_CHECK, Preparer, prepare_checks
from swapbench.plan.load import LoadedPlan, load_plan

MODEL_BYTES = 4 * CHUNK_BYTES + 12345  # several chunks and a short last one


def written(path: Path, size: int) -> Path:
    """A file of `size` bytes on disk (synced: only clean pages can be dropped from the page cache)."""
    with path.open("wb") as file:
        file.write(b"GGUF" + os.urandom(size - 4))
        file.flush()
        os.fsync(file.fileno())
    return path


def fincore_bytes(path: Path) -> int | None:
    """The page cache's own count (util-linux fincore), a witness independent of swapbench's."""
    if shutil.which("fincore") is None:
        return None
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return int(out.stdout.split()[0])


def test_a_read_warms_the_file_and_counts_what_the_cache_held(tmp_path: Path) -> None:
    model = written(tmp_path / "m.gguf", MODEL_BYTES)
    evict([model])
    if fincore_bytes(model) not in (0, None):
        pytest.skip(f"{tmp_path} is on a file system that keeps its pages (tmpfs?): nothing can be cold there")
    cold = warm([model])
    assert (cold.size_bytes, cold.cached_bytes, cold.complete) == (MODEL_BYTES, 0, True)
    pages = -(-MODEL_BYTES // os.sysconf("SC_PAGE_SIZE"))
    assert fincore_bytes(model) in (pages * os.sysconf("SC_PAGE_SIZE"), None)  # every page is in the cache now
    hot = warm([model])
    assert (hot.size_bytes, hot.cached_bytes, hot.cached_share) == (MODEL_BYTES, MODEL_BYTES, 1.0)


def test_a_stop_request_ends_the_read_between_chunks(tmp_path: Path) -> None:
    model = written(tmp_path / "m.gguf", MODEL_BYTES)
    asked = []

    def stop_at_third() -> bool:
        asked.append(1)
        return len(asked) == 3

    cut = warm([model], stop_at_third)
    assert (cut.complete, cut.size_bytes) == (False, 0) and len(asked) == 3


def plan_with(tmp_path: Path, model: Path, mmproj: Path, binary: str = "/nonexistent/llama-server") -> LoadedPlan:
    text = (f"[image]\npath = 'car.jpg'\n[[candidates]]\nlabel = 'e4b'\n[candidates.launch]\nkind = 'native'\n"
            f"binary = '{binary}'\nmodel = '{model}'\nmmproj = '{mmproj}'\nport = 11437\n")  # fmt: skip
    (tmp_path / "plan.toml").write_text(text)
    return load_plan(tmp_path / "plan.toml")


def test_a_reread_says_when_the_page_cache_lost_the_files_between_phase_0_and_the_stop(tmp_path: Path) -> None:
    model, mmproj = written(tmp_path / "m.gguf", MODEL_BYTES), written(tmp_path / "p.gguf", 100_000)
    preparer = Preparer(plan_with(tmp_path, model, mmproj))
    assert preparer.skipped is None
    preparer.first_read(lambda: False)
    preparer.reread(lambda: False)
    kept = preparer.records()[0]
    assert kept.reread is not None and kept.reread.cached_share == 1.0 and kept.note is None
    assert (kept.label, kept.files, kept.size_bytes) == ("e4b", [str(model), str(mmproj)], MODEL_BYTES + 100_000)
    evict([model, mmproj])  # what memory pressure does to them during a long baseline bench
    if fincore_bytes(model) not in (0, None):
        pytest.skip(f"{tmp_path} is on a file system that keeps its pages (tmpfs?)")
    preparer.reread(lambda: False)
    lost = preparer.records()[0]
    assert lost.reread is not None and lost.reread.cached_share == 0.0
    assert lost.note is not None and lost.note.startswith("the page cache had lost 100% of the files since Phase 0")
    assert lost.note.endswith("They were read again before the first stop, so the load still read memory")
    assert lost.version is None  # no binary at that path: no version, and no failure for it


def test_a_model_gone_before_the_stop_fails_the_reread_and_names_it(tmp_path: Path) -> None:
    """Deleted between Phase 0 and the first stop: the candidate could not load it, so production is not stopped
    (the orchestrator ends the swap on this error before its first stop)."""
    model, mmproj = written(tmp_path / "m.gguf", MODEL_BYTES), written(tmp_path / "p.gguf", 100_000)
    preparer = Preparer(plan_with(tmp_path, model, mmproj))
    preparer.first_read(lambda: False)
    model.unlink()
    with pytest.raises(StepFailed) as caught:
        preparer.reread(lambda: False)
    assert caught.value.message == (
        f"candidates[0] (e4b).launch: reading {model} into the page cache failed: No such file or directory"
    )
    assert caught.value.hint == "check the file and its disk: the candidate could not load it either"


def test_files_larger_than_the_memory_available_are_a_warning_and_are_not_read(tmp_path: Path) -> None:
    """A sparse file larger than MemAvailable (no disk used): the check warns, the window reads nothing before."""
    model = tmp_path / "huge.gguf"
    with model.open("wb") as file:
        file.truncate(psutil.virtual_memory().available + (8 << 30))
    mmproj = written(tmp_path / "p.gguf", 100_000)
    loaded = plan_with(tmp_path, model, mmproj)
    found = {o.name: o for o in prepare_checks(loaded)}
    check = found[PAGE_CACHE_CHECK]
    assert check.status is Status.WARN and not check.failed
    assert "of memory available (MemAvailable): they do not fit, so they are not read before the window" in check.detail
    assert found["candidates[0] (e4b).launch.version"].status is Status.WARN
    preparer = Preparer(loaded)
    preparer.first_read(lambda: pytest.fail("nothing may be read"))
    preparer.reread(lambda: pytest.fail("nothing may be read"))
    record = preparer.records()[0]
    assert (record.first_read, record.reread, record.note) == (None, None, preparer.skipped)


@pytest.mark.rig
def test_the_version_comes_from_the_candidate_s_own_binary(rig: Rig, tmp_path: Path) -> None:
    loaded = plan_with(tmp_path, rig.gemma3, Rig.mmproj(rig.gemma3), binary=str(rig.llama_server))
    found = {o.name: o for o in prepare_checks(loaded)}
    version = found["candidates[0] (e4b).launch.version"]
    assert version.status is Status.PASS
    assert version.detail.startswith("version: ") and "(build 11434, " in version.detail
    assert found[PAGE_CACHE_CHECK].status is Status.PASS
    assert found[PAGE_CACHE_CHECK].detail.startswith("242 MiB to read before the window; ")
