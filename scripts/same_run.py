"""Whether two run folders hold the same run but for its timings: the check that a refactor changed no outcome.

    python scripts/same_run.py OLD_RUN_DIR NEW_RUN_DIR

Two `swapbench demo` runs (same rig, same seed, temperature 0) must agree on every results file's workloads
as sent, every sample's answer, parse outcome, frame and degenerate verdict, the adherence, the warnings with
numbers masked, the comparison's rows and the report with numbers masked; the old folder's results are also
read and re-analysed by this swapbench, which must give the figures they recorded. Exit 1 on any difference.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path
from typing import Any

from swapbench.report.results_file import read_results, reanalysed

TIMING = ("outlier", "spread", "drift", "Drift", "moved", "straddles", "faster", "slower", "equivalent", "inconclusive")
NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
RUN_ID = re.compile(r"\d{8}-\d{6}-[\w.-]+-[0-9a-f]{4}")


def masked(text: str) -> str:
    return NUMBER.sub("N", RUN_ID.sub("RUN", text))


def untimed(lines: list[str]) -> list[str]:
    """The lines that do not follow from the timings (which differ between any two runs), numbers masked."""
    return [masked(line) for line in lines if not any(word in line for word in TIMING)]


def workload_checks(old: Any, new: Any, again: Any) -> dict[str, tuple[object, object]]:
    def each(w: Any, field: str) -> list[object]:
        return [getattr(s, field) if field != "content" else s.exchange.content for s in w.samples]

    return {
        "as sent": (old.workload.model_dump(exclude={"scores"}), new.workload.model_dump(exclude={"scores"})),
        **{field: (each(old, field), each(new, field)) for field in ("content", "parse", "frame", "degenerate")},
        "adherence": (old.metrics.schema_adherence, new.metrics.schema_adherence),
        "warnings": (untimed(old.metrics.warnings), untimed(new.metrics.warnings)),
        "old file re-analysed": (old.metrics, again.metrics),
    }


def main(old_dir: Path, new_dir: Path) -> int:
    names = sorted(p.name for p in old_dir.glob("results-*.json"))
    differences = []
    if names != sorted(p.name for p in new_dir.glob("results-*.json")):
        differences.append(f"results files: {names} against {sorted(p.name for p in new_dir.glob('results-*.json'))}")
    for name in names:
        old, new = read_results(old_dir / name), read_results(new_dir / name)
        for w_old, w_new, w_again in zip(old.workloads, new.workloads, reanalysed(old).workloads, strict=True):
            for what, (a, b) in workload_checks(w_old, w_new, w_again).items():
                if a != b:
                    differences.append(f"{name} {w_old.workload.name}: {what}")
            print(f"{name} {w_old.workload.name}: {len(w_new.samples)} samples compared")
    rows = [[(w["workload"], [r["metric"] for r in w["rows"]])] for d in (old_dir, new_dir)
            for w in json.loads((d / "comparison.json").read_text())["workloads"]]  # fmt: skip
    if rows[: len(rows) // 2] != rows[len(rows) // 2 :]:
        differences.append("comparison.json: its rows")
    old_report, new_report = (untimed((d / "report.md").read_text().replace(str(d), "RUN_DIR").splitlines())
                              for d in (old_dir, new_dir))  # fmt: skip
    differences += [f"report.md: {line}" for line in difflib.unified_diff(old_report, new_report, lineterm="", n=0)
                    if line[:1] in "+-" and line[:3] not in ("+++", "---")]  # fmt: skip
    for line in differences:
        print("DIFFERS:", line)
    print(
        f"{len(differences)} differences (lines that follow from the timings aside: they differ between any two runs)"
    )
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
