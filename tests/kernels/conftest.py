"""Shared fixtures for the kernel tests.

`dev` parametrises a test over devices: "cpu" always runs (numpy arrays -> numba twins);
"cuda" (cupy arrays -> CUDA twins) is marked `cuda` and skipped unless cupy and a GPU are
present, so the CUDA issue only has to add `kernels/cuda/<name>.py`.
"""
from __future__ import annotations

import numpy as np
import pytest

from kernels import GBuffer


def _cuda_available() -> bool:
    from kernels._dispatch import cuda_available

    return cuda_available()


HAVE_CUDA = _cuda_available()

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[pytest.mark.cuda, pytest.mark.skipif(not HAVE_CUDA, reason="needs cupy and an NVIDIA GPU")],
    ),
]


class Device:
    """Moves test data to the device under test and results back to numpy."""

    def __init__(self, name: str):
        self.name = name
        if name == "cuda":
            import cupy

            self.xp = cupy
        else:
            self.xp = np

    def put(self, a):
        if a is None:
            return None
        if isinstance(a, GBuffer):
            return GBuffer(self.put(a.tri_id), self.put(a.bary), self.put(a.depth))
        return self.xp.asarray(a)

    def get(self, a):
        if isinstance(a, GBuffer):
            return GBuffer(self.get(a.tri_id), self.get(a.bary), self.get(a.depth))
        if isinstance(a, tuple):
            return tuple(self.get(x) for x in a)
        if type(a).__module__.startswith("cupy"):
            return a.get()
        return np.asarray(a)


@pytest.fixture(params=DEVICES)
def dev(request) -> Device:
    return Device(request.param)
