"""The run history on this machine: a small SQLite file (stdlib sqlite3) indexing run folders, never replacing them.

The schema version is SQLite's own `PRAGMA user_version`; an older file is migrated in one transaction, a newer
one is refused. Every row can be rebuilt from its run folder, and every folder ever indexed is also listed in a
plain text file beside the database (`history.roots`), so a damaged database is moved aside and rebuilt whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from swapbench.errors import InputError

SCHEMA_VERSION = 1
# MIGRATIONS[n] takes a database from version n - 1 to n (version 0: an empty file).
MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE runs (
            run_dir TEXT PRIMARY KEY,
            run_id TEXT NOT NULL,
            host TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            label TEXT,
            baseline TEXT,
            candidates TEXT NOT NULL,
            gpu TEXT,
            build TEXT,
            outcome TEXT NOT NULL,
            decision TEXT,
            downtime_s REAL,
            swapbench_version TEXT,
            record TEXT NOT NULL,
            indexed_at TEXT NOT NULL
        )""",
        "CREATE INDEX runs_by_host ON runs (host, started_at)",
    ],
}
COLUMNS = ("run_dir", "run_id", "host", "started_at", "ended_at", "label", "baseline", "candidates", "gpu", "build",
           "outcome", "decision", "downtime_s", "swapbench_version", "record", "indexed_at")  # fmt: skip
PUT = """INSERT OR REPLACE INTO runs (run_dir, run_id, host, started_at, ended_at, label, baseline, candidates, gpu,
    build, outcome, decision, downtime_s, swapbench_version, record, indexed_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
QUERY = """SELECT run_dir, run_id, host, started_at, ended_at, label, baseline, candidates, gpu, build, outcome,
    decision, downtime_s, swapbench_version, record, indexed_at FROM runs
    WHERE (:host IS NULL OR host = :host) AND (:outcome IS NULL OR outcome = :outcome)
      AND (:model IS NULL OR lower(baseline) LIKE :model ESCAPE '\\' OR lower(candidates) LIKE :model ESCAPE '\\')
    ORDER BY started_at DESC, run_id DESC LIMIT :limit"""


def default_path() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "swapbench" / "history.sqlite"


@dataclass(frozen=True)
class Row:
    """One indexed run, as stored."""

    run_dir: str
    run_id: str
    host: str
    started_at: str | None
    ended_at: str | None
    label: str | None
    baseline: str | None
    candidates: list[str]
    gpu: str | None
    build: str | None
    outcome: str
    decision: str | None
    downtime_s: float | None
    swapbench_version: str | None
    record: str  # the run's WindowRecord, as JSON
    indexed_at: str = ""


class Damaged(Exception):
    """The file is not a readable swapbench history (the message says how)."""


class History:
    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @property
    def roots_file(self) -> Path:
        return roots_file(self.path)

    def close(self) -> None:
        self._db.close()

    def put(self, rows: Sequence[Row]) -> None:
        """Insert or replace, in one transaction (a run folder indexed again replaces its row)."""
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with self._db:
            self._db.executemany(PUT, [(*_values(row)[:-1], stamp) for row in rows])

    def query(self, host: str | None = None, model: str | None = None, outcome: str | None = None,
              limit: int | None = None) -> list[Row]:  # fmt: skip
        """Newest first; `model` matches part of the baseline's or a candidate's label, case-insensitively."""
        pattern = None
        if model:
            escaped = model.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
        args = {"host": host, "outcome": outcome, "model": pattern, "limit": -1 if limit is None else limit}
        return [_row(values) for values in self._db.execute(QUERY, args)]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM runs").fetchone()[0])


def roots_file(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".sqlite") + ".roots")


def add_roots(path: Path, folders: Sequence[Path]) -> None:
    """Every folder ever indexed, one per line, appended once: what a rebuild scans."""
    known = set(read_roots(path))
    new = [str(f) for f in folders if str(f) not in known]
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
        with roots_file(path).open("a", encoding="utf-8") as file:
            file.write("".join(f"{line}\n" for line in new))


def read_roots(path: Path) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return [line for line in roots_file(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return []


def open_history(path: Path) -> History:
    """Open (creating or migrating) the database at `path`; Damaged if it cannot be read as one, InputError if a
    newer swapbench wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        connection = sqlite3.connect(path, timeout=10.0)
    except sqlite3.Error as exc:
        raise Damaged(f"cannot open it ({exc})") from exc
    try:
        check = connection.execute("PRAGMA integrity_check").fetchone()
        if check is None or check[0] != "ok":
            raise Damaged(f"SQLite's integrity check says: {check[0] if check else 'nothing'}")
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise InputError(
                f"the history {path} has schema version {version}; this swapbench reads up to {SCHEMA_VERSION}",
                hint="use a newer swapbench, or `swapbench history --rebuild` to rebuild it (the old file is kept)",
            )
        for step in range(version + 1, SCHEMA_VERSION + 1):
            with connection:  # one transaction per step: a failed migration leaves the previous version whole
                for statement in MIGRATIONS[step]:
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {step}")
        if version >= 1:
            _expect_columns(connection)
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise Damaged(str(exc)) from exc
    except BaseException:
        connection.close()
        raise
    return History(path, connection)


def _expect_columns(connection: sqlite3.Connection) -> None:
    found = [r[1] for r in connection.execute("PRAGMA table_info(runs)")]
    if found != list(COLUMNS):
        raise Damaged(f"its runs table has columns {found}, not swapbench's")


def move_aside(path: Path) -> Path:
    """The damaged file kept, renamed (never deleted): history.sqlite.damaged-20261207T120000."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    path.rename(aside)
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).rename(aside.with_name(aside.name + suffix))
    return aside


@contextlib.contextmanager
def opened(path: Path) -> Iterator[History]:
    db = open_history(path)
    try:
        yield db
    finally:
        db.close()


def _values(row: Row) -> tuple[object, ...]:
    return (row.run_dir, row.run_id, row.host, row.started_at, row.ended_at, row.label, row.baseline,
            json.dumps(row.candidates), row.gpu, row.build, row.outcome, row.decision, row.downtime_s,
            row.swapbench_version, row.record, row.indexed_at)  # fmt: skip


def _row(values: tuple[object, ...]) -> Row:
    data = dict(zip(COLUMNS, values, strict=True))

    def text(key: str) -> str | None:
        return None if data[key] is None else str(data[key])

    downtime = data["downtime_s"]
    return Row(
        run_dir=str(data["run_dir"]), run_id=str(data["run_id"]), host=str(data["host"]),
        started_at=text("started_at"), ended_at=text("ended_at"), label=text("label"), baseline=text("baseline"),
        candidates=[str(c) for c in json.loads(str(data["candidates"]))], gpu=text("gpu"), build=text("build"),
        outcome=str(data["outcome"]), decision=text("decision"),
        downtime_s=float(downtime) if isinstance(downtime, int | float) else None,
        swapbench_version=text("swapbench_version"), record=str(data["record"]), indexed_at=str(data["indexed_at"]),
    )  # fmt: skip
