"""The `.npy` header of one member of an `.npz` archive, read and checked before numpy reads it.

`np.load` trusts what a member's header declares: it allocates the declared shape before it
reads a byte, so a header of a few bytes that declares (10^12, 478, 3) asks for petabytes, and a
deflated member of a few MB that really holds its declared gigabytes takes them. `member_header`
reads only the header (at most `MAX_HEADER_BYTES`) and checks what any reader needs: an .npy
member, format version 1 or 2, no Python objects (pickle), a sane shape, and exactly the bytes
the shape declares (the member's uncompressed size in the zip index, which bounds what the
decompressor hands out). What the members must be (names, dtypes, shapes, caps) is the caller's:
`profiles.schema.read_arrays` (a profile's arrays.npz) and `realtime.io.tracked` (a tracked clip).
"""
from __future__ import annotations

import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from realtime.core.text import printable

__all__ = ["MAX_HEADER_BYTES", "NpyHeader", "member_header"]

MAX_HEADER_BYTES = 10_000
MAX_DIMS = 6


@dataclass(frozen=True)
class NpyHeader:
    key: str                      # the member's name less ".npy" (what np.load calls it)
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool
    nbytes: int                   # the bytes its shape and dtype declare

    @property
    def code(self) -> str:
        """The dtype without its byte order: "f4", "i8", "b1", "u1", "U64", ..."""
        return self.dtype.str.lstrip("<>|=")

    @property
    def label(self) -> str:
        """"array 'KEY'", for a message."""
        return _label(self.key)


def member_header(z: zipfile.ZipFile, info: zipfile.ZipInfo, fail: Callable[[str], Exception]) -> NpyHeader:
    """The checked header of member `info` of `z`; `fail(problem)` is raised for a member that
    is not an .npy array, holds Python objects, or declares other bytes than it holds. Errors
    of the archive itself (ValueError, zipfile.BadZipFile, zlib.error, OSError) are the caller's."""
    key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
    label = _label(key)
    if not info.filename.endswith(".npy") or info.is_dir():
        raise fail(f"member {printable(info.filename, 60)!r} is not an .npy array")
    with z.open(info) as f:
        major, _ = np.lib.format.read_magic(f)
        read = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}.get(major)
        if read is None:
            raise fail(f"{label} has .npy format version {major}")
        shape, fortran_order, dtype = read(f, max_header_size=MAX_HEADER_BYTES)  # type: ignore[call-arg]
        offset = f.tell()
    if dtype.hasobject:
        raise fail(f"{label} holds Python objects (pickle), which are never loaded")
    if len(shape) > MAX_DIMS or any(d < 0 for d in shape):
        raise fail(f"{label} has shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes != info.file_size:
        raise fail(f"{label} declares {nbytes} bytes but holds {info.file_size - offset}")
    return NpyHeader(key, dtype, tuple(shape), bool(fortran_order), nbytes)


def _label(key: str) -> str:
    return f"array {printable(key, 60)!r}"
