"""Device listing: bounded in time, JSON-friendly, readable; works with nothing attached."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from realtime.io import inventory
from realtime.io.inventory import format_devices, list_devices


def test_list_devices_shape_and_speed():
    t0 = time.perf_counter()
    d = list_devices()
    assert time.perf_counter() - t0 < 15
    json.dumps(d)  # plain data
    assert set(d) == {"cameras", "virtual_camera", "audio", "gpu"}
    assert [c["index"] for c in d["cameras"]] == [0, 1, 2, 3, 4]
    for cam in d["cameras"]:
        assert {"index", "usable", "size"} <= set(cam)
        assert cam["usable"] or cam["reason"]
    vc = d["virtual_camera"]
    assert {"installed", "usable", "backends", "hint"} <= set(vc)
    for b in vc["backends"]:
        assert b["usable"] or b["reason"]
    assert "usable" in d["audio"] and "found" in d["gpu"]
    text = format_devices(d)
    for heading in ("Cameras:", "Virtual camera:", "Audio:", "GPU:"):
        assert heading in text


def test_audio_entry_explains_missing_portaudio():
    try:
        import sounddevice  # noqa: F401, PLC0415 - optional: is PortAudio here?
    except OSError:
        pass
    else:
        pytest.skip("PortAudio is installed here")
    audio = list_devices(camera_indices=[])["audio"]
    assert audio["usable"] is False and "libportaudio2" in audio["reason"]


def test_probe_that_hangs_is_bounded():
    t0 = time.perf_counter()
    ok, why = inventory.with_timeout(lambda: time.sleep(5), 0.1)
    assert not ok and "0.1 s" in why and time.perf_counter() - t0 < 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fake nvidia-smi is a sh script")
def test_gpu_from_nvidia_smi(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 81559, 550.54.15'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    gpu = inventory._gpu(timeout=5)
    assert gpu["found"] and gpu["nvidia_smi"] == [
        {"name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559, "driver": "550.54.15"}]
    assert "NVIDIA H100 80GB HBM3, 81559 MiB" in format_devices({"gpu": gpu})


def test_format_devices_with_everything_present():
    d = {"cameras": [{"index": 0, "usable": True, "size": [640, 480], "backend": "V4L2"},
                     {"index": 1, "usable": False, "size": None, "reason": "busy"}],
         "virtual_camera": {"installed": True, "usable": True, "reason": None, "hint": "x",
                            "backends": [{"name": "v4l2loopback", "usable": True,
                                          "device": "/dev/video10", "reason": None}]},
         "audio": {"usable": True, "default_input": 0, "default_output": 1,
                   "devices": [{"index": 0, "name": "Mic", "inputs": 1, "outputs": 0,
                                "default_samplerate": 48000.0},
                               {"index": 1, "name": "Cable", "inputs": 0, "outputs": 2,
                                "default_samplerate": 48000.0}]},
         "gpu": {"found": False, "nvidia_smi": None, "cupy": None, "reason": "none here"}}
    text = format_devices(d)
    assert "[ok] 0: 640x480 (V4L2)" in text and "[--] 1: busy" in text
    assert "[ok] v4l2loopback: /dev/video10" in text and "to fix" not in text
    assert "Mic" in text and "Cable" in text and "48000 Hz" in text
    assert "not found (none here)" in text


def test_importing_the_inventory_stays_light():
    # `run.py devices` imports it: no torch, no engine, optional packages only inside probes
    code = ("import sys, realtime.io.inventory; "
            "print(sorted(m for m in ('torch', 'cupy', 'pyvirtualcam', 'sounddevice', "
            "'realtime.engine', 'realtime.engine.loop') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[3], timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_format_devices_shows_the_pulseaudio_names_to_use():
    pulse = {"running": True, "server": "PulseAudio 16.1", "sources": ["mic_feed.monitor", "vmic"],
             "sinks": ["mic_feed", "engine_out"], "default_source": "vmic",
             "default_sink": "engine_out"}
    d = {"audio": {"usable": True, "default_input": 1, "default_output": 1, "pulse": pulse,
                   "devices": [{"index": 0, "name": "pulse", "inputs": 32, "outputs": 32,
                                "default_samplerate": 44100.0},
                               {"index": 1, "name": "default", "inputs": 32, "outputs": 32,
                                "default_samplerate": 44100.0}]}}
    text = format_devices(d)
    assert "PulseAudio 16.1: name these with --audio IN:OUT (e.g. --audio vmic:engine_out)" in text
    assert "inputs : mic_feed.monitor, vmic (default)" in text
    assert "outputs: mic_feed, engine_out (default)" in text
    assert "PortAudio devices (names or indices also work with --audio):" in text
    no_server = {"audio": {"usable": False, "reason": "sounddevice cannot load PortAudio",
                           "pulse": {"running": False, "reason": "no PulseAudio/PipeWire server "
                                                                 "answered (Connection refused)"}}}
    text = format_devices(no_server)
    assert "[--] PulseAudio/PipeWire: no PulseAudio/PipeWire server answered" in text
    assert "[--] sounddevice cannot load PortAudio" in text


@pytest.mark.parametrize("sources, sinks, default_source, default_sink, expect", [
    # a null sink alone: PulseAudio makes its monitor the default source
    (["engine_out.monitor"], ["engine_out"], "engine_out.monitor", "engine_out",
     "(e.g. --audio IN:engine_out; IN: your microphone, not engine_out.monitor, which is engine_out's own sound)"),
    (["engine_out.monitor", "vmic.monitor"], ["engine_out", "vmic"], "engine_out.monitor", "engine_out",
     "(e.g. --audio vmic.monitor:engine_out)"),
    (["engine_out.monitor", "alsa_input.usb"], ["engine_out"], "engine_out.monitor", "engine_out",
     "(e.g. --audio alsa_input.usb:engine_out)"),      # a microphone before a monitor
    (["vmic.monitor"], ["vmic", "speakers"], "vmic.monitor", "vmic", "(e.g. --audio vmic.monitor:speakers)"),
    # README's recipe: a virtual microphone `vmic` re-mapping engine_out.monitor, for the call
    (["engine_out.monitor", "vmic", "alsa_input.usb"], ["engine_out"], "vmic", "engine_out",
     "(e.g. --audio alsa_input.usb:engine_out)"),
    # two null sinks, the other one the default (README audit, helper 89): engine_out is still OUT
    (["micsrc.monitor", "engine_out.monitor"], ["micsrc", "engine_out"], "micsrc.monitor", "micsrc",
     "(e.g. --audio micsrc.monitor:engine_out)"),
])
def test_the_pulseaudio_example_never_feeds_a_sink_its_own_monitor(sources, sinks, default_source, default_sink,
                                                                   expect):
    """Before the fix (README audit): with a null sink `engine_out` the example was
    `--audio engine_out.monitor:engine_out`, the output fed back into itself."""
    from realtime.io.inventory import _format_pulse

    pulse = {"running": True, "server": "PulseAudio 16.1", "sources": sources, "sinks": sinks,
             "default_source": default_source, "default_sink": default_sink,
             "remaps": {"vmic": "engine_out.monitor"} if "vmic" in sources else {}}
    assert _format_pulse(pulse)[0] == f"  PulseAudio 16.1: name these with --audio IN:OUT {expect}"
