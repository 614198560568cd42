"""`CopyingContext`: a device context for tests on a machine without a GPU. Its arrays are numpy,
but every transfer is a real copy, counted, so a test can tell work done on host copies from
work done in place on the "device" arrays, and check what crossed."""
from __future__ import annotations

import numpy as np

from realtime.core.context import CpuContext


class CopyingContext(CpuContext):
    """numpy "device" arrays; `to_host` and `upload` copy and count (shapes in `downloads`)."""

    name = "copying"
    on_host = False

    def __init__(self):
        self.downloads: list[tuple[int, ...]] = []
        self.uploads: list[tuple[int, ...]] = []

    def upload(self, host, out=None):
        """As `CudaContext.upload`: into `out` only with the same shape and dtype, contiguous
        (cupy's ``ndarray.set`` refuses anything else), no silent cast."""
        host = np.asarray(host)
        self.uploads.append(host.shape)
        if out is None:
            return host.copy()
        if out.shape != host.shape or out.dtype != host.dtype or not out.flags.c_contiguous:
            raise ValueError(f"upload of {host.shape} {host.dtype} into {out.shape} {out.dtype} "
                             f"(contiguous: {out.flags.c_contiguous})")
        np.copyto(out, host)
        return out

    def to_device(self, a):
        return a

    def to_host(self, a):
        self.downloads.append(np.shape(a))
        return np.array(a, copy=True)
