"""Input checks shared by the public kernel functions (array-module agnostic: numpy or cupy).

Shape problems raise ValueError, dtype / type problems raise TypeError; every message names the
kernel, the argument, what was expected and what was received.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._dispatch import array_module_name, empty_like_module
from .gbuffer import GBuffer


def is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "ndim")


def _fmt_shape(spec: Sequence[Any]) -> str:
    parts = [str(s) if isinstance(s, int) else s for s in spec]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def check_array(kernel: str, name: str, x: Any, spec: Sequence[Any], dtypes: Sequence[Any]):
    """Check that `x` is an array whose shape matches `spec` and whose dtype is one of `dtypes`.

    `spec` entries are ints (exact size) or strings (any size; the string names the axis in
    the error message, e.g. "V"). Returns x.shape as a tuple."""
    if not is_array(x):
        raise TypeError(f"{kernel}: {name} must be an array of shape {_fmt_shape(spec)}, got {type(x).__name__}")
    shape = tuple(x.shape)
    if len(shape) != len(spec) or any(isinstance(s, int) and s != d for s, d in zip(spec, shape)):
        raise ValueError(f"{kernel}: {name} must have shape {_fmt_shape(spec)}, got shape {shape}")
    if x.dtype not in dtypes:      # numpy and cupy dtypes compare equal to the scalar types
        want = " or ".join(str(np.dtype(d)) for d in dtypes)
        raise TypeError(f"{kernel}: {name} must have dtype {want}, got dtype {np.dtype(x.dtype)} (shape {shape})")
    return shape


def check_same_module(kernel: str, ref_name: str, ref: Any, name: str, x: Any) -> None:
    if x is None:
        return
    a, b = array_module_name(ref), array_module_name(x)
    if a != b:
        raise TypeError(f"{kernel}: {name} is a {b} array but {ref_name} is a {a} array; pass both on the same device")


def check_size(kernel: str, name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{kernel}: {name} must be an int, got {type(v).__name__} {v!r}")
    if int(v) <= 0:
        raise ValueError(f"{kernel}: {name} must be > 0, got {int(v)}")
    return int(v)


def check_float(kernel: str, name: str, v: Any, minimum: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{kernel}: {name} must be a real number, got {type(v).__name__} {v!r}")
    f = float(v)
    if not np.isfinite(f):
        raise ValueError(f"{kernel}: {name} must be finite, got {f}")
    if minimum is not None and f < minimum:
        raise ValueError(f"{kernel}: {name} must be >= {minimum}, got {f}")
    return f


def check_indices(kernel: str, name: str, triangles: Any, n_vertices: int) -> None:
    """Triangle indices must lie in [0, n_vertices)."""
    if triangles.shape[0] == 0:
        return
    lo, hi = int(triangles.min()), int(triangles.max())
    if lo < 0 or hi >= n_vertices:
        raise ValueError(
            f"{kernel}: {name} indices must lie in [0, {n_vertices}) (V = {n_vertices} vertices), "
            f"got min {lo}, max {hi}"
        )


def check_gbuffer(kernel: str, name: str, g: Any, shape: tuple[int, int] | None = None) -> tuple[int, int]:
    """Check a GBuffer's three fields (shapes consistent, dtypes int32 / float32 / float32).
    With `shape` given, the G-buffer must be exactly (H, W) = shape. Returns (H, W)."""
    if not isinstance(g, GBuffer):
        raise TypeError(f"{kernel}: {name} must be a kernels.GBuffer, got {type(g).__name__}")
    hw: tuple[Any, Any] = ("H", "W") if shape is None else shape
    h, w = check_array(kernel, f"{name}.tri_id", g.tri_id, hw, [np.int32])
    check_array(kernel, f"{name}.bary", g.bary, (h, w, 2), [np.float32])
    check_array(kernel, f"{name}.depth", g.depth, (h, w), [np.float32])
    for field in ("bary", "depth"):
        check_same_module(kernel, f"{name}.tri_id", g.tri_id, f"{name}.{field}", getattr(g, field))
    return h, w


def output_array(kernel: str, out: Any, like_name: str, like: Any, shape: tuple[int, ...], dtype: Any):
    """`out` checked against (shape, dtype, array module of `like`), or a new array if None."""
    if out is None:
        return empty_like_module(like, shape, dtype)
    check_array(kernel, "out", out, shape, [dtype])
    check_same_module(kernel, like_name, like, "out", out)
    return out
