"""Losses of the neural tier: each is zero (or minimal) where it should be; the torch warp and
the temporal loss follow the `kernels.warp` / `kernels.flow3d` conventions; a tiny training run
lowers the reconstruction loss."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.train import losses as L  # noqa: E402
from realtime.train.discriminator import MultiScaleDiscriminator  # noqa: E402
from realtime.train.step import TrainConfig, make_models, make_optimizers, train_step  # noqa: E402

torch.set_num_threads(1)
from tests.realtime.tiers.neural import tiny_config  # noqa: E402


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The numba kernels used here (warp, rasterize, flow3d) leave OpenMP's thread count at
    numba's pool size, which oneDNN inside torch then follows: re-assert one thread per test."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)




def test_reconstruction_loss():
    x = torch.rand(2, 3, 8, 8)
    assert L.reconstruction_loss(x, x) == 0
    assert torch.isclose(L.reconstruction_loss(x + 0.25, x), torch.tensor(0.25))
    w = torch.zeros(2, 1, 8, 8)
    w[..., :4] = 1
    y = x.clone()
    y[..., 4:] += 1.0                   # error only where the weight is zero
    assert L.reconstruction_loss(y, x, w) == 0


def test_ssim_map_matches_skimage_and_the_loss_is_zero_on_equal_images():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (1, 3, 40, 40)).astype(np.float32)
    a = torch.from_numpy(a).clamp(-1, 1)
    b = (a + 0.3 * torch.randn_like(a)).clamp(-1, 1)
    ours = L.ssim_map(a, b)[0, 0].numpy()
    to01 = lambda t: ((t[0].numpy() + 1) / 2).transpose(1, 2, 0)
    _, ref = structural_similarity(to01(a), to01(b), channel_axis=2, data_range=1.0, full=True,
                                   gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    inner = (slice(6, -6), slice(6, -6))      # skimage pads differently at the border
    assert np.abs(ours[inner] - ref.mean(2)[inner]).max() < 1e-4
    assert float(L.ssim_loss(a, a)) == pytest.approx(0.0, abs=1e-6)
    assert float(L.ssim_loss(b, a)) > 0.05
    w = torch.zeros(1, 1, 40, 40)
    w[..., :, :20] = 1
    c = a.clone()
    c[..., :, 30:] = -c[..., :, 30:]          # changed only where the weight (and window) is 0
    assert float(L.ssim_loss(c, a, w)) == pytest.approx(0.0, abs=1e-5)


def test_face_weight():
    m = torch.zeros(1, 1, 20, 20)
    m[..., 8:12, 8:12] = 1
    w = L.face_weight(m, background=0.1, dilate_px=2)
    assert float(w[0, 0, 10, 10]) == 1.0 and float(w[0, 0, 6, 10]) == 1.0   # grown by 2 px
    assert float(w[0, 0, 5, 10]) == pytest.approx(0.1) and float(w[0, 0, 0, 0]) == pytest.approx(0.1)


def test_augment_moves_render_mask_and_target_together():
    from realtime.train.loop import _augment

    rng = np.random.default_rng(1)
    img = torch.from_numpy(rng.uniform(-1, 1, (3, 3, 32, 32)).astype(np.float32))
    batch = {"render": img.clone(), "target": img.clone(), "mask": img[:, :1].clone(),
             "hint": img[:1].clone()}
    out = _augment(batch, rng, 1.0)
    assert torch.equal(out["render"], out["target"])
    assert torch.equal(out["mask"], out["render"][:, :1])
    assert (out["render"] - img).abs().mean() > 0.05       # it did move them
    assert out["hint"] is batch["hint"]                    # the appearance hint is left alone
    same = _augment(batch, rng, 0.0)
    assert (same["render"] - img).abs().max() < 1e-5      # strength 0: the identity


def test_hinge_losses():
    big = [torch.full((2, 1, 4, 4), 1.5), torch.full((2, 1, 2, 2), 1.0)]
    small = [-b for b in big]
    assert L.hinge_d_loss(big, small) == 0                       # D perfectly confident
    zero = [torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 2, 2)]
    assert torch.isclose(L.hinge_d_loss(zero, zero), torch.tensor(2.0))
    assert torch.isclose(L.hinge_d_loss(small, big), torch.tensor(4.5))  # ((2.5+2.5)+(2+2))/2
    # lists of layer outputs work too: the last entry is the logit map
    feats = [[torch.randn(2, 4, 4, 4), b] for b in big]
    assert L.hinge_d_loss(feats, [[f[0], -f[1]] for f in feats]) == 0
    # generator side: −mean logits, lower when D believes the fakes
    assert torch.isclose(L.hinge_g_loss(big), torch.tensor(-1.25))
    assert L.hinge_g_loss(big) < L.hinge_g_loss(zero) < L.hinge_g_loss(small)


def test_perceptual_and_style_losses():
    torch.manual_seed(0)
    d = MultiScaleDiscriminator(tiny_config())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    cond = (x, x[:, :1])
    fx = d(x, *cond)
    assert L.feature_perceptual_loss(fx, fx) == 0
    assert L.style_loss(fx, fx) == 0
    y = x + 0.3 * torch.randn_like(x)
    fy = d(y, *cond)
    assert L.feature_perceptual_loss(fx, fy) > 0
    assert L.style_loss(fx, fy) > 0
    # eq. 8: Σ_s ‖F_s − Y_s‖² / (C H W), averaged over scales (and batch)
    ref = sum(sum(((a - b) ** 2).sum().item() / a.numel() for a, b in zip(ra[:-1], rb[:-1]))
              for ra, rb in zip(fx, fy)) / len(fx)
    assert np.isclose(L.feature_perceptual_loss(fx, fy).item(), ref, rtol=1e-5)


def test_style_loss_is_gram_based():
    torch.manual_seed(0)
    f = torch.randn(2, 4, 6, 6)
    perm = torch.randperm(36)
    g = f.flatten(2)[:, :, perm].view(2, 4, 6, 6)       # same features, shuffled positions
    feats = lambda t: [[t, torch.zeros(2, 1, 1, 1)]]
    assert L.style_loss(feats(f), feats(g)) < 1e-10
    assert L.feature_perceptual_loss(feats(f), feats(g)) > 0.1
    # eq. 10 against numpy, normalised by C·H·W
    fn = f[0].reshape(4, 36).numpy().astype(np.float64)
    np.testing.assert_allclose(L.gram(f)[0].numpy(), fn @ fn.T / (4 * 36), rtol=1e-5)


def test_appearance_loss():
    a = [torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4)]
    assert L.appearance_loss(a, [t.clone() for t in a]) == 0
    b = [t + 0.5 for t in a]
    assert torch.isclose(L.appearance_loss(b, a), torch.tensor(0.5))
    assert torch.isclose(L.appearance_loss(a[0] - 1.0, a[0]), torch.tensor(1.0))


def test_warp_matches_kernel():
    from kernels import warp as kwarp

    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    flow = rng.uniform(-6, 6, (20, 24, 2)).astype(np.float32)
    ref = kwarp(img, flow)
    got = L.warp(torch.from_numpy(img).permute(2, 0, 1)[None], torch.from_numpy(flow)[None])
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), ref, atol=2e-3)


def test_temporal_loss_zero_for_consistent_motion():
    """A mesh moves by (+3, +2) px between t−1 and t; each frame's colours are interpolated
    from the same per-vertex colours. With kernels.flow3d's flow the warped previous frame
    equals the current one on visible pixels (loss ≈ 0); the wrong sign or no flow does not."""
    from kernels import flow3d, interpolate, rasterize

    n, s = 6, 48
    xs = np.linspace(8, 34, n + 1)
    xx, yy = np.meshgrid(xs, xs)
    vp = np.stack([xx.ravel(), yy.ravel(), np.full(xx.size, 5.0)], 1).astype(np.float32)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    tri = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)]).astype(np.int32)
    vt = vp.copy()
    vt[:, 0] += 3.0
    vt[:, 1] += 2.0
    col = np.stack([xx.ravel() * 5, yy.ravel() * 4, (xx.ravel() + yy.ravel()) * 2], 1).astype(np.float32)
    g_prev, g_t = rasterize(vp, tri, s, s), rasterize(vt, tri, s, s)
    img_prev, img_t = interpolate(g_prev, tri, col), interpolate(g_t, tri, col)
    flow, vis = flow3d(g_t, tri, vt, vp, g_prev.depth)
    assert vis.sum() > 400
    np.testing.assert_allclose(flow[vis], np.tile([-3.0, -2.0], (int(vis.sum()), 1)), atol=1e-4)
    to_t = lambda im: torch.from_numpy(im).permute(2, 0, 1)[None] / 127.5 - 1
    y_t, y_prev = to_t(img_t), to_t(img_prev)
    f = torch.from_numpy(flow)[None]
    v = torch.from_numpy(vis)[None]
    good = L.temporal_loss(y_t, y_prev, f, v)
    assert good < 1e-8
    assert L.temporal_loss(y_t, y_prev, -f, v) > 1e-3
    assert L.temporal_loss(y_t, y_prev, torch.zeros_like(f), v) > 1e-3
    assert torch.isclose(L.temporal_loss(y_t, y_t, torch.zeros_like(f)), torch.tensor(0.0))


def _batch(seed=0, b=4, s=32, with_prev=True):
    gen = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
    mask = ((xs / 0.6) ** 2 + (ys / 0.8) ** 2 < 1).float().expand(b, 1, s, s).contiguous()
    hint = torch.rand(b, 3, s, s, generator=gen) * 2 - 1
    face = torch.tanh(3 * torch.stack([xs, ys, xs * ys]))[None].expand(b, 3, s, s)
    target = face * mask + hint * (1 - mask)
    render = 0.7 * face * mask
    batch = dict(render=render, mask=mask, hint=hint, target=target)
    if with_prev:
        batch.update(prev_render=render, prev_mask=mask, prev_target=target,
                     flow=torch.zeros(b, s, s, 2), visible=mask[:, 0] > 0)
    return batch


def test_tiny_training_run_lowers_reconstruction_loss():
    torch.manual_seed(0)
    models = make_models(tiny_config())
    cfg = TrainConfig(lr_g=2e-3, lr_d=2e-4)
    opts = make_optimizers(models, cfg)
    batch = _batch(b=2)
    recs = []
    for _ in range(25):
        out = train_step(models, opts, batch, cfg)
        assert all(np.isfinite(v) for v in out.values()), out
        recs.append(out["rec"])
    assert {"d_loss", "rec", "adv", "per", "style", "app", "tmp", "g_total"} <= set(out)
    assert np.mean(recs[-5:]) < 0.8 * np.mean(recs[:5]), recs


def test_train_step_variants():
    torch.manual_seed(0)
    models = make_models(tiny_config())
    opts = make_optimizers(models)
    b = _batch(with_prev=False, b=2)
    out = train_step(models, opts, b, {"w_tmp": 5.0})
    assert "tmp" not in out                           # no previous frame: no temporal term
    b.update(prev_output=torch.zeros(2, 3, 32, 32), flow=torch.zeros(2, 32, 32, 2))
    out = train_step(models, opts, b, TrainConfig(grad_clip=1.0))
    assert out["tmp"] > 0
    # D off: no discriminator work at all
    out = train_step({"G": models["G"]}, {"G": opts["G"]}, b, TrainConfig(w_adv=0, w_per=0, w_style=0))
    assert "d_loss" not in out and "adv" not in out
    with pytest.raises(KeyError, match="target"):
        train_step(models, opts, {k: v for k, v in b.items() if k != "target"})
