"""The preview overlay: the face's points, fps and per-stage milliseconds drawn on a copy of a frame."""
from __future__ import annotations

import cv2
import numpy as np

from realtime.core.frame import Frame

#: OpenCV's Hershey fonts draw ASCII only (anything else comes out as "?"): the notes' symbols
_ASCII = str.maketrans({"²": "^2", "→": "->", "←": "<-", "×": "x", "°": " deg", "…": "...", "–": "-",
                        "—": "-", "’": "'", "“": '"', "”": '"'})


def _ascii(text: str) -> str:
    return text.translate(_ASCII).encode("ascii", "replace").decode("ascii")


def _wrapped(line: str, width: int, fits) -> list[str]:
    """`line` cut at spaces into pieces that `fits` (text → bool) within `width`, the later ones
    indented; a word wider than that stays whole (cut by the frame's edge)."""
    if fits(line) or " " not in line.strip():
        return [line]
    out: list[str] = []
    for word in line.split(" "):
        trial = word if not out else f"{out[-1]} {word}"
        if out and fits(trial):
            out[-1] = trial
        else:
            out.append(word if not out else f"  {word}")
    return out


def draw_overlay(image: np.ndarray, frame: Frame, fps: float | None) -> np.ndarray:
    """A copy of `image` (RGB uint8) with the preview overlay; `image` is not modified.

    Draws frame.face_points (if set: the face the output shows, in its pixels, which the
    compositor places: the avatar's in reenactment, the swapped face in swap, the driver's own in
    passthrough) as small green dots, and in the top-left corner, on a dark box: the fps, then one
    line per entry of frame.timings ("stage  1.2 ms") and their total, then frame.notes (the
    engine's states, e.g. the gains), each cut at spaces onto more lines where it is wider than
    the frame (a hotkey's notice ran off a 640 px window).
    """
    out = np.array(image, dtype=np.uint8, copy=True)
    h, w = out.shape[:2]
    pts = frame.face_points
    if pts is not None and len(pts):
        xy = np.asarray(pts, dtype=np.float32)[:, :2]
        xy = xy[np.isfinite(xy).all(axis=1)]
        px = np.round(xy).astype(np.int64)
        px = px[(px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)]
        for dy in (0, 1):  # 2x2 dots, vectorised (478 cv2.circle calls cost ~1 ms)
            for dx in (0, 1):
                out[np.minimum(px[:, 1] + dy, h - 1), np.minimum(px[:, 0] + dx, w - 1)] = \
                    (0, 255, 0)
    lines = [f"{fps:5.1f} fps" if fps is not None else "  --  fps"]
    if frame.timings:
        width = max(len(k) for k in frame.timings)
        lines += [f"{k:<{width}} {v:6.2f} ms" for k, v in frame.timings.items()]
        lines.append(f"{'total':<{width}} {sum(frame.timings.values()):6.2f} ms")
    lines += [str(v) for v in frame.notes.values()]
    lines = [_ascii(line) for line in lines]
    zoom = max(1.0, h / 480.0)  # readable on HD outputs too
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.4 * zoom, max(1, int(round(zoom)))
    line_h = int(round(14 * zoom))

    def fits(text: str) -> bool:
        return cv2.getTextSize(text, font, scale, thick)[0][0] <= w - 10

    lines = [piece for line in lines for piece in _wrapped(line, w - 10, fits)]
    text_w = max(cv2.getTextSize(s, font, scale, thick)[0][0] for s in lines)
    box = out[0:min(h, 6 + line_h * len(lines)), 0:min(w, text_w + 10)]
    box[:] = box // 3  # darken for contrast
    for i, s in enumerate(lines):
        cv2.putText(out, s, (5, line_h * (i + 1)), font, scale, (255, 255, 255), thick,
                    cv2.LINE_AA)
    return out
