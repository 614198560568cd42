"""The `Frame` record: everything one frame of the loop reads and produces.

Stages read some fields and write others; nothing is kept in globals. Images are RGB uint8
(H, W, 3) everywhere inside the engine; capture converts from OpenCV's BGR once and the
window sink converts back for display.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Frame:
    index: int                      # capture order, 0-based, counts dropped frames too
    t_capture: float                # time.perf_counter() when the source delivered it
    image: np.ndarray | None = None  # driver image, RGB uint8 (H, W, 3); None for scripted sources
    state: Any = None               # realtime.face.state.FaceState once estimated (or scripted)
    landmarks: np.ndarray | None = None  # (478, 3) float32 driver landmarks, pixel units, or None
    tracked: bool = False           # landmarks came with the frame (a tracked clip): not tracked again
    teeth: float | None = None      # a tracked clip's teeth share (realtime.face.teeth); None: read from the image
    tongue: float | None = None     # ... and its tongue share, alike
    vertices: np.ndarray | None = None   # (V, 3) posed avatar mesh in crop pixels
    gbuf: Any = None                # kernels.GBuffer of the render stage
    render: np.ndarray | None = None     # (S, S, 3) float32 RGB 0..255 face crop from `generate`
    output: np.ndarray | None = None     # (H, W, 3) uint8 RGB frame for the sink
    face_points: np.ndarray | None = None  # (N, 2) float32 output px: the face shown (the preview's dots)
    timings: dict[str, float] = field(default_factory=dict)  # stage name -> milliseconds
    notes: dict[str, str] = field(default_factory=dict)      # one-line states for the overlay
    t_sink: float | None = None     # time.perf_counter() after the sink accepted the frame

    def latency_ms(self) -> float | None:
        """Capture→sink latency of this frame in milliseconds, once it has reached the sink."""
        if self.t_sink is None:
            return None
        return (self.t_sink - self.t_capture) * 1000.0
