"""ONNX export of the generator: parity with torch under onnxruntime's CPU provider (fp32,
max |diff| < 1e-3), only TensorRT-friendly standard ops, static and dynamic batch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="ONNX export tests need the 'neural' extra: pip install -e '.[neural]'")
ort = pytest.importorskip("onnxruntime", reason="ONNX parity tests need onnxruntime: pip install -e '.[neural]'")

from realtime.tiers.neural.export import (  # noqa: E402
    INPUT_NAMES,
    OUTPUT_NAMES,
    check_parity,
    export_checkpoint,
    export_onnx,
    sample_inputs,
)
from realtime.tiers.neural.model import NeuralConfig, NeuralGenerator  # noqa: E402
from tests.realtime.tiers.neural import tiny_config as _tiny_config  # noqa: E402

torch.set_num_threads(1)

# everything TensorRT's ONNX parser handles natively; no ATen fallbacks, no custom domains
ALLOWED_OPS = {
    "Conv", "Relu", "Add", "Sub", "Mul", "Div", "Sqrt", "Tanh", "Sigmoid", "Concat", "Resize",
    "AveragePool", "BatchNormalization", "ReduceMean", "ReduceSum", "MatMul", "Softmax", "Reshape",
    "Transpose", "Slice", "Max", "Min", "Clip", "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze",
    "Cast", "Identity", "Pow", "Expand", "Flatten", "ConstantOfShape", "Reciprocal",
}


def tiny_config(**kw):
    return _tiny_config(**{"attention_kv_pool": 2, **kw})


def perturbed(cfg: NeuralConfig) -> NeuralGenerator:
    """A generator whose every path matters: non-trivial BN statistics, α/β, attention gate."""
    torch.manual_seed(0)
    g = NeuralGenerator(cfg)
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        for r in g.rcn:
            r.alpha_logit.normal_(1.0, 0.5)
            r.beta_logit.normal_(-2.0, 0.5)
        if g.attention is not None:
            g.attention.gamma.fill_(0.8)
    return g.eval()


@pytest.mark.parametrize("kw", [{}, {"embed_pyramid": False, "attention_kv_pool": 1}])
def test_export_parity_and_ops(tmp_path, kw):
    g = perturbed(tiny_config(**kw))
    path = export_onnx(g, tmp_path / "g.onnx")
    model = onnx.load(str(path))
    ops = {n.op_type for n in model.graph.node}
    assert ops <= ALLOWED_OPS, ops - ALLOWED_OPS
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    assert [i.name for i in model.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in model.graph.output] == list(OUTPUT_NAMES)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 32, 32]
    res = check_parity(g, path, trials=2)
    assert res["max_abs"] < 1e-3, res


def test_export_default_128_config_parity(tmp_path):
    """The shipped CPU configuration (128², 32² attention with 2×2-pooled keys)."""
    g = perturbed(NeuralConfig.for_resolution(128))
    path = export_onnx(g, tmp_path / "g128.onnx")
    res = check_parity(g, path, trials=1)
    assert res["max_abs"] < 1e-3, res


def test_export_dynamic_batch(tmp_path):
    g = perturbed(tiny_config())
    path = export_onnx(g, tmp_path / "gb.onnx", dynamic_batch=True)
    res = check_parity(g, path, trials=1, batch=3)
    assert res["max_abs"] < 1e-3, res


def test_export_from_checkpoint(tmp_path):
    from realtime.tiers.neural.checkpoint import save_checkpoint

    g = perturbed(tiny_config())
    ckpt = save_checkpoint(tmp_path / "g.safetensors", {"G": g})
    res = export_checkpoint(ckpt, tmp_path / "g.onnx")
    assert res["max_abs"] < 1e-3
    # the exported graph computes the same thing as the generator rebuilt from the checkpoint
    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    r, m, h = sample_inputs(32, 1, seed=9)
    got = sess.run(None, {"render": r.numpy(), "mask": m.numpy(), "hint": h.numpy()})[0]
    with torch.inference_mode():
        ref = g(r, m, h).numpy()
    assert np.abs(got - ref).max() < 1e-3


def test_runner_onnxruntime_backend_matches_torch(tmp_path):
    from realtime.tiers.neural.infer import NeuralRunner

    g = perturbed(tiny_config())
    rng = np.random.default_rng(0)
    render = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
    hint = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
    mask = (rng.random((32, 32)) > 0.5).astype(np.float32)
    ref = NeuralRunner(g, device="cpu")(render, mask, hint)
    fast = NeuralRunner(g, backend="onnxruntime")                 # exported in memory
    out = fast(render, mask, hint)
    assert out.shape == (32, 32, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=0.05)              # 1e-3 in [-1, 1] units × 127.5
    path = export_onnx(g, tmp_path / "g.onnx")
    from_file = NeuralRunner(g, backend="onnxruntime", onnx_path=path)
    np.testing.assert_allclose(from_file(render, mask[:, :, None], hint), out, atol=1e-5)
    assert fast.benchmark(n=3, warmup=1)["median_ms"] > 0
    with pytest.raises(ValueError, match="CPU only"):
        NeuralRunner(g, backend="onnxruntime", device="cuda")


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_generator_whose_output_overflows_leaves_the_render(backend):
    """Before (security review): finite but huge weights (3e38) passed the load's NaN check and
    the generator's NaN output drew the whole frame black. Where its output is not finite, the
    render shows; elsewhere the output is as it was."""
    import torch

    from realtime.tiers.neural.infer import NeuralRunner

    g = perturbed(tiny_config())
    with torch.no_grad():
        for p in g.parameters():
            p.mul_(1e30)
    rng = np.random.default_rng(0)
    render = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
    hint = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
    mask = (rng.random((32, 32)) > 0.5).astype(np.float32)
    runner = NeuralRunner(g, device="cpu") if backend == "torch" else NeuralRunner(g, backend="onnxruntime")
    with torch.inference_mode():
        raw = g(*(torch.from_numpy(a).permute(2, 0, 1)[None] for a in (render / 127.5 - 1, mask[..., None],
                                                                          hint / 127.5 - 1)))
    assert not bool(torch.isfinite(raw).all())          # the case: NaN where it overflowed
    out = runner(render, mask, hint)
    assert np.isfinite(out).all()
    bad = ~np.isfinite(raw[0].permute(1, 2, 0).numpy())
    assert np.array_equal(out[bad], render[bad])
