"""Composite stage: paste the face crop back into the avatar's full frame (AP-GAN eq. 13).

The background is the target photo fitted to the output size; the crop goes back through the
inverse of the crop transform, blended with the profile's mirrored-sigmoid mask. Since the
head layer keeps the crop's border fixed, crop and background agree at the seam.
"""
from __future__ import annotations

import cv2
import numpy as np

from kernels import composite, mirrored_sigmoid_mask
from realtime.core.context import CpuContext
from realtime.core.frame import Frame
from realtime.face.topology import FACE_OVAL, N_LANDMARKS, NOSE_TIP

DEFAULT_MAX_SIDE = 640  # a video-call frame; the paste-back cost grows with the output area


def fit_affine(src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> np.ndarray:
    """(2, 3) affine that scales an image of size src_wh to fit inside dst_wh, centred
    (letter-boxed)."""
    sw, sh = src_wh
    dw, dh = dst_wh
    s = min(dw / sw, dh / sh)
    return np.array([[s, 0, (dw - s * sw) / 2.0], [0, s, (dh - s * sh) / 2.0]], np.float64)


def default_output_size(image_wh: tuple[int, int]) -> tuple[int, int]:
    """The output size when none is asked: the photo's own, at most DEFAULT_MAX_SIDE on its
    long side."""
    w, h = image_wh
    s = min(1.0, DEFAULT_MAX_SIDE / max(w, h))
    return int(round(w * s)), int(round(h * s))


def compose_affine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a ∘ b for (2, 3) affines: x ↦ a(b(x))."""
    a3 = np.vstack([a, [0, 0, 1]])
    b3 = np.vstack([b, [0, 0, 1]])
    return (a3 @ b3)[:2]


def invert_affine(a: np.ndarray) -> np.ndarray:
    return np.linalg.inv(np.vstack([a, [0, 0, 1]]))[:2]


#: The paste-back mask of a head that has moved (`kernels.mirrored_sigmoid_mask`, AP-GAN eq. 12):
#: its alpha at a 256 px crop (per pixel; scaled with the crop) and its gamma (where it falls
#: through one half, of the crop's half side). Under AP-GAN's (0.08, 0.7), which a profile
#: carries, the crop is under one half from 0.7 of the half side out, and a head turned far
#: (d11's turns, frames 203-224) had its hair and forehead half-faded over the photo's own at
#: rest there: a see-through second head on every photo profile. The head layer's border is
#: the crop's and does not move, so the crop meets the photo at its edge without the wide
#: feather. Near rest the profile's own mask stays (the photo is the sharper of the two). The
#: cost, on d10's self-drive (`bench --self-drive`, whose head is past PASTE_MOVE most of the
#: time): PSNR against the real frames 22.49 -> 21.74 dB, the head layer moving the background
#: in that band where the real one stays; jitter 0.93 -> 0.69 px, FWE 0.0075 and the expression
#: fidelity unchanged. A second head is worse than a background that sways a little.
PASTE_MASK = (0.15, 0.9)
#: how far the head has moved (px of a 256 px crop, whatever size it is drawn at: the largest
#: move of the upper half of its outline from the photo's, where the jaw does not count) over
#: which the paste-back goes from the profile's mask to PASTE_MASK's (smoothstep), in
#: PASTE_LEVELS steps (each mask made once, on the device)
PASTE_MOVE = (2.0, 12.0)
PASTE_LEVELS = 8


def paste_mask(size: int) -> np.ndarray:
    """(size, size) float32: the paste-back mask of a `size`² crop (`PASTE_MASK`)."""
    alpha, gamma = PASTE_MASK
    return mirrored_sigmoid_mask(size, alpha=alpha * 256.0 / size, gamma=gamma)


class CompositeStage:
    """Paste-back on the engine's device context `ctx` (default: the CPU). On CUDA the
    background and mask live on the GPU and the finished uint8 frame is downloaded once for
    the sink: it is no bigger than the float32 crop would be, and the CPU is spared the
    paste-back (the costliest CPU stage at 640×480)."""

    name = "composite"
    device_ready = True

    def __init__(self, profile, output_size: tuple[int, int] | None = None, ctx=None,
                 render=None):
        """`profile`: the avatar profile; `render`: the profile as the generators render it
        (a `realtime.mesh.scaled.ScaledProfile` when the crop is drawn at another size than
        the profile's; default: `profile` itself). The crop is pasted through `render`'s
        crop transform and mask; `frame_to_crop` stays output px → the *profile's* crop px
        (what a measurement of the profile's crop box, e.g. bench.quality, cuts out)."""
        self.ctx = ctx if ctx is not None else CpuContext()
        render = profile if render is None else render
        image = profile["image"]
        h, w = image.shape[:2]
        if output_size is None:
            output_size = default_output_size((w, h))
        self.size: tuple[int, int] = (int(output_size[0]), int(output_size[1]))
        out_from_image = fit_affine((w, h), self.size)
        self.background = cv2.warpAffine(image, out_from_image, self.size, flags=cv2.INTER_AREA
                                         if out_from_image[0, 0] < 1 else cv2.INTER_LINEAR)
        image_from_out = invert_affine(out_from_image)
        self.frame_to_crop = compose_affine(profile["crop_from_image"].astype(np.float64),
                                            image_from_out).astype(np.float32)
        self.frame_to_render = compose_affine(render["crop_from_image"].astype(np.float64),
                                              image_from_out).astype(np.float32)
        self._render_to_frame = invert_affine(self.frame_to_render.astype(np.float64)).astype(np.float32)
        self._background = self.ctx.upload(self.background)   # the CPU: the same array
        # the profile's mask at rest, PASTE_MASK's (or the profile's where it is wider) once the
        # head has moved (`paste_level`)
        self._soft = np.asarray(render["paste_mask"], np.float32)
        self._firm = np.maximum(self._soft, paste_mask(self._soft.shape[0]))
        lm = np.asarray(profile["landmarks"], np.float64)
        oval = np.array([i for i in FACE_OVAL if lm[i, 1] < lm[NOSE_TIP, 1]])
        a = np.asarray(render["crop_from_image"], np.float64)
        self._oval, self._rest = oval, (lm[oval, :2] @ a[:, :2].T + a[:, 2]).astype(np.float32)
        self._masks: dict[int, object] = {}
        self.mask = self._mask(0)
        self.passthrough = False  # toggled by the user (hotkey): show the driver's own camera
        self.download = True      # False: leave frame.output on the device for a later stage

    def __call__(self, frame: Frame) -> None:
        if self.passthrough and frame.image is not None:
            frame.output = cv2.resize(frame.image, self.size, interpolation=cv2.INTER_AREA)
            if frame.landmarks is not None:      # the driver's own face, stretched as the frame is
                ih, iw = frame.image.shape[:2]
                frame.face_points = (np.asarray(frame.landmarks, np.float32)[:, :2]
                                     * np.array([self.size[0] / iw, self.size[1] / ih], np.float32))
            return
        if frame.vertices is not None and frame.state is not None and frame.state.present:
            v = np.asarray(frame.vertices, np.float32)[:N_LANDMARKS, :2]   # the avatar's face, render crop px
            frame.face_points = (v @ self._render_to_frame[:, :2].T + self._render_to_frame[:, 2]).astype(np.float32)
        ctx = self.ctx
        if frame.vertices is not None:
            self.mask = self._mask(self.paste_level(np.asarray(frame.vertices)))
        out = self._background.copy()
        out = composite(ctx.to_device(frame.render), out, self.frame_to_render, self.mask, out=out)
        frame.output = ctx.to_host(out) if self.download else out

    def paste_level(self, vertices: np.ndarray) -> int:
        """0 (the profile's mask) .. PASTE_LEVELS (PASTE_MASK's): how far the head of `vertices`
        (the posed mesh, render crop px) has moved from the photo's (`PASTE_MOVE`)."""
        moved = float(np.sqrt(((vertices[self._oval, :2] - self._rest) ** 2).sum(1).max()))
        moved *= 256.0 / self._soft.shape[0]
        lo, hi = PASTE_MOVE
        t = min(max((moved - lo) / (hi - lo), 0.0), 1.0)
        return int(round(t * t * (3.0 - 2.0 * t) * PASTE_LEVELS))

    def _mask(self, level: int):
        if level not in self._masks:
            w = level / PASTE_LEVELS
            self._masks[level] = self.ctx.upload(np.ascontiguousarray(self._soft + w * (self._firm - self._soft)))
        return self._masks[level]
