"""Audio: microphone -> output device through a delay line that matches the video latency.

The avatar video reaches the call some tens of milliseconds after the camera saw the face, so
the microphone is delayed by the same amount (DESIGN §7). ITU-R BT.1359: audio may lead the
video by at most 45 ms and should barely lag it, so the delay aims at the measured video latency
minus the audio path's own latency, never more.

- `DelayLine`: a pure-numpy ring buffer with click-free delay changes (raised-cosine crossfade
  between the old and the new read position). Tested on fake streams.
- `AudioBridge`: a sounddevice duplex stream (mic -> output, e.g. a virtual cable: PipeWire/
  PulseAudio null sink on Linux, VB-CABLE on Windows, BlackHole on macOS) whose callback runs
  the delay line. sounddevice is imported only in `start()`: on OSError (no PortAudio) it
  raises AudioError saying what to install.
"""
from __future__ import annotations

import platform
from typing import Any

import numpy as np

from realtime.core.errors import PuppeteerError


class AudioError(PuppeteerError, RuntimeError):
    """Audio cannot run (no PortAudio, no sounddevice, bad device); the message says why."""


def portaudio_install_hint(system: str | None = None) -> str:
    """How to get the PortAudio library sounddevice needs on `system` (default: this OS)."""
    system = system or platform.system()
    if system == "Linux":
        return ("install PortAudio: sudo apt install libportaudio2 (Linux; Fedora: "
                "sudo dnf install portaudio)")
    if system == "Darwin":
        return ("install PortAudio: brew install portaudio (macOS), or "
                "pip install --force-reinstall sounddevice, whose wheel bundles it")
    if system == "Windows":
        return ("install PortAudio: pip install --force-reinstall sounddevice (Windows; its "
                "wheel bundles PortAudio)")
    return f"install the PortAudio library for {system}"


def import_sounddevice() -> Any:
    """Import sounddevice, turning a missing PortAudio or package into AudioError."""
    try:
        import sounddevice  # noqa: PLC0415 - optional (the audio extra), needs PortAudio
    except OSError as exc:
        raise AudioError(f"audio needs the PortAudio library, which was not found ({exc}); "
                         f"{portaudio_install_hint()}") from exc
    except ImportError as exc:
        raise AudioError(f"audio needs the sounddevice package: pip install sounddevice "
                         f"({exc})") from exc
    return sounddevice


def audio_delay_for(video_latency_ms: float, audio_io_latency_s: float,
                    max_delay_s: float) -> float:
    """Delay line setting (s) that puts the audio in step with the video.

    The audio path already takes `audio_io_latency_s` (input + output buffers), so only the
    difference is added; clamped to [0, max_delay_s] (a video faster than the audio path leaves
    the audio slightly late, which cannot be helped).
    """
    return float(min(max(video_latency_ms / 1000.0 - audio_io_latency_s, 0.0), max_delay_s))


class DelayLine:
    """A multichannel delay line with click-free delay changes.

    Args:
        sample_rate: samples per second.
        channels: channels per sample; blocks are (n, channels) float32.
        max_delay_s: the longest delay `set_delay` accepts.
        delay_s: initial delay, applied at once.
        fade_s: crossfade length for delay changes (default 30 ms).

    Contract:
    - With a settled delay D = round(delay_s * sample_rate) samples, output sample t equals
      input sample t - D exactly (zeros before the stream started); D = 0 passes blocks through.
    - `set_delay(s)` (thread-safe against `process`, e.g. from the video loop while the audio
      callback runs) takes effect at the next block: the output crossfades over `fade_s` from
      the old read position to the new one with raised-cosine gains, so a change adds at most
      about pi / (2 * fade_samples) * (peak-to-peak amplitude) to any sample-to-sample step.
      Before the first `process()` call, or with immediate=True, the delay jumps directly.
      A request made during a crossfade starts when that crossfade ends.
    - `process(block)` accepts any block length (long blocks are processed in chunks).
    """

    CHUNK = 4096

    def __init__(self, sample_rate: int, channels: int, max_delay_s: float,
                 delay_s: float = 0.0, fade_s: float = 0.03):
        if sample_rate <= 0 or channels <= 0 or max_delay_s < 0 or fade_s < 0:
            raise ValueError(f"DelayLine needs sample_rate > 0, channels > 0, max_delay_s >= 0 "
                             f"and fade_s >= 0; got {sample_rate}, {channels}, {max_delay_s}, "
                             f"{fade_s}")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.max_delay_s = float(max_delay_s)
        self.max_delay_samples = int(round(max_delay_s * sample_rate))
        self._fade_len = max(1, int(round(fade_s * sample_rate)))
        self._cap = self.max_delay_samples + self.CHUNK + 1
        self._buf = np.zeros((self._cap, self.channels), dtype=np.float32)
        self._w = 0                     # buffer slot of the next input sample
        self._started = False
        self._cur = self._to_samples(delay_s)
        self._requested = self._cur     # written by set_delay (an atomic attribute store)
        self._fade_to: int | None = None
        self._fade_pos = 0

    def _to_samples(self, seconds: float) -> int:
        if not (0.0 <= seconds <= self.max_delay_s + 0.5 / self.sample_rate):
            raise ValueError(f"delay {seconds} s is outside [0, {self.max_delay_s}] s")
        return min(int(round(seconds * self.sample_rate)), self.max_delay_samples)

    def set_delay(self, seconds: float, immediate: bool = False) -> None:
        """Ask for a new delay (s); slewed by a crossfade unless immediate or not yet started.
        Raises ValueError outside [0, max_delay_s]."""
        samples = self._to_samples(seconds)
        if immediate or not self._started:
            self._fade_to = None
            self._cur = samples
        self._requested = samples

    @property
    def delay(self) -> float:
        """The delay (s) currently applied (the old one until a crossfade has finished)."""
        return self._cur / self.sample_rate

    @property
    def target_delay(self) -> float:
        """The delay (s) last requested."""
        return self._requested / self.sample_rate

    def process(self, block: np.ndarray) -> np.ndarray:
        """Push `block` ((n, channels) float32; (n,) allowed for one channel) and return the
        delayed (n, channels) float32 block."""
        x = np.asarray(block, dtype=np.float32)
        if x.ndim == 1 and self.channels == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise ValueError(f"DelayLine expects blocks of shape (n, {self.channels}), "
                             f"got {np.shape(block)}")
        self._started = True
        out = np.empty_like(x)
        for s in range(0, len(x), self.CHUNK):
            self._process_chunk(x[s:s + self.CHUNK], out[s:s + self.CHUNK])
        return out

    def _process_chunk(self, x: np.ndarray, out: np.ndarray) -> None:
        n = len(x)
        pos = self._w + np.arange(n)
        self._buf[pos % self._cap] = x
        if self._fade_to is None and self._requested != self._cur:
            self._fade_to, self._fade_pos = self._requested, 0
        old = self._buf[(pos - self._cur) % self._cap]
        if self._fade_to is None:
            out[:] = old
        else:
            new = self._buf[(pos - self._fade_to) % self._cap]
            ramp = np.clip((self._fade_pos + 1 + np.arange(n)) / self._fade_len, 0.0, 1.0)
            gain = (0.5 - 0.5 * np.cos(np.pi * ramp)).astype(np.float32)[:, None]
            out[:] = old + gain * (new - old)
            self._fade_pos += n
            if self._fade_pos >= self._fade_len:
                self._cur, self._fade_to = self._fade_to, None
        self._w = (self._w + n) % self._cap


class AudioBridge:
    """Microphone -> output device through a `DelayLine` kept equal to the video latency.

    Args:
        input_device, output_device: sounddevice device index or name (None = default).
        sample_rate, blocksize, channels: stream parameters (float32 samples).
        max_delay_s: the longest delay (longer video latencies are clamped).
        hysteresis_ms: `set_video_latency` only moves the delay when it differs from the
            current target by more than this (avoids constant crossfades from jittery numbers).
        sounddevice_module: for tests, an object with a sounddevice-like `Stream`; default
            imports sounddevice in `start()` (AudioError with an install hint when it fails).

    `start()` opens and starts the duplex stream, `stop()` stops and closes it (idempotent),
    `set_video_latency(ms)` (call it with a smoothed capture->sink latency, e.g. the running
    p50) sets the delay to `audio_delay_for(ms, stream input+output latency, max_delay_s)`.
    `status_count` counts callbacks that reported over/underflows.
    """

    def __init__(self, input_device: int | str | None = None,
                 output_device: int | str | None = None, sample_rate: int = 48000,
                 blocksize: int = 256, channels: int = 1, max_delay_s: float = 1.0,
                 hysteresis_ms: float = 5.0, sounddevice_module: Any = None):
        self.input_device, self.output_device = input_device, output_device
        self.sample_rate, self.blocksize, self.channels = sample_rate, blocksize, channels
        self.hysteresis_s = hysteresis_ms / 1000.0
        self.delay = DelayLine(sample_rate, channels, max_delay_s)
        self._sd = sounddevice_module
        self._stream: Any = None
        self.io_latency_s = 0.0
        self.status_count = 0

    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        if status:
            self.status_count += 1
        outdata[:] = self.delay.process(indata)

    def start(self) -> None:
        if self._stream is not None:
            return
        sd = self._sd if self._sd is not None else import_sounddevice()
        try:
            stream = sd.Stream(device=(self.input_device, self.output_device),
                               samplerate=self.sample_rate, blocksize=self.blocksize,
                               channels=self.channels, dtype="float32", latency="low",
                               callback=self._callback)
            stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudioError, ValueError for bad devices
            raise AudioError(f"cannot open audio {self.input_device!r} -> "
                             f"{self.output_device!r} at {self.sample_rate} Hz, "
                             f"{self.channels} channel(s): {exc}") from exc
        self._stream = stream
        lat = getattr(stream, "latency", 0.0)
        self.io_latency_s = float(sum(lat)) if isinstance(lat, (tuple, list)) else float(lat)

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()

    @property
    def running(self) -> bool:
        return self._stream is not None

    def set_video_latency(self, ms: float) -> None:
        target = audio_delay_for(ms, self.io_latency_s, self.delay.max_delay_s)
        if abs(target - self.delay.target_delay) > self.hysteresis_s:
            self.delay.set_delay(target)

    def __enter__(self) -> AudioBridge:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
