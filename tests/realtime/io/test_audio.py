"""The audio delay line on fake streams, and the bridge's errors without PortAudio."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from realtime.io.audio import AudioBridge, AudioError, DelayLine, audio_delay_for, portaudio_install_hint

SR = 48000


def run(dl, signal, block=256, on_block=None):
    """Feed `signal` ((n,) or (n, ch)) through `dl` block by block; return the output."""
    out = []
    for b, s in enumerate(range(0, len(signal), block)):
        if on_block:
            on_block(b, dl)
        out.append(dl.process(signal[s:s + block]))
    return np.concatenate(out)


def test_impulse_comes_out_exactly_delay_samples_later():
    dl = DelayLine(SR, 1, max_delay_s=0.5)
    dl.set_delay(0.0125)  # 600 samples; before the first block: applied at once
    x = np.zeros(4000, np.float32)
    x[1000] = 1.0
    y = run(dl, x)[:, 0]
    assert np.flatnonzero(y).tolist() == [1600] and y[1600] == 1.0


def test_impulse_per_channel_with_odd_blocks():
    dl = DelayLine(SR, 2, max_delay_s=0.1, delay_s=0.001)  # 48 samples
    x = np.zeros((3000, 2), np.float32)
    x[100, 0], x[700, 1] = 1.0, -0.5
    y = run(dl, x, block=97)
    assert np.flatnonzero(y[:, 0]).tolist() == [148]
    assert np.flatnonzero(y[:, 1]).tolist() == [748] and y[748, 1] == -0.5


def test_zero_delay_passes_through():
    dl = DelayLine(SR, 2, max_delay_s=0.2)
    x = np.random.default_rng(0).standard_normal((5000, 2)).astype(np.float32)
    np.testing.assert_array_equal(run(dl, x, block=333), x)


def test_blocks_longer_than_the_internal_chunk():
    dl = DelayLine(SR, 1, max_delay_s=0.3, delay_s=0.1)
    x = np.random.default_rng(1).standard_normal(20000).astype(np.float32)
    y = dl.process(x)[:, 0]
    np.testing.assert_array_equal(y[4800:], x[:-4800])
    assert not y[:4800].any()


def test_delay_change_on_a_sine_has_no_click():
    f = 440.0
    n = SR  # one second
    x = np.sin(2 * np.pi * f * np.arange(n) / SR).astype(np.float32)
    natural = 2 * np.pi * f / SR  # the largest step of the sine itself (~0.058)

    def changes(b, dl):
        if b == 40:
            dl.set_delay(0.0437)
        elif b == 100:
            dl.set_delay(0.0051)
        elif b == 105:
            dl.set_delay(0.02)  # during the previous fade: queued

    dl = DelayLine(SR, 1, max_delay_s=0.2, delay_s=0.01)
    y = run(dl, x, on_block=changes)[:, 0]
    assert np.abs(np.diff(y)).max() < natural + 0.01
    assert dl.delay == pytest.approx(0.02, abs=1 / SR)  # settled on the last request
    d = round(0.02 * SR)
    np.testing.assert_array_equal(y[-2000:], x[-2000 - d:-d])

    # the same changes made abruptly do click: the bound above is meaningful
    hard = DelayLine(SR, 1, max_delay_s=0.2, delay_s=0.01)
    y_hard = run(hard, x, on_block=lambda b, dl: changes(b, _Immediate(dl)))[:, 0]
    assert np.abs(np.diff(y_hard)).max() > 0.3


class _Immediate:
    def __init__(self, dl):
        self.dl = dl

    def set_delay(self, s):
        self.dl.set_delay(s, immediate=True)


def test_set_delay_validates_range():
    dl = DelayLine(SR, 1, max_delay_s=0.1)
    with pytest.raises(ValueError, match=r"0.2 s is outside \[0, 0.1\]"):
        dl.set_delay(0.2)
    with pytest.raises(ValueError):
        dl.set_delay(-0.01)
    with pytest.raises(ValueError, match=r"shape \(n, 1\)"):
        dl.process(np.zeros((10, 2), np.float32))


def test_audio_delay_for():
    assert audio_delay_for(100, 0.02, 1.0) == pytest.approx(0.08)
    assert audio_delay_for(10, 0.02, 1.0) == 0.0
    assert audio_delay_for(5000, 0.0, 1.0) == 1.0


class FakeStream:
    def __init__(self, *, device, samplerate, blocksize, channels, dtype, latency, callback):
        self.callback, self.blocksize, self.channels = callback, blocksize, channels
        self.latency = (0.01, 0.015)
        self.started = self.closed = False

    def start(self):
        self.started = True

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True

    def pump(self, block):
        out = np.zeros_like(block)
        self.callback(block, out, len(block), None, None)
        return out


class FakeSoundDevice:
    def __init__(self):
        self.streams = []

    def Stream(self, **kw):
        self.streams.append(FakeStream(**kw))
        return self.streams[-1]


def test_bridge_follows_video_latency_on_a_fake_stream():
    sd = FakeSoundDevice()
    bridge = AudioBridge(sample_rate=SR, blocksize=256, sounddevice_module=sd)
    bridge.start()
    stream = sd.streams[0]
    assert stream.started and bridge.io_latency_s == pytest.approx(0.025)
    bridge.set_video_latency(85.0)  # 85 ms video - 25 ms audio path = 60 ms delay line
    assert bridge.delay.target_delay == pytest.approx(0.06)
    bridge.set_video_latency(87.0)  # within the hysteresis: unchanged
    assert bridge.delay.target_delay == pytest.approx(0.06)
    x = np.zeros((SR // 2, 1), np.float32)
    x[5000] = 1.0
    y = np.concatenate([stream.pump(x[s:s + 256]) for s in range(0, len(x), 256)])
    assert np.flatnonzero(y[:, 0]).tolist() == [5000 + round(0.06 * SR)]
    bridge.stop()
    bridge.stop()
    assert stream.closed and not bridge.running


def test_bridge_without_portaudio_says_what_to_install(tmp_path, monkeypatch):
    # A stand-in sounddevice that fails like the real one does without libportaudio2.
    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    with pytest.raises(AudioError) as err:
        AudioBridge().start()
    assert "PortAudio library not found" in str(err.value)
    assert portaudio_install_hint() in str(err.value)


def test_bridge_without_sounddevice_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(AudioError, match="pip install sounddevice"):
        AudioBridge().start()


def test_portaudio_hints_per_os():
    assert "install PortAudio: sudo apt install libportaudio2 (Linux" in \
        portaudio_install_hint("Linux")
    assert "brew install portaudio" in portaudio_install_hint("Darwin")
    assert "sounddevice" in portaudio_install_hint("Windows")
