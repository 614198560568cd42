"""Tiny kernel registry: one implementation ("twin") per (kernel, array module).

Each kernel module (`kernels/<name>.py`) registers its numba CPU twin under the array module
name ``"numpy"``. A CUDA twin lives in ``kernels/cuda/<name>.py`` and registers itself under
``"cupy"`` when imported::

    # kernels/cuda/warp.py
    from kernels._dispatch import register
    def _warp_cuda(image, flow, out): ...
    register("warp", "cupy", _warp_cuda)

`lookup` imports ``kernels.cuda.<name>`` lazily the first time a cupy array reaches that
kernel, so adding that file is all it takes. cupy itself is never imported here: arrays are
classified by ``type(x).__module__``.

A twin is called by its public function after validation, with ``out`` already allocated (in
the right array module) or checked; it must overwrite all of ``out`` and return the result.
Inputs may be non-contiguous. Twin signatures:

- rasterize:   (vertices, triangles, height: int, width: int, out: GBuffer) -> GBuffer
- interpolate: (gbuf, triangles, attributes, out) -> out
- texture:     (image, coords, mask or None, out) -> out
- warp:        (image, flow, out) -> out
- flow3d:      (gbuf_t, triangles, verts_t, verts_prev, depth_prev, depth_eps: float, flow, visible)
               -> (flow, visible)
- composite:   (crop, frame, frame_to_crop: host numpy float64 (2, 3), mask,
                roi: (x0, x1, y0, y1) inclusive frame box, copy: bool, out) -> out
               where copy=True means out is not frame and must first receive a copy of frame.
- atlas_blend: (gbuf, triangles, head_start: int, ref_uv, ref_image, keys, key_uv, key_images,
               weights, alpha, out) -> out
- temporal_blend: (gbuf, triangles, face_end: int, verts_t, verts_prev, depth_prev, render, prev,
               strength: float, inv_scale: float, box: (y0, y1, x0, x1) clipped to the crop,
               depth_eps: float, out) -> out
- swap_blend:  (frame, render, alpha, fan, low, colour (N, N, N, 3), frame_to_crop: host numpy float64 (2, 3),
               occlusion: 4 floats, roi: (x0, x1, y0, y1) inclusive frame box, copy: bool, out)
               -> out, where out is never frame (copy=True: out must first receive frame)
- disclose:    (image, mark or None, label or None, origin: (y0, x0) inside the frame, out) -> out
               where out may be image itself.
"""
from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

import numpy

__all__ = ["register", "lookup", "array_module_name", "array_module", "registered", "empty_like_module"]

_REGISTRY: dict[tuple[str, str], Callable[..., Any]] = {}
_CUDA_PACKAGE = "kernels.cuda"


def register(kernel_name: str, array_module_name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register `fn` as the implementation of `kernel_name` for arrays of `array_module_name`
    ("numpy" or "cupy"). Re-registering replaces the previous twin. Returns `fn` (so it can be
    used as a decorator helper)."""
    if array_module_name not in ("numpy", "cupy"):
        raise ValueError(f"array_module_name must be 'numpy' or 'cupy', got {array_module_name!r}")
    _REGISTRY[(kernel_name, array_module_name)] = fn
    return fn


def registered() -> dict[tuple[str, str], Callable[..., Any]]:
    """A copy of the registry, {(kernel_name, array_module_name): fn}."""
    return dict(_REGISTRY)


def array_module_name(x: Any) -> str:
    """"cupy" for a cupy array (detected without importing cupy), else "numpy"."""
    return "cupy" if type(x).__module__.startswith("cupy") else "numpy"


def array_module(x: Any):
    """The array module (numpy or cupy) that owns `x`; imports cupy only if `x` is a cupy array."""
    if array_module_name(x) == "cupy":
        import cupy  # noqa: PLC0415 - lazy on purpose

        return cupy
    return numpy


def lookup(kernel_name: str, x: Any) -> Callable[..., Any]:
    """The twin of `kernel_name` for the array module of `x` (the kernel's first array argument).

    For cupy arrays the CUDA twin module ``kernels.cuda.<kernel_name>`` is imported on first use;
    a clear RuntimeError is raised when there is none."""
    mod = array_module_name(x)
    fn = _REGISTRY.get((kernel_name, mod))
    if fn is not None:
        return fn
    if mod == "cupy":
        modname = f"{_CUDA_PACKAGE}.{kernel_name}"
        try:
            importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            # Only swallow "that twin file does not exist"; a missing dependency inside it
            # (e.g. cupy not installed) is reported as such below.
            if exc.name not in (_CUDA_PACKAGE, modname, "kernels"):
                raise RuntimeError(
                    f"no CUDA twin for {kernel_name}: importing {modname} failed ({exc}); "
                    "install the gpu extra (pip install .[gpu])"
                ) from exc
        fn = _REGISTRY.get((kernel_name, mod))
        if fn is not None:
            return fn
        raise RuntimeError(
            f"no CUDA twin for {kernel_name}; install the gpu extra (pip install .[gpu]) "
            f"or pass numpy arrays (got {type(x).__module__}.{type(x).__name__})"
        )
    raise RuntimeError(f"no CPU twin registered for {kernel_name} (kernels package not imported?)")


def empty_like_module(x: Any, shape: tuple[int, ...], dtype: Any):
    """Uninitialised array of `shape`/`dtype` from the array module of `x` (numpy or cupy)."""
    return array_module(x).empty(shape, dtype=dtype)


def cuda_available() -> bool:
    """True when cupy is installed and sees at least one CUDA device (never raises)."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy  # noqa: PLC0415 - cupy: optional (the gpu extra), only on CUDA

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any driver/runtime problem means "no GPU"
        return False
