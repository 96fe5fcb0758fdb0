"""A bug's traceback goes to a file, not to the terminal: the user gets one line and where to find it."""

from __future__ import annotations

import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path


def save_crash(exc: BaseException) -> Path | str:
    """Write the traceback to the cache (or the temp folder); return where, or why it could not be kept."""
    text = "".join(traceback.format_exception(exc))
    name = f"crash-{datetime.now(UTC):%Y%m%d-%H%M%S}.txt"
    for folder in (Path.home() / ".cache" / "swapbench", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
        except OSError:
            continue
        return folder / name
    return "nowhere (no writable folder)"
