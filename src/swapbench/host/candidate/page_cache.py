"""The page cache and a candidate's model files: read them into it before the window, so the load inside the
window reads memory rather than disk, and tell how much of them it held before the read.

A file is streamed in chunks (POSIX_FADV_WILLNEED one chunk ahead, a read into one reused buffer): nothing is held
in swapbench's memory. What the cache held is counted first, with mincore(2) on a mapping of the file that is
never touched: a read that asks without waiting (RWF_NOWAIT) starts the disk itself, and a fast disk answers
before it returns, so it counts what it just read. The kernel tells mincore the truth only about files this user
owns or may write (root: all); about others it says "all cached", so there the count is left unknown.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 8 << 20
_PAGE = os.sysconf("SC_PAGE_SIZE")
_LOW_BIT = bytes(b & 1 for b in range(256))  # mincore: bit 0 of each byte says "resident"; the rest is reserved
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
_MAP_FAILED = ctypes.c_void_p(-1).value


@dataclass(frozen=True)
class WarmResult:
    """One pass over the files: how much was read, how much of it the page cache held before, how long it took."""

    size_bytes: int
    cached_bytes: int | None  # None where the kernel will not tell this user (see the module's docstring)
    seconds: float
    complete: bool = True  # False: stopped early (a stop was requested)

    @property
    def cached_share(self) -> float | None:
        if self.cached_bytes is None:
            return None
        return self.cached_bytes / self.size_bytes if self.size_bytes else 1.0


def cached_bytes(fd: int, size: int) -> int | None:
    """Bytes of the open file the page cache holds now (whole pages, at most `size`); None when the kernel will not
    tell this user. Reads nothing: the mapping is never touched."""
    info = os.fstat(fd)
    if not (os.geteuid() in (0, info.st_uid) or os.access(f"/proc/self/fd/{fd}", os.W_OK)):
        return None
    if size == 0:
        return 0
    address = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if address in (None, _MAP_FAILED):
        return None
    try:
        pages = (size + _PAGE - 1) // _PAGE
        vector = (ctypes.c_ubyte * pages)()
        if _libc.mincore(address, size, vector) != 0:
            return None
        return min(bytes(vector).translate(_LOW_BIT).count(1) * _PAGE, size)
    finally:
        _libc.munmap(address, size)


def warm(paths: Sequence[Path], should_stop: Callable[[], bool] = lambda: False) -> WarmResult:
    """Read every file once through the page cache. Raises OSError when a file cannot be read to its end."""
    start = time.monotonic()
    buffer = memoryview(bytearray(CHUNK_BYTES))
    size, cached = 0, 0
    known = True
    for path in paths:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            length = os.fstat(fd).st_size
            held = cached_bytes(fd, length)
            known, cached = known and held is not None, cached + (held or 0)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            for offset in range(0, length, CHUNK_BYTES):
                if should_stop():
                    return WarmResult(size, cached if known else None, time.monotonic() - start, complete=False)
                os.posix_fadvise(fd, offset + CHUNK_BYTES, CHUNK_BYTES, os.POSIX_FADV_WILLNEED)  # the next one
                _read_fully(fd, buffer, offset, min(CHUNK_BYTES, length - offset), path)
            size += length
        finally:
            os.close(fd)
    return WarmResult(size, cached if known else None, time.monotonic() - start)


def _read_fully(fd: int, buffer: memoryview, offset: int, count: int, path: Path) -> None:
    while count > 0:
        got = os.preadv(fd, [buffer[:count]], offset)
        if got == 0:
            raise OSError(errno.EIO, f"{path} ended early (at byte {offset}): it changed while it was read")
        offset, count = offset + got, count - got


def evict(paths: Sequence[Path]) -> None:
    """Drop the files' clean pages from the page cache (POSIX_FADV_DONTNEED): a cold start, for benchmarks and
    tests. Pages a process has mapped stay."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
