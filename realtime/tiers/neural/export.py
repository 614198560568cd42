"""ONNX export of the generator and its parity check with onnxruntime (CPU, fp32).

The ONNX file is the input of the TensorRT engine build. Graph: inputs ``render`` (N,3,S,S)
and ``hint`` (N,3,S,S) in [-1, 1], ``mask`` (N,1,S,S) in [0, 1]; output ``image`` (N,3,S,S) in
[-1, 1]; static shapes (N = 1) unless ``dynamic_batch``; opset 17 (Conv, Resize, AveragePool,
BatchNormalization, MatMul, Softmax, Reduce*, elementwise: all TensorRT-native).

Exporter: torch 2.13's ``torch.onnx.export`` defaults to the dynamo exporter, which needs the
``onnxscript`` package (not a dependency here); we call the TorchScript-based exporter with
``dynamo=False``, which needs only torch itself, works offline and emits a DeprecationWarning
that we silence. Needs the ``neural`` extra (onnx, onnxruntime) only for checking and parity.
"""
from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from realtime.tiers.neural.checkpoint import load_generator
from realtime.tiers.neural.model import NeuralGenerator

__all__ = ["export_onnx", "check_parity", "export_checkpoint", "INPUT_NAMES", "OUTPUT_NAMES", "sample_inputs"]

INPUT_NAMES = ("render", "mask", "hint")
OUTPUT_NAMES = ("image",)
DEFAULT_OPSET = 17


def sample_inputs(resolution: int, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Plausible random inputs: noisy images in [-1, 1] and a soft elliptic face mask."""
    gen = torch.Generator().manual_seed(seed)
    s = resolution
    render = torch.rand(batch, 3, s, s, generator=gen) * 2 - 1
    hint = torch.rand(batch, 3, s, s, generator=gen) * 2 - 1
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
    r = (xs / 0.6) ** 2 + (ys / 0.8) ** 2
    mask = torch.sigmoid((1 - r) * 12).expand(batch, 1, s, s).contiguous()
    render = render * mask
    return render, mask, hint


def export_onnx(generator: NeuralGenerator, path, opset: int = DEFAULT_OPSET,
                batch: int = 1, dynamic_batch: bool = False, check: bool = True):
    """Export an fp32 copy of `generator` (eval mode, on the CPU) to `path` (a file path, or a
    binary file object such as io.BytesIO); returns `path` (as a Path when it is one)."""
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        target = str(path)
    else:
        target = path
    g = copy.deepcopy(generator).to("cpu", torch.float32).eval()
    g = g.to(memory_format=torch.contiguous_format)
    args = sample_inputs(g.cfg.resolution, batch)
    dyn = {n: {0: "batch"} for n in INPUT_NAMES + OUTPUT_NAMES} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        with torch.no_grad():
            torch.onnx.export(
                g, args, target, dynamo=False, opset_version=opset,
                input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                dynamic_axes=dyn, do_constant_folding=True)
    if check:
        import onnx  # noqa: PLC0415 - onnx: optional (the neural extra)

        model = onnx.load(target) if isinstance(target, str) else onnx.load_from_string(path.getvalue())
        onnx.checker.check_model(model, full_check=True)
    return path


def check_parity(generator: NeuralGenerator, onnx_path: str | os.PathLike, trials: int = 2,
                 seed: int = 0, batch: int = 1) -> dict:
    """Run the torch model (fp32, CPU, eval) and onnxruntime's CPU provider on the same random
    inputs; return ``{"max_abs": …, "mean_abs": …, "trials": …}`` over all trials."""
    import onnxruntime as ort  # noqa: PLC0415 - onnxruntime: optional (the neural extra)

    g = copy.deepcopy(generator).to("cpu", torch.float32).eval()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    sess = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    max_abs, sum_abs, count = 0.0, 0.0, 0
    for i in range(trials):
        inputs = sample_inputs(g.cfg.resolution, batch, seed + i)
        with torch.inference_mode():
            ref = g(*inputs).numpy()
        got = sess.run(list(OUTPUT_NAMES), {n: t.numpy() for n, t in zip(INPUT_NAMES, inputs)})[0]
        d = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        max_abs = max(max_abs, float(d.max()))
        sum_abs += float(d.sum())
        count += d.size
    return {"max_abs": max_abs, "mean_abs": sum_abs / max(count, 1), "trials": trials}


def export_checkpoint(checkpoint: str | os.PathLike, onnx_path: str | os.PathLike, atol: float = 1e-3,
                      **kw) -> dict:
    """Checkpoint → ONNX, then the parity check; raises if max |onnx − torch| >= atol."""
    g = load_generator(checkpoint)
    export_onnx(g, onnx_path, **kw)
    res = check_parity(g, onnx_path)
    if not res["max_abs"] < atol:
        raise RuntimeError(f"ONNX parity failed: max |onnx - torch| = {res['max_abs']:.3g} >= {atol}")
    return res
