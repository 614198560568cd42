"""Crafted hostile files for the tests of issue 15, made small and on the fly (never committed),
and a runner that executes code under a 2 GB memory cap.

- `png_declaring(path, w, h)`: a valid PNG of a few hundred bytes whose header says w×h.
- `npz_bomb(path, shape)`: an arrays.npz whose `image` member is a deflated stream of zeros that
  inflates to `shape` (a 32,768² image, 3.2 GB, in ~3 MB: deflate blocks after a full flush
  repeat).
- `yaml_alias_bomb(levels, width)`: `name:` expanding to width**levels strings.
- `safetensors_file(path, tensors, metadata)`: a safetensors file written by hand (any header).
- `small_arrays()` / `atlas_arrays()`: arrays a valid profile holds (tiny).
- `run_capped(code)`: `python -c code` in the project root with RLIMIT_DATA = 2 GiB (heap and
  anonymous mappings: what a memory bomb allocates), returning the CompletedProcess.
- `memory_cap`: an autouse fixture (imported by the hostile test modules) that lets each test
  grow the pytest process's data by at most 2 GiB.
"""
from __future__ import annotations

import json
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MEMORY_CAP = 2 << 30


@pytest.fixture(autouse=True)
def memory_cap():
    """Autouse in the hostile test modules: each test may grow the process's data (heap and
    anonymous mappings) by at most 2 GiB; a bomb that got through is a MemoryError, not a
    machine out of memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    try:
        status = Path("/proc/self/status").read_text()
        used = int(status.split("VmData:")[1].split()[0]) * 1024
    except (OSError, IndexError, ValueError):
        yield
        return
    cap = used + MEMORY_CAP
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def run_capped(code: str, timeout: float = 120, cap: int = MEMORY_CAP, env=None) -> subprocess.CompletedProcess:
    def limit():
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))

    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit, env=env)


# ------------------------------------------------------------------------------------ images
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR declares width×height RGB (8 bit); its data holds one row."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x80" * 3 * min(width, 64))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
                     + _chunk(b"IEND", b""))
    return path


# ------------------------------------------------------------------------------------- arrays
def small_arrays(crop: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """The arrays of a valid (tiny, random) warp-tier profile of crop size `crop`."""
    rng = np.random.default_rng(seed)
    landmarks = rng.normal(size=(478, 3)).astype(np.float32)
    landmarks[[33, 263], :2] = [[7, 15], [23, 15]]     # the outer eye corners: a 16 px interocular
    return {
        "image": rng.integers(0, 256, (40, 30, 3), dtype=np.uint8),
        "landmarks": landmarks,
        "neutral": rng.normal(size=(478, 3)).astype(np.float32),
        "frame_rotation": np.eye(3, dtype=np.float32),
        "frame_scale": np.float32(12.5),
        "frame_translation": np.array([1, 2, 3], np.float32),
        "crop_from_image": np.array([[2, 0, -5], [0, 2, -7]], np.float32),
        "head_points": rng.normal(size=(72, 3)).astype(np.float32),
        "head_gains": rng.uniform(size=72).astype(np.float32),
        "head_border": rng.normal(size=(32, 2)).astype(np.float32),
        "head_triangles": rng.integers(0, 140, (150, 3)).astype(np.int32),
        "paste_mask": rng.uniform(size=(crop, crop)).astype(np.float32),
        "face_mask": rng.integers(0, 2, (crop, crop)).astype(np.uint8),
    }


def atlas_arrays(n: int = 3, side: int = 16, seed: int = 1) -> dict[str, np.ndarray]:
    """A tiny appearance atlas (n keyframes of side²), valid for the schema."""
    rng = np.random.default_rng(seed)
    return {
        "atlas_images": rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8),
        "atlas_landmarks": rng.uniform(0, side, (n, 478, 3)).astype(np.float32),
        "atlas_query": rng.normal(size=(n, 4)).astype(np.float32),
        "atlas_dims": np.array([0], np.int32),
        "atlas_simplices": np.array([[0, 1], [1, 2]], np.int32)[: max(0, n - 1)],
        "atlas_flipped": np.zeros(n, np.uint8),
        "atlas_frames": np.arange(n, dtype=np.int32),
    }


def npz_bomb(path: Path, shape=(32768, 32768, 3), chunk: int = 16 << 20) -> Path:
    """An .npz whose `image.npy` inflates to `shape` uint8 zeros (a consistent zip: its sizes
    and CRC are right), built from one compressed chunk repeated; the other arrays valid."""
    header = _npy_header(shape, "|u1")
    nbytes = int(np.prod(shape))
    assert nbytes % chunk == 0 and len(header) + nbytes < 1 << 32
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(header) + comp.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(chunk)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    assert block == again
    data = first + block * (nbytes // chunk) + comp.flush(zlib.Z_FINISH)
    # The CRC of the member is not computed (0.5 s for 3 GB): a loader checks it only after
    # inflating everything, and a naive one has allocated the whole array before that.
    members = [("image.npy", data, 0, len(header) + nbytes, 8)]
    for key, a in small_arrays().items():
        if key == "image":
            continue
        raw = _npy_header(a.shape, a.dtype.str) + np.ascontiguousarray(a).tobytes()
        members.append((f"{key}.npy", raw, zlib.crc32(raw) & 0xFFFFFFFF, len(raw), 0))
    path.write_bytes(_zip(members))
    return path


def _npy_header(shape, descr: str) -> bytes:
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def _zip(members) -> bytes:
    """A zip of (name, stored bytes, crc, uncompressed size, method 0 stored / 8 deflated)."""
    out, central = bytearray(), bytearray()
    for name, data, crc, size, method in members:
        offset = len(out)
        n = name.encode()
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), size, len(n), 0)
        out += n + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(data),
                               size, len(n), 0, 0, 0, 0, 0, offset) + n
    start = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), start, 0)
    return bytes(out)


# --------------------------------------------------------------------------------------- YAML
def yaml_alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A profile.yaml fragment whose `name:` expands to width**levels strings."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append(f"name: *a{levels - 1}")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------- safetensors
def safetensors_file(path: Path, tensors: dict[str, np.ndarray], metadata: dict | None = None,
                     header_length: int | None = None) -> Path:
    """A safetensors file written by hand; `header_length` overrides the length field."""
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.uint8): "U8", np.dtype(np.int64): "I64"}
    header: dict = {"__metadata__": metadata or {}}
    body, offset = bytearray(), 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        body += raw
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    n = len(text) if header_length is None else header_length
    path.write_bytes(struct.pack("<Q", n) + text + bytes(body))
    return path


def neural_metadata(**config) -> dict:
    """The metadata of a puppeteer generator checkpoint with `config` (JSON in the header)."""
    meta = {"format": "puppeteer.neural.checkpoint", "version": 1, "step": 0,
            "config": {"resolution": 128, **config}, "train_config": None, "models": ["G"],
            "optimizers": {}, "extra": {}}
    return {"puppeteer.neural": json.dumps(meta)}
