"""StreamClock: steady under jittery buffer times, follows real jumps; MinOffset."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.io.audio.clock import MinOffset, StreamClock

RATE = 48000


def test_jitter_does_not_move_the_clock():
    rng = np.random.default_rng(0)
    clock = StreamClock(RATE)
    for k in range(500):
        clock.add(k * 256, 100.0 + k * 256 / RATE + rng.normal(0, 0.0015))
    assert clock.t0 == pytest.approx(100.0, abs=0.0004)
    assert clock.time_at(48000) == pytest.approx(101.0, abs=0.0004)
    assert clock.index_at(101.0) == pytest.approx(48000, abs=20)
    assert clock.jumps == 0


def test_a_lone_wrong_time_is_ignored_a_lasting_jump_is_followed():
    clock = StreamClock(RATE, confirm=6)
    for k in range(100):
        clock.add(k * 256, k * 256 / RATE)
    assert not clock.add(100 * 256, 100 * 256 / RATE + 0.3)   # one stray time
    clock.add(101 * 256, 101 * 256 / RATE)
    assert clock.t0 == pytest.approx(0.0, abs=1e-9)
    jumped = [clock.add(k * 256, k * 256 / RATE + 0.3) for k in range(102, 108)]
    assert jumped == [False] * 5 + [True] and clock.jumps == 1
    assert clock.t0 == pytest.approx(0.3, abs=1e-9)


def test_slow_drift_is_followed_without_jumps():
    clock = StreamClock(RATE, window=64)
    for k in range(2000):
        clock.add(k * 256, k * 256 / RATE * (1 + 200e-6))   # 200 ppm
    assert clock.jumps == 0
    assert clock.time_at(1999 * 256) == pytest.approx(1999 * 256 / RATE * (1 + 200e-6), abs=0.0005)


def test_min_offset_takes_the_earliest_reading_and_creeps():
    off = MinOffset(creep_s=1e-6)
    for d in (0.0103, 0.0101, 0.0107):
        off.add(5.0 + d, 5.0)
    assert off.value == pytest.approx(0.0101 + 1e-6)
