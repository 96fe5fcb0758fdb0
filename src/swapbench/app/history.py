"""`swapbench history [FOLDER…]`: run folders indexed into the history database, then listed by host, model
and outcome. The folders stay the truth: a row is what `attach --json` would say of its folder, and a damaged
database is moved aside and rebuilt from every folder it ever indexed."""

from __future__ import annotations

import contextlib
import json
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from swapbench.app import verdict
from swapbench.app.remote import REMOTE_NOTE
from swapbench.app.window import outcome_of
from swapbench.core.command_json import HistoryEntry, HistoryRecord, WindowRecord
from swapbench.core.results import Results
from swapbench.errors import InputError, SwapbenchError
from swapbench.host import history_db
from swapbench.host.history_db import Damaged, Row

RUN_MARKERS = ("swap.json", "rollback.json", "events.jsonl")
MAX_DEPTH = 3  # INTO/HOST/RUN_ID under the folder given
OUTCOME_CODES = {"complete": 0, "aborted-restored": 7, "not-restored": 8}  # documented exit codes of each outcome


@dataclass(frozen=True)
class HistoryRequest:
    folders: tuple[Path, ...] = ()
    db: Path | None = None
    host: str | None = None
    model: str | None = None
    outcome: str | None = None
    limit: int | None = None
    rebuild: bool = False


@dataclass(frozen=True)
class HistoryView:
    db: Path
    rows: list[Row]
    total: int
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # folders that looked like runs but could not be read

    def record(self) -> HistoryRecord:
        entries = [HistoryEntry(
            run_dir=r.run_dir, run_id=r.run_id, host=r.host, started_at=r.started_at, ended_at=r.ended_at,
            label=r.label, baseline=r.baseline, candidates=r.candidates, gpu=r.gpu, build=r.build,
            outcome=r.outcome, decision=r.decision, downtime_s=r.downtime_s, swapbench_version=r.swapbench_version,
            window=window_of(r)) for r in self.rows]  # fmt: skip
        return HistoryRecord(db=str(self.db), total=self.total, notes=self.notes, skipped=self.skipped, runs=entries)


def history(request: HistoryRequest) -> HistoryView:
    """Index the folders given, then list; rebuild first when asked or when the database is damaged."""
    path = (request.db or history_db.default_path()).expanduser()
    notes: list[str] = []
    skipped: list[str] = []
    roots = [f.expanduser().resolve() for f in request.folders]
    for folder in roots:
        if not folder.is_dir():
            raise InputError(f"{folder} is not a folder", hint="give run folders, or folders that hold them")
    try:
        db = history_db.open_history(path) if not request.rebuild else None
    except Damaged as exc:
        aside = history_db.move_aside(path)
        notes.append(f"the history {path} could not be read ({exc}): kept as {aside}, and rebuilt from run folders")
        db = None
    if db is None:
        if request.rebuild and path.exists():
            notes.append(f"the previous history is kept as {history_db.move_aside(path)}")
        db = _fresh(path)
        again = [Path(r) for r in history_db.read_roots(path)]
        rows = _index(again, skipped)
        db.put(rows)
        notes.append(f"rebuilt: {len(rows)} run(s) from the {len(again)} folder(s) listed in {db.roots_file}")
    try:
        if roots:
            db.put(_index(roots, skipped))
            history_db.add_roots(path, roots)
        rows = db.query(request.host, request.model, request.outcome, request.limit)
        return HistoryView(path, rows, db.count(), notes, skipped)
    finally:
        db.close()


def _fresh(path: Path) -> history_db.History:
    try:
        return history_db.open_history(path)
    except Damaged as exc:  # a file that appeared meanwhile, or a folder unusable for SQLite
        raise InputError(f"cannot create the history {path}: {exc}", hint="pass --db PATH on a writable disk") from exc


def _index(folders: Sequence[Path], skipped: list[str]) -> list[Row]:
    rows = []
    for run_dir in run_folders(folders):
        try:
            rows.append(row_of(run_dir))
        except SwapbenchError as exc:
            skipped.append(f"{run_dir}: {exc.message}")
    return rows


def run_folders(folders: Sequence[Path]) -> Iterator[Path]:
    seen: set[Path] = set()

    def walk(folder: Path, depth: int) -> Iterator[Path]:
        if any((folder / m).exists() for m in RUN_MARKERS) or next(folder.glob("results-*.json"), None):
            if folder not in seen:
                seen.add(folder)
                yield folder
            return
        if depth < MAX_DEPTH:
            with contextlib.suppress(OSError):
                for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
                    yield from walk(child, depth + 1)

    for folder in folders:
        yield from walk(folder, 0)


def row_of(run_dir: Path) -> Row:
    """What the history holds of one run folder: where and what it ran, and its WindowRecord."""
    end = _end_event(run_dir)
    outcome = outcome_of(run_dir, end or {"exit_code": 0})
    record = outcome.record()
    if end is None:  # run in the foreground: no end event; the exit code its outcome is documented to give
        record = record.model_copy(update={"exit_code": OUTCOME_CODES.get(record.outcome, record.exit_code)})
    results = _results(run_dir)
    first, last = (results[0], results[-1]) if results else (None, None)
    plan = _planned(run_dir)
    gpu = None
    if last is not None and last.host.gpu.name:
        gpu = " ".join(filter(None, [last.host.gpu.name, f"driver {last.host.gpu.driver}" if last.host.gpu.driver
                                     else None]))  # fmt: skip
    return Row(
        run_dir=str(run_dir), run_id=run_dir.name, host=_host(run_dir, last),
        started_at=first.provenance.started_at if first else None, ended_at=last.provenance.ended_at if last else None,
        label=plan.label, baseline=plan.baseline or (results[0].label if len(results) > 1 else None),
        candidates=plan.candidates or [r.label for r in (results[1:] if len(results) > 1 else results)],
        gpu=gpu, build=last.server.build_info if last else None, outcome=record.outcome, decision=record.decision,
        downtime_s=record.downtime_s, swapbench_version=last.provenance.swapbench_version if last else None,
        record=record.model_dump_json(),
    )  # fmt: skip


def window_of(row: Row) -> WindowRecord:
    return WindowRecord.model_validate_json(row.record)


def _end_event(run_dir: Path) -> dict[str, object] | None:
    end = None
    with contextlib.suppress(OSError):
        for line in (run_dir / "events.jsonl").read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("e") == "end":
                    end = event
    return end


def _results(run_dir: Path) -> list[Results]:
    """Baseline first, as the run folder's own swap report orders them; none when it holds no readable results."""
    with contextlib.suppress(SwapbenchError):
        return verdict.RunFolder.open(run_dir).results
    return []


def _host(run_dir: Path, last: Results | None) -> str:
    """Where it ran: the box named when it was fetched (INTO/HOST/RUN_ID with REMOTE.md), else the hostname the
    results recorded."""
    if (run_dir / REMOTE_NOTE).exists():
        return run_dir.parent.name
    return last.host.hostname if last else "unknown"


@dataclass(frozen=True)
class _Planned:
    """The labels the run's own plan copy gives (its window's plan), when it has one."""

    label: str | None = None
    baseline: str | None = None
    candidates: list[str] = field(default_factory=list)


def _planned(run_dir: Path) -> _Planned:
    with contextlib.suppress(OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError, TypeError):
        data = tomllib.loads((run_dir / "plan.toml").read_text())
        label, baseline = data.get("run", {}).get("label"), data.get("baseline", {}).get("label")
        candidates = [str(c["label"]) for c in data.get("candidates", []) if isinstance(c, dict) and "label" in c]
        return _Planned(str(label) if label else None, str(baseline) if baseline else None, candidates)
    return _Planned()
