"""Where the engine's image-sized arrays live: the device context (DESIGN §2, §4, §5 tier 3).

One context per `Engine`, handed explicitly to the stages that touch image-sized arrays
(render, generate, composite). Two implementations with the same interface:

- `CpuContext` (``"cpu"``): numpy. Every transfer is the identity (the same object comes back,
  no copy), the timer reads `time.perf_counter`; the CPU engine is exactly what it was.
- `CudaContext` (``"cuda"``): cupy on one CUDA stream that the whole pipeline uses (cupy
  kernels and, through `torch.cuda.ExternalStream`, torch). Host arrays go up once through a
  pinned staging buffer (asynchronous copy), results come down once through another; torch
  tensors and cupy arrays are exchanged by DLPack without copies; the timer records CUDA events
  on the stream and reads them after the frame's single synchronisation.

Contract shared by both (``ctx`` below):

- ``ctx.name``: "cpu" or "cuda"; ``ctx.xp``: the array module (numpy or cupy).
- ``ctx.upload(host, out=None)``: a device copy of a host numpy array (cpu: `host` itself).
  With `out`, the copy lands there (cpu: `out` is filled). Asynchronous on cuda.
- ``ctx.to_device(a)`` / ``ctx.to_host(a)``: `a` where asked, transferred only when it is not
  there yet (arrays are classified by their module, `kernels._dispatch.array_module_name`).
  ``to_host`` returns a fresh host array the caller may keep (cuda: it synchronises).
- ``ctx.to_torch(a)`` / ``ctx.from_torch(t)``: zero-copy views (DLPack on cuda,
  `torch.from_numpy` / `Tensor.numpy` on the CPU): the result shares memory with the argument.
- ``ctx.activate()``: a context manager that makes the context's stream current for cupy and
  torch while a frame runs (cpu: does nothing).
- ``ctx.sync()``: wait until the device is done with everything queued.
- ``ctx.timer()``: a fresh stage timer for one frame (`HostTimer` on the CPU, `EventTimer` on cuda).
- ``ctx.place(stage)``: the stage as the engine should call it: a stage that declares
  ``device_ready = True`` runs on the context's arrays as they are; on cuda any other stage is
  wrapped in `HostStage`, which brings the frame's G-buffer and render to the host first.
- ``ctx.describe()``: one line naming the processor (GPU name and compute capability on cuda).

cupy and torch are imported lazily: importing this module costs nothing, and on a machine
without a GPU `open_device("cuda")` raises `DeviceUnavailable` with a one-line reason (the CLI
prints it as ``error: ...`` and exits 2).
"""
from __future__ import annotations

import contextlib
import importlib.util
import platform
import time
from typing import Any

import numpy as np

from kernels import GBuffer
from kernels._dispatch import array_module_name
from realtime.core.errors import PuppeteerError

__all__ = ["DeviceUnavailable", "CpuContext", "CudaContext", "HostStage", "HostTimer",
           "EventTimer", "open_device", "check_device", "require_torch_cuda", "DEVICES",
           "INSTALL_HINT"]

INSTALL_HINT = "needs an NVIDIA GPU and the gpu extra (pip install -e '.[gpu]')"


class DeviceUnavailable(PuppeteerError, RuntimeError):
    """The requested device cannot be used here; the message is one line that says why."""


def _is_device_array(a: Any) -> bool:
    return array_module_name(a) == "cupy"


# ------------------------------------------------------------------------------------ timers

class HostTimer:
    """Stage times from `time.perf_counter` (milliseconds), for work that runs on the host."""

    def __init__(self):
        self._ms: dict[str, float] = {}

    def start(self) -> float:
        return time.perf_counter()

    def stop(self, name: str, mark: float) -> None:
        self._ms[name] = (time.perf_counter() - mark) * 1000.0

    def result(self) -> dict[str, float]:
        return dict(self._ms)


class EventTimer:
    """Stage times from CUDA events recorded on one stream (milliseconds).

    `start` records an event, `stop` another; `result` waits for the last one (the frame's
    single synchronisation point) and returns the elapsed time of each pair. A stage that only
    runs host code (track, estimate, fuse) finds the stream idle, so its events complete as
    they are recorded and its time is its host time; a stage that queues GPU work is measured
    until that work is done. The times of a frame add up to its device-synchronised duration.
    """

    def __init__(self, cupy, stream, pool: list):
        self._cp, self._stream, self._pool = cupy, stream, pool
        self._pairs: list[tuple[str, Any, Any]] = []
        self._used = 0

    def _event(self):
        if self._used == len(self._pool):
            self._pool.append(self._cp.cuda.Event())
        e = self._pool[self._used]
        self._used += 1
        return e

    def start(self):
        e = self._event()
        e.record(self._stream)
        return e

    def stop(self, name: str, mark) -> None:
        e = self._event()
        e.record(self._stream)
        self._pairs.append((name, mark, e))

    def result(self) -> dict[str, float]:
        if not self._pairs:
            return {}
        self._pairs[-1][2].synchronize()
        return {name: float(self._cp.cuda.get_elapsed_time(a, b)) for name, a, b in self._pairs}


# ------------------------------------------------------------------------------------ stages

class HostStage:
    """A stage (or a generator: any callable on a Frame) that only understands host (numpy)
    arrays, inside a device pipeline: the frame's G-buffer and render are brought to the host
    before it runs (a render left there is not brought again). The G-buffer is only read by the
    stages after the rasteriser, so its device copy goes back on the frame afterwards: the
    device stages after this one find it where they work (the atlas tier's smoother, a swap's
    attributes stage, even with smoothing off). Its name is the wrapped stage's, so timings and
    reports do not change."""

    def __init__(self, stage, ctx):
        self.stage, self.ctx = stage, ctx
        self.name = getattr(stage, "name", type(stage).__name__)

    def __getattr__(self, item):  # reset(), generator, tracker, ... of the wrapped stage
        if item in ("stage", "ctx"):
            raise AttributeError(item)
        return getattr(self.stage, item)

    def __call__(self, frame):
        """Runs the wrapped stage (or generator: its return value is passed on)."""
        g = frame.gbuf
        on_device = g is not None and _is_device_array(g.tri_id)
        if on_device:
            frame.gbuf = GBuffer(*(self.ctx.to_host(a) for a in (g.tri_id, g.bary, g.depth)))
        if frame.render is not None:
            frame.render = self.ctx.to_host(frame.render)
        try:
            return self.stage(frame)
        finally:
            if on_device:
                frame.gbuf = g


# ------------------------------------------------------------------------------------ contexts

class CpuContext:
    """numpy arrays on the host; every transfer is the identity (see the module docstring)."""

    name = "cpu"
    xp = np
    #: the arrays are the host's: small-array work (many tiny operations) runs in place here;
    #: on a device it goes to host copies, where a launch per operation does not dominate
    on_host = True

    def upload(self, host: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            return host
        np.copyto(out, host)
        return out

    def to_device(self, a):
        return a

    def to_host(self, a):
        return a

    def to_torch(self, a: np.ndarray):
        import torch  # noqa: PLC0415 - torch: heavy, loaded only where the neural tier or CUDA runs

        return torch.from_numpy(a)

    def from_torch(self, t) -> np.ndarray:
        return t.detach().numpy()

    def activate(self):
        return contextlib.nullcontext()

    def sync(self) -> None:
        pass

    def timer(self) -> HostTimer:
        return HostTimer()

    def place(self, stage):
        return stage

    def describe(self) -> str:
        return platform.processor() or platform.machine() or "cpu"


def _import_cupy():
    if importlib.util.find_spec("cupy") is None:
        raise DeviceUnavailable(f"--device cuda {INSTALL_HINT}: cupy is not installed")
    try:
        import cupy  # noqa: PLC0415 - cupy: optional (the gpu extra), only on CUDA

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - any driver/runtime failure means "no usable GPU"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DeviceUnavailable(f"--device cuda {INSTALL_HINT}: the CUDA runtime fails ({first})") from None
    if count < 1:
        raise DeviceUnavailable(f"--device cuda {INSTALL_HINT}: no CUDA device is visible")
    return cupy


class CudaContext:
    """cupy arrays on one GPU and one CUDA stream (see the module docstring).

    Staging buffers: one pinned host buffer per (direction, shape, dtype), reused every frame;
    an event recorded after each copy out of an upload buffer guards it against being refilled
    before the copy has run. Downloads are copied out of their staging buffer before they are
    returned, because the sink thread keeps frames while the loop goes on.
    """

    name = "cuda"
    on_host = False

    def __init__(self, index: int = 0):
        cp = _import_cupy()
        self.xp = cp
        self.index = int(index)
        self.device = cp.cuda.Device(self.index)
        with self.device:
            self.stream = cp.cuda.Stream(non_blocking=True)
        props = cp.cuda.runtime.getDeviceProperties(self.index)
        name = props.get("name", b"GPU")
        self.gpu_name = name.decode() if isinstance(name, bytes) else str(name)
        self.capability = f"{props.get('major', 0)}.{props.get('minor', 0)}"
        self._staging: dict[tuple, tuple[np.ndarray, Any]] = {}
        self._events: list = []
        self._torch_stream = None

    # -- staging -------------------------------------------------------------------------------
    def _buffer(self, key: tuple, shape, dtype) -> tuple[np.ndarray, Any]:
        entry = self._staging.get(key)
        if entry is None:
            dtype = np.dtype(dtype)
            n = int(np.prod(shape, dtype=np.int64))
            mem = self.xp.cuda.alloc_pinned_memory(max(1, n * dtype.itemsize))
            host = np.frombuffer(mem, dtype, n).reshape(shape)
            entry = self._staging[key] = (host, self.xp.cuda.Event(disable_timing=True))
            entry[1].record(self.stream)
        return entry

    def upload(self, host: np.ndarray, out=None):
        host = np.asarray(host)
        pinned, done = self._buffer(("up", host.shape, host.dtype.str), host.shape, host.dtype)
        done.synchronize()                  # the last copy out of this buffer has run
        np.copyto(pinned, host)
        with self.device:
            dev = out if out is not None else self.xp.empty(host.shape, host.dtype)
            dev.set(pinned, stream=self.stream)   # asynchronous: pinned source
        done.record(self.stream)
        return dev

    def download(self, dev) -> np.ndarray:
        with self.device:
            dev = self.xp.ascontiguousarray(dev)
        pinned, _ = self._buffer(("down", dev.shape, dev.dtype.str), dev.shape, dev.dtype)
        dev.get(stream=self.stream, out=pinned)   # waits for the stream
        return pinned.copy()

    def to_device(self, a):
        return a if _is_device_array(a) else self.upload(np.asarray(a))

    def to_host(self, a):
        return self.download(a) if _is_device_array(a) else a

    # -- torch ---------------------------------------------------------------------------------
    def torch_stream(self):
        """The context's stream as a torch stream (torch must be a CUDA build)."""
        if self._torch_stream is None:
            torch = require_torch_cuda()
            self._torch_stream = torch.cuda.ExternalStream(self.stream.ptr,
                                                           device=torch.device("cuda", self.index))
        return self._torch_stream

    def to_torch(self, a):
        """A torch CUDA tensor sharing `a`'s memory (DLPack; both sides on the same stream)."""
        import torch  # noqa: PLC0415 - torch: heavy, loaded only where the neural tier or CUDA runs

        self.torch_stream()
        return torch.from_dlpack(self.to_device(a))

    def from_torch(self, t):
        """A cupy array sharing the CUDA tensor `t`'s memory (DLPack)."""
        return self.xp.from_dlpack(t.detach())

    # -- running -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def activate(self):
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.device)
            stack.enter_context(self.stream)
            if self._torch_stream is not None:
                import torch  # noqa: PLC0415 - torch: heavy, loaded only where the neural tier or CUDA runs

                stack.enter_context(torch.cuda.stream(self._torch_stream))
            yield self

    def sync(self) -> None:
        self.stream.synchronize()

    def timer(self) -> EventTimer:
        return EventTimer(self.xp, self.stream, self._events)

    def place(self, stage):
        return stage if getattr(stage, "device_ready", False) else HostStage(stage, self)

    def describe(self) -> str:
        return f"{self.gpu_name} (compute capability {self.capability})"


DEVICES = {"cpu": CpuContext, "cuda": CudaContext}


def open_device(name: str = "cpu"):
    """The context for `name` ("cpu", "cuda", "cuda:N"); `DeviceUnavailable` when it cannot be
    used here, ValueError for a name that is not a device."""
    kind, _, index = str(name).partition(":")
    try:
        cls = DEVICES[kind]
    except KeyError:
        raise ValueError(f"unknown device {name!r}; choose one of {sorted(DEVICES)}") from None
    return cls(int(index)) if index else cls()


def check_device(name: str) -> None:
    """Raise `DeviceUnavailable` when `name` cannot be used here (cheap: no context is kept)."""
    if str(name).partition(":")[0] == "cuda":
        _import_cupy()


def require_torch_cuda():
    """torch, when it is a CUDA build that sees a GPU; else `DeviceUnavailable` (one line)."""
    import torch  # noqa: PLC0415 - torch: heavy, loaded only where the neural tier or CUDA runs

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise DeviceUnavailable(f"--device cuda {INSTALL_HINT}: torch {torch.__version__} "
                                f"({build}) sees no CUDA device")
    return torch
