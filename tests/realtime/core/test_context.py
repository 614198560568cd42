"""The device context: on the CPU it is numpy and the identity (the engine unchanged); the CUDA
context's contracts (one stream, pinned transfers, DLPack views, event timing) are checked by
the `cuda` tests, skipped without a GPU."""
from __future__ import annotations

import time

import numpy as np
import pytest

from kernels._dispatch import cuda_available
from realtime.core import context as D

HAVE_CUDA = cuda_available()


def test_cpu_context_is_numpy_and_the_identity():
    ctx = D.open_device("cpu")
    assert isinstance(ctx, D.CpuContext) and ctx.xp is np and ctx.name == "cpu"
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert ctx.upload(a) is a and ctx.to_device(a) is a and ctx.to_host(a) is a
    out = np.zeros_like(a)
    assert ctx.upload(a, out=out) is out and np.array_equal(out, a)
    stage = object()
    assert ctx.place(stage) is stage
    with ctx.activate():
        ctx.sync()
    assert ctx.describe()


def test_cpu_torch_views_share_memory():
    import torch

    ctx = D.CpuContext()
    a = np.arange(6, dtype=np.float32)
    t = ctx.to_torch(a)
    assert t.data_ptr() == a.ctypes.data
    t[0] = 42.0
    assert a[0] == 42.0
    b = ctx.from_torch(t)
    assert b.ctypes.data == t.data_ptr()
    assert ctx.from_torch(torch.ones(2, requires_grad=True)).tolist() == [1.0, 1.0]


def test_host_timer_measures_each_stage():
    timer = D.CpuContext().timer()
    for name, secs in (("a", 0.0), ("b", 0.02)):
        mark = timer.start()
        time.sleep(secs)
        timer.stop(name, mark)
    ms = timer.result()
    assert list(ms) == ["a", "b"] and 0 <= ms["a"] < 15 and 15 <= ms["b"] < 500


def test_unknown_device_and_missing_cuda_are_clear():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        D.open_device("tpu")
    D.check_device("cpu")
    if HAVE_CUDA:
        pytest.skip("a GPU is here")
    with pytest.raises(D.DeviceUnavailable) as e:
        D.open_device("cuda")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--device cuda needs an NVIDIA GPU") and "[gpu]" in msg
    with pytest.raises(D.DeviceUnavailable):
        D.check_device("cuda:0")


class _FakeDeviceArray:
    """Classified as a cupy array by `kernels._dispatch.array_module_name` (its module)."""

    def __init__(self, host):
        self.host = host


_FakeDeviceArray.__module__ = "cupy._fake"


class _FakeCtx:
    def __init__(self):
        self.downloads = 0

    def to_host(self, a):
        if isinstance(a, _FakeDeviceArray):
            self.downloads += 1
            return a.host
        return a


def test_host_stage_brings_gbuffer_and_render_home_and_puts_the_device_gbuffer_back():
    from kernels import GBuffer
    from realtime.core.frame import Frame

    seen = []

    class CpuOnly:
        name = "smooth"

        def __init__(self):
            self.resets = 0

        def reset(self):
            self.resets += 1

        def __call__(self, frame):
            seen.append((type(frame.gbuf.tri_id), type(frame.render)))
            return "made"

    ctx, inner = _FakeCtx(), CpuOnly()
    host = GBuffer.empty(4, 4)
    frame = Frame(index=0, t_capture=0.0)
    frame.gbuf = GBuffer(*(_FakeDeviceArray(a) for a in (host.tri_id, host.bary, host.depth)))
    frame.render = _FakeDeviceArray(np.zeros((4, 4, 3), np.float32))
    wrapped = D.HostStage(inner, ctx)
    assert wrapped.name == "smooth"
    assert wrapped(frame) == "made"
    assert seen == [(np.ndarray, np.ndarray)] and ctx.downloads == 4
    assert isinstance(frame.gbuf.tri_id, _FakeDeviceArray)   # the device G-buffer is back ...
    assert isinstance(frame.render, np.ndarray)              # ... the stage's host render stays
    wrapped(frame)                                   # the render is on the host: only the G-buffer moves
    assert ctx.downloads == 7 and seen[-1] == (np.ndarray, np.ndarray)
    wrapped.reset()                                  # the wrapped stage's own methods
    assert inner.resets == 1


class _FakeEvent:
    clock = 0.0

    def __init__(self):
        self.t, self.synced = None, False

    def record(self, stream):
        _FakeEvent.clock += 1.5
        self.t = _FakeEvent.clock

    def synchronize(self):
        self.synced = True


class _FakeCupy:
    class cuda:  # noqa: N801 - mimics cupy.cuda
        Event = _FakeEvent

        @staticmethod
        def get_elapsed_time(a, b):
            return b.t - a.t


def test_event_timer_pairs_events_and_syncs_the_last_once():
    pool: list = []
    timer = D.EventTimer(_FakeCupy, stream=None, pool=pool)
    for name in ("render", "generate"):
        timer.stop(name, timer.start())
    ms = timer.result()
    assert ms == {"render": 1.5, "generate": 1.5}
    assert [e.synced for e in pool] == [False, False, False, True]
    again = D.EventTimer(_FakeCupy, stream=None, pool=pool)     # events are reused
    again.stop("x", again.start())
    assert len(pool) == 4 and again.result() == {"x": 1.5}


def test_engine_on_an_explicit_cpu_context_is_the_default_engine(astronaut_profile):
    from realtime.core.frame import Frame
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.face.state import FaceState

    outs = []
    for ctx in (None, D.CpuContext()):
        engine = Engine(astronaut_profile, EngineOptions(output_size=(256, 256)), device=ctx)
        assert engine.device.name == "cpu"
        assert all(not isinstance(s, D.HostStage) for s in engine.stages)
        f = engine.process(Frame(index=0, t_capture=0.0, state=FaceState.neutral()))
        assert set(f.timings) == {s.name for s in engine.stages}
        outs.append(f.output)
    assert np.array_equal(outs[0], outs[1])


# ----------------------------------------------------------------------------------- GPU only

@pytest.mark.cuda
@pytest.mark.skipif(not HAVE_CUDA, reason="needs cupy and an NVIDIA GPU")
def test_cuda_transfers_and_dlpack_share_memory():
    import cupy

    ctx = D.open_device("cuda")
    host = np.random.default_rng(0).random((64, 48, 3)).astype(np.float32)
    with ctx.activate():
        dev = ctx.upload(host)
        assert isinstance(dev, cupy.ndarray)
        back = ctx.to_host(dev)
        assert np.array_equal(back, host) and back is not host
        try:
            D.require_torch_cuda()
        except D.DeviceUnavailable:
            return
        t = ctx.to_torch(dev)
        assert t.is_cuda and t.data_ptr() == dev.data.ptr
        again = ctx.from_torch(t)
        assert again.data.ptr == t.data_ptr()
    assert "compute capability" in ctx.describe()


@pytest.mark.cuda
@pytest.mark.skipif(not HAVE_CUDA, reason="needs cupy and an NVIDIA GPU")
def test_cuda_engine_matches_the_cpu_engine(astronaut_profile):
    """Warp tier, smoothing on, 8 scripted frames: the GPU path's frames equal the CPU path's
    within 2 grey levels on 99.5% of the pixels (float32 sums in another order, and a pixel on
    a triangle edge may fall to the other side)."""
    from realtime.core.frame import Frame
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.io.performance import ScriptedSource

    results = {}
    for device in ("cpu", "cuda"):
        engine = Engine(astronaut_profile, EngineOptions(output_size=(256, 256), device=device))
        src = ScriptedSource(astronaut_profile["neutral"], frames=8, fps=30)
        frames = []
        for i in range(8):
            f = engine.process(Frame(index=i, t_capture=0.0, **src.read()))
            assert isinstance(f.output, np.ndarray) and f.output.dtype == np.uint8
            assert set(f.timings) == {s.name for s in engine.stages}
            frames.append(f.output.astype(np.int16))
        results[device] = np.stack(frames)
    d = np.abs(results["cpu"] - results["cuda"])
    assert np.mean(d <= 2) >= 0.995, np.percentile(d, [50, 99, 100])
