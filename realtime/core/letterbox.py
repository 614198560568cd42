"""Fitting a picture into a frame of another shape without distorting it."""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["letterbox"]


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` (H, W, 3) uint8 scaled to fit inside `size` (width, height), keeping its aspect
    ratio, centred on black (the reenactment's output fits its photo the same way)."""
    h, w = image.shape[:2]
    dw, dh = size
    s = min(dw / w, dh / h)
    fw, fh = max(1, min(dw, round(w * s))), max(1, min(dh, round(h * s)))
    scaled = cv2.resize(image, (fw, fh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    if (fw, fh) == (dw, dh):
        return scaled
    out = np.zeros((dh, dw) + image.shape[2:], image.dtype)
    x, y = (dw - fw) // 2, (dh - fh) // 2
    out[y:y + fh, x:x + fw] = scaled
    return out
