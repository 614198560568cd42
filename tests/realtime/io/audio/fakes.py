"""Fake audio streams on a simulated clock, for SyncCore and the audio process without PortAudio.

`simulate()` drives a SyncCore's two callbacks as a duplex sound device would: input block k
(samples k*n .. k*n+n-1, captured from k*n/rate) is handed over `in_lat` after it is complete;
output callbacks run when the device has room, and the block is heard `out_lat` later (or, after
an underrun, `out_lat` after the late callback: the device restarts). A stall stops every
callback for a while; the input blocks captured meanwhile arrive together afterwards, with
their true capture times, as PortAudio hands them over.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RATE = 48000


@dataclass
class Played:
    times: np.ndarray          # when each output sample is heard (s)
    samples: np.ndarray        # (n,) channel 0
    stalls: list = field(default_factory=list)


def simulate(core, signal: np.ndarray, seconds: float, n: int = 256, in_lat: float = 0.008,
             out_lat: float = 0.011, stalls: tuple[tuple[float, float], ...] = (),
             in_extra=lambda t: 0.0, on_time=None) -> Played:
    """Run `seconds` of `signal` ((len, channels) float32, sample i captured at i/rate) through
    `core`. `in_extra(t)`: extra input delay at time t (a late input). `on_time(t)`: called
    before each callback (to change the target, ...)."""
    period = n / core.rate
    events = []   # (time, kind, index)
    k_in = int(seconds / period)
    for k in range(k_in):
        t = (k + 1) * period + in_lat
        events.append((t + in_extra(t), 0, k))
    for j in range(int(seconds / period)):
        events.append((j * period, 1, j))
    delayed = []
    for t, kind, k in events:
        for a, b in stalls:
            if a <= t < b:
                t = b if kind == 0 else None   # output callbacks during the stall never happen
                break
        if t is not None:
            delayed.append((t, kind, k))
    delayed.sort()
    times, samples = [], []
    next_dac = out_lat
    for t, kind, k in delayed:
        if on_time is not None:
            on_time(t)
        if kind == 0:
            block = signal[k * n:(k + 1) * n]
            if len(block) < n:
                continue
            core.on_input(block, k * period, t, t)
        else:
            dac = max(next_dac, t + out_lat)
            out = np.zeros((n, core.channels), np.float32)
            core.on_output(out, dac, t, t)
            times.append(dac + np.arange(n) / core.rate)
            samples.append(out[:, 0])
            next_dac = dac + period
    return Played(np.concatenate(times), np.concatenate(samples))


def impulses(seconds: float, every: float = 0.25, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A signal with an impulse every `every` s (from `every`), and the impulses' times; the
    impulses' heights differ (0.3 .. 0.99, in turn), so each is found again by its height."""
    x = np.zeros((int(seconds * RATE), channels), np.float32)
    at = np.arange(every, seconds - 0.05, every)
    x[np.round(at * RATE).astype(int), 0] = _heights(len(at))
    return x, at


def _heights(n: int) -> np.ndarray:
    return (0.3 + 0.69 * (np.arange(n) % 23) / 22).astype(np.float32)


def heard_delays(played: Played, at: np.ndarray, max_delay: float = 1.5) -> np.ndarray:
    """For each impulse of `impulses()`, when it was heard minus when it was captured (nan: not
    heard intact)."""
    out = []
    for t, h in zip(at, _heights(len(at))):
        m = np.flatnonzero((played.times > t) & (played.times < t + max_delay)
                           & (np.abs(played.samples - h) < 1e-6))
        out.append(played.times[m[0]] - t if len(m) else np.nan)
    return np.asarray(out)
