"""Reading swapbench's own records (results, the swap report, the recorded judgment) through one door: a file
that is missing, unreadable, not UTF-8, not JSON or not the expected shape becomes an InputError that names the
file and the first bad key, never a third-party exception."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from swapbench import __version__
from swapbench.core.results import ImageInfo
from swapbench.errors import InputError

M = TypeVar("M", bound=BaseModel)
MAX_RECORD_BYTES = 512 * 2**20  # a results file of 100,000 samples is ~400 MB; anything larger is not ours


def load_json(path: Path, what: str, hint: str) -> object:
    """The parsed JSON of one of swapbench's files."""
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            raise InputError(f"{what} {path} is larger than {MAX_RECORD_BYTES // 2**20} MiB", hint=hint)
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{what} {path} does not exist", hint="check the path") from exc
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read: {exc.strerror or exc}", hint=hint) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text (byte {exc.start})", hint=hint) from exc
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{what} {path} is not readable JSON: {exc}", hint=hint) from exc


def validate(model: type[M], data: object, path: Path, what: str, hint: str) -> M:
    """`data` as `model`; the first problem named by its key path (`workloads.0.samples.3.exchange`)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InputError(f"{what} {path}: {where}: {first['msg']}{more}", hint=hint) from exc


def read_model(path: Path, model: type[M], what: str, hint: str) -> M:
    data = as_current_version(load_json(path, what, hint), model, path, what)
    return validate(model, data, path, what, hint)


def as_current_version(data: object, model: type[BaseModel], path: Path, what: str) -> object:
    """A record of a versioned model (one with a `schema_version` field) read as the version this swapbench
    writes: a file from before versions (none) is version 1, whose fields are a subset of the newer ones; a
    file from a newer swapbench is refused rather than misread."""
    field = model.model_fields.get("schema_version")
    if field is None or not isinstance(data, dict):
        return data  # not versioned, or not an object: validate names what is wrong
    known = field.default
    version = data.get("schema_version", 1)
    if type(version) is not int or version < 1:
        raise InputError(f"{what} {path} has schema_version {version!r}, not a version swapbench writes",
                         hint="the file was altered; use a copy swapbench wrote")  # fmt: skip
    if version > known:
        raise InputError(
            f"{what} {path} has schema_version {version}, newer than this swapbench {__version__} reads "
            f"(up to {known})",
            hint="it was written by a newer swapbench: upgrade this one, or read it with the one that wrote it",
        )
    return {**data, "schema_version": known}


MAX_SHOWN_IMAGE_BYTES = 32 * 2**20  # as the bench's own limit on a frame: more is not the recorded image


def recorded_image(info: ImageInfo) -> bytes | None:
    """The bytes of an image the results recorded, if its file is still a regular file at that path and unchanged
    (same sha256); None otherwise. Never blocks: a FIFO or a device put there since is not opened for a read
    that waits (O_NONBLOCK, then fstat), and a file grown past the limit is not read whole."""
    try:
        fd = os.open(info.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        try:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                return None
            raw = file.read(MAX_SHOWN_IMAGE_BYTES + 1)
        except OSError:
            return None
    if len(raw) > MAX_SHOWN_IMAGE_BYTES or hashlib.sha256(raw).hexdigest() != info.sha256:
        return None
    return raw
