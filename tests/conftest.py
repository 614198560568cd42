"""Fixtures shared by the realtime, profile and CLI tests.

The astronaut of scikit-image (public domain) is the reference face: MediaPipe runs on it once
per session (about 0.5 s) and its warp-tier profile is built once (about 0.3 s). Tests must not
modify the arrays these fixtures return (copy first).

Marker `tracking`: the test runs MediaPipe (tracks a face). Where mediapipe is not installed
(numpy 2, a GPU machine: README "numpy 2") those tests are skipped, and the astronaut's
landmarks come from the copy in tests/data (checked against MediaPipe where it is installed),
so everything that does not track still runs: `pytest -m "not tracking"`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

HAVE_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None
ASTRONAUT_LANDMARKS = Path(__file__).parent / "data" / "astronaut_landmarks.npy"


def pytest_collection_modifyitems(config, items):
    if HAVE_MEDIAPIPE:
        return
    skip = pytest.mark.skip(reason="tracks a face: needs mediapipe (not installed here)")
    for item in items:
        if "tracking" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _profiles_outside_the_checkout(tmp_path_factory, monkeypatch):
    """Every test's profiles root is a fresh temporary folder unless it sets its own: a test
    that runs `demo` or `live --profile NAME` must neither write the checkout's profiles/ nor
    read one that an earlier test or `make demo` left there. The same for the user's cache
    folder (the record of TensorRT engines built on this machine)."""
    monkeypatch.setenv("PUPPETEER_PROFILES", str(tmp_path_factory.mktemp("profiles")))
    monkeypatch.setenv("PUPPETEER_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def _astronaut_profile_left_unsaved(request):
    """`profiles.format.save` records on the profile where it wrote it (`folder`, `files`); a
    test or a module's fixture that saves the session's `astronaut_profile` would otherwise hand
    that folder (deleted with its tmp_path) to every later test, and `cli_name` would name it.
    Each test gets it as it was built: in memory, no folder, no files."""
    if "astronaut_profile" not in request.fixturenames:
        yield
        return
    profile = request.getfixturevalue("astronaut_profile")
    profile.folder, profile.files = None, {}
    yield
    profile.folder, profile.files = None, {}


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def astronaut_landmarks(astronaut_rgb) -> np.ndarray:
    """(478, 3) float64 MediaPipe landmarks of the astronaut, in image pixels (without
    mediapipe: the copy in tests/data that test_astronaut_landmarks_copy_is_current checks)."""
    if not HAVE_MEDIAPIPE:
        lm = np.load(ASTRONAUT_LANDMARKS, allow_pickle=False).astype(np.float64)
        lm.setflags(write=False)
        return lm
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
