"""Read the run's image once: check it is a whole image and nothing more, hash it, encode it as a data: URL."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile

from swapbench.core.results import ImageInfo
from swapbench.errors import InputError

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp"}
MAX_IMAGE_BYTES = 32 * 2**20  # a camera frame is a few hundred KiB; more is a wrong file, not a frame
MAX_IMAGE_PIXELS = 50_000_000  # checked before decoding: a small file may decode to gigabytes
TRAILING_SLACK_BYTES = 16  # some encoders pad after the end marker; more than this is another payload

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length field
_JPEG_SOI, _JPEG_EOI, _JPEG_SOS = 0xD8, 0xD9, 0xDA


@dataclass(frozen=True)
class LoadedImage:
    info: ImageInfo
    data_url: str


def load_image(path: Path, expected_sha256: str | None = None, key: str = "image.path") -> LoadedImage:
    """Read, fully decode and encode the image; InputError names `key`, says what is wrong and what to do."""
    raw = read_regular_file(path, MAX_IMAGE_BYTES, what="image", key=key)
    fmt, width, height = _decode(raw, path, key)
    _refuse_trailing_data(raw, fmt, path, key)
    digest = hashlib.sha256(raw).hexdigest()
    if expected_sha256 and digest != expected_sha256.lower():
        raise InputError(
            f"{key}: image {path} has sha256 {digest}, the plan expects {expected_sha256}",
            hint="use the same image as the baseline run, or update [image].sha256",
        )
    info = ImageInfo(path=str(path), sha256=digest, bytes=len(raw), format=fmt, width=width, height=height)
    return LoadedImage(info=info, data_url=f"data:{MIME[fmt]};base64,{base64.b64encode(raw).decode('ascii')}")


FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_FRAMES_BYTES = 256 * 2**20  # every frame is held encoded in memory for the whole run


@dataclass(frozen=True)
class LoadedFrames:
    """The run's frames in the order every target gets them; one frame when the plan gives one image."""

    frames: list[LoadedImage]
    digest: str  # sha256 of the frames' sha256s in order: one name for the whole set

    @property
    def infos(self) -> list[ImageInfo]:
        return [f.info for f in self.frames]


def frames_digest(digests: list[str]) -> str:
    """One name for a frame set: a single image is named by its own sha256 (so a results file of a single
    image compares with one written before frames existed); a set by the sha256 of its frames' in order."""
    return digests[0] if len(digests) == 1 else hashlib.sha256("\n".join(digests).encode()).hexdigest()


def frame_paths(source: Path | list[Path], resolve: Callable[[Path], Path], key: str) -> list[Path]:
    """A folder's image files in name order, or the list as given (each resolved beside the plan)."""
    if isinstance(source, list):
        return [resolve(p) for p in source]
    folder = resolve(source)
    try:
        entries = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    except FileNotFoundError as exc:
        raise InputError(f"{key}: folder {folder} does not exist", hint=f"check {key}") from exc
    except NotADirectoryError as exc:
        raise InputError(
            f"{key}: {folder} is not a folder", hint='give a folder of frames, or use path = "..."'
        ) from exc
    except OSError as exc:
        raise InputError(f"{key}: cannot list {folder}: {exc.strerror or exc}", hint="check its permissions") from exc
    if not entries:
        raise InputError(
            f"{key}: folder {folder} holds no {'/'.join(FRAME_SUFFIXES)} files",
            hint="put the camera frames there (a short video's frames: ffmpeg -i clip.mp4 -r 2 frame-%03d.jpg)",
        )
    return entries


def load_frames(
    path: Path | None,
    frames: Path | list[Path] | None,
    expected_sha256: str | None,
    resolve: Callable[[Path], Path],
) -> LoadedFrames:
    """`[image]` as the bench sends it: each frame read, decoded and checked like a single image."""
    if path is not None:
        one = load_image(resolve(path), expected_sha256)
        return LoadedFrames([one], frames_digest([one.info.sha256]))
    assert frames is not None  # ImageSpec guarantees one of the two
    paths = frame_paths(frames, resolve, "image.frames")
    loaded, total = [], 0
    for i, p in enumerate(paths):
        key = f"image.frames[{i}]" if isinstance(frames, list) else "image.frames"
        frame = load_image(p, None, key=key)
        total += frame.info.bytes
        if total > MAX_FRAMES_BYTES:
            raise InputError(
                f"image.frames: the frames pass {MAX_FRAMES_BYTES // 2**20} MiB at {p} (frame {i + 1} of {len(paths)})",
                hint="use fewer or smaller frames: a few dozen camera-sized frames show the spread",
            )
        loaded.append(frame)
    digest = frames_digest([f.info.sha256 for f in loaded])
    if expected_sha256 and digest != expected_sha256.lower():
        raise InputError(
            f"image.sha256: the frame set has digest {digest}, the plan expects {expected_sha256}",
            hint="use the same frames as the baseline run, or update [image].sha256",
        )
    return LoadedFrames(loaded, digest)


def file_kind(mode: int) -> str:
    """What a stat mode is, in words, for a message."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISREG, "a regular file"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def read_regular_file(path: Path, max_bytes: int, *, what: str, key: str) -> bytes:
    """The whole of a regular file of at most `max_bytes`. Checked with stat before opening: opening a FIFO
    for reading blocks until a writer comes, and a device may never end."""
    try:
        mode, size = _stat(path)
        _refuse_unless_regular(mode, path, what, key)
        _check_size(size, max_bytes, path, what, key)
        # O_NONBLOCK: should the path be swapped for a FIFO after the stat, the open still returns at once
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            _refuse_unless_regular(os.fstat(f.fileno()).st_mode, path, what, key)
            raw = f.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise InputError(f"{key}: {what} {path} does not exist", hint=f"check {key}") from exc
    except OSError as exc:
        raise InputError(
            f"{key}: cannot read {what} {path}: {exc.strerror or exc}", hint="check its permissions"
        ) from exc
    _check_size(len(raw), max_bytes, path, what, key)  # it grew after the stat
    return raw


def _refuse_unless_regular(mode: int, path: Path, what: str, key: str) -> None:
    if not stat.S_ISREG(mode):
        raise InputError(
            f"{key}: {what} {path} is {file_kind(mode)}, not a regular file",
            hint=f"point {key} at the {what} file itself",
        )


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except NotADirectoryError as exc:  # a parent of the path is a file
        raise FileNotFoundError(str(path)) from exc
    return st.st_mode, st.st_size


def _check_size(size: int, max_bytes: int, path: Path, what: str, key: str) -> None:
    if size > max_bytes:
        raise InputError(
            f"{key}: {what} {path} is {size} bytes, over the {max_bytes // 2**20} MiB limit",
            hint=f"give a smaller {what}; swapbench reads it whole before any request",
        )


@contextlib.contextmanager
def _strict_pillow() -> Iterator[None]:
    """A truncated image must fail to decode, even if other code in this process relaxed Pillow."""
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before


def _decode(raw: bytes, path: Path, key: str) -> tuple[str, int, int]:
    """Decode every pixel (not just the header): format, width, height."""
    try:
        with _strict_pillow(), Image.open(io.BytesIO(raw)) as img:
            fmt, (width, height) = img.format or "", img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InputError(
                    f"{key}: image {path} is {width}x{height} pixels, over the {MAX_IMAGE_PIXELS:,} pixel limit",
                    hint="give a camera-sized frame",
                )
            img.load()
    except InputError:
        raise
    except Exception as exc:  # Pillow raises many kinds (OSError, SyntaxError, struct.error...) on bad data
        raise InputError(
            f"{key}: image {path} is not a readable image ({len(raw)} bytes): {exc}",
            hint="give a JPEG or PNG file, such as the camera frame the production model sees",
        ) from exc
    if fmt not in MIME:
        raise InputError(f"{key}: image {path} is {fmt or 'of unknown format'}", hint=f"use one of {', '.join(MIME)}")
    return fmt, width, height


def _refuse_trailing_data(raw: bytes, fmt: str, path: Path, key: str) -> None:
    """Bytes after the image's end marker are sent to every model but are no part of the picture."""
    if fmt not in ("JPEG", "PNG"):
        return
    end = jpeg_end(raw) if fmt == "JPEG" else png_end(raw)
    if end is None:
        raise InputError(
            f"{key}: image {path} is truncated: its {fmt} end marker is missing",
            hint="copy the image again from its source",
        )
    trailing = len(raw) - end
    if trailing > TRAILING_SLACK_BYTES:
        raise InputError(
            f"{key}: image {path} has {trailing} bytes of data after the end of its {fmt} image (which ends at "
            f"byte {end} of {len(raw)})",
            hint="use the camera frame as the camera wrote it; re-save it to drop what was appended",
        )


def jpeg_end(raw: bytes) -> int | None:
    """Offset just past the EOI marker, walking marker segments and entropy-coded scans; None if truncated."""
    if raw[:2] != b"\xff\xd8":
        return None
    pos = 2
    while True:
        start = pos
        while pos < len(raw) and raw[pos] == 0xFF:  # fill bytes may precede a marker
            pos += 1
        if pos == start or pos >= len(raw):  # no marker where one must be, or the data ends
            return None
        marker = raw[pos]
        pos += 1
        if marker == _JPEG_EOI:
            return pos
        if marker in _JPEG_STANDALONE or marker == _JPEG_SOI:
            continue
        if pos + 2 > len(raw):
            return None
        length = int.from_bytes(raw[pos : pos + 2], "big")
        if length < 2:
            return None
        pos += length
        if marker == _JPEG_SOS:
            pos = _scan_end(raw, pos)


def _scan_end(raw: bytes, pos: int) -> int:
    """Skip entropy-coded data: it ends at the first 0xFF followed by neither a stuffed 0x00 nor RSTn."""
    while True:
        pos = raw.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(raw):
            return len(raw)
        follower = raw[pos + 1]
        if follower == 0x00 or 0xD0 <= follower <= 0xD7:
            pos += 2
            continue
        return pos


def png_end(raw: bytes) -> int | None:
    """Offset just past the IEND chunk's CRC; None if the chunks run past the data."""
    if not raw.startswith(_PNG_SIGNATURE):
        return None
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(raw):
        length = int.from_bytes(raw[pos : pos + 4], "big")
        kind = raw[pos + 4 : pos + 8]
        pos += 12 + length  # length, type, data, CRC
        if pos > len(raw):
            return None
        if kind == b"IEND":
            return pos
    return None
