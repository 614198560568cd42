"""CUDA twin of `kernels.atlas_blend` (``atlas_blend.cu``): one thread per pixel."""
from __future__ import annotations

import numpy as np

from .._dispatch import register
from ._runtime import Runtime, commit, cupy_twin, gbuffer_args, launch_1d, scratch

__all__ = ["twin"]


def twin(rt: Runtime, gbuf, triangles, head_start, ref_uv, ref_image, keys, key_uv, key_images, weights,
         alpha, out):
    """Twin signature (gbuf, triangles, head_start, ref_uv, ref_image, keys, key_uv, key_images,
    weights, alpha, out) -> out, run on `rt`: gbuf fields (H, W), triangles (T, 3) int32,
    head_start int, ref_uv (V, 2) float32, ref_image (h, w, 3) uint8 or float32, keys (J,) int64
    (valid indices into the N keyframes), key_uv (N, V, 2) float32, key_images (N, A, A, 3) uint8,
    weights (J, 3) float32, alpha (V, 3) float32; out (H, W, 3) float32 is fully overwritten.
    Inputs may be non-contiguous."""
    xp = rt.xp
    hh, ww = gbuf.tri_id.shape
    n_tri = triangles.shape[0]
    ref_h, ref_w = ref_image.shape[:2]
    # only t >= head_start matters, for 0 <= t < T: clamping keeps it and fits an int32
    head = min(max(int(head_start), 0), n_tri)
    buf = scratch(rt, out)
    kernel = "atlas_blend_u8" if ref_image.dtype == np.uint8 else "atlas_blend_f32"
    args = (
        *gbuffer_args(rt, gbuf, triangles),
        np.int32(head),
        xp.ascontiguousarray(ref_uv),
        xp.ascontiguousarray(ref_image),
        np.int32(ref_h),
        np.int32(ref_w),
        xp.ascontiguousarray(keys),
        np.int32(keys.shape[0]),
        xp.ascontiguousarray(key_uv),
        np.int32(key_uv.shape[1]),
        xp.ascontiguousarray(key_images),
        np.int32(key_images.shape[1]),
        xp.ascontiguousarray(weights),
        xp.ascontiguousarray(alpha),
        np.int32(hh * ww),
        buf,
    )
    launch_1d(rt, "atlas_blend", kernel, hh * ww, args)
    commit(out, buf)
    return out


register("atlas_blend", "cupy", cupy_twin(twin))
