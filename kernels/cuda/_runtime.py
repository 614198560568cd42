"""What the CUDA twins share: compiling their ``.cu`` sources with cupy (NVRTC), launching, and
the contiguity helpers.

A twin's host code is written once against a small `Runtime` (an array module ``xp`` and a
``launch``); `CUPY` is the real one. The emulated-host parity test substitutes a runtime whose
``xp`` is numpy and whose ``launch`` runs the same ``.cu`` kernels compiled as C++ (see
``host_shim.h``), so the host glue (argument order, dtypes, grid sizes) is tested without a GPU.
cupy is imported only when `CUPY` is first used.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = ["OPTIONS", "THREADS", "SOURCE_DIR", "Runtime", "CupyRuntime", "CUPY", "source_path", "cupy_twin",
           "gbuffer_args", "launch_1d", "scratch", "commit"]

#: NVRTC options of every twin. --fmad=false: no multiply-add contraction, so every float64 /
#: float32 expression rounds exactly as in the numba twins (which are not contracted either,
#: except the fastmath samplers, see kernels/cuda/__init__.py) -- but for float32 subnormals:
#: cupy appends -ftz=true after these options (cupy/cupy#9576), so float32 arithmetic and
#: conversions flush them to zero; a twin whose result depends on them converts by hand
#: (rasterize.cu).
OPTIONS = ("-std=c++14", "--fmad=false")
#: Threads per block of the one-thread-per-item launches.
THREADS = 256

#: Where the ``.cu`` sources (and bilinear.cuh, host_shim.h) live: this package's directory.
SOURCE_DIR = Path(__file__).resolve().parent


def source_path(name: str) -> Path:
    """Path of the CUDA source ``kernels/cuda/<name>.cu``."""
    return SOURCE_DIR / f"{name}.cu"


class Runtime(Protocol):
    """Where a twin's kernels run: `xp` allocates the arrays, `launch` runs
    ``<kernel>`` of ``kernels/cuda/<source>.cu`` on a (grid, block) with `args` (arrays, which
    must be C-contiguous, and numpy scalars of the parameters' exact C types)."""

    xp: Any

    def launch(self, source: str, kernel: str, grid: tuple[int, ...], block: tuple[int, ...], args: tuple) -> None: ...


class CupyRuntime:
    """The GPU runtime: one `cupy.RawModule` per (source, device), compiled on first use."""

    def __init__(self) -> None:
        self._modules: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    @property
    def xp(self):
        import cupy  # noqa: PLC0415 - lazy on purpose

        return cupy

    def module(self, source: str):
        """The compiled module of ``<source>.cu`` for the current device (cached)."""
        import cupy  # noqa: PLC0415

        key = (source, cupy.cuda.runtime.getDevice())
        with self._lock:
            mod = self._modules.get(key)
            if mod is None:
                # NVRTC compiles the text, not the file: the shared header (bilinear.cuh) is
                # found through the include path
                mod = cupy.RawModule(code=source_path(source).read_text(),
                                     options=OPTIONS + (f"--include-path={SOURCE_DIR}",))
                self._modules[key] = mod
        return mod

    def launch(self, source: str, kernel: str, grid: tuple[int, ...], block: tuple[int, ...], args: tuple) -> None:
        self.module(source).get_function(kernel)(grid, block, args)


CUPY = CupyRuntime()


def cupy_twin(twin: Callable[..., Any]) -> Callable[..., Any]:
    """``twin(runtime, *args)`` bound to the GPU runtime: the function to `register`."""
    return functools.update_wrapper(functools.partial(twin, CUPY), twin)


def launch_1d(rt: Runtime, source: str, kernel: str, n: int, args: tuple) -> None:
    """Launch `kernel` with one thread per item 0..n-1 (THREADS per block); nothing for n == 0."""
    if n > 0:
        rt.launch(source, kernel, ((n + THREADS - 1) // THREADS,), (THREADS,), args)


def gbuffer_args(rt: Runtime, gbuf, triangles) -> tuple:
    """The leading arguments of every kernel that reads a G-buffer through its triangles
    (``tri_id, bary, triangles, T``, as the .cu signatures declare them), made contiguous."""
    xp = rt.xp
    return (xp.ascontiguousarray(gbuf.tri_id), xp.ascontiguousarray(gbuf.bary),
            xp.ascontiguousarray(triangles), np.int32(triangles.shape[0]))


def scratch(rt: Runtime, out):
    """`out` itself when C-contiguous (kernels write through raw pointers), else an
    uninitialised contiguous array of its shape and dtype; pass the result to `commit`."""
    return out if out.flags.c_contiguous else rt.xp.empty(out.shape, out.dtype)


def commit(out, buf) -> None:
    """Copy `buf` back into `out` when `scratch` had to substitute it."""
    if buf is not out:
        out[...] = buf
