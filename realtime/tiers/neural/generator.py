"""Tier 3, "neural": the profile's trained generator on top of the tier-2 render.

The generator sees the atlas render (the warp render for an image profile), the face mask and
the appearance hint at its training resolution R; what it changes (its output minus its input,
both at R) is upsampled and added to the full-resolution render over the face (a feathered
face mask). Adding the change rather than pasting the upsampled output keeps the render's
detail at the crop resolution where the generator leaves the render alone (R = 128 for a 256²
crop: pasting the upsampled output blurs the whole face); hair and background keep the render
as it is.

Where it runs follows the engine's device context (`realtime.core.context`):

- cpu: onnxruntime when installed (about 2.5× faster than torch at 128² on a 2-core CPU), else
  torch (inference mode, channels-last); the glue (resizes, mask, feather) is OpenCV (`HostGlue`).
- cuda: the crop stays on the GPU (`TorchGlue`: the same glue in torch on the context's stream,
  the render and G-buffer viewed as tensors through DLPack) and the generator runs as
  ``backend="torch"``: FP16, channels-last, replayed from a CUDA graph (`GraphedForward`); or
  ``backend="tensorrt"``: the profile's TensorRT engine (`realtime.tiers.neural.tensorrt`, built and
  cached on first use, rebuilt when its manifest no longer matches). Without TensorRT installed
  the tensorrt backend falls back to torch FP16 + CUDA graphs and says so once.
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.core.context import CpuContext, require_torch_cuda
from realtime.core.errors import ProfileError
from realtime.core.frame import Frame
from realtime.core.profile import GENERATOR_PATH, cli_name, how_to_train
from realtime.tiers.neural import BACKENDS
from realtime.tiers.neural import tensorrt as trt_mod


def _backend(device: str) -> str:
    if device != "cpu":
        return "torch"
    try:
        import onnxruntime  # noqa: F401, PLC0415 - onnxruntime: optional (the neural extra)
    except ImportError:
        return "torch"
    return "onnxruntime"


class HostGlue:
    """The CPU path: numpy/OpenCV around `NeuralRunner` (numpy in, numpy out)."""

    def __init__(self, tier: NeuralTierGenerator, weights: str, threads: int, backend: str):
        from realtime.tiers.neural.infer import NeuralRunner  # noqa: PLC0415 - imports torch: only when the tier runs

        if backend != "torch":
            raise ValueError(f"the {backend} backend of the neural tier runs on CUDA only "
                             f"(--device cuda); on the CPU it uses onnxruntime or torch")
        self.tier = tier
        self.runner = NeuralRunner(weights, device="cpu", threads=threads, backend=_backend("cpu"))
        self.resolution = self.runner.resolution

    def prepare(self, hint: np.ndarray) -> None:
        self.hint = hint

    def __call__(self, base: np.ndarray, tri: np.ndarray) -> np.ndarray:
        t = self.tier
        s, r = t.rig.crop_size, self.resolution
        face = ((tri >= 0) & (tri < t.face_end)).astype(np.float32)
        small = cv2.resize(base, (r, r), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(face, (r, r), interpolation=cv2.INTER_AREA)
        y = self.runner(small, mask, self.hint)
        change = cv2.resize(y - small, (s, s), interpolation=cv2.INTER_LINEAR)
        soft = cv2.GaussianBlur(cv2.erode(face, np.ones((3, 3), np.uint8)),
                                (t.feather, t.feather), 0)[..., None]
        return base + soft * change


def _gaussian_kernel(ksize: int) -> np.ndarray:
    """OpenCV's own Gaussian kernel for `ksize` and sigma 0 (it uses fixed tables up to 7)."""
    return cv2.getGaussianKernel(ksize, 0).ravel().astype(np.float32)


class TorchGlue:
    """The CUDA path: the same glue as `HostGlue` in torch, on device tensors (area resize down,
    bilinear up, 3×3 erosion, OpenCV's Gaussian with a reflect-101 border); the generator gets
    FP16 NCHW tensors and is replayed from a CUDA graph, or is a TensorRT engine."""

    def __init__(self, tier: NeuralTierGenerator, weights: str, threads: int, backend: str):
        import torch  # noqa: PLC0415 - torch: heavy, loaded only where the neural tier or CUDA runs

        require_torch_cuda()
        self.torch, self.tier = torch, tier
        self.dev = torch.device("cuda", getattr(tier.ctx, "index", 0))
        tier.ctx.torch_stream()
        self.forward, self.resolution, self.dtype = self._forward(weights, backend)
        k = torch.from_numpy(_gaussian_kernel(tier.feather)).to(self.dev)
        self.kx = k.view(1, 1, 1, -1)
        self.ky = k.view(1, 1, -1, 1)

    def _forward(self, weights: str, backend: str):
        """(forward(render, mask, hint) → image, resolution, input dtype) for `backend`."""
        t = self.tier
        if backend == "tensorrt":
            try:
                builder = trt_mod.TensorRTBuilder(self.dev.index or 0)
            except trt_mod.TensorRTMissing as exc:
                trt_mod.notice_once(f"{exc}: the neural tier runs on torch FP16 + CUDA graphs instead")
            else:
                record = trt_mod.ensure_engine(t.profile, "fp16", builder, log=trt_mod.notice_once)
                return (trt_mod.load_engine(record, builder), int(record.manifest["resolution"]),
                        self.torch.float16)
        return self._torch_forward(weights)

    def _torch_forward(self, weights: str):
        from realtime.tiers.neural.export import sample_inputs  # noqa: PLC0415 - imports torch: only when the tier runs
        from realtime.tiers.neural.infer import GraphedForward, NeuralRunner  # noqa: PLC0415 - imports torch: only when the tier runs

        torch = self.torch
        runner = NeuralRunner(weights, device=self.dev, half=True)
        examples = [x.to(self.dev, runner.dtype).contiguous(memory_format=torch.channels_last)
                    for x in sample_inputs(runner.resolution)]
        g = runner.generator
        forward = GraphedForward(g, examples) if self.tier.cuda_graphs else g
        return forward, runner.resolution, runner.dtype

    def prepare(self, hint: np.ndarray) -> None:
        torch = self.torch
        h = torch.from_numpy(np.ascontiguousarray(hint)).to(self.dev)
        self.hint = (h.permute(2, 0, 1)[None] / 127.5 - 1.0).to(self.dtype).contiguous(
            memory_format=torch.channels_last)

    def __call__(self, base, tri):
        torch, ctx, t = self.torch, self.tier.ctx, self.tier
        with torch.inference_mode():
            x = ctx.to_torch(ctx.to_device(base))                 # (S,S,3) view, no copy
            tri_t = ctx.to_torch(ctx.to_device(tri))
            out = torch_glue(x, tri_t, t.face_end, self.forward, self.hint, self.resolution,
                             self.kx, self.ky, self.dtype)
            return ctx.from_torch(out)


def torch_glue(base, tri, face_end: int, forward, hint, resolution: int, kx, ky, dtype):
    """`HostGlue`'s computation in torch (any device): base (S,S,3) float32 0..255, tri (S,S)
    int32 → (S,S,3) float32. `forward(render, mask, hint)` takes (1,C,R,R) channels-last
    tensors of `dtype` in the model's ranges; kx, ky: the separable Gaussian (1,1,1,K), (1,1,K,1)."""
    import torch  # noqa: PLC0415 - torch: heavy, loaded only where the neural tier or CUDA runs
    import torch.nn.functional as F  # noqa: PLC0415 - torch: heavy, loaded only where the neural tier or CUDA runs

    s, r, cl = base.shape[0], resolution, torch.channels_last
    x = base.permute(2, 0, 1)[None]
    face = ((tri >= 0) & (tri < face_end)).float()[None, None]
    small = F.interpolate(x, size=(r, r), mode="area")
    mask = F.interpolate(face, size=(r, r), mode="area")
    y = forward((small / 127.5 - 1.0).to(dtype).contiguous(memory_format=cl),
                mask.to(dtype).contiguous(memory_format=cl), hint)
    y = ((y.float() + 1.0) * 127.5).clamp_(0.0, 255.0)
    y = torch.where(torch.isfinite(y), y, small)       # NaN (clamping keeps it): the render there, as
    change = F.interpolate(y - small, size=(s, s), mode="bilinear", align_corners=False)   # `_finite_or`
    eroded = -F.max_pool2d(-face, 3, 1, 1)              # 3×3 erosion, border never erodes
    p = kx.shape[-1] // 2
    soft = F.conv2d(F.pad(eroded, (p, p, 0, 0), mode="reflect"), kx)
    soft = F.conv2d(F.pad(soft, (0, 0, p, p), mode="reflect"), ky)
    return (x + soft * change)[0].permute(1, 2, 0).contiguous()


GLUES = {"cpu": HostGlue, "cuda": TorchGlue}


#: The generator's forward time alone on a CPU, in ms, by its resolution: onnxruntime on one
#: thread (what the CPU path runs), median of `NeuralRunner.benchmark` on this project's 2-core
#: AMD EPYC: 128² 16 ms, 256² 135, 512² 450-490 (torch: 26, 323, 420). The rest of a frame takes
#: 15-20 ms there, so 128² is real time at 30 fps and 256² and 512² are not (512² ran live at
#: ~3.5 fps with no word). One CPU thread each: a machine with more cores is not much faster.
CPU_FORWARD_MS = {128: 16.0, 256: 135.0, 512: 450.0}


def cpu_forward_ms(resolution: int) -> float:
    """`CPU_FORWARD_MS` of the nearest resolution at or above `resolution` (beyond 512²: scaled
    by the area)."""
    above = [r for r in CPU_FORWARD_MS if r >= resolution]
    if above:
        return CPU_FORWARD_MS[min(above)]
    top = max(CPU_FORWARD_MS)
    return CPU_FORWARD_MS[top] * (resolution / top) ** 2


def cpu_speed_note(resolution: int, fps: float, profile_name: str) -> str | None:
    """What to tell a run whose neural tier's generator, at `resolution` on a CPU, cannot keep
    `fps` (its forward alone, `cpu_forward_ms`, over the frame's time); None where it can."""
    ms = cpu_forward_ms(resolution)
    if not fps or ms <= 1000.0 / fps:
        return None
    # (a 128² generator is already the smallest `train` makes: only a lower rate or another tier)
    retrain = ("" if resolution <= 128 else
               f", or train it at 128² (python run.py train --profile {profile_name} --video CLIP "
               f"--resolution 128 --restart: real time on a CPU; it replaces this training)")
    return (f"profile {profile_name}'s neural tier runs a {resolution}² generator: on a CPU about "
            f"{ms:.0f} ms a frame (measured on a 2-core EPYC, one thread; some {1000.0 / ms:.0f} fps) "
            f"against the {1000.0 / fps:.0f} ms of this run's {fps:g} fps, so a live run drops most frames and "
            f"a clip driven offline takes about {ms * fps / 1000.0:.0f}× its length. For real time on this machine: "
            f"--tier atlas{retrain}, or --device cuda on an NVIDIA GPU")


class NeuralTierGenerator:
    """Tier 3 on the engine's device context `ctx` (default: the CPU), on top of `base`, the
    generator of the render it corrects (the registry passes the atlas or the warp tier).

    backend: "torch" (default) or "tensorrt" (CUDA only); cuda_graphs: replay the torch
    generator from a CUDA graph on CUDA (default True); fps: the run's frame rate, which a
    generator too slow for it on the CPU is told once (`cpu_speed_note`). Returns the (S, S, 3) float32 crop as
    an array of the context (numpy on the CPU, cupy on CUDA).
    """

    tier = "neural"
    device_ready = True

    def __init__(self, profile, rig, base, ctx=None, backend: str = "torch", threads: int = 1,
                 cuda_graphs: bool = True, fps: float | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"neural backend {backend!r} is not one of {BACKENDS}")
        if GENERATOR_PATH not in profile.files:
            other = "the atlas or warp tier" if getattr(profile, "has_atlas", False) else "the warp tier"
            raise ProfileError(f"profile {profile.name!r} has no trained generator: {how_to_train(profile)}; "
                               f"or choose {other}")
        self.ctx = ctx if ctx is not None else CpuContext()
        self.profile, self.rig, self.cuda_graphs = profile, rig, cuda_graphs
        self.base = self.ctx.place(base)
        s = rig.crop_size
        self.face_end = rig.ranges["head"][0]
        self.feather = max(3, s // 32) | 1
        self.glue = GLUES[self.ctx.name](self, str(profile.path(GENERATOR_PATH)), threads, backend)
        r = self.res = self.glue.resolution
        name = cli_name(getattr(profile, "base", profile))      # (a ScaledProfile's: its profile's)
        if self.ctx.name == "cpu" and fps and (note := cpu_speed_note(r, fps, name)):
            trt_mod.notice_once(note)      # once a process: bench builds an engine per variant
        hint = cv2.warpAffine(profile["image"], rig.crop_from_image.astype(np.float64), (s, s),
                              flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        self.hint = cv2.resize(hint, (r, r), interpolation=cv2.INTER_AREA).astype(np.float32)
        self.glue.prepare(self.hint)

    @property
    def runner(self):
        """The CPU `NeuralRunner` (CPU path only)."""
        return self.glue.runner

    def reset(self) -> None:
        reset = getattr(self.base, "reset", None)
        if callable(reset):
            reset()

    def __call__(self, frame: Frame):
        base = self.base(frame)
        return self.glue(base, frame.gbuf.tri_id)
