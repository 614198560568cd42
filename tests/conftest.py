"""Fixtures shared by the realtime, profile and CLI tests.

The astronaut of scikit-image (public domain) is the reference face: MediaPipe runs on it once
per session (about 0.5 s) and its warp-tier profile is built once (about 0.3 s). Tests must not
modify the arrays these fixtures return (copy first).
"""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def astronaut_landmarks(astronaut_rgb) -> np.ndarray:
    """(478, 3) float64 MediaPipe landmarks of the astronaut, in image pixels."""
    from profiles.enroll import detect_single_face

    lm = detect_single_face(astronaut_rgb, "skimage.data.astronaut()").astype(np.float64)
    lm.setflags(write=False)
    return lm


@pytest.fixture(scope="session")
def astronaut_profile(astronaut_rgb, astronaut_landmarks):
    """The warp-tier profile of the astronaut (built in memory, never saved here)."""
    from profiles.enroll import build_profile

    return build_profile(astronaut_rgb, astronaut_landmarks, name="astronaut",
                         source="skimage.data.astronaut()")
