"""One optimisation step of the neural tier — the lead's training loop calls `train_step`.

    cfg = NeuralConfig.for_resolution(128)
    models = make_models(cfg)                 # {"G": NeuralGenerator, "D": MultiScaleDiscriminator}
    optimizers = make_optimizers(models, TrainConfig())
    losses = train_step(models, optimizers, batch, TrainConfig())   # dict of floats

Batch (tensors on the models' device; images NCHW float in [-1, 1], masks in [0, 1]):

    render (B,3,S,S)   tier-2 render R of frame t           mask (B,1,S,S)  face mask M̂ of t
    hint   (B,3,S,S)   appearance hint M (reference frame)  target (B,3,S,S) real frame t
  optional, for the 3-D temporal loss (UniFaceGAN eq. 17):
    flow (B,S,S,2) float, visible (B,S,S) bool/float     kernels.flow3d between t and t−1
    and either prev_render, prev_mask [, prev_hint (default: hint), prev_target]   → Y_{t−1} is
        generated in the same step with gradients (the paper's shared generation; prev_target
        adds a reconstruction term for t−1),
    or prev_output (B,3,S,S)  a previous output, used as a constant.

Loss weights (TrainConfig): rec 10 (UniFaceGAN γ), ssim 5 (ours, see losses.ssim_loss),
temporal 5 (UniFaceGAN λ), appearance 1 (UniFaceGAN β), perceptual 1 and style 3 (AP-GAN λ_op,
λ_sp), adversarial 0.1 (UniFaceGAN uses 10 with a log loss; with one short clip of the target
and minutes of CPU training a larger hinge weight paints blotches of memorised frames onto
the face: measured on s18, see the issue-5 note). The image terms (rec, ssim) are weighted by
`losses.face_weight`: 1 on the face mask grown by `face_dilate` px, `background_weight`
outside — the tier pastes the output only over the face, and the crop's background changes
with the camera, which the network cannot know and should not try to learn.

Steps: (1) G forward; (2) D update with the hinge loss on (target, Y.detach()), both conditioned
on (R, M̂); (3) G update with the sum of weighted losses, D in eval mode and frozen. The
appearance loss compares E(Y·H̄, H̄) with E(M·H̄, H̄) (H̄ = 1 − M̂) through E's weights
detached, so it trains G to keep the hint's non-facial appearance without letting E collapse
its embedding to a constant to zero the loss.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch.func import functional_call

from realtime.tiers.neural.model import NeuralConfig, NeuralGenerator, config_from_dict
from realtime.train import losses as L
from realtime.train.discriminator import MultiScaleDiscriminator

__all__ = ["TrainConfig", "make_models", "make_optimizers", "train_step"]


@dataclass
class TrainConfig:
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    w_rec: float = 10.0
    w_ssim: float = 5.0
    w_adv: float = 0.1
    w_per: float = 1.0
    w_style: float = 3.0
    w_app: float = 1.0
    w_tmp: float = 5.0
    grad_clip: float | None = None   # max global grad norm (None: no clipping)
    background_weight: float = 0.1   # weight of the image terms off the face (see above)
    face_dilate: int = 4             # face mask growth for that weight, px at training res.

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return config_from_dict(cls, d)


def make_models(cfg: NeuralConfig, device: str | torch.device = "cpu") -> dict[str, torch.nn.Module]:
    return {"G": NeuralGenerator(cfg).to(device), "D": MultiScaleDiscriminator(cfg).to(device)}


def make_optimizers(models: dict, cfg: TrainConfig | None = None) -> dict[str, torch.optim.Optimizer]:
    cfg = cfg or TrainConfig()
    betas = (cfg.beta1, cfg.beta2)
    out = {"G": torch.optim.Adam(models["G"].parameters(), lr=cfg.lr_g, betas=betas)}
    if models.get("D") is not None:
        out["D"] = torch.optim.Adam(models["D"].parameters(), lr=cfg.lr_d, betas=betas)
    return out


def _embed_frozen(g: NeuralGenerator, image: torch.Tensor, nonface: torch.Tensor) -> list[torch.Tensor]:
    """E(image·H̄, H̄) with E's parameters treated as constants (gradients reach `image` only)."""
    state = {k: v.detach() for k, v in g.embedder.named_parameters()}
    state.update(dict(g.embedder.named_buffers()))
    return functional_call(g.embedder, state, (image * nonface, nonface))


def train_step(models: dict, optimizers: dict, batch: dict,
               config: TrainConfig | dict | None = None) -> dict[str, float]:
    """One D update and one G(+E) update; returns the loss values as floats."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config or {})
    g: NeuralGenerator = models["G"]
    d: MultiScaleDiscriminator | None = models.get("D")
    for k in ("render", "mask", "hint", "target"):
        if k not in batch:
            raise KeyError(f"train_step: batch has no {k!r}")
    render, mask, hint, target = batch["render"], batch["mask"], batch["hint"], batch["target"]
    use_d = d is not None and (cfg.w_adv > 0 or cfg.w_per > 0 or cfg.w_style > 0)
    out: dict[str, float] = {}

    g.train()
    y = g(render, mask, hint)
    y_prev = None
    if "prev_render" in batch:
        y_prev = g(batch["prev_render"], batch["prev_mask"], batch.get("prev_hint", hint))
    elif "prev_output" in batch:
        y_prev = batch["prev_output"].detach()

    # ---- discriminator
    if use_d:
        d.train()
        d.requires_grad_(True)
        opt_d = optimizers["D"]
        opt_d.zero_grad(set_to_none=True)
        real = d(target, render, mask)
        fake = d(y.detach(), render, mask)
        loss_d = L.hinge_d_loss(real, fake)
        loss_d.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(d.parameters(), cfg.grad_clip)
        opt_d.step()
        out["d_loss"] = float(loss_d.detach())
        out["d_real"] = float(sum(s[-1].detach().mean() for s in real) / len(real))
        out["d_fake"] = float(sum(s[-1].detach().mean() for s in fake) / len(fake))

    # ---- generator (+ embedder)
    terms: dict[str, torch.Tensor] = {}
    def image_terms(out_, target_, mask_):
        w = L.face_weight(mask_, cfg.background_weight, cfg.face_dilate)
        ssim_ = L.ssim_loss(out_, target_, w) if cfg.w_ssim > 0 else None
        return L.reconstruction_loss(out_, target_, w), ssim_

    rec, ssim = image_terms(y, target, mask)
    if y_prev is not None and "prev_render" in batch and "prev_target" in batch:
        rec_p, ssim_p = image_terms(y_prev, batch["prev_target"], batch["prev_mask"])
        rec = 0.5 * (rec + rec_p)
        ssim = None if ssim is None else 0.5 * (ssim + ssim_p)
    terms["rec"] = rec
    if ssim is not None:
        terms["ssim"] = ssim
    if use_d:
        d.eval()                      # spectral norm: use the current u, v without updating them
        d.requires_grad_(False)
        fake = d(y, render, mask)
        with torch.no_grad():
            real = d(target, render, mask)
        if cfg.w_adv > 0:
            terms["adv"] = L.hinge_g_loss(fake)
        if cfg.w_per > 0:
            terms["per"] = L.feature_perceptual_loss(real, fake)
        if cfg.w_style > 0:
            terms["style"] = L.style_loss(real, fake)
    if cfg.w_app > 0:
        nonface = 1.0 - mask
        with torch.no_grad():
            e_real = _embed_frozen(g, hint, nonface)
        terms["app"] = L.appearance_loss(_embed_frozen(g, y, nonface), e_real)
    if cfg.w_tmp > 0 and y_prev is not None and "flow" in batch:
        terms["tmp"] = L.temporal_loss(y, y_prev, batch["flow"], batch.get("visible"))

    weights = {"rec": cfg.w_rec, "ssim": cfg.w_ssim, "adv": cfg.w_adv, "per": cfg.w_per, "style": cfg.w_style,
               "app": cfg.w_app, "tmp": cfg.w_tmp}
    total = sum(weights[k] * v for k, v in terms.items())
    opt_g = optimizers["G"]
    opt_g.zero_grad(set_to_none=True)
    total.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(g.parameters(), cfg.grad_clip)
    opt_g.step()
    if use_d:
        d.requires_grad_(True)
        d.train()
    out["g_total"] = float(total.detach())
    out.update({k: float(v.detach()) for k, v in terms.items()})
    return out
