"""AudioBridge and the audio process, with a fake sounddevice in the spawned process."""
from __future__ import annotations

import os
import signal
import time

import pytest

from realtime.io.audio import AudioBridge, AudioError

FAKE = "tests.realtime.io.audio.fake_sounddevice"
PULSE = {"running": True, "server": "PulseAudio 16.1", "sources": ["vmic"], "sinks": ["engine_out"]}


def bridge(spec="vmic:engine_out"):
    return AudioBridge(spec, sounddevice_module=FAKE, pulse=PULSE, report_s=0.1)


def feed(b, seconds, latency=0.040, fps=30.0):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        now = time.perf_counter()
        b.add_frame(now - latency, now)
        time.sleep(1 / fps)


def test_delay_follows_the_frames_and_a_stall_is_reported(monkeypatch):
    monkeypatch.setenv("FAKE_SD_STALL", "2.2:0.3")   # after the streams start (~1 s before feed)
    b = bridge()
    b.open()
    assert b.info["input"] == "vmic" and b.info["output"] == "engine_out" and b.pid
    time.sleep(0.8)
    feed(b, 3.0)
    r = b.stop()
    assert r.error is None, r.error
    assert r.delay_ms["p50"] == pytest.approx(44.0, abs=2.0)    # q90 + 4 ms margin
    assert r.av_offset_ms["p50"] == pytest.approx(4.0, abs=2.0)
    assert r.callbacks["input"] > 100 and r.callbacks["output"] > 100
    assert r.stalls == 1 and r.longest_stall_ms == pytest.approx(300, abs=60)
    assert any("stalled 1 time(s)" in w for w in r.warnings)
    assert b.stop() is r
    timeline = b.timeline()
    assert len(timeline["frames"]) > 60 and len(timeline["audio_rows"]) > 50


def test_a_bad_device_name_fails_at_open():
    b = bridge("nosuch:engine_out")
    with pytest.raises(AudioError, match="no audio input named 'nosuch'.*vmic"):
        b.open()
    assert b.stop().error is None   # nothing ran: an empty report


def test_the_audio_process_dying_is_reported_not_raised():
    b = bridge()
    b.open()
    feed(b, 0.3)
    os.kill(b.pid, signal.SIGKILL)
    time.sleep(0.3)
    feed(b, 0.3)
    r = b.stop()
    assert r.error and "ended during the run" in r.error
    assert r.summary().startswith("audio: FAILED")


def test_on_frame_feeds_every_frame_the_sink_accepted():
    from types import SimpleNamespace

    b = bridge()
    fed = []
    b.add_frame = lambda c, s: fed.append((c, s))
    frames = [SimpleNamespace(t_capture=float(i), t_sink=None) for i in range(4)]
    for f in frames[:3]:
        b.on_frame(f)                            # none written yet: nothing fed, nothing lost
    assert fed == [] and len(b._inflight) == 3
    frames[0].t_sink, frames[2].t_sink = 0.5, 2.5   # frame 1 was dropped by the sink
    b.on_frame(frames[3])
    assert fed == [(0.0, 0.5), (2.0, 2.5)] and list(b._inflight) == [frames[3]]
