"""The window's downtime, split — load, bench, restore, stop, other (swapbench's own time between its steps) — with
the candidate's model files cold (dropped from the page cache before the run) and warm, on the demo's sandbox and,
with --rehearsal, on the rehearsal host (`bash scripts/rehearsal.sh up` first; `down` after).

    python bench/downtime.py [--samples 1] [--rehearsal] [--no-demo] [--out downtime.json]

Each case is one real `swapbench run` of the same window:

    cold, no prepare   files dropped (POSIX_FADV_DONTNEED), run.warm_page_cache = false: the load reads the disk
    cold, prepare      files dropped; Phase 0 reads them back before the window: the load reads memory
    warm, prepare      files in the page cache already

Before each run the files' pages in the page cache are counted with fincore (util-linux) where it exists: a
process that maps a file (another llama-server on the same model) keeps its pages, and the count shows it. The
baseline bench and the drift check are switched off: they are outside the window and only make a case longer.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from swapbench.app import swap
from swapbench.core.steps import SwapReport
from swapbench.demo.rig import Rig, find_rig
from swapbench.demo.sandbox import build_sandbox
from swapbench.host.candidate.page_cache import evict, warm
from swapbench.plan.load import load_plan

REPO = Path(__file__).resolve().parents[1]
SPLIT = ("total_s", "load_s", "bench_s", "restore_s", "stop_s", "own_s")
# The rehearsal twin's plan, shortened as its tests shorten it (tests/rehearsal/conftest.py QUICK)
REHEARSAL_QUICK = {
    "samples = 20 ": "samples = 1 ",
    "extended_samples = 100 ": "extended_samples = 1 ",
    "warmup = 3": "warmup = 1",
    "max_tokens = 128": "max_tokens = 16",
    "bench_baseline = true ": "bench_baseline = false ",
}


@dataclass(frozen=True)
class Case:
    name: str
    cold: bool
    prepare: bool


CASES = (Case("cold, no prepare", True, False), Case("cold, prepare", True, True), Case("warm, prepare", False, True))


def resident_bytes(paths: Sequence[Path]) -> int | None:
    """Bytes of the files in the page cache (fincore), or None without fincore."""
    if shutil.which("fincore") is None:
        return None
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", *map(str, paths)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return sum(int(n) for n in out.stdout.split())


def set_cache(paths: Sequence[Path], cold: bool) -> int | None:
    if cold:
        evict(paths)
    else:
        warm(paths)
    return resident_bytes(paths)


def with_run_keys(text: str, case: Case) -> str:
    keys = f"drift_check = false\nwarm_page_cache = {str(case.prepare).lower()}\n"
    assert text.count("[run]\n") == 1
    return text.replace("[run]\n", "[run]\n" + keys)


def row(host: str, case: Case, report: SwapReport, resident: int | None, size: int) -> dict[str, object]:
    split = report.downtime.model_dump() if report.downtime else {}
    prepared = report.prepare[0] if report.prepare else None
    first = prepared.first_read if prepared else None
    again = prepared.reread if prepared else None
    return {
        "host": host, "case": case.name, "status": report.status.value, "error": report.error,
        "files_mib": size / 2**20, "resident_before_mib": None if resident is None else resident / 2**20,
        "first_read_s": first.seconds if first else None, "first_read_cached": first.cached_share if first else None,
        "reread_s": again.seconds if again else None, "reread_cached": again.cached_share if again else None,
        **{key: split.get(key) for key in SPLIT},
    }  # fmt: skip


def demo_rows(samples: int) -> list[dict[str, object]]:
    """The demo's window (SmolLM2 production, Gemma 3 270M launched natively) once per case."""
    rig = find_rig()
    files = [rig.gemma3, Rig.mmproj(rig.gemma3)]
    size = sum(p.stat().st_size for p in files)
    rows = []
    with tempfile.TemporaryDirectory(prefix="swapbench-downtime-") as tmp:
        box = build_sandbox(Path(tmp), rig, samples=samples, extended=samples)
        try:
            for number, case in enumerate(CASES):
                plan = box.plan_path.with_name(f"plan-{number}.toml")
                plan.write_text(with_run_keys(box.plan_path.read_text(), case))
                resident = set_cache(files, case.cold)
                outcome = swap.run(load_plan(plan), on_phase=lambda phase, target: None)
                rows.append(row("demo", case, outcome.report, resident, size))
                print(table(rows[-1:], header=number == 0), flush=True)
        finally:
            box.teardown()
    return rows


def rehearsal_rows() -> list[dict[str, object]]:
    """The twin's window (systemd production, the candidate in a container) once per case, as its operator."""
    sys.path.insert(0, str(REPO))  # the rehearsal package lives beside src/, not in it
    from rehearsal.host import OPERATOR_UID, RehearsalHost  # noqa: PLC0415 -- only with --rehearsal

    host = RehearsalHost()
    if host.unhealthy():
        raise SystemExit(f"the rehearsal host is not up ({', '.join(host.unhealthy())}): bash scripts/rehearsal.sh up")
    folder = host.home / "models" / "gemma-4-E4B"
    files = [folder / "gemma-4-E4B-it-Q4_K_M.gguf", folder / "mmproj-F16.gguf"]
    size = sum(p.stat().st_size for p in files)
    text = host.plan.read_text()
    for old, new in REHEARSAL_QUICK.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    rows = []
    for number, case in enumerate(CASES):
        plan = host.home / f"downtime-{number}.toml"
        plan.write_text(with_run_keys(text, case))
        shutil.chown(plan, OPERATOR_UID, OPERATOR_UID)
        resident = set_cache(files, case.cold)
        result = host.swapbench("run", str(plan), timeout_s=900)
        found = re.search(r"run folder: (\S+)", result.stdout)
        if found is None:
            raise SystemExit(f"swapbench run on the rehearsal host said:\n{result.stdout}\n{result.stderr}")
        report = SwapReport.model_validate_json((Path(found[1]) / "swap.json").read_text())
        rows.append(row("rehearsal", case, report, resident, size))
        print(table(rows[-1:], header=number == 0), flush=True)
    return rows


def _cell(value: object, width: int) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:.2f}".rjust(width)
    return str(value).rjust(width)


COLUMNS = [("host", 9), ("case", 16), ("resident_before_mib", 9), ("first_read_s", 10), ("reread_s", 8),
           ("total_s", 7), ("load_s", 6), ("bench_s", 7), ("restore_s", 7), ("stop_s", 6), ("own_s", 6)]  # fmt: skip
TITLES = {"resident_before_mib": "cached MiB", "first_read_s": "1st read s", "reread_s": "reread s",
          "own_s": "other"}  # fmt: skip


def table(rows: Sequence[dict[str, object]], header: bool = True) -> str:
    lines = ["  ".join(TITLES.get(k, k.removesuffix("_s")).rjust(w) for k, w in COLUMNS)] if header else []
    lines += ["  ".join(_cell(r[k], w) for k, w in COLUMNS) for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1, help="samples per workload (the bench, not the point)")
    parser.add_argument("--rehearsal", action="store_true", help="also on the rehearsal host (it must be up)")
    parser.add_argument("--no-demo", action="store_true", help="only the rehearsal host")
    parser.add_argument("--out", type=Path, help="write every row as JSON here")
    args = parser.parse_args()
    rows = [] if args.no_demo else demo_rows(args.samples)
    if args.rehearsal:
        rows += rehearsal_rows()
    print("\nseconds; cached MiB: the candidate's files in the page cache before the run (fincore)")
    print(table(rows))
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["status"] == "complete" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
