"""`disclose`: the visible label and the invisible provenance mark of an output frame, in one pass
(DESIGN §7b): the label sprite is alpha-blended over its box, then the mark's luminance offsets
are added to R, G and B with saturation. Integer arithmetic only, so the twins agree bit for
bit."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import lookup, register
from ._validate import check_array, check_same_module, output_array

__all__ = ["disclose"]


def disclose(image, mark=None, label=None, origin: tuple[int, int] = (0, 0), out=None):
    """``out = clip(blend(image, label) + mark)``, pixel by pixel.

    Args:
        image: (H, W, 3) uint8 frame.
        mark: (H, W) int8 luminance offsets added to every channel, saturating at 0 and 255;
            None: no mark.
        label: (h, w, 4) uint8 sprite, colour and alpha (0..255), blended at `origin` as
            ``(colour · alpha + pixel · (255 − alpha) + 127) // 255``; None: no label.
        origin: (y0, x0) of the sprite's top-left pixel; the sprite must lie inside the frame.
        out: optional (H, W, 3) uint8; may be `image` itself (in place), otherwise it must not
            overlap `image`.

    Returns:
        (H, W, 3) uint8.
    """
    k = "disclose"
    hh, ww, _ = check_array(k, "image", image, ("H", "W", 3), [np.uint8])
    if mark is not None:
        check_array(k, "mark", mark, (hh, ww), [np.int8])
        check_same_module(k, "image", image, "mark", mark)
    y0, x0 = (int(v) for v in origin)
    if label is not None:
        lh, lw, _ = check_array(k, "label", label, ("h", "w", 4), [np.uint8])
        check_same_module(k, "image", image, "label", label)
        if y0 < 0 or x0 < 0 or y0 + lh > hh or x0 + lw > ww:
            raise ValueError(f"{k}: label of shape ({lh}, {lw}) at origin ({y0}, {x0}) does not fit "
                             f"in the ({hh}, {ww}) image")
    impl = lookup(k, image)
    out = output_array(k, out, "image", image, (hh, ww, 3), np.uint8)
    return impl(image, mark, label, (y0, x0), out)


@njit(cache=True, nogil=True)
def _blend_label(out, label, y0, x0):
    """Blend the (h, w, 4) sprite over out[y0:y0+h, x0:x0+w], in place."""
    for ly in range(label.shape[0]):
        for lx in range(label.shape[1]):
            a = np.int32(label[ly, lx, 3])
            for c in range(3):
                v = np.int32(label[ly, lx, c]) * a + np.int32(out[y0 + ly, x0 + lx, c]) * (255 - a)
                out[y0 + ly, x0 + lx, c] = np.uint8((v + 127) // 255)


@njit(parallel=True, cache=True, nogil=True)
def _add_mark(out, mark):
    """out = clip(out + mark) on every channel, in place: per row, the mark is spread to the
    row's bytes and added in one flat loop (which LLVM vectorises; keep this body minimal, extra
    statements in the parallel loop halve its speed)."""
    hh, ww = out.shape[0], out.shape[1]
    o2 = out.reshape(hh, ww * 3)
    for y in prange(hh):
        buf = np.empty(ww * 3, np.int16)
        for x in range(ww):
            m = np.int16(mark[y, x])
            buf[3 * x] = m
            buf[3 * x + 1] = m
            buf[3 * x + 2] = m
        for i in range(ww * 3):
            v = np.int16(o2[y, i]) + buf[i]
            o2[y, i] = np.uint8(min(max(v, 0), 255))


def _disclose_cpu(image, mark, label, origin, out):
    buf = out if out.flags.c_contiguous else np.empty(out.shape, np.uint8)
    if buf is not image:
        np.copyto(buf, image)
    if label is not None:
        _blend_label(buf, np.ascontiguousarray(label), origin[0], origin[1])
    if mark is not None:
        _add_mark(buf, np.ascontiguousarray(mark))
    if buf is not out:
        out[...] = buf
    return out


register("disclose", "numpy", _disclose_cpu)
