"""Tier-3 networks: appearance embedder E, generator G with RCN, self-attention.

Deep Blending Network of UniFaceGAN §III-C (TFVGAN §3.3), made light enough for a 2-core CPU
at 128² in the spirit of AP-GAN's lightweight U-Net generator. Tensors are NCHW; images are in
[-1, 1], masks in [0, 1] (1 = face).

Reading of the paper (and deviations, also listed in `realtime/tiers/neural/__init__.py`):

- E(X_p, M): the concatenation of an appearance image (3) and the NON-facial binary mask
  1 − M̂ (1) (UniFaceGAN §I: "maps the concatenation of the appearance image and the non-facial
  area binary mask into a low-resolution feature map"). Its coarsest output is P.
- The appearance embedding enters G only through RCN (eq. 6–7): T_l is an upsampled version of
  P projected (1×1 conv) to the channels of the decoder feature U_l. Its non-facial part is kept
  by the same-region retention term and its statistics are transferred to the face by the
  cross-region term — a region-restricted AdaIN, not a FiLM path. Deviation (`embed_pyramid`,
  on by default): T_l comes from E's own feature map at the resolution of U_l (E keeps a small
  feature pyramid on its way down to P) instead of upsampling P alone, so the background keeps
  full-resolution detail; `embed_pyramid=False` gives the paper's T_l = up(P).
- RCN, eq. 6 with every term restricted to its region (the paper's "restricting the computation
  in specific areas"): with A = BN(U) on the face H and B = BN(T) off it (H̄ = 1 − H),

      out = H·[α·𝒯(A→B) + (1−α)·A] + H̄·[β·𝒯(B→A) + (1−β)·B],
      𝒯(A→B) = σ_B·(A − μ_A)/σ_A + μ_B                                   (eq. 7)

  μ/σ are per-sample, per-channel statistics weighted by H (for A) or H̄ (for B); H is the
  area-downsampled face mask (soft at region borders). α, β ∈ [0,1]^c are learnable
  (sigmoid of a logit, initialised to 0.8 and 0.1). `rcn()` is the pure function.
- Self-attention (SAGAN form, zero-initialised gate) after the decoder stage at 64² for 256²
  and 512² (full attention, 4096 tokens). Deviation at 128²: it sits after the 32² stage and
  attends to 2×2-average-pooled keys/values (1024 queries × 256 keys, 64 channels). Full 64²
  attention (4096×4096) would alone exceed the 12 ms CPU budget, and even 64² with 4×4-pooled
  keys (4096×256: a 1M-entry softmax over 4-dim queries) measured ≈ 3–4 ms of a ~10 ms forward
  on one core; the 32² variant costs ≈ 0.5 ms. `attention_resolution=64, attention_kv_pool=4`
  gives the pooled-64² variant back.
- Encoder: stride-2 3×3 convs, depthwise-separable residual blocks at the bottleneck; decoder
  stage: 1×1 conv halving the channels at the low resolution, nearest 2× upsampling, 3×3 conv,
  additive U-Net skip, RCN, ReLU (the 1×1 first halves the cost of the stage's 3×3 conv);
  tanh output. Only Conv/Resize/AveragePool/BatchNormalization/MatMul/Softmax/elementwise ops
  (ONNX opset 17), all native in TensorRT.
- D: pix2pixHD multi-scale PatchGAN (3 scales by default), conditioned on (R, M̂) like
  pix2pixHD's label map / AP-GAN's PE-aware D, spectral norm, hinge loss (UniFaceGAN); its
  per-layer features feed AP-GAN's perceptual and style losses (eq. 8–10). It is trained, never
  run live: `realtime.train.discriminator`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "NeuralConfig",
    "rcn",
    "RCN",
    "SelfAttention",
    "AppearanceEmbedder",
    "NeuralGenerator",
]


def config_from_dict(cls, d: dict):
    """A config dataclass from a dict (a checkpoint's JSON); unknown keys are an error."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
    return cls(**d)


@dataclass
class NeuralConfig:
    """Architecture of the tier-3 networks (stored as JSON in every checkpoint).

    resolution: S, the square crop size (a power of two, 32..1024; 128/256/512 in use).
    width: channels of G at full resolution; doubled per level, capped at `max_width`.
    levels: stride-2 downsamplings of G's encoder (None: down to 16², i.e. log2(S/16)).
    embed_width / embed_levels: E's channels at full resolution and its depth (None: down to
        the decoder's coarsest stage, S/2^(levels−1), with the pyramid; to G's bottleneck
        without); P has `min(embed_width * 2**embed_levels, embed_max_width)` channels.
    embed_pyramid: T_l from E's feature pyramid (True) or from upsampled P only (paper).
    bottleneck_blocks: depthwise-separable residual blocks at the bottleneck.
    separable_decoder: the decoder's 3×3 convs depthwise-separable (dw 3×3 + pw 1×1).
    out_kernel: kernel of the RGB output conv (3 or 1).
    attention_resolution: where the self-attention block sits (0 = none; None: 64² for
        S >= 256 as in the paper, S/4 below — 32² at 128²). It must be one of the decoder's
        resolutions (S/2^(levels-1) .. S).
    attention_kv_pool: key/value average-pool factor per axis (None: 1 for S >= 256, else 2).
    rcn_alpha / rcn_beta: initial α, β of every RCN; rcn_eps: variance/normaliser epsilon.
    d_*: multi-scale discriminator (scales, base width, stride-2 layers, spectral norm,
        conditioned on render+mask).
    residual: G predicts a correction of the render, Y = clamp(R + out, −1, 1), with the output
        conv zero-initialised, so an untrained G reproduces the tier-2 render exactly and
        training can only start from there (False: Y = tanh(out), the papers' head). Our
        addition: with minutes of CPU training a from-scratch head never catches up with the
        atlas render it is meant to improve.
    """

    resolution: int = 128
    width: int = 16
    max_width: int = 128
    levels: int | None = None
    embed_width: int = 8
    embed_max_width: int = 64
    embed_levels: int | None = None
    embed_pyramid: bool = True
    bottleneck_blocks: int = 2
    separable_decoder: bool = False
    out_kernel: int = 3
    attention_resolution: int | None = None
    attention_kv_pool: int | None = None
    rcn_alpha: float = 0.8
    rcn_beta: float = 0.1
    rcn_eps: float = 1e-5
    d_scales: int = 3
    d_width: int = 32
    d_layers: int = 3
    d_spectral_norm: bool = True
    d_conditional: bool = True
    residual: bool = True

    def __post_init__(self):
        s = int(self.resolution)
        if s < 16 or s > 4096 or s & (s - 1):
            raise ValueError(f"NeuralConfig.resolution must be a power of two in 16..4096, got {self.resolution}")
        if self.width < 1 or self.embed_width < 1:
            raise ValueError("NeuralConfig.width and embed_width must be >= 1")
        n = self.n_levels
        if n < 1 or s >> n < 2:
            raise ValueError(f"NeuralConfig.levels={self.levels} does not fit resolution {s}")
        ne = self.n_embed_levels
        if ne < n - 1 or s >> ne < 1:
            raise ValueError(
                f"NeuralConfig.embed_levels={self.embed_levels} must be >= levels-1 ({n - 1}) and fit "
                f"resolution {s}")
        a = self.attn_res
        if a and a not in self.decoder_resolutions:
            raise ValueError(
                f"NeuralConfig.attention_resolution={a} is not a decoder resolution "
                f"{self.decoder_resolutions} (0 disables attention)")
        if a and (a % self.kv_pool):
            raise ValueError(f"attention_kv_pool={self.kv_pool} does not divide {a}")
        if not (0.0 < self.rcn_alpha < 1.0 and 0.0 < self.rcn_beta < 1.0):
            raise ValueError("rcn_alpha and rcn_beta must lie strictly inside (0, 1)")

    @property
    def n_levels(self) -> int:
        return self.levels if self.levels is not None else max(1, int(math.log2(self.resolution // 16)))

    @property
    def n_embed_levels(self) -> int:
        if self.embed_levels is not None:
            return self.embed_levels
        # the decoder's coarsest stage is at level n−1: deeper E levels would feed nothing
        return self.n_levels - 1 if self.embed_pyramid else self.n_levels

    @property
    def attn_res(self) -> int:
        """Resolution of the self-attention block (0: none)."""
        if self.attention_resolution is not None:
            return int(self.attention_resolution)
        return 64 if self.resolution >= 256 else max(self.resolution // 4, self.decoder_resolutions[0])

    @property
    def kv_pool(self) -> int:
        if self.attention_kv_pool is not None:
            return int(self.attention_kv_pool)
        return 1 if self.resolution >= 256 else 2

    @property
    def decoder_resolutions(self) -> list[int]:
        """Output resolution of each decoder stage, coarsest first (…, S/2, S)."""
        return [self.resolution >> k for k in range(self.n_levels - 1, -1, -1)]

    def g_width(self, level: int) -> int:
        """Channels of G at resolution S / 2**level."""
        return min(self.width << level, self.max_width)

    def e_width(self, level: int) -> int:
        return min(self.embed_width << level, self.embed_max_width)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> NeuralConfig:
        return config_from_dict(cls, d)

    @classmethod
    def for_resolution(cls, resolution: int, **overrides) -> NeuralConfig:
        """Recommended defaults: 128² is sized for a 2-core CPU (≲ 12 ms), 256²/512² for a GPU."""
        base = {128: dict(width=16), 256: dict(width=16, max_width=192), 512: dict(width=16, max_width=256)}
        kw = dict(base.get(int(resolution), {}))
        kw.update(overrides)
        return cls(resolution=int(resolution), **kw)


# --------------------------------------------------------------------------------------------
# RCN (eq. 6–7)


def _masked_stats(x: torch.Tensor, w: torch.Tensor, eps: float):
    """Per-sample, per-channel mean and std of x (B,C,H,W) weighted by w (B,1,H,W) >= 0.

    μ = Σ w·x / (Σ w + eps·N), σ = sqrt(Σ w·(x − μ)² / (Σ w + eps·N) + eps), N = H·W: each
    weighted sum is one matrix-vector product (a channels-last x flattens without a copy) with
    the weights pre-divided by N, so every intermediate is a bounded mean. The variance is the
    centred two-pass form (robust where σ ≪ |μ|). Computed in float32 whatever x's dtype (the
    CUDA fp16 path). An empty region gives μ = 0, σ = sqrt(eps)."""
    b, c, hh, ww = x.shape
    n = hh * ww
    xf = x.reshape(b, c, n).float()                                  # (B, C, N)
    wf = w.reshape(b, n, 1).float() * (1.0 / n)                      # (B, N, 1)
    wm = wf.sum(dim=1, keepdim=True) + eps                           # (B, 1, 1)
    mu = torch.bmm(xf, wf) / wm                                      # (B, C, 1)
    d = xf - mu
    var = torch.bmm(d * d, wf) / wm
    return mu.reshape(b, c, 1, 1), torch.sqrt(var + eps).reshape(b, c, 1, 1)


def rcn(u: torch.Tensor, t: torch.Tensor, h: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor,
        eps: float = 1e-5) -> torch.Tensor:
    """Region-aware conditional normalisation, UniFaceGAN eq. 6–7, region-restricted.

    u: (B,C,H,W) (normalised) generator features — the facial clue;
    t: (B,C,H,W) (normalised) appearance features T_l — the non-facial clue;
    h: (B,1,H,W) facial mask H_l in [0, 1];  alpha, beta: (1,C,1,1) in [0, 1].

    out = h·[α·𝒯(u→t) + (1−α)·u] + (1−h)·[β·𝒯(t→u) + (1−β)·t]
    with 𝒯(a→b) = σ_b (a − μ_a)/σ_a + μ_b and statistics of u over h, of t over 1 − h.
    Written as per-channel scale/shift so it costs a handful of elementwise passes.
    """
    hb = 1.0 - h
    mu_u, sd_u = _masked_stats(u, h, eps)
    mu_t, sd_t = _masked_stats(t, hb, eps)
    alpha, beta = alpha.float(), beta.float()
    s_f = sd_t / sd_u                       # 𝒯(u→t) = u·s_f + (μ_t − μ_u·s_f)
    s_n = sd_u / sd_t                       # 𝒯(t→u) = t·s_n + (μ_u − μ_t·s_n)
    a_f = (alpha * s_f + (1.0 - alpha)).to(u.dtype)
    b_f = (alpha * (mu_t - mu_u * s_f)).to(u.dtype)
    a_n = (beta * s_n + (1.0 - beta)).to(u.dtype)
    b_n = (beta * (mu_u - mu_t * s_n)).to(u.dtype)
    y_f = u * a_f + b_f
    y_n = t * a_n + b_n
    return y_n + h * (y_f - y_n)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


class RCN(nn.Module):
    """RCN layer: affine-free BatchNorm of U_l and T_l, then `rcn` with learnable α_l, β_l."""

    def __init__(self, channels: int, alpha: float = 0.8, beta: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.eps = float(eps)
        self.norm_u = nn.BatchNorm2d(channels, affine=False)
        self.norm_t = nn.BatchNorm2d(channels, affine=False)
        self.alpha_logit = nn.Parameter(torch.full((1, channels, 1, 1), _logit(alpha)))
        self.beta_logit = nn.Parameter(torch.full((1, channels, 1, 1), _logit(beta)))

    @property
    def alpha(self) -> torch.Tensor:
        return torch.sigmoid(self.alpha_logit)

    @property
    def beta(self) -> torch.Tensor:
        return torch.sigmoid(self.beta_logit)

    def forward(self, u: torch.Tensor, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return rcn(self.norm_u(u), self.norm_t(t), h, self.alpha, self.beta, self.eps)


# --------------------------------------------------------------------------------------------
# Self-attention


class SelfAttention(nn.Module):
    """SAGAN self-attention, x + γ·Attn(x), γ initialised to 0.

    kv_pool > 1 average-pools the keys/values by that factor per axis first (N queries attend
    to N / kv_pool² keys): the reduced-key attention of the 128² CPU configuration.
    """

    def __init__(self, channels: int, kv_pool: int = 1, qk_div: int = 8, v_div: int = 2):
        super().__init__()
        self.kv_pool = int(kv_pool)
        self.cq = max(1, channels // qk_div)
        self.cv = max(1, channels // v_div)
        self.q = nn.Conv2d(channels, self.cq, 1)
        self.kv = nn.Conv2d(channels, self.cq + self.cv, 1)
        self.o = nn.Conv2d(self.cv, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.scale = 1.0 / math.sqrt(self.cq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        src = F.avg_pool2d(x, self.kv_pool) if self.kv_pool > 1 else x
        q = (self.q(x) * self.scale).reshape(b, self.cq, hh * ww).transpose(1, 2)  # (B, N, cq)
        kv = self.kv(src).flatten(2)                                       # (B, cq+cv, M)
        k = kv[:, : self.cq]                                               # (B, cq, M)
        v = kv[:, self.cq:]                                                # (B, cv, M)
        attn = torch.softmax(torch.bmm(q, k), dim=-1)                     # (B, N, M)
        o = torch.bmm(v, attn.transpose(1, 2)).reshape(b, self.cv, hh, ww)  # (B, cv, H, W)
        return x + self.gamma * self.o(o)


# --------------------------------------------------------------------------------------------
# Generator


class _ConvAct(nn.Sequential):
    def __init__(self, cin, cout, k=3, stride=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class _DSResBlock(nn.Module):
    """x + PW(ReLU(DW3x3(ReLU(PW(x))))): depthwise-separable residual block."""

    def __init__(self, c: int):
        super().__init__()
        self.pw1 = nn.Conv2d(c, c, 1)
        self.dw = nn.Conv2d(c, c, 3, 1, 1, groups=c)
        self.pw2 = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return x + self.pw2(F.relu(self.dw(F.relu(self.pw1(x)))))


class AppearanceEmbedder(nn.Module):
    """E(X_p, 1 − M̂): (B,3,S,S) image + (B,1,S,S) non-facial mask → feature pyramid.

    Returns [f_0 (S), f_1 (S/2), …, f_Le (S/2^Le) = P]; stride-2 3×3 convs, ReLU.
    """

    def __init__(self, cfg: NeuralConfig):
        super().__init__()
        n = cfg.n_embed_levels
        self.stem = _ConvAct(4, cfg.e_width(0))
        self.down = nn.ModuleList(_ConvAct(cfg.e_width(i), cfg.e_width(i + 1), stride=2) for i in range(n))

    def forward(self, image: torch.Tensor, nonface: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(torch.cat([image, nonface], dim=1))
        feats = [x]
        for d in self.down:
            x = d(x)
            feats.append(x)
        return feats


class NeuralGenerator(nn.Module):
    """G(R, P, M̂) with its appearance embedder E: forward(render, mask, hint) → image.

    render: tier-2 render R (B,3,S,S) in [-1,1]; mask: face mask M̂ (B,1,S,S) in [0,1];
    hint: appearance hint M (B,3,S,S) in [-1,1] (e.g. the target's reference frame in crop
    space, or X_p·(1 − M̂)). Output (B,3,S,S) in [-1,1].
    """

    def __init__(self, cfg: NeuralConfig | None = None):
        super().__init__()
        cfg = cfg or NeuralConfig()
        self.cfg = cfg
        n = cfg.n_levels
        ne = cfg.n_embed_levels
        self.embedder = AppearanceEmbedder(cfg)
        # encoder: R (3) + M̂ (1)
        self.stem = _ConvAct(4, cfg.g_width(0))
        self.down = nn.ModuleList(_ConvAct(cfg.g_width(i), cfg.g_width(i + 1), stride=2) for i in range(n))
        self.bottleneck = nn.Sequential(*[_DSResBlock(cfg.g_width(n)) for _ in range(cfg.bottleneck_blocks)])
        # decoder stage j (j = 0 … n−1) goes from level n−j to level n−j−1
        self.reduce = nn.ModuleList()
        self.up_conv = nn.ModuleList()
        self.t_proj = nn.ModuleList()
        self.rcn = nn.ModuleList()
        self._t_source = []   # (E level, upsample factor) for each stage
        self._attn_stage = -1
        self.attention = None
        for j in range(n):
            lvl = n - j - 1
            c_in, c_out = cfg.g_width(lvl + 1), cfg.g_width(lvl)
            self.reduce.append(nn.Conv2d(c_in, c_out, 1))
            if cfg.separable_decoder:
                self.up_conv.append(nn.Sequential(nn.Conv2d(c_out, c_out, 3, 1, 1, groups=c_out),
                                                  nn.Conv2d(c_out, c_out, 1)))
            else:
                self.up_conv.append(nn.Conv2d(c_out, c_out, 3, 1, 1))
            src, factor = (lvl, 1) if cfg.embed_pyramid else (ne, 1 << (ne - lvl))
            self._t_source.append((src, factor))
            self.t_proj.append(nn.Conv2d(cfg.e_width(src), c_out, 1))
            self.rcn.append(RCN(c_out, cfg.rcn_alpha, cfg.rcn_beta, cfg.rcn_eps))
            if cfg.attn_res and cfg.resolution >> lvl == cfg.attn_res:
                self._attn_stage = j
                self.attention = SelfAttention(c_out, kv_pool=cfg.kv_pool)
        self.out = nn.Conv2d(cfg.g_width(0), 3, cfg.out_kernel, 1, cfg.out_kernel // 2)
        if cfg.residual:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def embed(self, hint: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """E(X_p, 1 − M̂): the appearance feature pyramid (last = P)."""
        return self.embedder(hint, 1.0 - mask)

    def forward(self, render: torch.Tensor, mask: torch.Tensor, hint: torch.Tensor) -> torch.Tensor:
        n = self.cfg.n_levels
        emb = self.embed(hint, mask)
        x = self.stem(torch.cat([render, mask], dim=1))
        skips = [x]
        masks = [mask]
        for i, d in enumerate(self.down):
            x = d(x)
            if i < n - 1:
                skips.append(x)
                masks.append(F.avg_pool2d(masks[-1], 2))   # H_l: area-downsampled M̂
        x = self.bottleneck(x)
        for j in range(n):
            lvl = n - j - 1
            x = F.interpolate(self.reduce[j](x), scale_factor=2.0, mode="nearest")
            x = self.up_conv[j](x) + skips[lvl]
            src, factor = self._t_source[j]
            t = emb[src]
            if factor > 1:
                t = F.interpolate(t, scale_factor=float(factor), mode="bilinear", align_corners=False)
            t = self.t_proj[j](t)
            x = F.relu(self.rcn[j](x, t, masks[lvl]))
            if j == self._attn_stage:
                x = self.attention(x)
        if self.cfg.residual:
            return torch.clamp(render + self.out(x), -1.0, 1.0)
        return torch.tanh(self.out(x))
