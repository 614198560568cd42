"""bench.roundtrip: the frame stamp, the virtual-camera probe, the pass through a fake device."""
from __future__ import annotations

import queue
import time

import cv2
import numpy as np
import pytest

from bench import roundtrip
from bench.drivers import open_driver
from profiles.format import load
from realtime.engine.loop import EngineOptions


def test_stamp_survives_jpeg_and_rejects_noise():
    img = np.full((64, 480, 3), 90, np.uint8)
    for value in (0, 1, 4321, 65535):
        roundtrip.encode_stamp(img, value)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 60])
        assert roundtrip.decode_stamp(cv2.imdecode(buf, cv2.IMREAD_COLOR)) == value
    assert roundtrip.decode_stamp(np.random.default_rng(0).integers(0, 255, (64, 480, 3),
                                                                    dtype=np.uint8)) is None


def test_stamp_needs_room():
    with pytest.raises(ValueError, match="too small"):
        roundtrip.encode_stamp(np.zeros((8, 480, 3), np.uint8), 1)
    assert roundtrip.decode_stamp(np.zeros((8, 480, 3), np.uint8)) is None


def test_roundtrip_says_why_not_when_no_device():
    device, reason = roundtrip.roundtrip_probe(640, 480, 30.0, timeout=3.0)
    if device is not None:
        pytest.skip(f"a readable virtual camera exists here ({device})")
    assert reason and isinstance(reason, str)


@pytest.mark.tracking
def test_roundtrip_pass_through_a_fake_virtual_camera(assets, monkeypatch):
    """The plumbing of --roundtrip (stamp → device → OpenCV read-back → latency) with an
    in-memory device standing in for v4l2loopback."""
    wire: queue.Queue = queue.Queue()

    class FakeVcam:
        name = "vcam"

        def __init__(self, fps=None, backend=None, device=None):
            pass

        def open(self, width, height, fps=None):
            pass

        def write(self, frame):
            wire.put(frame.output.copy())

        def close(self):
            pass

        def poll_events(self):
            return []

    class FakeCapture:
        def isOpened(self):
            return True

        def read(self):
            try:
                rgb = wire.get(timeout=0.05)
            except queue.Empty:
                return False, None
            time.sleep(0.002)                      # the device's own delay
            return True, np.ascontiguousarray(rgb[..., ::-1])

        def release(self):
            pass

    real_capture = cv2.VideoCapture
    monkeypatch.setattr(roundtrip, "VirtualCameraSink", FakeVcam)
    monkeypatch.setattr(cv2, "VideoCapture",
                        lambda src, *a: FakeCapture() if src == "fake0" else real_capture(src, *a))
    monkeypatch.setattr(roundtrip, "roundtrip_probe", lambda w, h, fps: ("fake0", None))
    profile = load(assets["astro"])
    driver = open_driver(str(assets["clip"]), 12)
    r = roundtrip.roundtrip_pass(profile, EngineOptions(), driver, warmup=2)
    assert r["available"] and r["device"] == "fake0"
    assert 3 <= r["frames"] <= 10          # realtime: frames may drop under load
    lat = r["latency_ms"]
    assert 2.0 < lat["p50"] <= lat["p95"] <= lat["p99"] < 1000


def test_no_device_is_said_not_faked(assets, monkeypatch):
    monkeypatch.setattr(roundtrip, "roundtrip_probe", lambda w, h, fps: (None, "no device (test)"))
    driver = open_driver(str(assets["clip"]), 4)
    r = roundtrip.roundtrip_pass(load(assets["astro"]), EngineOptions(), driver, warmup=0)
    assert r == {"available": False, "reason": "no device (test)"}
