"""The structure of a GGUF file, read as llama.cpp reads it: header, metadata, tensor table, and whether the file
is long enough for every tensor's data. A text file that starts with `GGUF`, a download cut short, a table
that points past the end: each is named here, in Phase 0, before production is stopped for a model that
cannot load.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_STRING = 1 << 24  # a key or a string value longer than this is damage, not a model
MAX_ARRAY = 1 << 28
MAX_DIMS = 8
MAX_COUNT = 1 << 24  # tensors or metadata entries
# ggml type -> (elements per block, bytes per block), as ggml defines them (gguf.constants.GGML_QUANT_SIZES)
TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 40),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82),
    23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17), 40: (64, 36), 41: (128, 18),
}  # fmt: skip
# metadata value types: fixed sizes (8 = string and 9 = array are read apart)
VALUE_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY = 8, 9


class GgufDamaged(Exception):
    """The file is not a whole GGUF; the message says where it breaks."""


@dataclass(frozen=True)
class GgufLayout:
    version: int
    tensors: int
    metadata: int
    data_start: int  # where the tensor data begins
    data_end: int  # where the last tensor's data ends (the file must be at least this long)
    unknown_types: int  # tensors of a ggml type this table does not size: only their offsets were checked
    file_size: int


class _Reader:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.size = f, size

    def take(self, n: int, what: str) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise GgufDamaged(f"the file ends inside {what} (byte {self.f.tell()} of {self.size})")
        return data

    def u32(self, what: str) -> int:
        return int(struct.unpack("<I", self.take(4, what))[0])

    def u64(self, what: str) -> int:
        return int(struct.unpack("<Q", self.take(8, what))[0])

    def string(self, what: str) -> bytes:
        n = self.u64(what)
        if n > MAX_STRING:
            raise GgufDamaged(f"{what} claims {n} bytes at byte {self.f.tell() - 8}: a damaged header")
        return self.take(n, what)

    def skip(self, n: int, what: str) -> None:
        if self.f.tell() + n > self.size:
            raise GgufDamaged(f"the file ends inside {what} (byte {self.size})")
        self.f.seek(n, 1)


def _value(r: _Reader, kind: int, key: str) -> int | None:
    """Skip one metadata value; return it when it is an unsigned integer (general.alignment is one)."""
    if kind == STRING:
        r.string(f"the value of {key}")
        return None
    if kind == ARRAY:
        inner, count = r.u32(f"the array type of {key}"), r.u64(f"the array length of {key}")
        if count > MAX_ARRAY or inner == ARRAY:
            raise GgufDamaged(f"the array {key} is not one llama.cpp reads (type {inner}, {count} items)")
        if inner == STRING:
            for _ in range(count):
                r.string(f"an item of {key}")
        elif inner in VALUE_SIZES:
            r.skip(VALUE_SIZES[inner] * count, f"the array {key}")
        else:
            raise GgufDamaged(f"the array {key} has an unknown item type {inner}")
        return None
    if kind not in VALUE_SIZES:
        raise GgufDamaged(f"metadata {key} has an unknown value type {kind}")
    raw = r.take(VALUE_SIZES[kind], f"the value of {key}")
    return int.from_bytes(raw, "little") if kind in (4, 10) else None


def read_layout(path: Path) -> GgufLayout:
    """Walk the header and tensor table; raise GgufDamaged with where it breaks."""
    size = path.stat().st_size
    with path.open("rb") as f:
        r = _Reader(f, size)
        if r.take(4, "the magic") != b"GGUF":
            raise GgufDamaged("it does not start with GGUF")
        version = r.u32("the version")
        if version not in VERSIONS:
            raise GgufDamaged(f"GGUF version {version} (llama.cpp reads {', '.join(map(str, VERSIONS))})")
        tensors, metadata = r.u64("the tensor count"), r.u64("the metadata count")
        if tensors > MAX_COUNT or metadata > MAX_COUNT:
            raise GgufDamaged(f"the header claims {tensors} tensors and {metadata} metadata entries: not a model")
        alignment = DEFAULT_ALIGNMENT
        for index in range(metadata):
            key = r.string(f"metadata key {index}").decode(errors="replace")
            value = _value(r, r.u32(f"the type of {key}"), key)
            if key == "general.alignment" and value:
                alignment = value
        ends, unknown = _tensor_table(r, tensors)
        data_start = -(-f.tell() // alignment) * alignment
    data_end = data_start + max(ends, default=0)
    if data_end > size:
        missing = (data_end - size) / 2**20
        raise GgufDamaged(f"its {tensors} tensors need {data_end} bytes, the file has {size} ({missing:.1f} MiB "
                          "missing): cut short")  # fmt: skip
    return GgufLayout(version, tensors, metadata, data_start, data_end, unknown, size)


def _tensor_table(r: _Reader, tensors: int) -> tuple[list[int], int]:
    """Each tensor's end relative to the data start (its offset where its type's size is unknown)."""
    ends, unknown = [], 0
    for index in range(tensors):
        name = r.string(f"the name of tensor {index}").decode(errors="replace")
        dims = r.u32(f"the dimensions of {name}")
        if dims > MAX_DIMS:
            raise GgufDamaged(f"tensor {name} claims {dims} dimensions")
        elements = 1
        for _ in range(dims):
            elements *= r.u64(f"the shape of {name}")
        kind, offset = r.u32(f"the type of {name}"), r.u64(f"the offset of {name}")
        if kind in TYPE_SIZES:
            block, nbytes = TYPE_SIZES[kind]
            ends.append(offset + -(-elements // block) * nbytes)
        else:
            unknown += 1
            ends.append(offset)
    return ends, unknown
