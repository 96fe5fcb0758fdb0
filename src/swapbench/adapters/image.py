"""Read the run's image once: check it decodes, hash it, and encode it as a data: URL."""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from swapbench.core.results import ImageInfo
from swapbench.errors import InputError

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp"}


@dataclass(frozen=True)
class LoadedImage:
    info: ImageInfo
    data_url: str


def load_image(path: Path, expected_sha256: str | None = None) -> LoadedImage:
    """Read, decode-check and encode the image; InputError says what is wrong and what to do."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"image {path} does not exist", hint="check [image].path or --image") from exc
    except IsADirectoryError as exc:
        raise InputError(f"image {path} is a directory", hint="give the path of an image file") from exc
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror}", hint="check its permissions") from exc
    try:
        with Image.open(io.BytesIO(raw)) as img:
            fmt, (width, height) = img.format or "", img.size
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"image {path} is not a readable image ({len(raw)} bytes): {exc}",
            hint="give a JPEG or PNG file, such as the camera frame the production model sees",
        ) from exc
    if fmt not in MIME:
        raise InputError(f"image {path} is {fmt or 'of unknown format'}", hint=f"use one of {', '.join(MIME)}")
    digest = hashlib.sha256(raw).hexdigest()
    if expected_sha256 and digest != expected_sha256.lower():
        raise InputError(
            f"image {path} has sha256 {digest}, the plan expects {expected_sha256}",
            hint="use the same image as the baseline run, or update [image].sha256",
        )
    info = ImageInfo(path=str(path), sha256=digest, bytes=len(raw), format=fmt, width=width, height=height)
    return LoadedImage(info=info, data_url=f"data:{MIME[fmt]};base64,{base64.b64encode(raw).decode('ascii')}")
