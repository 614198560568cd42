"""True output latency through a virtual camera (`run.py bench --roundtrip`).

Each output frame carries its index in its pixels (`encode_stamp`: a row of black/white
squares that survives MJPEG/YUV conversion), goes out through a `VirtualCameraSink`, and is
read back with OpenCV from the same device (`decode_stamp`); latency = read-back time −
capture time. Only where pyvirtualcam opens a device that OpenCV can read
(`roundtrip_probe`); otherwise the pass returns ``{"available": False, "reason": ...}``.
"""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from bench.drivers import Driver
from bench.stats import summarize
from bench.variants import build_engine
from realtime.engine.loop import run
from realtime.io.capture import Grabber
from realtime.io.inventory import with_timeout
from realtime.io.sinks import ThreadedSink, VirtualCameraSink, vcam_install_hint

__all__ = ["encode_stamp", "decode_stamp", "roundtrip_probe", "roundtrip_pass", "STAMP_BITS",
           "STAMP_BLOCK"]

STAMP_BITS = 16
_STAMP_MARK = (1, 0, 1, 0)
STAMP_BLOCK = 16


def _stamp_bits(value: int) -> list[int]:
    v = int(value) % (1 << STAMP_BITS)
    bits = [(v >> k) & 1 for k in range(STAMP_BITS)]
    check = sum(bits) % 16
    return list(_STAMP_MARK) + bits + [(check >> k) & 1 for k in range(4)]


def encode_stamp(image: np.ndarray, value: int, block: int = STAMP_BLOCK) -> np.ndarray:
    """Write `value` (mod 2^16) into the top-left row of `image` (in place): marker bits,
    16 value bits and a 4-bit checksum as `block`-px black/white squares."""
    bits = _stamp_bits(value)
    if image.shape[1] < block * len(bits) or image.shape[0] < block:
        raise ValueError(f"image {image.shape[1]}x{image.shape[0]} too small for a "
                         f"{block * len(bits)}x{block} stamp")
    for k, b in enumerate(bits):
        image[:block, k * block:(k + 1) * block] = 255 if b else 0
    return image


def decode_stamp(image: np.ndarray, block: int = STAMP_BLOCK) -> int | None:
    """The value `encode_stamp` wrote (robust to compression: each square's centre is averaged
    and thresholded), or None when marker or checksum do not match."""
    n = len(_STAMP_MARK) + STAMP_BITS + 4
    if image.shape[1] < block * n or image.shape[0] < block:
        return None
    q = block // 4
    bits = []
    for k in range(n):
        cell = image[q:block - q, k * block + q:(k + 1) * block - q]
        bits.append(1 if float(np.mean(cell)) >= 128 else 0)
    if tuple(bits[:4]) != _STAMP_MARK:
        return None
    val_bits = bits[4:4 + STAMP_BITS]
    value = sum(b << k for k, b in enumerate(val_bits))
    check = sum(b << k for k, b in enumerate(bits[4 + STAMP_BITS:]))
    return value if check == sum(val_bits) % 16 else None


def roundtrip_probe(width: int, height: int, fps: float, timeout: float = 5.0):
    """(device, None) when pyvirtualcam opens a device that OpenCV reads back, else
    (None, reason)."""
    try:
        import pyvirtualcam  # noqa: PLC0415 - optional dependency, only with --roundtrip
    except ImportError:
        return None, "pyvirtualcam is not installed (pip install pyvirtualcam)"
    try:
        cam = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB)
    except Exception as exc:  # noqa: BLE001 - every backend's error in one RuntimeError
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, f"no virtual camera device ({first}); {vcam_install_hint()}"
    try:
        device = cam.device
        img = np.zeros((height, width, 3), np.uint8)
        encode_stamp(img, 4321)

        def read_back():
            cap = cv2.VideoCapture(device)
            try:
                if not cap.isOpened():
                    return "cannot be opened"
                for _ in range(30):
                    cam.send(img)
                    ok, bgr = cap.read()
                    if ok and decode_stamp(bgr[..., ::-1]) == 4321:
                        return None
                return "delivered no readable frame"
            finally:
                cap.release()

        ok, result = with_timeout(read_back, timeout)
        if not ok:
            return None, f"OpenCV cannot read {device} back: {result}"
        if result is not None:
            return None, f"OpenCV cannot read {device} back: {result}"
        return device, None
    finally:
        cam.close()


class _StampSink:
    """A virtual-camera sink that stamps each frame's index into its pixels first."""

    name = "vcam-stamp"

    def __init__(self, inner, sent: dict):
        self.inner, self.sent = inner, sent

    def open(self, width, height, fps=None):
        self.inner.open(width, height, fps)

    def write(self, frame):
        encode_stamp(frame.output, frame.index)
        self.sent[frame.index % (1 << STAMP_BITS)] = frame.t_capture
        self.inner.write(frame)

    def close(self):
        self.inner.close()

    def poll_events(self):
        return []


def roundtrip_pass(profile, options, driver: Driver, warmup: int) -> dict:
    """Capture → virtual camera → OpenCV read-back latency, or {"available": False, "reason"}."""
    engine = build_engine(profile, options, realtime=True, fps=driver.fps)
    try:
        w, h = engine.output_size
        device, reason = roundtrip_probe(w, h, driver.fps)
        if device is None:
            return {"available": False, "reason": reason}
        sent: dict[int, float] = {}
        got: list[tuple[int, float]] = []
        stop = threading.Event()
        sink = ThreadedSink(_StampSink(VirtualCameraSink(driver.fps, device=device), sent),
                            realtime=True)
        sink.open(w, h, driver.fps)
        cap = cv2.VideoCapture(device)

        def reader():
            seen = set()
            while not stop.is_set():
                ok, bgr = cap.read()
                t = time.perf_counter()
                if ok:
                    v = decode_stamp(bgr[..., ::-1])
                    if v is not None and v not in seen:
                        seen.add(v)
                        got.append((v, t))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        lim = driver.open()
        try:
            run(engine, Grabber(lim, realtime=True, close_source=False), sink)
        finally:
            time.sleep(0.3)
            stop.set()
            th.join(2.0)
            cap.release()
            lim.source.close()
        lat = [(t - sent[v]) * 1000.0 for v, t in got if v in sent and v >= warmup]
        s = summarize(lat)
        return {"available": True, "device": device, "frames": s["n"],
                "latency_ms": {k: s[k] for k in ("p50", "p95", "p99")}}
    finally:
        engine.close()
