"""Numba's threading layer for the CPU twins: TBB (work stealing) where the `tbb` wheel is installed.

Numba tries TBB first, then OpenMP, then its own workqueue, but it finds TBB only where the
library is on the loader's path (a conda environment). A pip install puts ``libtbb.so.12`` in
the environment's ``lib/``, outside that path, so numba falls back to OpenMP. The difference
matters on a 2-core machine: OpenMP splits a loop statically and waits at its end for the
second thread's half, which a busy core (the capture thread, another program) can delay by a
scheduler time slice; TBB's calling thread takes the work its helper has not started. Measured on
the 2-core Xeon, the d10 swap at 30 fps with two kernel threads: capture→sink p95 25.5-27.3 ms
with TBB against 29.4-32.6 ms on one thread; beside a program that keeps one core half busy,
TBB 32-37.5 ms, one thread 34 ms, OpenMP with two threads 55 ms.

`load_tbb()` loads the wheel's library by its full path (so that numba's TBB pool links
against it); it runs when this module is imported (by `kernels`, before numba starts its
threads). `work_stealing()` says whether numba runs on TBB.
"""
from __future__ import annotations

import ctypes
import importlib.metadata
import os
from pathlib import Path

import numba

__all__ = ["load_tbb", "work_stealing"]

_LIBRARY = "libtbb.so.12"


def _wheel_library() -> Path | None:
    """The `tbb` wheel's libtbb.so.12, or None (not installed, or not Linux)."""
    try:
        files = importlib.metadata.files("tbb") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == _LIBRARY:
            path = Path(str(f.locate())).resolve()
            return path if path.is_file() else None
    return None


def load_tbb() -> bool:
    """Make the `tbb` wheel's library loadable by numba (before its threads start). False when
    there is none, when it cannot be loaded, or when the user chose a layer
    (NUMBA_THREADING_LAYER): numba then picks its default."""
    if os.environ.get("NUMBA_THREADING_LAYER"):
        return False
    path = _wheel_library()
    if path is None:
        return False
    try:
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    return True


def work_stealing() -> bool:
    """Whether numba's kernels run on the TBB layer (starts numba's threads if they have not)."""
    numba.get_num_threads()
    return numba.threading_layer() == "tbb"


load_tbb()
