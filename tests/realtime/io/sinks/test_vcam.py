"""The virtual camera sink without a device: install hints and errors."""
from __future__ import annotations

import platform
import sys

import pytest

from realtime.io.sinks.base import SinkError
from realtime.io.sinks.vcam import VirtualCameraSink, vcam_install_hint

VCAM_LINE = 'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="Puppeteer"'


def test_vcam_install_hints_per_os():
    linux = vcam_install_hint("Linux")
    assert VCAM_LINE in linux and "apt install v4l2loopback-dkms" in linux
    for system in ("Windows", "Darwin"):
        assert "OBS Studio" in vcam_install_hint(system)
        assert "modprobe" not in vcam_install_hint(system)


def test_vcam_without_device_says_what_to_install():
    try:
        import pyvirtualcam  # noqa: PLC0415 - optional: is a device here?
        with pyvirtualcam.Camera(64, 48, 30):
            pytest.skip("a virtual camera device exists here")
    except RuntimeError:
        pass
    sink = VirtualCameraSink(30)
    with pytest.raises(SinkError) as err:
        sink.open(64, 48, 30)
    msg = str(err.value)
    assert vcam_install_hint() in msg and "Underlying error" in msg
    if platform.system() == "Linux":
        assert VCAM_LINE in msg and "v4l2loopback" in msg.split("Underlying error")[1]


def test_vcam_unknown_backend_and_missing_package(monkeypatch):
    with pytest.raises(SinkError, match="unknown backend 'nope'"):
        VirtualCameraSink(30, backend="nope").open(64, 48, 30)
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import now fails
    with pytest.raises(SinkError, match="pip install pyvirtualcam"):
        VirtualCameraSink(30)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="device nodes are Linux's")
def test_a_named_device_that_does_not_exist_is_named(tmp_path):
    """Before (stop 61's review): `--sink vcam:/dev/video99` gave the generic "no usable device"."""
    missing = str(tmp_path / "video99")
    with pytest.raises(SinkError, match=rf"no usable device \(64x48 @ 30 fps\): {missing} does not exist; "):
        VirtualCameraSink(30, device=missing).open(64, 48, 30)
