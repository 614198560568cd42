"""A stand-in for the sounddevice module, imported by the audio process in the bridge tests.

Streams call back from a thread in real time, with PortAudio-like time info on time.time():
the input block was captured `LATENCY` before its callback, the output block is heard
`LATENCY` after it. The input is a 0.5 tone. FAKE_SD_STALL="AT:SECONDS" stops every callback
once, AT seconds after the streams started (what a starved process looks like).
"""
from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

import numpy as np

LATENCY = 0.01
_T0 = [None]
_stall_lock = threading.Lock()


def query_devices():
    return [{"name": "pulse", "max_input_channels": 32, "max_output_channels": 32,
             "default_samplerate": 48000.0}]


default = SimpleNamespace(device=[0, 0])


class _Stream:
    output = False

    def __init__(self, *, device, callback, samplerate, blocksize, channels, dtype, latency):
        self.callback, self.rate, self.n, self.channels = callback, samplerate, blocksize, channels
        self.latency = LATENCY
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        _T0[0] = _T0[0] or time.time()
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(2)

    def close(self):
        pass

    def _run(self):
        period = self.n / self.rate
        k = 0
        start = time.time()
        stall = os.environ.get("FAKE_SD_STALL")
        at, length = (float(v) for v in stall.split(":")) if stall else (None, 0.0)
        while not self._stop.is_set():
            due = start + (k + 1) * period
            now = time.time()
            if at is not None and now - _T0[0] >= at:
                with _stall_lock:               # both streams stop for the same time
                    time.sleep(max(0.0, _T0[0] + at + length - time.time()))
                at = None
                now = time.time()
                if self.output:                 # the device played silence meanwhile; the
                    start = now - (k + 1) * period  # input's blocks all arrive now, late
                    due = now
            if due > now:
                time.sleep(due - now)
                now = time.time()
            data = np.full((self.n, self.channels), 0.5 * np.sin(k), np.float32)
            if self.output:
                ti = SimpleNamespace(currentTime=now, outputBufferDacTime=now + LATENCY)
                self.callback(data, self.n, ti, None)
            else:
                ti = SimpleNamespace(currentTime=now, inputBufferAdcTime=start + k * period)
                self.callback(data, self.n, ti, None)
            k += 1


class InputStream(_Stream):
    output = False


class OutputStream(_Stream):
    output = True
