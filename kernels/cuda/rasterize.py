"""CUDA twin of `kernels.rasterize` (``rasterize.cu``): per-triangle setup, coverage by 64-bit
atomicMin on (depth, triangle index) keys, per-pixel resolve. Coverage, tri_id, bary and depth
are bit-identical to the numba twin (see ``rasterize.cu`` and ``kernels/cuda/__init__.py``)."""
from __future__ import annotations

import numpy as np

from .._dispatch import register
from ..gbuffer import GBuffer
from ..rasterize import MAX_COORD_PX, SUBPIXEL_BITS
from ._runtime import Runtime, commit, cupy_twin, launch_1d, scratch

__all__ = ["twin"]

#: Columns of the per-triangle int64 / float64 records (NI / NF in rasterize.cu).
_NI, _NF = 14, 9
#: rasterize_cover block: one 32-lane warp per triangle, this many triangles per block.
_TRIS_PER_BLOCK = 4


def twin(rt: Runtime, vertices, triangles, height: int, width: int, out: GBuffer) -> GBuffer:
    """Twin signature (vertices, triangles, height, width, out) -> out, run on `rt`: vertices
    (V, 3) float32, triangles (T, 3) int32; out's fields (H, W) int32, (H, W, 2) float32,
    (H, W) float32 are fully overwritten. Inputs may be non-contiguous."""
    xp = rt.xp
    n_tri = int(triangles.shape[0])
    n_pix = height * width
    keys = xp.full(n_pix, np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)  # EMPTY_KEY
    tf = xp.empty((n_tri, _NF), dtype=np.float64)
    if n_tri > 0:
        ti = xp.empty((n_tri, _NI), dtype=np.int64)
        setup_args = (
            xp.ascontiguousarray(vertices),
            xp.ascontiguousarray(triangles),
            np.int32(n_tri),
            np.int32(height),
            np.int32(width),
            np.int32(SUBPIXEL_BITS),
            np.float64(MAX_COORD_PX),
            ti,
            tf,
        )
        launch_1d(rt, "rasterize", "rasterize_setup", n_tri, setup_args)
        grid = ((n_tri + _TRIS_PER_BLOCK - 1) // _TRIS_PER_BLOCK,)
        cover_args = (ti, tf, np.int32(n_tri), np.int32(width), np.int32(SUBPIXEL_BITS), keys)
        rt.launch("rasterize", "rasterize_cover", grid, (32, _TRIS_PER_BLOCK), cover_args)
    bufs = [scratch(rt, a) for a in (out.tri_id, out.bary, out.depth)]
    launch_1d(rt, "rasterize", "rasterize_resolve", n_pix, (keys, tf, np.int32(n_pix), np.int32(width), *bufs))
    for a, b in zip((out.tri_id, out.bary, out.depth), bufs):
        commit(a, b)
    return out


register("rasterize", "cupy", cupy_twin(twin))
