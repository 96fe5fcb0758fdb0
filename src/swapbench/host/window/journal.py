"""The write-ahead journal: JSON lines, each fsynced before the host is touched.

Before every mutation an `intent` record (with how to undo it) is on disk; after it, a `done` record.
`end` closes the journal. A journal without `end` means a run did not finish: `swapbench run` refuses to
start and `swapbench rollback` takes over. Reading is tolerant of a torn last line (a crash mid-write:
its action never started, since the intent comes first) and strict about damage anywhere else.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swapbench.core.phases import Phase
from swapbench.errors import JournalError
from swapbench.host.window.files import SafeWriter

ACTIVE_NAME = "journal.active.jsonl"
SCHEMA_VERSION = 1  # in the begin record: the layout of the records that follow it; none is version 1


def active_journal_path(output_dir: Path) -> Path:
    return output_dir / ACTIVE_NAME


@dataclass
class JournalState:
    """What a journal says happened."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    torn_tail: bool = False

    @property
    def begin(self) -> dict[str, Any] | None:
        return next((r for r in self.records if r.get("type") == "begin"), None)

    @property
    def closed(self) -> bool:
        return any(r.get("type") == "end" for r in self.records)

    @property
    def run_id(self) -> str | None:
        return self.begin.get("run_id") if self.begin else None

    def intents(self, step: Phase) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("type") == "intent" and r.get("step") == step]

    def done(self, step: Phase, target: str) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in self.records
                if r.get("type") == "done" and r.get("step") == step and r.get("target") == target
            ),
            None,
        )

    def summary(self) -> list[str]:
        lines = []
        for r in self.records:
            kind = r.get("type")
            what = " ".join(str(r[k]) for k in ("step", "target", "status") if k in r)
            lines.append(f"{r.get('t', '?')}  {kind:<6} {what}".rstrip())
        return lines


def read_journal(path: Path) -> JournalState:
    """Parse a journal; a torn last line is dropped, a damaged line elsewhere is a JournalError."""
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # no journal (its folder may not even be one: Phase 0 says)
        return JournalState(path)
    except OSError as exc:
        raise JournalError(f"cannot read journal {path}: {exc.strerror}", hint="check its permissions") from exc
    lines = raw.split(b"\n")
    state = JournalState(path)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        last = number == len(lines)  # no newline after it: the write was cut
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "type" not in record:
                raise ValueError("not a journal record")
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            if last:
                state.torn_tail = True
                break
            raise JournalError(
                f"journal {path} is damaged at line {number}: {exc}",
                hint="run `swapbench rollback PLAN` with the plan: it converges on observed state, journal or not",
            ) from exc
        state.records.append(record)
    return _known_version(state)


def _known_version(state: JournalState) -> JournalState:
    """A journal a newer swapbench began is refused rather than misread; rollback then converges on the plan
    alone, as it does for a damaged journal."""
    version = state.begin.get("schema_version", 1) if state.begin else 1
    if version != SCHEMA_VERSION:
        raise JournalError(
            f"journal {state.path} has schema_version {version!r}; this swapbench reads {SCHEMA_VERSION}",
            hint="finish the window with the swapbench that began it, or run `swapbench rollback PLAN`: it "
            "converges on observed state, journal or not",
        )
    return state


class Journal:
    """Appends fsynced records. Create it before the first mutation; close it after verify.

    `begin` raises when the journal cannot be written (nothing is touched yet). After it every write goes
    through the SafeWriter: a full or read-only disk is noted (`failures`) and reported, never raised —
    restore, verify and the watchdog must not stop for want of a disk. A forward step checks the `bool`
    its intent returns and does not act on an intent that did not reach the disk."""

    def __init__(self, path: Path, writer: SafeWriter | None = None) -> None:
        self.path = path
        self.writer = writer
        self._seq = 0

    @property
    def failures(self) -> list[str]:
        return self.writer.failures if self.writer else []

    @classmethod
    def begin(cls, path: Path, writer: SafeWriter | None = None, **fields: Any) -> Journal:
        state = read_journal(path)
        if state.records and not state.closed:
            raise JournalError(
                f"an unfinished run ({state.run_id or 'unknown'}) left its journal at {path}",
                hint="run `swapbench rollback PLAN` to put production back, then run again",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        journal = cls(path)
        journal._append(journal._record("begin", fields))
        _fsync_dir(path.parent)
        journal.writer = writer
        return journal

    @classmethod
    def resume(cls, path: Path, writer: SafeWriter | None = None) -> Journal:
        """Append to an existing journal (rollback writes what it did into it). A torn last line is cut off
        first, so the records appended after it stay readable."""
        state = read_journal(path)
        journal = cls(path, writer)
        if state.torn_tail:
            journal._attempt("cutting the torn last line of the journal", lambda: _cut_torn_tail(path))
        journal._seq = len(state.records)
        return journal

    def _record(self, kind: str, fields: dict[str, Any]) -> bytes:
        self._seq += 1
        if kind == "begin":
            fields = {"schema_version": SCHEMA_VERSION, **fields}
        record = {"seq": self._seq, "t": datetime.now(UTC).isoformat(timespec="milliseconds"), "type": kind, **fields}
        return (json.dumps(record, default=str, separators=(",", ":")) + "\n").encode()

    def _append(self, data: bytes) -> bool:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if os.write(fd, data) != len(data):  # a full disk took part of the line: take it back, say so
                os.ftruncate(fd, size)
                raise OSError(errno.ENOSPC, "No space left on device (short write)")
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def _attempt(self, what: str, action: Callable[[], bool]) -> bool:
        if self.writer is None:
            return action()
        return self.writer.attempt(what, action) is not None

    def write(self, kind: str, **fields: Any) -> bool:
        """Append one record; True when it is on disk."""
        data = self._record(kind, fields)
        return self._attempt(f"journal record {kind} {fields.get('step', '')} {fields.get('target', '')}".rstrip(),
                             lambda: self._append(data))  # fmt: skip

    def intent(self, step: Phase, target: str, undo: str, **info: Any) -> bool:
        return self.write("intent", step=step, target=target, undo=undo, **info)

    def done(self, step: Phase, target: str, **info: Any) -> bool:
        return self.write("done", step=step, target=target, **info)

    def failed(self, step: Phase, target: str, error: str) -> bool:
        return self.write("failed", step=step, target=target, error=error)

    def end(self, status: str, archive_to: Path | None = None) -> Path:
        """Close the journal; move it into the run folder so the next run starts clean. Where the disk
        refuses, the journal stays where it is (unfinished on disk: the next run asks for a rollback)."""
        if not self.write("end", status=status) or archive_to is None:
            return self.path

        def move() -> bool:
            assert archive_to is not None
            archive_to.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.path, archive_to)
            _fsync_dir(self.path.parent)
            return True

        if self._attempt(f"moving the journal to {archive_to}", move):
            self.path = archive_to
        return self.path


def _cut_torn_tail(path: Path) -> bool:
    raw = path.read_bytes()
    with path.open("r+b") as f:
        f.truncate(raw.rfind(b"\n") + 1)
        os.fsync(f.fileno())
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
