"""How well an output video follows its driver: Pearson r of mouth opening and head yaw.

    python -m bench.follow DRIVER.mp4 OUTPUT.mp4

Both videos are tracked with MediaPipe; mouth opening is the inner-lip gap over the
interocular distance, yaw comes from the engine's own pose fit (realtime.face.estimate.Estimator)
against each video's calibrated neutral, so head shape and sitting pose do not matter.
Frames where either face is lost are left out.
"""
from __future__ import annotations

import sys

import cv2
import numpy as np

from realtime.core.errors import PuppeteerError
from realtime.face import geometry
from realtime.face.estimate import Estimator
from realtime.face.track import Tracker
from realtime.io.media import open_video


def follow_series(path: str, fps: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mouth opening / interocular, yaw in degrees) per frame; NaN where no face."""
    # as the engine opens a clip: upright, within the caps, and never a playlist of other files
    cap = open_video(path, PuppeteerError, f"cannot open {path} as a video")
    fps = fps or cap.get(cv2.CAP_PROP_FPS) or 30.0
    tracker, est = Tracker(static=False), Estimator()
    mouth, yaw = [], []
    i = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        lm = tracker(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if lm is None:
            mouth.append(np.nan)
            yaw.append(np.nan)
        else:
            mouth.append(geometry.mouth_opening(lm) / geometry.interocular(lm))
            yaw.append(est.measure(lm, i / fps).angles[0])
        i += 1
    cap.release()
    tracker.close()
    return np.asarray(mouth), np.asarray(yaw)


def follow(driver: str, output: str) -> dict:
    md, yd = follow_series(driver)
    mo, yo = follow_series(output)
    n = min(len(md), len(mo))
    ok = np.isfinite(md[:n]) & np.isfinite(mo[:n]) & np.isfinite(yd[:n]) & np.isfinite(yo[:n])
    r = lambda a, b: float(np.corrcoef(a[:n][ok], b[:n][ok])[0, 1]) if ok.sum() > 2 else float("nan")
    return {"frames": n, "tracked": int(ok.sum()), "mouth_r": r(md, mo), "yaw_r": r(yd, yo),
            "driver_yaw_range_deg": float(np.ptp(yd[:n][ok])) if ok.any() else float("nan")}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        sys.exit(2)
    try:
        print(follow(sys.argv[1], sys.argv[2]))
    except PuppeteerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
