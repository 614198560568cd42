"""The header of a safetensors file, read and bounded before any library opens the file.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON (tensor name ->
dtype, shape, byte offsets; "__metadata__" -> str -> str), then the tensor bytes. `read_header`
checks all of it against the file's real size and the caller's caps (a header of 2^62 bytes,
junk, a truncated file, a pickle renamed to .safetensors, a tensor whose shape disagrees with its
bytes) and raises `TensorFileError` (a `ProfileError`: one line) before anything is allocated
from what the file claims. No torch here: `profiles.format.load` checks the neural files of a
profile with it too.
"""
from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from realtime.core.errors import ProfileError

__all__ = ["TensorFileError", "TensorHeader", "read_header", "DTYPE_BYTES"]

DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
MAX_HEADER_BYTES = 16 << 20      # the JSON header (metadata included)
MAX_TENSORS = 20_000
MAX_DIMS = 8


class TensorFileError(ProfileError):
    """A safetensors file that is not one, or that claims more than the caller allows."""


@dataclass(frozen=True)
class TensorHeader:
    tensors: dict[str, tuple[str, tuple[int, ...]]]   # name -> (dtype, shape)
    metadata: dict[str, str]
    data_bytes: int

    def shapes(self, prefix: str = "") -> dict[str, tuple[int, ...]]:
        """name[len(prefix):] -> shape, for the tensors whose name starts with `prefix`."""
        return {k[len(prefix):]: s for k, (_, s) in self.tensors.items() if k.startswith(prefix)}


def read_header(path: str | os.PathLike, max_bytes: int = 2 << 30, what: str | None = None
                ) -> TensorHeader:
    """The checked header of the safetensors file at `path`; its tensors may hold at most
    `max_bytes` in all. Raises TensorFileError naming `what` (default: the path)."""
    path = Path(path)
    what = what or str(path)

    def bad(problem: str) -> TensorFileError:
        return TensorFileError(f"{what} is not a usable safetensors file: {problem}")

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise bad(f"{size} bytes, too short for a header")
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > MAX_HEADER_BYTES or n > size - 8:
                raise bad(f"its header claims {n} bytes (the file has {size})")
            raw = f.read(n)
    except OSError as e:
        raise TensorFileError(f"cannot read {what}: {e.strerror or e}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("the header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise bad("its __metadata__ is not a mapping of strings")
    if len(header) > MAX_TENSORS:
        raise bad(f"{len(header)} tensors (at most {MAX_TENSORS})")
    data = size - 8 - n
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    total = 0
    for name, info in header.items():
        if not isinstance(info, dict):
            raise bad(f"tensor {name[:80]!r} has no description")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPE_BYTES:
            raise bad(f"tensor {name[:80]!r} has dtype {str(dtype)[:20]!r}")
        if (not isinstance(shape, list) or len(shape) > MAX_DIMS
                or not all(type(d) is int and 0 <= d < 1 << 40 for d in shape)):
            raise bad(f"tensor {name[:80]!r} has shape {str(shape)[:60]}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int for o in offsets) or not 0 <= offsets[0] <= offsets[1] <= data):
            raise bad(f"tensor {name[:80]!r} lies outside the file (truncated?)")
        nbytes = math.prod(shape) * DTYPE_BYTES[dtype]
        if offsets[1] - offsets[0] != nbytes:
            raise bad(f"tensor {name[:80]!r}: shape {shape} needs {nbytes} bytes, the file gives "
                      f"{offsets[1] - offsets[0]}")
        total += nbytes
        if total > max_bytes:
            raise bad(f"its tensors hold more than {max_bytes >> 20} MiB")
        tensors[name] = (dtype, tuple(shape))
    return TensorHeader(tensors=tensors, metadata=dict(metadata), data_bytes=total)
