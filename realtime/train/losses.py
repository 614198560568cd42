"""Training losses of the neural tier (UniFaceGAN §III-D, AP-GAN §III-C).

Images are NCHW in [-1, 1]; every loss returns a scalar tensor averaged over the batch.

- `reconstruction_loss`   L1, UniFaceGAN eq. 9 (optionally weighted per pixel).
- `ssim_loss`   1 − SSIM (Wang et al. 2004: 11-tap Gaussian window, σ 1.5), optionally weighted
  per pixel. Not in the seeds: L1 alone, at minutes of CPU training, settles on a blurred mean
  of the frames; the structural term keeps the render's edges (Zhao et al., "Loss Functions for
  Image Restoration with Neural Networks", 2017, mix L1 and SSIM the same way).
- `face_weight`   the per-pixel weight of the image terms: 1 on the (dilated) face mask, where
  the tier pastes the output, `background` elsewhere.
- `hinge_d_loss`, `hinge_g_loss`   hinge adversarial loss (UniFaceGAN: pix2pixHD multi-scale D
  with the hinge term instead of least squares), averaged over the K scales (eq. 10's 1/K).
- `feature_perceptual_loss`   AP-GAN eq. 8 on discriminator features (no pretrained network):
  Σ_s 1/(C_s H_s W_s)·‖F_s − Y_s‖², summed over the stages of one scale, averaged over scales.
- `style_loss`   AP-GAN eq. 9–10: Σ_s 1/(C_s H_s W_s)²·‖Gram(F_s) − Gram(Y_s)‖²_F.
- `appearance_loss`   UniFaceGAN eq. 8: ‖E(Y) − E(X_p)‖₁ (mean over the levels E returns).
- `temporal_loss`   UniFaceGAN eq. 17 with our flow convention (kernels.flow3d: flow at t is the
  offset to ADD to reach t−1, `warp(prev, flow)` aligns t−1 to t): the mean over visible pixels
  of (Y_t − warp(Y_{t−1}, F))², which is eq. 17's ‖Y^{t−1} − warp(Y^t, F^{t→t−1})‖₂² seen from
  frame t instead of t−1.
- `warp`   differentiable twin of `kernels.warp` (bilinear, border clamped, same conventions).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "reconstruction_loss",
    "ssim_loss",
    "face_weight",
    "hinge_d_loss",
    "hinge_g_loss",
    "feature_perceptual_loss",
    "style_loss",
    "gram",
    "appearance_loss",
    "temporal_loss",
    "warp",
]


def reconstruction_loss(output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error; `weight` (B,1,H,W) or broadcastable gives a weighted mean."""
    d = (output - target).abs()
    if weight is None:
        return d.mean()
    w = weight.expand_as(d)
    return (d * w).sum() / w.sum().clamp_min(1e-8)


def face_weight(mask: torch.Tensor, background: float, dilate_px: int) -> torch.Tensor:
    """(B,1,H,W) weights: 1 on `mask` grown by `dilate_px` pixels, `background` elsewhere."""
    if dilate_px > 0:
        mask = F.max_pool2d(mask, 2 * dilate_px + 1, stride=1, padding=dilate_px)
    return background + (1.0 - background) * mask.clamp(0.0, 1.0)


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_map(a: torch.Tensor, b: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM of images in [-1, 1] (compared on [0, 1], C1 = 0.01², C2 = 0.03²),
    (B,C,H,W) → (B,1,H,W) (mean over channels); 'same' size, reflect-padded."""
    a, b = (a + 1.0) * 0.5, (b + 1.0) * 0.5
    c = a.shape[1]
    win = _gaussian_window(size, sigma, c, a)
    p = size // 2
    blur = lambda t: F.conv2d(F.pad(t, (p, p, p, p), mode="reflect"), win, groups=c)
    mu_a, mu_b = blur(a), blur(b)
    va = blur(a * a) - mu_a * mu_a
    vb = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (va + vb + c2))
    return s.mean(dim=1, keepdim=True)


def ssim_loss(output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """1 − SSIM (weighted mean of the SSIM map with `weight` (B,1,H,W) when given); 0 when
    output equals target."""
    s = ssim_map(output, target)
    if weight is None:
        return 1.0 - s.mean()
    w = weight.expand_as(s)
    return 1.0 - (s * w).sum() / w.sum().clamp_min(1e-8)


def _logits(per_scale: Sequence[Sequence[torch.Tensor]] | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Last entry of each scale's feature list (or the tensors themselves)."""
    return [s[-1] if isinstance(s, (list, tuple)) else s for s in per_scale]


def hinge_d_loss(real, fake) -> torch.Tensor:
    """1/K Σ_k [ E relu(1 − D_k(real)) + E relu(1 + D_k(fake)) ]; zero once real logits ≥ 1 and
    fake logits ≤ −1. `real`/`fake`: per scale either the logits or the list of layer outputs."""
    r, f = _logits(real), _logits(fake)
    if len(r) != len(f) or not r:
        raise ValueError(f"hinge_d_loss: {len(r)} real vs {len(f)} fake scales")
    return sum(F.relu(1.0 - a).mean() + F.relu(1.0 + b).mean() for a, b in zip(r, f)) / len(r)


def hinge_g_loss(fake) -> torch.Tensor:
    """Generator side of the hinge loss: −1/K Σ_k E D_k(fake)."""
    f = _logits(fake)
    if not f:
        raise ValueError("hinge_g_loss: no scales")
    return -sum(b.mean() for b in f) / len(f)


def _features(per_scale) -> list[list[torch.Tensor]]:
    """Intermediate features of each scale: every layer output but the logits."""
    return [list(s[:-1]) for s in per_scale]


def feature_perceptual_loss(real_feats, fake_feats) -> torch.Tensor:
    """AP-GAN eq. 8 on D features: Σ_s mean((F_s − Y_s)²) per scale (mean over C·H·W and the
    batch), averaged over scales. Real features are detached (they are the target)."""
    rs, fs = _features(real_feats), _features(fake_feats)
    if len(rs) != len(fs) or not rs:
        raise ValueError(f"feature_perceptual_loss: {len(rs)} real vs {len(fs)} fake scales")
    total = 0.0
    for r, f in zip(rs, fs):
        total = total + sum(F.mse_loss(y, x.detach()) for x, y in zip(r, f))
    return total / len(rs)


def gram(x: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by C·H·W: (B,C,H,W) → (B,C,C), G_ij = Σ_k x_ik x_jk / (C H W)."""
    b, c, h, w = x.shape
    f = x.reshape(b, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / float(c * h * w)


def style_loss(real_feats, fake_feats) -> torch.Tensor:
    """AP-GAN eq. 9–10: Σ_s ‖Gram(F_s) − Gram(Y_s)‖²_F / (C_s H_s W_s)² per scale (batch mean),
    averaged over scales. Invariant to any spatial permutation applied to both feature maps."""
    rs, fs = _features(real_feats), _features(fake_feats)
    if len(rs) != len(fs) or not rs:
        raise ValueError(f"style_loss: {len(rs)} real vs {len(fs)} fake scales")
    total = 0.0
    for r, f in zip(rs, fs):
        for x, y in zip(r, f):
            d = gram(y) - gram(x.detach())
            total = total + (d * d).sum(dim=(1, 2)).mean()
    return total / len(rs)


def appearance_loss(emb_fake: Sequence[torch.Tensor] | torch.Tensor,
                    emb_real: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """UniFaceGAN eq. 8, L1 between appearance embeddings E(Y) and E(X_p) (the latter is the
    target, detached); with a feature pyramid the mean over its levels."""
    if isinstance(emb_fake, torch.Tensor):
        emb_fake, emb_real = [emb_fake], [emb_real]
    if len(emb_fake) != len(emb_real) or not emb_fake:
        raise ValueError("appearance_loss: embeddings differ in length")
    return sum(F.l1_loss(a, b.detach()) for a, b in zip(emb_fake, emb_real)) / len(emb_fake)


def _base_grid(h: int, w: int, device, dtype) -> torch.Tensor:
    ys = torch.arange(h, device=device, dtype=dtype)
    xs = torch.arange(w, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)  # (H, W, 2) as (x, y)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward bilinear warp, the differentiable twin of `kernels.warp`:
    out[b, :, y, x] = image[b, :](x + flow[b, y, x, 0], y + flow[b, y, x, 1]), coordinates
    clamped to the border, pixel centres at integer coordinates. image (B,C,H,W), flow (B,H,W,2).
    """
    b, c, h, w = image.shape
    if flow.shape != (b, h, w, 2):
        raise ValueError(f"warp: flow must be {(b, h, w, 2)}, got {tuple(flow.shape)}")
    pos = _base_grid(h, w, image.device, image.dtype)[None] + flow.to(image.dtype)
    sx = 2.0 / max(w - 1, 1)
    sy = 2.0 / max(h - 1, 1)
    grid = torch.stack([pos[..., 0] * sx - 1.0, pos[..., 1] * sy - 1.0], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def temporal_loss(output: torch.Tensor, prev_output: torch.Tensor, flow: torch.Tensor,
                  visible: torch.Tensor | None = None) -> torch.Tensor:
    """3-D temporal loss (UniFaceGAN eq. 17), mean squared error over visible pixels.

    output: Y_t (B,C,H,W); prev_output: Y_{t−1} (B,C,H,W); flow: (B,H,W,2) from
    `kernels.flow3d` (offset from t to t−1); visible: (B,H,W) bool/float from flow3d (None: all).
    Zero when Y_t equals Y_{t−1} moved along the flow on every visible pixel.
    """
    warped = warp(prev_output, flow)
    d = (output - warped) ** 2
    if visible is None:
        return d.mean()
    v = visible.to(output.dtype)[:, None]
    return (d * v).sum() / (v.sum() * output.shape[1]).clamp_min(1.0)
