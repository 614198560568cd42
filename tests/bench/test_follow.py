import cv2
import numpy as np
import pytest
from skimage import data

from bench.follow import follow


def _clip(path, frames):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


@pytest.mark.tracking
def test_a_video_follows_itself_perfectly(tmp_path):
    img = data.astronaut()
    frames = []
    for t in range(30):  # the head turns in-plane and shifts: yaw stays, the fit is exercised
        m = cv2.getRotationMatrix2D((256, 170), 3.0 * np.sin(t / 4.0), 1.0)
        m[0, 2] += 8.0 * np.sin(t / 5.0)
        frames.append(cv2.warpAffine(img, m, (512, 512), borderMode=cv2.BORDER_REFLECT))
    a = _clip(tmp_path / "a.avi", frames)
    same = follow(a, a)
    assert same["tracked"] == 30 and same["mouth_r"] > 0.999 and same["yaw_r"] > 0.999
