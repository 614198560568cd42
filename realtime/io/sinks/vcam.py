"""The virtual camera sink (pyvirtualcam: v4l2loopback on Linux, OBS Virtual Camera elsewhere).

pyvirtualcam is imported when a `VirtualCameraSink` is made, never by importing this module.
"""
from __future__ import annotations

import os
import platform
import sys

from realtime.core.frame import Frame
from realtime.io.sinks.base import SinkError, checked_output


def vcam_install_hint(system: str | None = None) -> str:
    """What to install for a virtual camera on `system` (platform.system(); default this OS)."""
    system = system or platform.system()
    if system == "Linux":
        return ("install and load v4l2loopback: `sudo apt install v4l2loopback-dkms`, then "
                "`sudo modprobe v4l2loopback devices=1 exclusive_caps=1 "
                "card_label=\"Puppeteer\"`")
    if system in ("Windows", "Darwin"):
        return ("install OBS Studio (https://obsproject.com) and start its Virtual Camera once "
                "(Start Virtual Camera) so the device is registered")
    return f"virtual cameras are not supported on {system!r} by pyvirtualcam"


class VirtualCameraSink:
    """A virtual camera (pyvirtualcam: v4l2loopback on Linux, OBS Virtual Camera elsewhere)
    that Zoom, Meet, Teams, OBS or Discord can pick.

    Args:
        fps: frame rate announced to the device; `open(..., fps)` overrides it when given.
        backend: pyvirtualcam backend name ("v4l2loopback", "obs", "unitycapture"), None = any.
        device: a specific device (e.g. "/dev/video10"), None = the first free one.

    pyvirtualcam is imported here (lazily: importing this module never needs it). `open()`
    raises SinkError when no backend is usable, with what to install for this OS and the
    underlying error text.
    """

    name = "vcam"

    def __init__(self, fps: float | None = 30.0, backend: str | None = None,
                 device: str | None = None):
        try:
            import pyvirtualcam  # noqa: PLC0415 - optional: only when a virtual camera is used
        except ImportError as exc:
            raise SinkError(f"virtual camera: pyvirtualcam is not installed "
                            f"(`pip install pyvirtualcam`), and {vcam_install_hint()}: {exc}"
                            ) from exc
        self._pyvirtualcam = pyvirtualcam
        self.fps, self.backend, self.device = fps, backend, device
        self.size: tuple[int, int] | None = None
        self._cam = None

    def open(self, width: int, height: int, fps: float | None = None) -> None:
        fps = fps if fps is not None else self.fps
        if fps is None or not fps > 0:
            raise SinkError(f"virtual camera: need a positive fps, got {fps!r}")
        backends = sorted(self._pyvirtualcam.camera.BACKENDS)
        if self.backend is not None and self.backend not in backends:
            raise SinkError(f"virtual camera: unknown backend {self.backend!r} on "
                            f"{platform.system()}; available: {backends}")
        try:
            self._cam = self._pyvirtualcam.Camera(
                int(width), int(height), float(fps), fmt=self._pyvirtualcam.PixelFormat.RGB,
                backend=self.backend, device=self.device)
        except Exception as exc:  # pyvirtualcam raises RuntimeError with every backend's error
            detail = str(exc).strip() or type(exc).__name__
            if not backends:
                detail = f"pyvirtualcam has no backend for {platform.system()}"
            asked = ""
            if self.device is not None and sys.platform.startswith("linux") and not os.path.exists(self.device):
                asked = f": {self.device} does not exist"
            raise SinkError(f"virtual camera: no usable device ({width}x{height} @ {fps:g} fps){asked}"
                            f"; {vcam_install_hint()}.\nUnderlying error: {detail}") from exc
        self.size, self.fps = (int(width), int(height)), float(fps)

    def write(self, frame: Frame) -> None:
        if self._cam is None:
            raise SinkError("virtual camera: write() before open()")
        self._cam.send(checked_output(frame, self.size, self.name))

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            cam.close()

    def poll_events(self) -> list[str]:
        return []

    @property
    def device_name(self) -> str | None:
        """The device in use once open (e.g. "/dev/video10", "OBS Virtual Camera")."""
        return None if self._cam is None else self._cam.device
