"""The devices of `--audio` watched during the run (a device gone mid-run, streams moved into a
loop), with pactl faked: no PulseAudio needed."""
from __future__ import annotations

import os
import stat
import sys
import threading
import time

import pytest

from realtime.io.audio import AudioBridge
from realtime.io.audio.names import Endpoint
from realtime.io.audio.watch import DeviceWatch, Watcher, stream_devices

FAKE = "tests.realtime.io.audio.fake_sounddevice"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fake pactl is a sh script")

VMIC = Endpoint("input", "vmic", 0, {"PULSE_SOURCE": "vmic"})
ENGINE_OUT = Endpoint("output", "engine_out", 0, {"PULSE_SINK": "engine_out"})


def server(sinks=("micsink", "engine_out"), default_sink="micsink", **more):
    sources = [f"{s}.monitor" for s in sinks] + ["vmic"]
    return {"running": True, "server": "PulseAudio 16.1", "sources": sources, "sinks": list(sinks),
            "default_source": "vmic", "default_sink": default_sink,
            "remaps": {"vmic": "micsink.monitor"}, "routes": {}, **more}


def test_a_named_device_gone_mid_run_stops_the_sound():
    """Before (audio audit, item 2): the null sink OUT unloaded mid-run, PulseAudio moved the
    engine's stream to micsink (whose monitor vmic re-maps: a loop), and the engine said nothing."""
    state = {"pulse": server(), "where": {"sink": "engine_out", "source": "vmic"}}
    watch = DeviceWatch(VMIC, ENGINE_OUT, 123, server=lambda: state["pulse"],
                        streams=lambda pid: state["where"])
    assert watch.check() is None
    state["pulse"] = server(sinks=("micsink",))
    state["where"] = {"sink": "micsink", "source": "vmic"}
    assert watch.check() == "OUT engine_out is gone; PulseAudio moved the sound to micsink"
    state["where"] = {}                                   # the streams not found: still gone
    assert watch.check() == "OUT engine_out is gone"
    gone_in = DeviceWatch(Endpoint("input", "usbmic", 0, {"PULSE_SOURCE": "usbmic"}), ENGINE_OUT, 1,
                          server=lambda: server(), streams=lambda pid: {})
    assert gone_in.check() == "IN usbmic is gone"


def test_streams_moved_into_a_loop_stop_the_sound(monkeypatch):
    """`default:default`: the server's default sink changed mid-run to micsink, whose monitor
    vmic (the default source) re-maps, and the stream followed it."""
    for var in ("PULSE_SOURCE", "PULSE_SINK"):
        monkeypatch.delenv(var, raising=False)
    state = {"pulse": server(default_sink="engine_out"), "where": {"sink": "engine_out", "source": "vmic"}}
    watch = DeviceWatch(Endpoint("input", "default"), Endpoint("output", "pulse", 0), 123,
                        server=lambda: state["pulse"], streams=lambda pid: state["where"])
    assert watch.check() is None
    state["where"] = {"sink": "micsink", "source": "vmic"}
    assert watch.check() == ("the streams were moved: --audio default:pulse (that is vmic:micsink) feeds "
                             "micsink its own sound (vmic, which re-maps micsink.monitor): the output "
                             "would come back in as the microphone, a loop")


def test_no_server_answer_is_no_reason_to_stop():
    def fails():
        raise OSError("pactl not found")

    assert DeviceWatch(VMIC, ENGINE_OUT, 1, server=fails, streams=lambda pid: {}).check() is None
    assert DeviceWatch(VMIC, ENGINE_OUT, 1, server=lambda: {"running": False, "reason": "x"},
                       streams=lambda pid: {}).check() is None
    other = Endpoint("output", "HDA Intel PCH: ALC3246 Analog (hw:0,0)", 2)   # not a server device
    assert DeviceWatch(VMIC, other, 1, server=lambda: server(), streams=lambda pid: {}).check() is None


def test_the_watcher_calls_back_once_and_ends(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")           # no pactl: no event subscription
    calls = []
    results = iter([None, "OUT engine_out is gone", "again"])
    watch = DeviceWatch(VMIC, ENGINE_OUT, 1)
    watch.check = lambda: next(results)                  # type: ignore[method-assign]
    done = threading.Event()
    w = Watcher(watch, lambda why: (calls.append(why), done.set()), every_s=0.05).start()
    assert done.wait(3.0)
    time.sleep(0.4)
    w.stop()
    assert calls == ["OUT engine_out is gone"]


PACTL = """#!/bin/sh
if [ -e "{state}" ]; then sink=micsink; else sink=engine_out; fi
case "$*" in
  info) printf 'Server Name: pulseaudio\\nServer Version: 16.1\\nDefault Sink: micsink\\nDefault Source: vmic\\n' ;;
  "list short sources") printf '0\\tvmic\\tm\\n1\\tmicsink.monitor\\tm\\n'
        [ "$sink" = engine_out ] && printf '2\\tengine_out.monitor\\tm\\n' ;;
  "list short sinks") printf '5\\tmicsink\\tm\\n'; [ "$sink" = engine_out ] && printf '6\\tengine_out\\tm\\n' ;;
  "list short modules") printf '7\\tmodule-virtual-source\\tsource_name=vmic master=micsink.monitor\\n' ;;
  "list sink-inputs") printf 'Sink Input #3\\n\\tSink: %s\\n\\tProperties:\\n\\t\\tapplication.process.id = "%s"\\n' \
        $([ "$sink" = engine_out ] && echo 6 || echo 5) "$PPID" ;;
  "list source-outputs") printf 'Source Output #4\\n\\tSource: 0\\n\\tProperties:\\n'
        printf '\\t\\tapplication.process.id = "%s"\\n' "$PPID" ;;
esac
exit 0
"""


@pytest.fixture
def fake_pactl(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    pactl = tmp_path / "pactl"
    pactl.write_text(PACTL.replace("{state}", str(gone)))
    pactl.chmod(pactl.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for var in ("PULSE_SOURCE", "PULSE_SINK"):
        monkeypatch.delenv(var, raising=False)
    return gone


@linux_only
def test_stream_devices_reads_where_the_process_streams_are(fake_pactl):
    pid = os.getpid()       # the fake prints its parent's pid: this process
    assert stream_devices(pid) == {"sink": "engine_out", "source": "vmic"}
    fake_pactl.touch()
    assert stream_devices(pid) == {"sink": "micsink", "source": "vmic"}
    assert stream_devices(pid + 1) == {"sink": None, "source": None}


@linux_only
def test_the_bridge_says_when_a_device_goes_mid_run_and_plays_no_loop(fake_pactl, capsys):
    b = AudioBridge("vmic:engine_out", sounddevice_module=FAKE, report_s=0.1, watch_s=0.2)
    b.open()
    assert b.info["watched"] is True
    b.wait_settled()
    end = time.perf_counter() + 1.5
    while time.perf_counter() < end:
        now = time.perf_counter()
        b.add_frame(now - 0.04, now)
        if now > end - 1.0 and not fake_pactl.exists():
            fake_pactl.touch()                       # engine_out unloaded: moved to micsink
        time.sleep(1 / 30)
    r = b.stop()
    assert r.error is None, r.error
    # which a check reads first depends on when the device went between its two pactl calls: the
    # server's list (engine_out gone) or the streams (moved into the loop); either stops the sound
    gone = "OUT engine_out is gone; PulseAudio moved the sound to micsink"
    loop = ("the streams were moved: --audio vmic:engine_out (that is vmic:micsink) feeds micsink its own "
            "sound (vmic, which re-maps micsink.monitor): the output would come back in as the microphone, a loop")
    assert r.stopped in (gone, loop)
    assert r.silence_s > 0.5 and r.frames_without_sound > 10
    err = capsys.readouterr().err
    assert err.count("the sound stopped at") == 1 and r.stopped in err
    assert "warning: audio: the sound stopped at" in r.summary()
