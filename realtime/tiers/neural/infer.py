"""`NeuralRunner`: the trained generator at run time, numpy in / numpy out.

Backends:

- ``"torch"`` (default). CPU: fp32, channels-last, `torch.inference_mode`, BatchNorm in eval
  mode, torch's intra-op threads. CUDA (when available, or asked for): fp16 weights and
  activations, channels-last, cudnn autotuning. The engine's CUDA path replays the forward
  from a CUDA graph (`GraphedForward`) or runs the profile's TensorRT engine instead
  (`realtime.tiers.neural.tensorrt`; `realtime.tiers.neural.generator` chooses).
- ``"onnxruntime"`` (CPU only; needs the ``neural`` extra). The generator is exported to ONNX in
  memory (or an exported file is given) and run by onnxruntime's CPU provider with thread
  spinning off, so idle worker threads do not steal the cores from the rest of the loop.
  Measured on the 2-core development machine at 128² (default config, idle machine, median of
  50): onnxruntime ≈ 4.7 ms on 1 thread (≈ 5.3 ms on 2), eager torch ≈ 12.5 ms on 1 thread and
  ≈ 10.5 ms on 2 — and torch's 2-thread OpenMP barriers stall for hundreds of ms per forward as
  soon as another process holds the other core. The recommended CPU path for the real-time
  tier: onnxruntime, 1 thread.

    runner = NeuralRunner("profiles/alice/neural/generator.safetensors")      # or NeuralRunner(generator)
    out = runner(render, mask, hint)   # (S,S,3) float32 0..255, (S,S)|(S,S,1) 0..1, (S,S,3) 0..255
"""
from __future__ import annotations

import copy
import io
import os
import time

import numpy as np
import torch

from realtime.tiers.neural.checkpoint import load_generator
from realtime.tiers.neural.export import export_onnx
from realtime.tiers.neural.model import NeuralGenerator

__all__ = ["NeuralRunner", "BACKENDS"]

BACKENDS = ("torch", "onnxruntime")


def _pick_device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class NeuralRunner:
    """Loads weights from a safetensors checkpoint (or takes a generator) and runs it.

    device: "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:1", … (torch backend).
    half: fp16 (default: True on CUDA, False on the CPU; fp16 on the CPU is refused).
    threads: CPU intra-op threads (torch: `torch.set_num_threads`, process-wide, re-asserted
        before every forward; onnxruntime: the session's own pool, default 1). None: torch's
        current setting.
    backend: "torch" or "onnxruntime" (CPU).
    onnx_path: an exported ONNX file for the onnxruntime backend (default: export in memory).
    """

    def __init__(self, weights: str | os.PathLike | NeuralGenerator, device: str | torch.device | None = "auto",
                 half: bool | None = None, threads: int | None = None, backend: str = "torch",
                 onnx_path: str | os.PathLike | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"NeuralRunner: backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self.device = torch.device("cpu") if backend == "onnxruntime" else _pick_device(device)
        if backend == "onnxruntime" and device not in (None, "auto", "cpu"):
            raise ValueError("NeuralRunner: the onnxruntime backend runs on the CPU only")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("NeuralRunner: CUDA was requested but torch.cuda.is_available() is False")
        if half is None:
            half = self.device.type == "cuda"
        if half and self.device.type != "cuda":
            raise ValueError("NeuralRunner: fp16 is only supported on CUDA; use half=False on the CPU")
        # a given module is copied: the runner converts dtype/device/layout in place
        g = copy.deepcopy(weights) if isinstance(weights, NeuralGenerator) else load_generator(weights)
        g.eval()
        self.resolution = g.cfg.resolution
        self.dtype = torch.float16 if half else torch.float32
        self.session = None
        if backend == "onnxruntime":
            self.generator = g
            self.session = self._ort_session(g, onnx_path, 1 if threads is None else int(threads))
            return
        # numba's OpenMP threading layer leaves the calling thread's OpenMP thread count at its
        # own pool size after every parallel kernel, and oneDNN/MKL inside torch follow that
        # count whatever torch.get_num_threads() says: the CPU path re-asserts its count before
        # each forward (cheap), so a frame's numba kernels do not turn the generator multi-
        # threaded behind our back.
        self.threads = int(threads) if threads is not None else torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(self.threads)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True      # fixed input shape: pick the fastest convs
        self.generator = g.to(self.device, self.dtype).to(memory_format=torch.channels_last)

    @staticmethod
    def _ort_session(g: NeuralGenerator, onnx_path, threads: int):
        try:
            import onnxruntime as ort  # noqa: PLC0415 - onnxruntime: optional (the neural extra)
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("NeuralRunner(backend='onnxruntime') needs onnxruntime: "
                              "pip install -e '.[neural]'") from e
        if onnx_path is None:
            buf = io.BytesIO()
            export_onnx(g, buf, check=False)
            model = buf.getvalue()
        else:
            model = str(onnx_path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])

    # ---------------------------------------------------------------- input/output

    def _check(self, a: np.ndarray, name: str, channels: int) -> np.ndarray:
        s = self.resolution
        a = np.asarray(a)
        if a.ndim == 2 and channels == 1:
            a = a[:, :, None]
        if a.shape != (s, s, channels):
            raise ValueError(f"NeuralRunner: {name} must be ({s}, {s}, {channels}), got {a.shape}")
        return a

    def _tensor(self, a: np.ndarray, name: str, channels: int, scale: float, shift: float) -> torch.Tensor:
        a = self._check(a, name, channels)
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device)
        t = t.permute(2, 0, 1)[None].to(self.dtype)        # (1,C,S,S) view of an NHWC buffer
        if scale != 1.0 or shift != 0.0:
            t = t * scale + shift
        return t.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def _nchw(a: np.ndarray, scale: float, shift: float) -> np.ndarray:
        x = np.empty((1, a.shape[2]) + a.shape[:2], np.float32)
        np.multiply(np.moveaxis(a, 2, 0), np.float32(scale), out=x[0], casting="unsafe")
        if shift:
            x += np.float32(shift)
        return x

    def __call__(self, render: np.ndarray, mask: np.ndarray, hint: np.ndarray) -> np.ndarray:
        """render (S,S,3) 0..255, mask (S,S) or (S,S,1) 0..1, hint (S,S,3) 0..255
        → (S,S,3) float32 0..255."""
        if self.session is not None:
            feeds = {
                "render": self._nchw(self._check(render, "render", 3), 1.0 / 127.5, -1.0),
                "mask": self._nchw(self._check(mask, "mask", 1), 1.0, 0.0),
                "hint": self._nchw(self._check(hint, "hint", 3), 1.0 / 127.5, -1.0),
            }
            y = self.session.run(["image"], feeds)[0][0]                 # (3,S,S) in [-1, 1]
            out = np.moveaxis(y, 0, 2) * np.float32(127.5) + np.float32(127.5)
            return _finite_or(np.clip(out, 0.0, 255.0, out=out), render)
        if self.device.type == "cpu":
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            r = self._tensor(render, "render", 3, 1.0 / 127.5, -1.0)
            m = self._tensor(mask, "mask", 1, 1.0, 0.0)
            h = self._tensor(hint, "hint", 3, 1.0 / 127.5, -1.0)
            y = self.generator(r, m, h)
            y = (y.float() + 1.0) * 127.5
            y = y.clamp_(0.0, 255.0)[0].permute(1, 2, 0)
            return _finite_or(np.ascontiguousarray(y.cpu().numpy()), render)

    # ---------------------------------------------------------------- timing

    def benchmark(self, n: int = 50, warmup: int = 10) -> dict:
        """Generator forward time alone (inputs prepared once, device-synchronised): median,
        10th and 90th percentile in milliseconds over `n` runs."""
        s = self.resolution
        gen = torch.Generator().manual_seed(0)
        r = torch.rand(1, 3, s, s, generator=gen) * 2 - 1
        m = (torch.rand(1, 1, s, s, generator=gen) > 0.5).float()
        h = torch.rand(1, 3, s, s, generator=gen) * 2 - 1
        if self.session is not None:
            feeds = {"render": r.numpy(), "mask": m.numpy(), "hint": h.numpy()}
            step = lambda: self.session.run(["image"], feeds)
        else:
            r, m, h = (x.to(self.device, self.dtype).contiguous(memory_format=torch.channels_last) for x in (r, m, h))
            step = lambda: self.generator(r, m, h)
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        if self.session is None and self.device.type == "cpu":
            torch.set_num_threads(self.threads)
        ts = []
        with torch.inference_mode():
            for i in range(warmup + n):
                sync()
                t0 = time.perf_counter()
                step()
                sync()
                if i >= warmup:
                    ts.append((time.perf_counter() - t0) * 1e3)
        ts.sort()
        return {"median_ms": ts[len(ts) // 2], "p10_ms": ts[len(ts) // 10], "p90_ms": ts[(9 * len(ts)) // 10], "n": n}

    def warmup(self, n: int = 3) -> None:
        s = self.resolution
        z = np.zeros((s, s, 3), np.float32)
        m = np.zeros((s, s), np.float32)
        for _ in range(n):
            self(z, m, z)


class GraphedForward:
    """`fn(*inputs)` replayed from a CUDA graph captured once (static shapes and dtypes).

    The inputs are copied into static buffers, the graph is replayed on torch's current stream,
    and the static output tensor is returned: it is overwritten by the next call, so use it
    before calling again. Capture follows torch's recipe: a few warm-up calls on a side stream
    (cudnn autotuning, lazy allocations), then `torch.cuda.graph`. Call it under
    `torch.inference_mode()`, as it was captured.
    """

    def __init__(self, fn, examples, warmup: int = 3):
        self.fn = fn
        with torch.inference_mode():
            self.static_in = [x.clone() for x in examples]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(warmup):
                    fn(*self.static_in)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.static_out = fn(*self.static_in)

    def __call__(self, *inputs):
        for s, x in zip(self.static_in, inputs):
            s.copy_(x)
        self.graph.replay()
        return self.static_out


def _finite_or(out: np.ndarray, render: np.ndarray) -> np.ndarray:
    """`out` with the render where it is not finite (NaN: clipping keeps it), in place: weights
    that are finite but huge (a training that overflowed, a crafted file: the load refuses only
    NaN and infinity) drew the whole output frame black (security review). `torch_glue` does
    the same on the device."""
    bad = ~np.isfinite(out)
    if bad.any():
        out[bad] = np.broadcast_to(np.asarray(render, np.float32), out.shape)[bad]
    return out
