"""Tier-3 networks: RCN against a direct numpy implementation of UniFaceGAN eq. 6–7,
self-attention against a naive implementation, shapes/configs, and the `NeuralRunner`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from realtime.tiers.neural.infer import NeuralRunner  # noqa: E402
from realtime.tiers.neural.model import (  # noqa: E402
    RCN,
    NeuralConfig,
    NeuralGenerator,
    SelfAttention,
    rcn,
)

torch.set_num_threads(1)
from realtime.train.discriminator import MultiScaleDiscriminator  # noqa: E402
from tests.realtime.tiers.neural import tiny_config  # noqa: E402

# ---------------------------------------------------------------- RCN, eq. 6-7 in plain numpy


def np_weighted_stats(x, w, eps):
    """Textbook weighted mean and std of one channel map x (H,W) over weights w (H,W)."""
    sw = w.sum()
    mu = (w * x).sum() / (sw + eps)
    var = (w * (x - mu) ** 2).sum() / (sw + eps)
    return mu, np.sqrt(var + eps)


def np_adain(a, mu_a, sd_a, mu_b, sd_b):
    """Eq. 7: T(A, B) = σ(B) (A − μ(A)) / σ(A) + μ(B)."""
    return sd_b * (a - mu_a) / sd_a + mu_b


def np_rcn(u, t, h, alpha, beta, eps):
    """Eq. 6, each term on its own region: facial statistics of U over H, non-facial statistics
    of T over H̄ = 1 − H; the face gets α·T(UH, TH̄) + (1−α)·UH, the rest β·T(TH̄, UH) + (1−β)·TH̄."""
    u, t, h = (np.asarray(v, np.float64) for v in (u, t, h))
    out = np.empty_like(u)
    bsz, c = u.shape[:2]
    for b in range(bsz):
        hh = h[b, 0]
        hb = 1.0 - hh
        for k in range(c):
            mu_u, sd_u = np_weighted_stats(u[b, k], hh, eps)
            mu_t, sd_t = np_weighted_stats(t[b, k], hb, eps)
            face = alpha[k] * np_adain(u[b, k], mu_u, sd_u, mu_t, sd_t) + (1 - alpha[k]) * u[b, k]
            back = beta[k] * np_adain(t[b, k], mu_t, sd_t, mu_u, sd_u) + (1 - beta[k]) * t[b, k]
            out[b, k] = hh * face + hb * back
    return out


@pytest.mark.parametrize("soft", [False, True])
def test_rcn_matches_numpy_eq_6_7(soft):
    rng = np.random.default_rng(1)
    b, c, s = 3, 5, 12
    u = rng.normal(0.3, 1.5, (b, c, s, s)).astype(np.float32)
    t = rng.normal(-0.7, 0.5, (b, c, s, s)).astype(np.float32)
    h = rng.random((b, 1, s, s)).astype(np.float32)
    if not soft:
        h = (h > 0.4).astype(np.float32)
    alpha = rng.random(c).astype(np.float32)
    beta = rng.random(c).astype(np.float32)
    eps = 1e-5
    got = rcn(torch.from_numpy(u), torch.from_numpy(t), torch.from_numpy(h),
              torch.from_numpy(alpha).view(1, c, 1, 1), torch.from_numpy(beta).view(1, c, 1, 1), eps)
    ref = np_rcn(u, t, h, alpha, beta, eps)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-4, atol=1e-4)


def test_rcn_binary_mask_regions():
    """Binary H: the face keeps U's own pattern with the background's statistics mixed in by α,
    and the background is exactly T when β = 0; channels-last input gives the same result."""
    rng = np.random.default_rng(2)
    u = torch.from_numpy(rng.normal(2.0, 3.0, (1, 2, 8, 8)).astype(np.float32))
    t = torch.from_numpy(rng.normal(0.0, 1.0, (1, 2, 8, 8)).astype(np.float32))
    h = torch.zeros(1, 1, 8, 8)
    h[..., 2:6, 2:6] = 1
    zero, one = torch.zeros(1, 2, 1, 1), torch.ones(1, 2, 1, 1)
    out = rcn(u, t, h, zero, zero)
    assert torch.allclose(out, u * h + t * (1 - h))
    out = rcn(u, t, h, one, zero)       # face fully renormalised to T's background statistics
    face = out[..., 2:6, 2:6]
    back = t.masked_select((1 - h).bool().expand_as(t)).view(1, 2, -1)
    assert torch.allclose(face.mean((2, 3)), back.mean(2), atol=1e-4)
    assert torch.allclose(face.std((2, 3), unbiased=False), back.std(2, unbiased=False), atol=1e-3)
    cl = rcn(u.contiguous(memory_format=torch.channels_last), t.contiguous(memory_format=torch.channels_last),
             h, one * 0.3, one * 0.6)
    assert torch.allclose(cl, rcn(u, t, h, one * 0.3, one * 0.6), atol=1e-6)


def test_rcn_empty_face_is_finite():
    u, t = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    for h in (torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8)):
        out = rcn(u, t, h, torch.full((1, 3, 1, 1), 0.8), torch.full((1, 3, 1, 1), 0.1))
        assert torch.isfinite(out).all()


def test_rcn_module_init_and_batchnorm():
    m = RCN(4, alpha=0.8, beta=0.1)
    assert torch.allclose(m.alpha, torch.full((1, 4, 1, 1), 0.8))
    assert torch.allclose(m.beta, torch.full((1, 4, 1, 1), 0.1))
    rng = np.random.default_rng(3)
    with torch.no_grad():
        for bn in (m.norm_u, m.norm_t):
            bn.running_mean.copy_(torch.from_numpy(rng.normal(size=4).astype(np.float32)))
            bn.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, 4).astype(np.float32)))
    m.eval()
    u, t = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    h = torch.rand(2, 1, 6, 6)

    def bn(x, layer):
        x = x.numpy().astype(np.float64)
        mean = layer.running_mean.numpy()[None, :, None, None]
        var = layer.running_var.numpy()[None, :, None, None]
        return (x - mean) / np.sqrt(var + layer.eps)

    with torch.no_grad():
        got = m(u, t, h).numpy()
    ref = np_rcn(bn(u, m.norm_u), bn(t, m.norm_t), h.numpy(), np.full(4, 0.8), np.full(4, 0.1), m.eps)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    # alpha and beta are learnable
    m.train()
    m(u, t, h).square().mean().backward()
    assert m.alpha_logit.grad is not None and m.alpha_logit.grad.abs().sum() > 0
    assert m.beta_logit.grad is not None and m.beta_logit.grad.abs().sum() > 0


# ---------------------------------------------------------------- self-attention


@pytest.mark.parametrize("pool", [1, 2])
def test_self_attention_matches_naive(pool):
    torch.manual_seed(0)
    att = SelfAttention(16, kv_pool=pool).eval()
    with torch.no_grad():
        att.gamma.fill_(0.7)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        got = att(x)
        src = torch.nn.functional.avg_pool2d(x, pool) if pool > 1 else x
        q = att.q(x).flatten(2)                      # (B, cq, N)
        kv = att.kv(src).flatten(2)
        k, v = kv[:, : att.cq], kv[:, att.cq:]
        ref = torch.empty(2, att.cv, 64)
        for b in range(2):
            for n in range(64):
                logits = (q[b, :, n:n + 1] * k[b]).sum(0) / np.sqrt(att.cq)
                w = torch.softmax(logits, 0)
                ref[b, :, n] = (v[b] * w).sum(1)
        ref = x + 0.7 * att.o(ref.view(2, att.cv, 8, 8))
    assert torch.allclose(got, ref, atol=1e-5)


def test_self_attention_starts_as_identity():
    att = SelfAttention(8, kv_pool=2)
    x = torch.randn(1, 8, 8, 8)
    assert torch.equal(att(x), x)


# ---------------------------------------------------------------- configs and shapes


def test_config_defaults_and_json_round_trip():
    for s in (128, 256, 512):
        cfg = NeuralConfig.for_resolution(s)
        assert cfg.decoder_resolutions[-1] == s and 64 in cfg.decoder_resolutions
        assert (cfg.attn_res, cfg.kv_pool) == ((32, 2) if s == 128 else (64, 1))
        again = NeuralConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg
    g = NeuralGenerator(NeuralConfig.for_resolution(128))
    n_params = sum(p.numel() for p in g.parameters())
    assert n_params < 1_000_000                 # AP-GAN-light: well under a million weights
    with pytest.raises(ValueError, match="power of two"):
        NeuralConfig(resolution=100)
    with pytest.raises(ValueError, match="attention_resolution"):
        NeuralConfig(resolution=128, attention_resolution=48)
    with pytest.raises(ValueError, match="unknown keys"):
        NeuralConfig.from_dict({"resolution": 128, "bogus": 1})


@pytest.mark.parametrize("kw", [{}, {"embed_pyramid": False}, {"attention_resolution": 0},
                                {"attention_resolution": 32, "attention_kv_pool": 2}])
def test_generator_shapes_and_range(kw):
    torch.manual_seed(0)
    cfg = tiny_config(**kw)
    g = NeuralGenerator(cfg)
    r, h = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    m = (torch.rand(2, 1, 32, 32) > 0.5).float()
    y = g(r, m, h)
    assert y.shape == (2, 3, 32, 32)
    assert y.abs().max() <= 1.0
    y.mean().backward()                 # every parameter of E and G gets a gradient
    missing = [n for n, p in g.named_parameters() if p.grad is None]
    # attention's projections sit behind a zero-initialised gate: their gradient is 0, not None
    assert not missing, missing
    emb = g.embed(h, m)
    assert len(emb) == cfg.n_embed_levels + 1 and emb[-1].shape[-1] == 32 >> cfg.n_embed_levels


def test_generator_channels_last_inference_matches():
    torch.manual_seed(0)
    g = NeuralGenerator(tiny_config()).eval()
    r, h = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    m = torch.rand(1, 1, 32, 32)
    with torch.inference_mode():
        ref = g(r, m, h)
        gcl = g.to(memory_format=torch.channels_last)
        cl = gcl(*(x.contiguous(memory_format=torch.channels_last) for x in (r, m, h)))
    assert torch.allclose(ref, cl, atol=1e-5)


def test_multiscale_discriminator_outputs():
    cfg = tiny_config(d_scales=3, d_layers=2)
    d = MultiScaleDiscriminator(cfg)
    x = torch.rand(2, 3, 32, 32)
    out = d(x, x, x[:, :1])
    assert len(out) == 3
    for k, feats in enumerate(out):
        assert len(feats) == cfg.d_layers + 2
        assert feats[-1].shape[1] == 1
        assert feats[0].shape[-1] == (32 >> k) // 2
    d_u = MultiScaleDiscriminator(tiny_config(d_conditional=False, d_spectral_norm=False))
    assert len(d_u(x)) == 2


# ---------------------------------------------------------------- runner


def test_runner_numpy_in_out(tmp_path):
    from realtime.tiers.neural.checkpoint import save_checkpoint

    torch.manual_seed(0)
    g = NeuralGenerator(tiny_config()).eval()
    path = save_checkpoint(tmp_path / "g.safetensors", {"G": g})
    runner = NeuralRunner(path, device="cpu")
    assert runner.device.type == "cpu" and runner.dtype == torch.float32
    rng = np.random.default_rng(0)
    render = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
    hint = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
    mask = (rng.random((32, 32)) > 0.5).astype(np.float32)
    out = runner(render, mask, hint)
    assert out.shape == (32, 32, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    with torch.inference_mode():
        t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]
        ref = g(t(render) / 127.5 - 1, t(mask[:, :, None]), t(hint) / 127.5 - 1)
    ref = ((ref[0].permute(1, 2, 0) + 1) * 127.5).clamp(0, 255).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-3)
    np.testing.assert_allclose(runner(render, mask[:, :, None], hint), out, atol=1e-5)
    with pytest.raises(ValueError, match="render"):
        runner(render[:16], mask, hint)
    with pytest.raises(ValueError, match="fp16"):
        NeuralRunner(g, device="cpu", half=True)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runner_cuda_fp16_close_to_cpu():
    torch.manual_seed(0)
    g = NeuralGenerator(tiny_config()).eval()
    cpu = NeuralRunner(g, device="cpu")
    rng = np.random.default_rng(0)
    render = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
    mask = (rng.random((32, 32)) > 0.5).astype(np.float32)
    ref = cpu(render, mask, render)
    gpu = NeuralRunner(g, device="cuda")
    assert gpu.dtype == torch.float16
    np.testing.assert_allclose(gpu(render, mask, render), ref, atol=3.0)


def test_untrained_residual_generator_reproduces_the_render():
    """residual=True: the zero-initialised head starts from the tier-2 render exactly."""
    import torch

    from realtime.tiers.neural.model import NeuralConfig, NeuralGenerator

    torch.manual_seed(0)
    g = NeuralGenerator(NeuralConfig.for_resolution(32, width=4, embed_width=4)).eval()
    render = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = (torch.rand(2, 1, 32, 32) > 0.5).float()
    hint = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(g(render, mask, hint), render)
    paper = NeuralGenerator(NeuralConfig.for_resolution(32, width=4, embed_width=4, residual=False)).eval()
    with torch.no_grad():
        assert not torch.allclose(paper(render, mask, hint), render, atol=0.1)
