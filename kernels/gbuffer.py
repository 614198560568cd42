"""The G-buffer: what `rasterize` writes and what `interpolate`, `flow3d` read.

Conventions shared by every kernel (CPU and CUDA twins alike):
- Pixel (x, y) has its centre at the integer coordinates (x, y) (OpenCV's convention), so a
  vertex at (10.0, 20.0) sits exactly on the centre of column 10, row 20.
- Depth: smaller z is nearer the camera (MediaPipe's convention). Empty pixels hold +inf.
- `bary[..., 0]`, `bary[..., 1]` are the weights of the triangle's 2nd and 3rd vertices; the
  first vertex's weight is `1 - b0 - b1`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class GBuffer:
    """Per-pixel surface ids and coordinates for an H×W target.

    tri_id: (H, W) int32, index into the triangle array, -1 where nothing was drawn.
    bary:   (H, W, 2) float32, barycentric weights of vertices 1 and 2 of that triangle.
    depth:  (H, W) float32, interpolated z of the nearest surface, +inf where empty.
    """

    tri_id: np.ndarray
    bary: np.ndarray
    depth: np.ndarray

    @classmethod
    def empty(cls, height: int, width: int, xp=np) -> GBuffer:
        """Allocate a cleared G-buffer with the array module `xp` (numpy or cupy)."""
        return cls(
            tri_id=xp.full((height, width), -1, dtype=xp.int32),
            bary=xp.zeros((height, width, 2), dtype=xp.float32),
            depth=xp.full((height, width), xp.inf, dtype=xp.float32),
        )

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.tri_id.shape
        return int(h), int(w)

    def coverage(self):
        """Boolean (H, W) mask of drawn pixels."""
        return self.tri_id >= 0
