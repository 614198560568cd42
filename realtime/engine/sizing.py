"""The render size: how many pixels a side the face crop is drawn with, chosen once per engine.

A profile stores its crop at S (256² by default), but the crop box may cover far more output
pixels than that (a face that fills a 512² output: a ~600 px box): pasted back through an affine
the crop is then upsampled and the face looks soft. So the engine draws the crop at

    S' = the crop box's side in output pixels / MAX_UPSAMPLE, rounded up to a multiple of 16,
         never below S, at most `max_size` (the CPU budget: render, generate and smooth cost
         grows with S'²),

and every stage below it sees the profile at S' (`realtime.mesh.scaled.ScaledProfile`). The
box is fixed in the avatar image (the head size is fixed by default; with ``follow_scale`` the
face moves inside the box, the box does not), so the choice is made once, from the output size
and the profile's framing. `EngineOptions.render_size` overrides it (0: automatic).

Resolution alone is not enough: the face reaches the output through two bilinear lookups
(texture → crop, crop → output), which at the random sub-pixel phases of a moving mesh keep
only ~0.4 of the photo's face-region Laplacian variance even at S' ≈ the box's output side. So
where the paste-back shows the crop at about its own resolution or larger and the photo has
about as many texels as the output has pixels, the texture is prefiltered once to compensate
(`texture_sharpen`, `realtime.mesh.rig.sharpen_texture`); where the face is small in the output
(the paste-back minifies) nothing is changed.
"""
from __future__ import annotations

import math

import numpy as np

from realtime.core.errors import PuppeteerError
from realtime.core.profile import ProfileLike
from realtime.image.composite import default_output_size, fit_affine
from realtime.mesh.scaled import MIN_RENDER_SIZE

__all__ = ["RenderSizeError", "MAX_UPSAMPLE", "MAX_RENDER_SIZE", "RENDER_MULTIPLE", "SHARPEN",
           "SHARPEN_FROM", "DENSITY_FROM", "crop_side_in_output", "choose_render_size", "texture_sharpen"]

MAX_UPSAMPLE = 1.1      # the paste-back magnifies the crop by at most this much
RENDER_MULTIPLE = 16    # S' is a multiple of this (kernel tiles, the neural glue's resizes)
MAX_RENDER_SIZE = 576   # the CPU budget (measured on the 2-core machine; see choose_render_size)
SHARPEN = 0.25          # texture interpolation compensation at full strength (rig.sharpen_texture)
SHARPEN_FROM = 0.85     # paste-back magnification where it starts (full strength from 1.0)
DENSITY_FROM = 0.7      # texels per output pixel where it starts (full strength from 1.0)


class RenderSizeError(PuppeteerError, ValueError):
    """A render size (or texture sharpening) the engine cannot use."""


def crop_side_in_output(profile: ProfileLike, output_size: tuple[int, int] | None) -> float:
    """The side of the profile's crop box in output pixels (the photo is fitted, letter-boxed,
    to `output_size`; None: the engine's default output size)."""
    h, w = profile["image"].shape[:2]
    size = default_output_size((w, h)) if output_size is None else output_size
    out_from_image = float(fit_affine((w, h), (int(size[0]), int(size[1])))[0, 0])
    a = np.asarray(profile["crop_from_image"], np.float64)
    return float(profile.crop_size) / float(np.hypot(a[0, 0], a[0, 1])) * out_from_image


def choose_render_size(profile: ProfileLike, output_size: tuple[int, int] | None,
                       requested: int | None = None, max_size: int = MAX_RENDER_SIZE,
                       max_upsample: float = MAX_UPSAMPLE) -> int:
    """S': `requested` when given (at least MIN_RENDER_SIZE, else RenderSizeError), otherwise the
    crop box's output side / `max_upsample` rounded up to RENDER_MULTIPLE, clamped to
    [profile.crop_size, max(max_size, profile.crop_size)]: a profile is never drawn coarser
    than it was enrolled, and a face small in the output keeps S (frame-identical output).

    The default cap, 576, is the CPU budget of issue #13 with room to spare: on the 2-core
    machine render + generate (warp) + smooth cost ≈ 4.3e-5 ms per crop pixel (3.8 ms at 256²,
    13.6 ms at 576², 16.1 ms at 640²); d10 driving a self-drive profile of d10 at 512² output
    (a box of 595 px, S' = 544) keeps 30 fps with p95 capture→sink 26 ms at 544 and 576, but
    31 ms at 640 — too close to the 33 ms budget for the tiers' own growth."""
    s = int(profile.crop_size)
    if requested is not None:
        if int(requested) < MIN_RENDER_SIZE:
            raise RenderSizeError(f"render size {requested} is too small: use at least "
                                  f"{MIN_RENDER_SIZE}, or leave it unset to follow the output")
        return int(requested)
    want = crop_side_in_output(profile, output_size) / max_upsample
    want = int(math.ceil(want / RENDER_MULTIPLE - 1e-9)) * RENDER_MULTIPLE
    return max(s, min(want, max(int(max_size), s)))


def texture_sharpen(magnification: float, density: float, strength: float = SHARPEN) -> float:
    """The texture's interpolation compensation (`realtime.mesh.rig.sharpen_texture`) for a
    paste-back that magnifies the crop by `magnification` (output px per crop px), with a
    texture of `density` texels per output pixel: `strength` × two ramps, each 0 below and 1
    above its range:

    - magnification SHARPEN_FROM … 1: a minified crop shows no interpolation blur (and a face
      small in the output keeps its output unchanged);
    - density DENSITY_FROM … 1: where the photo has fewer texels than the output has pixels, the
      output is a magnified photo — as soft as the photo itself at that scale — and sharpening
      the texels would only ring (the astronaut's 512² photo in a 1024² output: 3× the
      reference's Laplacian variance).

    SHARPEN = 0.25 restores the photo where the avatar rests on it (d10 self-drive at 512²,
    S' = 544, density 1.0, still frames: 0.96× the photo's face-region Laplacian variance;
    0.30 and 0.35 overshoot to 1.10× and 1.27×). Its price on d10 → s1 (640², S' = 400): the
    bench's flow warping error 0.0101 → 0.0112 (0.0095 at 256² without it), mostly the metric
    reading sharper content (a per-frame sharpening of the 256² output to the same Laplacian
    variance reads 0.0104); `texture_sharpen=0` turns it off."""
    if strength < 0:
        raise RenderSizeError(f"texture sharpening must be ≥ 0, got {strength}")
    t = (float(magnification) - SHARPEN_FROM) / (1.0 - SHARPEN_FROM)
    u = (float(density) - DENSITY_FROM) / (1.0 - DENSITY_FROM)
    return float(strength) * float(np.clip(t, 0.0, 1.0)) * float(np.clip(u, 0.0, 1.0))
