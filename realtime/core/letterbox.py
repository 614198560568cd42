"""Fitting a picture into a frame of another shape without distorting it."""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["letterbox", "letterbox_points"]


def _placement(src: tuple[int, int], dst: tuple[int, int]) -> tuple[int, int, int, int]:
    """(fitted width, fitted height, x, y) of a `src` (width, height) picture in `dst`."""
    (w, h), (dw, dh) = src, dst
    s = min(dw / w, dh / h)
    fw, fh = max(1, min(dw, round(w * s))), max(1, min(dh, round(h * s)))
    return fw, fh, (dw - fw) // 2, (dh - fh) // 2


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` (H, W, 3) uint8 scaled to fit inside `size` (width, height), keeping its aspect
    ratio, centred on black (the reenactment's output fits its photo the same way)."""
    h, w = image.shape[:2]
    dw, dh = size
    fw, fh, x, y = _placement((w, h), (dw, dh))
    scaled = cv2.resize(image, (fw, fh), interpolation=cv2.INTER_AREA if fw < w else cv2.INTER_LINEAR)
    if (fw, fh) == (dw, dh):
        return scaled
    out = np.zeros((dh, dw) + image.shape[2:], image.dtype)
    out[y:y + fh, x:x + fw] = scaled
    return out


def letterbox_points(points: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    """(N, 2) float32: `points` (pixels of a `src` (width, height) picture) where `letterbox`
    puts them in a `dst` frame."""
    fw, fh, x, y = _placement(src, dst)
    p = np.asarray(points, np.float32)[:, :2]
    return (p * np.array([fw / src[0], fh / src[1]], np.float32) + np.array([x, y], np.float32)).astype(np.float32)
