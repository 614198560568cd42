"""Square crops of an image, border replicated (enrollment's face crops, the engine's start-up
framing of a profile's photo)."""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["square_crop"]


def square_crop(img: np.ndarray, cx: float, cy: float, side: float, size: int,
            interpolation=None) -> tuple[np.ndarray, float, np.ndarray]:
    """A size×size resample of the square box (centre, side) of `img`, border replicated;
    returns (crop, scale, origin) with crop px = (image px − origin + 0.5)·scale − 0.5."""
    side_i = max(2, int(np.ceil(side)))
    x0 = int(np.floor(cx - side_i / 2.0))
    y0 = int(np.floor(cy - side_i / 2.0))
    h, w = img.shape[:2]
    pad = [max(0, -y0), max(0, y0 + side_i - h), max(0, -x0), max(0, x0 + side_i - w)]
    sub = img[max(0, y0):min(h, y0 + side_i), max(0, x0):min(w, x0 + side_i)]
    if any(pad):
        sub = cv2.copyMakeBorder(sub, *pad, borderType=cv2.BORDER_REPLICATE)
    scale = size / side_i
    if interpolation is None:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = cv2.resize(sub, (size, size), interpolation=interpolation)
    return crop, scale, np.array([x0, y0], np.float64)
