"""CUDA twin of `kernels.interpolate` (``interpolate.cu``): one thread per pixel."""
from __future__ import annotations

import numpy as np

from .._dispatch import register
from ._runtime import Runtime, commit, cupy_twin, gbuffer_args, launch_1d, scratch

__all__ = ["twin"]


def twin(rt: Runtime, gbuf, triangles, attributes, out):
    """Twin signature (gbuf, triangles, attributes, out) -> out, run on `rt`: gbuf fields (H, W)
    int32 / (H, W, 2) float32, triangles (T, 3) int32, attributes (V, C) float32, out (H, W, C)
    float32 (fully overwritten). Inputs may be non-contiguous."""
    xp = rt.xp
    hh, ww = gbuf.tri_id.shape
    nc = attributes.shape[1]
    buf = scratch(rt, out)
    args = (
        *gbuffer_args(rt, gbuf, triangles),
        xp.ascontiguousarray(attributes),
        np.int32(nc),
        np.int32(hh * ww),
        buf,
    )
    launch_1d(rt, "interpolate", "interpolate", hh * ww, args)
    commit(out, buf)
    return out


register("interpolate", "cupy", cupy_twin(twin))
