"""The twin registry: numpy -> numba twin, cupy -> CUDA twin (lazy), clear error otherwise."""
from __future__ import annotations

import numpy as np
import pytest

import kernels
from kernels import _dispatch

KERNELS = ["rasterize", "interpolate", "texture", "warp", "flow3d", "composite"]


class FakeCupyArray(np.ndarray):
    """A numpy array whose type claims to live in cupy (dispatch looks only at __module__)."""


FakeCupyArray.__module__ = "cupy._core.core"


def fake(a):
    return np.asarray(a).view(FakeCupyArray)


def test_every_kernel_has_a_cpu_twin():
    reg = _dispatch.registered()
    for k in KERNELS:
        assert (k, "numpy") in reg
        assert callable(getattr(kernels, k))


def test_module_detection_does_not_import_cupy():
    assert _dispatch.array_module_name(np.zeros(2)) == "numpy"
    assert _dispatch.array_module_name(fake(np.zeros(2))) == "cupy"


def test_missing_cuda_twin_error(monkeypatch):
    # every kernel has a twin in kernels.cuda now: point the lookup at a package without one
    monkeypatch.setattr(_dispatch, "_CUDA_PACKAGE", "kernels._no_such_twins")
    monkeypatch.delitem(_dispatch._REGISTRY, ("warp", "cupy"), raising=False)
    img = fake(np.zeros((4, 4, 3), np.uint8))
    flow = fake(np.zeros((4, 4, 2), np.float32))
    with pytest.raises(RuntimeError, match="no CUDA twin for warp; install the gpu extra"):
        kernels.warp(img, flow)


def test_registered_cuda_twin_is_used(monkeypatch):
    calls = []

    def twin(image, flow, out):
        calls.append((image.shape, flow.shape, out.shape))
        return "from-twin"

    monkeypatch.setitem(_dispatch._REGISTRY, ("warp", "cupy"), twin)
    img = fake(np.zeros((4, 5, 3), np.uint8))
    flow = fake(np.zeros((4, 5, 2), np.float32))
    out = fake(np.zeros((4, 5, 3), np.float32))
    assert kernels.warp(img, flow, out=out) == "from-twin"
    assert calls == [((4, 5, 3), (4, 5, 2), (4, 5, 3))]


def test_mixed_devices_rejected():
    with pytest.raises(TypeError, match="flow is a numpy array but image is a cupy array"):
        kernels.warp(fake(np.zeros((4, 4, 3), np.uint8)), np.zeros((4, 4, 2), np.float32))


def test_register_validates_module_name():
    with pytest.raises(ValueError, match="numpy' or 'cupy"):
        _dispatch.register("warp", "jax", lambda *a: None)
