"""`SyncCore`: microphone samples in, delayed samples out, on stream time.

The input and output streams are separate (each its own PortAudio callback), joined by a ring
buffer indexed by the input's sample count. Both streams carry clocks (`StreamClock`), so the
core knows when each input sample was captured and when each output sample will be heard; every
output block reads the input samples captured `target` seconds before it is heard. That one
rule gives the properties the engine needs:

- a stall anywhere (a callback starved, an xrun, samples lost) leaves no backlog behind: once
  the callbacks run again the clocks say where to read, and the read position moves there;
- the delay follows `set_target` without clicks: a correction larger than `tolerance_s` is made
  by a raised-cosine crossfade over `fade_s` from the old read position to the new one (small
  corrections therefore are rare and inaudible, large ones — after a stall — are one fade);
  a read position too new for the samples at hand is corrected at once, however small;
- no sound passes before both streams' clocks have been still for `SETTLED_S`;
- a target below what the streams can deliver (the newest input sample is older than the
  target) is raised to the `floor`: the third largest such minimum over the last 2 s (input
  arrives in fragments, so the minimum swings by up to a fragment, in a beat with the output's
  blocks that can be slower than a second; below its largest values some output blocks would
  lack samples; one or two stray late arrivals are not followed),
  not counting the blocks just after a stall, measured afresh when a clock jumps (a stream's
  first second, when PortAudio's buffer times on PulseAudio slide by hundreds of ms).

Thread model: `on_input` and `on_output` are called from PortAudio's callback threads,
`set_target` and `snapshot` from another thread; every shared value is a single attribute
store, and the ring region being read is never the one being written (the ring holds
`max_delay_s` + 1 s).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from realtime.io.audio.clock import MinOffset, StreamClock

SETTLE_GAP_S = 0.04   # a callback gap longer than this ...
SETTLE_S = 0.1        # ... keeps the floor from sampling the catch-up for this long
FLOOR_RANK = 3        # the floor is the k-th largest minimum delay of the last ...
FLOOR_WINDOW_S = 2.0  # ... seconds (the minimum swings with a beat of the two streams'
FLOOR_MARGIN_S = 0.0015  # fragments that can be slower than a second), plus this margin
SETTLED_S = 0.5       # the streams' clocks must be still this long before sound passes


class SyncCore:
    """Args:
        rate, channels: stream format (float32 samples, shape (n, channels)).
        max_delay_s: the longest delay (targets above are clamped).
        tolerance_s: the read position is corrected when it is off by more than this.
        fade_s: crossfade length of a correction.
        stall_s: a callback gap longer than this counts as a stall.
        history_every: one history row per this many output blocks.
        blocksize: the streams' usual block length (sizes the floor's window).
    """

    def __init__(self, rate: int, channels: int = 1, max_delay_s: float = 1.0,
                 tolerance_s: float = 0.003, fade_s: float = 0.03, stall_s: float = 0.1,
                 history_every: int = 4, blocksize: int = 256):
        self.rate, self.channels = int(rate), int(channels)
        self.max_delay_s = float(max_delay_s)
        self.cap = int((self.max_delay_s + 1.0) * self.rate)
        self.ring = np.zeros((self.cap, self.channels), np.float32)
        self.n_in = 0                      # input samples received (the ring's write index)
        self.m_out = 0                     # output samples produced
        self.in_clock, self.out_clock = StreamClock(rate, jump_s=0.005), StreamClock(rate, jump_s=0.005)
        self.offset = MinOffset()          # perf_counter - stream time
        self.target: float | None = None   # wanted capture -> heard delay (s); None: silence
        self.read: int | None = None       # input index of the next output sample
        self._fade_from: int | None = None  # old read position during a crossfade (-1: silence)
        self._fade_pos = 0
        self._fade_len = max(1, int(round(fade_s * self.rate)))
        self._tol = tolerance_s * self.rate
        self.stall_s = float(stall_s)
        self._needs: deque[float] = deque(maxlen=max(8, int(FLOOR_WINDOW_S * self.rate / blocksize)))
        self._settle_until = 0.0           # perf time: no floor samples until then (after a gap)
        self._last_jump = self._first_cb = -np.inf
        self.settled_at: float | None = None   # perf time from which sound may pass
        self.floor = 0.0                   # the smallest delay the streams allow (s)
        self.applied: float | None = None  # capture -> heard delay of the last block (s)
        self.history: deque[tuple[float, float, float]] = deque(maxlen=20000)
        self._history_every = max(1, int(history_every))
        self._last_cb: dict[str, float | None] = {"in": None, "out": None}
        self.counts = {"in_callbacks": 0, "out_callbacks": 0, "input_overflows": 0,
                       "output_underflows": 0, "short_blocks": 0, "resyncs": 0, "stalls": 0}
        self.longest_gap_s = 0.0
        self.stall_events: deque[tuple[float, float]] = deque(maxlen=100)  # (perf time, gap s)
        self.peak_in = self.peak_out = 0.0
        self.stopped: tuple[str, float] | None = None   # (why, perf time): no sound since

    # ------------------------------------------------------------------ control (any thread)
    def set_target(self, seconds: float | None) -> None:
        """The wanted delay from capture to hearing (s), clamped to [0, max_delay_s]; None mutes
        (and so does every target after `stop_sound`)."""
        self.target = None if seconds is None else min(max(float(seconds), 0.0), self.max_delay_s)
        if self.stopped is not None:          # (checked after the write: a stop between stays a stop)
            self.target = None

    def stop_sound(self, why: str, now: float) -> None:
        """No sound passes from now on (a device went away mid-run); `why` goes in the snapshot."""
        if self.stopped is None:
            self.stopped = (why, now)
        self.target = None

    def effective_target(self) -> float | None:
        target = self.target          # read once: `stop_sound` (the device watch's thread) may clear it
        if target is None or self.stopped is not None:
            return None
        return min(max(target, self.floor), self.max_delay_s)

    # ------------------------------------------------------------------- callbacks (PortAudio)
    def on_input(self, block: np.ndarray, adc_time: float, now: float, current_time: float,
                 status: bool = False) -> None:
        """One input callback: `block` (n, channels) captured from `adc_time` (stream time);
        `now` = perf_counter() and `current_time` = the stream time, both read in the callback."""
        n = len(block)
        self._tick("in", now, status, "input_overflows")
        self.offset.add(now, current_time)
        if self.in_clock.add(self.n_in, adc_time):
            self._clock_moved(now)
        i = self.n_in % self.cap
        first = min(n, self.cap - i)
        self.ring[i:i + first] = block[:first]
        if first < n:
            self.ring[:n - first] = block[first:]
        if n:
            self.peak_in = max(self.peak_in, float(block.max()), -float(block.min()))
        self.n_in += n                     # last: the samples are in the ring before they count

    def on_output(self, out: np.ndarray, dac_time: float, now: float, current_time: float,
                  status: bool = False) -> None:
        """One output callback: fill `out` (n, channels), heard from `dac_time` (stream time)."""
        n = len(out)
        self._tick("out", now, status, "output_underflows")
        self.offset.add(now, current_time)
        if self.out_clock.add(self.m_out, dac_time):
            self._clock_moved(now)
        m, self.m_out = self.m_out, self.m_out + n
        newest = self.n_in
        if not self.in_clock.ready:
            out.fill(0.0)
            return
        t_play = self.out_clock.time_at(m)
        if now >= self._settle_until:      # measured while silent too: ready at the first target
            self._needs.append(t_play + n / self.rate - self.in_clock.time_at(newest))
        if self._needs and (self.counts["out_callbacks"] % 8 == 0 or self.read is None):
            k = min(len(self._needs), FLOOR_RANK)
            self.floor = float(np.partition(self._needs, -k)[-k]) + FLOOR_MARGIN_S
        if self.settled_at is None and self._settled(now):
            self.settled_at = now
        target = self.effective_target() if self.settled_at is not None else None
        if target is None:
            out.fill(0.0)
            return
        want = self.in_clock.index_at(t_play - target)
        if self.read is None:                      # first block: fade in from silence
            self.read, self._fade_from, self._fade_pos = int(round(want)), -1, 0
        elif self._fade_from is None and (abs(self.read - want) > self._tol or
                                          (self.read + n > newest and self.read > want)):
            # off by more than the tolerance, or reading too new: this block would lack samples
            self._fade_from, self._fade_pos = self.read, 0
            self.read = int(round(want))
            self.counts["resyncs"] += 1
        new = self._take(self.read, n, newest)
        if self._fade_from is None:
            out[:] = new
        else:
            old = (np.zeros_like(new) if self._fade_from < 0
                   else self._take(self._fade_from, n, newest))
            ramp = np.clip((self._fade_pos + 1 + np.arange(n)) / self._fade_len, 0.0, 1.0)
            gain = (0.5 - 0.5 * np.cos(np.pi * ramp)).astype(np.float32)[:, None]
            out[:] = old + gain * (new - old)
            self._fade_pos += n
            if self._fade_pos >= self._fade_len:
                self._fade_from = None
            elif self._fade_from >= 0:
                self._fade_from += n
        self.applied = t_play - self.in_clock.time_at(self.read)
        if n:
            self.peak_out = max(self.peak_out, float(out.max()), -float(out.min()))
        if self.counts["out_callbacks"] % self._history_every == 0 and self.offset.value is not None:
            captured = self.in_clock.time_at(self.read) + self.offset.value
            self.history.append((captured, self.applied, target))
        self.read += n

    # ------------------------------------------------------------------------------ helpers
    def _clock_moved(self, now: float) -> None:
        self._needs.clear()                # measured on the old clock
        self._last_jump = now

    def _settled(self, now: float) -> bool:
        """Both streams have run for a while and their clocks have been still for SETTLED_S
        (PortAudio's buffer times on PulseAudio slide by hundreds of ms in a stream's first
        second or two; no sound passes before they stop)."""
        c = self.counts
        return (c["in_callbacks"] >= 20 and c["out_callbacks"] >= 20
                and now - self._last_jump >= SETTLED_S and now - self._first_cb >= SETTLED_S)

    def _take(self, start: int, n: int, newest: int) -> np.ndarray:
        """Input samples start..start+n-1 from the ring; zeros for those not (or no longer)
        there, counted in `short_blocks`."""
        lo, hi = max(start, newest - self.cap + 1, 0), min(start + n, newest)
        if hi - lo == n:                   # the usual case: one or two slices of the ring
            i = lo % self.cap
            if i + n <= self.cap:
                return self.ring[i:i + n].copy()
            return np.concatenate((self.ring[i:], self.ring[:i + n - self.cap]))
        self.counts["short_blocks"] += 1
        block = np.zeros((n, self.channels), np.float32)
        if hi > lo:
            block[lo - start:hi - start] = self.ring[np.arange(lo, hi) % self.cap]
        return block

    def _tick(self, stream: str, now: float, status: bool, flag: str) -> None:
        self.counts[stream + "_callbacks"] += 1
        if self._first_cb == -np.inf:
            self._first_cb = now
        if status:
            self.counts[flag] += 1
        last, self._last_cb[stream] = self._last_cb[stream], now
        if last is None:
            return
        if now - last > SETTLE_GAP_S:      # the streams catch up for a moment after a gap
            self._settle_until = now + SETTLE_S
        if self.target is not None:        # stalls while passing sound
            self._gap(now - last, now)

    def _gap(self, gap: float, now: float) -> None:
        self.longest_gap_s = max(self.longest_gap_s, gap)
        if gap > self.stall_s:
            # both streams usually stall together: one event per stall
            if not self.stall_events or now - self.stall_events[-1][0] > max(gap, self.stall_s):
                self.counts["stalls"] += 1
                self.stall_events.append((now, gap))

    def silent_for(self, now: float) -> float:
        """Seconds since the last output callback (0 before the first): a stream that stopped."""
        last = self._last_cb["out"]
        return 0.0 if last is None else max(0.0, now - last)

    def snapshot(self) -> dict:
        """Counters and current values (plain data, for the parent process)."""
        return {**self.counts, "longest_gap_ms": 1000.0 * self.longest_gap_s,
                "floor_ms": 1000.0 * self.floor,
                "applied_ms": None if self.applied is None else 1000.0 * self.applied,
                "target_ms": None if self.target is None else 1000.0 * self.target,
                "clock_jumps": self.in_clock.jumps + self.out_clock.jumps,
                "settled": self.settled_at is not None,
                "peak_in": self.peak_in, "peak_out": self.peak_out,
                "stall_events": [(t, 1000.0 * g) for t, g in self.stall_events],
                "stopped": None if self.stopped is None else self.stopped[0],
                "stopped_at": None if self.stopped is None else self.stopped[1]}
