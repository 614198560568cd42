"""`CopyingContext`: a device context for tests on a machine without a GPU. Its arrays are numpy,
but every transfer is a real copy, counted, so a test can tell work done on host copies from
work done in place on the "device" arrays, and check what crossed."""
from __future__ import annotations

import numpy as np

from realtime.core.context import CpuContext


class CopyingContext(CpuContext):
    """numpy "device" arrays; `to_host` and `upload` copy and count (shapes in `downloads`)."""

    name = "copying"

    def __init__(self):
        self.downloads: list[tuple[int, ...]] = []
        self.uploads: list[tuple[int, ...]] = []

    def upload(self, host, out=None):
        host = np.asarray(host)
        self.uploads.append(host.shape)
        if out is None:
            return host.copy()
        np.copyto(out, host)
        return out

    def to_device(self, a):
        return a

    def to_host(self, a):
        self.downloads.append(np.shape(a))
        return np.array(a, copy=True)
