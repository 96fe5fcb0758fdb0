"""Updates to the user's own documents, as pure text -> text functions, idempotent by run id.

- The research document gets a measured-numbers section between markers; a new document gets the section;
  the placeholder "no benchmarks exist yet" is replaced by it.
- The resource registry gets the candidate's row in an Active Models table that swapbench keeps between
  markers, the recomputed steady-state peak, and one change-log entry per run id.

Running an update twice with the same run changes the document once; what each write did to a document is a
`DocumentChange`, for `report` and `decide` to print.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

PLACEHOLDER = re.compile(r"^.*no benchmarks exist yet.*$", re.IGNORECASE | re.MULTILINE)


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    LEFT_ALONE = "left alone"  # a document outside a run folder that was moved or copied


@dataclass(frozen=True)
class DocumentChange:
    path: Path
    change: Change


def _block(name: str, body: str) -> str:
    return f"<!-- swapbench:{name}:begin -->\n{body.strip()}\n<!-- swapbench:{name}:end -->"


def _replace_block(text: str, name: str, body: str) -> str | None:
    pattern = re.compile(
        rf"<!-- swapbench:{re.escape(name)}:begin -->.*?<!-- swapbench:{re.escape(name)}:end -->", re.S
    )
    if not pattern.search(text):
        return None
    return pattern.sub(lambda _: _block(name, body), text, count=1)


def update_research(text: str | None, title: str, section: str) -> str:
    """Put `section` (Markdown) into the research document: between its markers, over the placeholder, or
    appended; a missing document is created with a title."""
    block = _block("results", section)
    if text is None:
        return f"# {title}\n\n{block}\n"
    replaced = _replace_block(text, "results", section)
    if replaced is not None:
        return replaced
    if PLACEHOLDER.search(text):
        return PLACEHOLDER.sub(lambda _: block, text, count=1)
    return text.rstrip() + "\n\n" + block + "\n"


def _models_table(rows: dict[str, str]) -> str:
    header = "| model | VRAM peak | p50 nav | adherence | run |\n|---|---|---|---|---|"
    return header + "\n" + "\n".join(rows[k] for k in sorted(rows))


def _rows_in(text: str) -> dict[str, str]:
    match = re.search(r"<!-- swapbench:models:begin -->(.*?)<!-- swapbench:models:end -->", text, re.S)
    rows: dict[str, str] = {}
    for line in (match.group(1) if match else "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0] not in ("model", "---"):
            rows[cells[0]] = line.strip()
    return rows


def update_registry(text: str | None, model: str, row: str, peak_line: str, run_id: str, entry: str) -> str:
    """The candidate's row (replacing its earlier one), the steady-state peak, and a change-log entry per run."""
    text = text if text is not None else "# Resource registry\n"
    rows = _rows_in(text)
    rows[model] = row
    for name, body in (("models", _models_table(rows)), ("peak", peak_line)):
        replaced = _replace_block(text, name, body)
        text = replaced if replaced is not None else text.rstrip() + "\n\n" + _block(name, body) + "\n"
    line = f"- {entry} (run {run_id})"
    mine = re.compile(rf"^- .*\(run {re.escape(run_id)}\)$", re.M)
    if mine.search(text):  # this run's entry: updated (e.g. PENDING -> ADOPT), never repeated
        text = mine.sub(lambda _: line, text, count=1)
    else:
        log = "## Change Log"
        if log not in text:
            text = text.rstrip() + f"\n\n{log}\n"
        at = text.index(log) + len(log)
        text = text[:at] + f"\n\n{line}\n" + text[at:].lstrip("\n")
    return text.rstrip() + "\n"
