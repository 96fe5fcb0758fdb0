"""The run's image against real files: only a whole, regular image file of sane size, and nothing appended."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from swapbench.adapters.image import (
    MAX_IMAGE_BYTES,
    TRAILING_SLACK_BYTES,
    frames_digest,
    jpeg_end,
    load_frames,
    load_image,
    png_end,
)
from swapbench.errors import InputError

DEMO = Path(__file__).resolve().parents[2] / "src" / "swapbench" / "demo" / "car-view.jpg"
RAW = DEMO.read_bytes()


def refused(path: Path, key: str = "image.path") -> InputError:
    with pytest.raises(InputError) as info:
        load_image(path, key=key)
    assert type(info.value) is InputError
    assert info.value.message.startswith(f"{key}: ") and str(path) in info.value.message
    assert info.value.hint
    return info.value


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def encoded(fmt: str, **options: object) -> bytes:
    with Image.open(DEMO) as img:
        out = io.BytesIO()
        img.save(out, fmt, **options)
    return out.getvalue()


# --- accepted ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("demo.jpg", RAW),
        ("progressive.jpg", encoded("JPEG", progressive=True)),
        ("restarts.jpg", encoded("JPEG", progressive=True, restart_marker_blocks=4)),
        ("frame.png", encoded("PNG")),
        ("padded.jpg", RAW + b"\0" * TRAILING_SLACK_BYTES),
    ],
    ids=["demo", "progressive", "restart-markers", "png", "padding"],
)
def test_whole_images_are_accepted(tmp_path: Path, name: str, data: bytes) -> None:
    loaded = load_image(write(tmp_path, name, data))
    assert (loaded.info.width, loaded.info.height) == (640, 480)
    assert loaded.info.bytes == len(data)
    assert loaded.data_url.startswith("data:image/")


def test_progressive_jpeg_has_several_scans_and_ends_at_eoi() -> None:
    data = encoded("JPEG", progressive=True)
    assert data.count(b"\xff\xda") > 1
    assert jpeg_end(data) == len(data) and jpeg_end(data + b"junk") == len(data)
    png = encoded("PNG")
    assert png_end(png) == len(png) and png_end(png + b"junk") == len(png)


# --- not a regular file: refused before any open --------------------------------------------------------------


def _load_in_child(path: Path) -> str:
    """load_image in a child with a deadline: if it ever opened the path, a FIFO would block forever."""
    code = (
        "import sys\nfrom pathlib import Path\nfrom swapbench.adapters.image import load_image\n"
        "from swapbench.errors import InputError\n"
        "try:\n    load_image(Path(sys.argv[1]))\n"
        "except InputError as exc:\n    print(type(exc).__name__, exc.message)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "frame.jpg"
    os.mkfifo(fifo)
    start = time.monotonic()
    out = _load_in_child(fifo)
    assert out == f"InputError image.path: image {fifo} is a named pipe (FIFO), not a regular file"
    assert time.monotonic() - start < 30


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "s.jpg"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        yield path


def test_socket_device_and_directory_are_named(tmp_path: Path, unix_socket: Path) -> None:
    assert "is a socket, not a regular file" in refused(unix_socket).message
    assert "is a character device, not a regular file" in refused(Path("/dev/null")).message
    assert "is a directory, not a regular file" in refused(tmp_path).message


def test_missing_and_unreadable(tmp_path: Path) -> None:
    assert "does not exist" in refused(tmp_path / "missing.jpg").message
    assert "does not exist" in refused(write(tmp_path, "f", b"x") / "below-a-file.jpg").message


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "huge.jpg"
    with big.open("wb") as f:
        f.truncate(MAX_IMAGE_BYTES + 1)  # sparse: refused on its size, never read
    assert f"is {MAX_IMAGE_BYTES + 1} bytes, over the 32 MiB limit" in refused(big).message


def test_the_key_is_named(tmp_path: Path) -> None:
    error = refused(tmp_path / "missing.jpg", key="candidates[0].image")
    assert error.message.startswith("candidates[0].image: image ")


# --- truncated ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [len(RAW) // 2, len(RAW) - 200, len(RAW) - 2], ids=["half", "most", "no-eoi"])
def test_truncated_jpeg_is_refused(tmp_path: Path, keep: int) -> None:
    error = refused(write(tmp_path, "cut.jpg", RAW[:keep]))
    assert "is not a readable image" in error.message or "truncated" in error.message


def test_truncated_jpeg_is_refused_even_when_pillow_was_relaxed(tmp_path: Path) -> None:
    path = write(tmp_path, "cut.jpg", RAW[: len(RAW) // 2])
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        refused(path)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # put back as found
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def test_truncated_png_is_refused(tmp_path: Path) -> None:
    png = encoded("PNG")
    refused(write(tmp_path, "cut.png", png[: len(png) - 100]))
    refused(write(tmp_path, "no-iend.png", png[:-12]))


# --- trailing data ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("junk_bytes", [TRAILING_SLACK_BYTES + 1, 100, 3_000_000], ids=["17-b", "100-b", "3-mb"])
def test_data_after_jpeg_eoi_is_refused_with_its_size(tmp_path: Path, junk_bytes: int) -> None:
    error = refused(write(tmp_path, "junk.jpg", RAW + os.urandom(junk_bytes)))
    assert f"has {junk_bytes} bytes of data after the end of its JPEG image" in error.message
    assert f"ends at byte {len(RAW)} of {len(RAW) + junk_bytes}" in error.message


def test_a_second_jpeg_appended_is_refused(tmp_path: Path) -> None:
    assert f"has {len(RAW)} bytes of data after" in refused(write(tmp_path, "two.jpg", RAW + RAW)).message


def test_data_after_progressive_jpeg_and_png_is_refused(tmp_path: Path) -> None:
    progressive = encoded("JPEG", progressive=True)
    assert "has 4096 bytes" in refused(write(tmp_path, "p.jpg", progressive + b"\xff" * 4096)).message
    png = encoded("PNG")
    assert "bytes of data after the end of its PNG image" in refused(write(tmp_path, "j.png", png + b"x" * 50)).message


def test_sha256_mismatch_still_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="the plan expects"):
        load_image(write(tmp_path, "f.jpg", RAW), "0" * 64)


FRAMES = DEMO.parent / "frames"


def test_a_folder_of_frames_is_taken_in_name_order_and_named_by_one_digest(tmp_path: Path) -> None:
    write(tmp_path, "b.jpg", RAW)
    write(tmp_path, "a.JPG", RAW)
    write(tmp_path, "c.png", encoded("PNG"))
    write(tmp_path, "notes.txt", b"not a frame: left out")
    loaded = load_frames(None, tmp_path, None, lambda p: p)
    assert [Path(i.path).name for i in loaded.infos] == ["a.JPG", "b.jpg", "c.png"]
    assert loaded.digest == frames_digest([i.sha256 for i in loaded.infos])
    assert [f.data_url[:15] for f in loaded.frames] == ["data:image/jpeg", "data:image/jpeg", "data:image/png;"]
    again = load_frames(None, [tmp_path / "a.JPG", tmp_path / "b.jpg", tmp_path / "c.png"], loaded.digest, lambda p: p)
    assert again.digest == loaded.digest  # a list in the same order is the same set


def test_the_demo_ships_four_distinct_frames() -> None:
    loaded = load_frames(None, FRAMES, None, lambda p: p)
    assert len(loaded.frames) == 4 and len({i.sha256 for i in loaded.infos}) == 4


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d, "holds no .jpg/.jpeg/.png/.webp files"),
        (lambda d: d / "missing", "does not exist"),
        (lambda d: write(d, "x.jpg", RAW), "is not a folder"),
        (lambda d: (write(d, "a.jpg", RAW), write(d, "b.jpg", b"not an image"), d)[2], "image.frames: image"),
    ],
)
def test_a_bad_frame_folder_is_refused_with_its_key(tmp_path: Path, setup: object, message: str) -> None:
    source = setup(tmp_path)  # type: ignore[operator]
    with pytest.raises(InputError, match=message) as info:
        load_frames(None, source, None, lambda p: p)
    assert info.value.message.startswith("image.frames") and info.value.hint


def test_a_frame_set_that_differs_from_its_digest_is_refused() -> None:
    with pytest.raises(InputError, match=r"image\.sha256: the frame set has digest"):
        load_frames(None, FRAMES, "0" * 64, lambda p: p)
