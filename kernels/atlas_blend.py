"""`atlas_blend`: the atlas tier's per-pixel blend of keyframe views over one G-buffer."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import lookup, register
from ._sampling import FASTMATH, bilinear_into
from ._validate import check_array, check_gbuffer, check_indices, check_same_module, output_array

__all__ = ["atlas_blend"]


def atlas_blend(gbuf, triangles, head_start: int, ref_uv, ref_image, keys, key_uv, key_images,
                weights, alpha, out=None):
    """Blend keyframe views of a face on the avatar's rasterised mesh (DESIGN §5, tier 2).

    Per covered pixel, with (b0, b1, b2) its barycentrics in triangle t:

    - head-layer triangles (t ≥ `head_start`) sample `ref_image` at the interpolated `ref_uv`;
    - the others blend the keyframes `keys[j]`, each sampled at its own interpolated
      `key_uv[keys[j]]`, with weight (1 − am − ae − ar)·weights[j, 0] + am·weights[j, 1] +
      ae·weights[j, 2], plus `ref_image` at `ref_uv` with weight ar, where (am, ae, ar) are the
      interpolated region alphas `alpha` (mouth, eyes, edge);
    - empty pixels get 0.

    Args:
        gbuf: GBuffer (H, W) of the posed mesh.
        triangles: (T, 3) int32 vertex indices.
        head_start: first head-layer triangle.
        ref_uv: (V, 2) float32 coordinates in `ref_image`; ref_image: (h, w, 3) uint8 or float32.
        keys: (J,) int64 keyframes that carry weight; key_uv: (N, V, 2) float32 coordinates of
            every vertex in each keyframe; key_images: (N, A, A, 3) uint8 keyframe crops.
        weights: (J, 3) float32 (face, mouth, eyes) weight of each of `keys`.
        alpha: (V, 3) float32 per-vertex region alphas.
        out: optional (H, W, 3) float32, fully overwritten.

    Returns:
        (H, W, 3) float32 in the images' value range.
    """
    k = "atlas_blend"
    h, w = check_gbuffer(k, "gbuf", gbuf)
    check_array(k, "triangles", triangles, ("T", 3), [np.int32])
    v = check_array(k, "ref_uv", ref_uv, ("V", 2), [np.float32])[0]
    check_array(k, "ref_image", ref_image, ("h", "w", 3), [np.uint8, np.float32])
    n = check_array(k, "key_uv", key_uv, ("N", v, 2), [np.float32])[0]
    check_array(k, "key_images", key_images, (n, "A", "A", 3), [np.uint8])
    j = check_array(k, "keys", keys, ("J",), [np.int64])[0]
    check_array(k, "weights", weights, (j, 3), [np.float32])
    check_array(k, "alpha", alpha, (v, 3), [np.float32])
    for name, x in (("triangles", triangles), ("ref_uv", ref_uv), ("ref_image", ref_image),
                    ("keys", keys), ("key_uv", key_uv), ("key_images", key_images),
                    ("weights", weights), ("alpha", alpha)):
        check_same_module(k, "gbuf.tri_id", gbuf.tri_id, name, x)
    if min(ref_image.shape[:2]) == 0 or (n and min(key_images.shape[1:3]) == 0):
        raise ValueError(f"{k}: images must be non-empty, got ref_image {tuple(ref_image.shape)}, "
                         f"key_images {tuple(key_images.shape)}")
    check_indices(k, "triangles", triangles, v)
    check_indices(k, "keys", keys.reshape(-1, 1), n)
    impl = lookup(k, gbuf.tri_id)
    out = output_array(k, out, "gbuf.tri_id", gbuf.tri_id, (h, w, 3), np.float32)
    return impl(gbuf, triangles, int(head_start), ref_uv, ref_image, keys, key_uv, key_images,
                weights, alpha, out)


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def _atlas_blend_numba(tri_id, bary, triangles, head_lo, ref_uv, ref_img, keys, key_uv, key_imgs,
                       weights, alpha, out):
    """One pass over the G-buffer. Head-layer triangles (index ≥ head_lo) sample the
    reference image at `ref_uv`; the others blend the keyframes `keys` (J,) sampled at their
    own `key_uv[k]` coordinates with weight (1 − am − ae − ar)·weights[j, 0] +
    am·weights[j, 1] + ae·weights[j, 2], plus the reference image with weight ar; (am, ae, ar)
    are the interpolated region alphas (V, 3). Empty pixels get 0."""
    hh = tri_id.shape[0]
    ww = tri_id.shape[1]
    nk = keys.shape[0]
    for y in prange(hh):
        tmp = np.empty(3, np.float32)
        for x in range(ww):
            t = tri_id[y, x]
            if t < 0:
                out[y, x, 0] = 0.0
                out[y, x, 1] = 0.0
                out[y, x, 2] = 0.0
                continue
            i0 = triangles[t, 0]
            i1 = triangles[t, 1]
            i2 = triangles[t, 2]
            b1 = bary[y, x, 0]
            b2 = bary[y, x, 1]
            b0 = np.float32(1.0) - b1 - b2
            if t >= head_lo:
                u = b0 * ref_uv[i0, 0] + b1 * ref_uv[i1, 0] + b2 * ref_uv[i2, 0]
                v = b0 * ref_uv[i0, 1] + b1 * ref_uv[i1, 1] + b2 * ref_uv[i2, 1]
                bilinear_into(ref_img, u, v, out[y, x])
                continue
            am = b0 * alpha[i0, 0] + b1 * alpha[i1, 0] + b2 * alpha[i2, 0]
            ae = b0 * alpha[i0, 1] + b1 * alpha[i1, 1] + b2 * alpha[i2, 1]
            ar = b0 * alpha[i0, 2] + b1 * alpha[i1, 2] + b2 * alpha[i2, 2]
            af = np.float32(1.0) - am - ae - ar
            r = np.float32(0.0)
            g = np.float32(0.0)
            bl = np.float32(0.0)
            if ar > np.float32(1e-4):
                u = b0 * ref_uv[i0, 0] + b1 * ref_uv[i1, 0] + b2 * ref_uv[i2, 0]
                v = b0 * ref_uv[i0, 1] + b1 * ref_uv[i1, 1] + b2 * ref_uv[i2, 1]
                bilinear_into(ref_img, u, v, tmp)
                r += ar * tmp[0]
                g += ar * tmp[1]
                bl += ar * tmp[2]
            for j in range(nk):
                w = af * weights[j, 0] + am * weights[j, 1] + ae * weights[j, 2]
                if w <= np.float32(1e-4):
                    continue
                k = keys[j]
                u = b0 * key_uv[k, i0, 0] + b1 * key_uv[k, i1, 0] + b2 * key_uv[k, i2, 0]
                v = b0 * key_uv[k, i0, 1] + b1 * key_uv[k, i1, 1] + b2 * key_uv[k, i2, 1]
                bilinear_into(key_imgs[k], u, v, tmp)
                r += w * tmp[0]
                g += w * tmp[1]
                bl += w * tmp[2]
            out[y, x, 0] = r
            out[y, x, 1] = g
            out[y, x, 2] = bl


def _atlas_blend_cpu(gbuf, triangles, head_start, ref_uv, ref_image, keys, key_uv, key_images,
                     weights, alpha, out):
    c = np.ascontiguousarray
    _atlas_blend_numba(c(gbuf.tri_id), c(gbuf.bary), c(triangles), head_start, c(ref_uv),
                       c(ref_image), c(keys), c(key_uv), c(key_images), c(weights), c(alpha), out)
    return out


register("atlas_blend", "numpy", _atlas_blend_cpu)
