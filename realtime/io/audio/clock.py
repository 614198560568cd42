"""Stream clocks: which sample of a stream is heard (or was captured) when.

PortAudio gives every callback the stream time of its first sample (`inputBufferAdcTime` for a
capture stream, `outputBufferDacTime` for a playback stream). Those times already include the
buffers between the device and the callback, so they stay right when the callback itself runs
late; the samples are counted by the caller, which makes `t0 = time - index / rate` a constant
for a steady stream. `StreamClock` estimates that constant robustly; `MinOffset` maps stream
time onto `time.perf_counter()` (the engine's clock).
"""
from __future__ import annotations

from collections import deque

import numpy as np


class StreamClock:
    """Sample index <-> stream time for one stream, from its callbacks' buffer times.

    Args:
        rate: samples per second.
        window: callbacks in the median (about half a second of 5 ms blocks by default).
        confirm: consecutive callbacks that must agree on a new t0 before the clock jumps.
        jump_s: a t0 further than this from the estimate is a candidate jump, not history.
        every: the median is recomputed every this many callbacks (it moves slowly; the
            callbacks stay cheap).

    Contract: `add(index, t)` records that sample `index` is at stream time `t`; the estimate
    of t0 is the median of the recent t0 values, so the callbacks' timing jitter and a stray
    wrong time do not move it. When the stream skips (samples lost in an overflow, a restart
    after an xrun, PortAudio's first buffers) t0 moves for good: `confirm` consecutive values
    more than `jump_s` away on the same side replace the history, and `jumps` counts it.
    """

    def __init__(self, rate: float, window: int = 256, confirm: int = 6, jump_s: float = 0.002,
                 every: int = 8):
        self.rate = float(rate)
        self.every = int(every)            # the median is recomputed every `every` callbacks
        self._adds = 0
        self.confirm = int(confirm)
        self.jump_s = float(jump_s)
        self._t0s: deque[float] = deque(maxlen=int(window))
        self._pending: list[float] = []
        self.t0: float | None = None
        self.jumps = 0

    @property
    def ready(self) -> bool:
        return self.t0 is not None

    def add(self, index: int, t: float) -> bool:
        """Record one callback; True when this made the clock jump."""
        t0 = float(t) - index / self.rate
        if self.t0 is None or abs(t0 - self.t0) <= self.jump_s:
            if self._pending:
                self._pending.clear()
            self._t0s.append(t0)
            self._adds += 1
            if self._adds % self.every == 0 or len(self._t0s) < self.every:
                self.t0 = float(np.median(self._t0s))
            return False
        if self._pending and (t0 > self.t0) != (self._pending[0] > self.t0):
            self._pending.clear()
        self._pending.append(t0)
        if len(self._pending) < self.confirm:
            return False
        self._t0s.clear()
        self._t0s.extend(self._pending)
        self._pending.clear()
        self.t0 = float(np.median(self._t0s))
        self.jumps += 1
        return True

    def time_at(self, index: float) -> float:
        assert self.t0 is not None, "StreamClock.time_at before the first add()"
        return self.t0 + index / self.rate

    def index_at(self, t: float) -> float:
        assert self.t0 is not None, "StreamClock.index_at before the first add()"
        return (t - self.t0) * self.rate


class MinOffset:
    """`perf_counter() - stream time`, from pairs read in the callbacks.

    The callback reads perf_counter a little after PortAudio read the stream time, never
    before, so the smallest difference seen is the best estimate; it creeps up by `creep_s` per
    sample so that a clock slewed by NTP is followed.
    """

    def __init__(self, creep_s: float = 1e-6):
        self.creep_s = creep_s
        self.value: float | None = None

    def add(self, perf: float, stream_time: float) -> None:
        d = perf - stream_time
        self.value = d if self.value is None else min(self.value + self.creep_s, d)
