"""The multi-scale discriminator D of the neural tier's training (pix2pixHD PatchGANs on an
image pyramid, conditioned on the render and the face mask, spectral norm; see
`realtime.tiers.neural.model` for the reading of the papers). Training only: D never runs live.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from realtime.tiers.neural.model import NeuralConfig

__all__ = ["MultiScaleDiscriminator", "NLayerDiscriminator"]


def _sn(m: nn.Module, on: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(m) if on else m


class NLayerDiscriminator(nn.Module):
    """pix2pixHD PatchGAN; returns the list of every layer's output (last = logits)."""

    def __init__(self, cin: int, width: int = 32, n_layers: int = 3, spectral_norm: bool = True):
        super().__init__()
        blocks = [nn.Sequential(_sn(nn.Conv2d(cin, width, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2))]
        c = width
        for _ in range(1, n_layers):
            cn = min(c * 2, 512)
            blocks.append(nn.Sequential(_sn(nn.Conv2d(c, cn, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2)))
            c = cn
        cn = min(c * 2, 512)
        blocks.append(nn.Sequential(_sn(nn.Conv2d(c, cn, 3, 1, 1), spectral_norm), nn.LeakyReLU(0.2)))
        blocks.append(nn.Sequential(_sn(nn.Conv2d(cn, 1, 3, 1, 1), spectral_norm)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(nn.Module):
    """K PatchGANs on the image pyramid (pix2pixHD). forward(image, render, mask) returns,
    per scale, the list of layer outputs: features = all but last, logits = last."""

    def __init__(self, cfg: NeuralConfig | None = None):
        super().__init__()
        cfg = cfg or NeuralConfig()
        self.conditional = cfg.d_conditional
        cin = 3 + (4 if cfg.d_conditional else 0)
        self.nets = nn.ModuleList(
            NLayerDiscriminator(cin, cfg.d_width, cfg.d_layers, cfg.d_spectral_norm) for _ in range(cfg.d_scales))

    def forward(self, image, render=None, mask=None) -> list[list[torch.Tensor]]:
        x = torch.cat([image, render, mask], dim=1) if self.conditional else image
        out = []
        for k, net in enumerate(self.nets):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(net(x))
        return out
