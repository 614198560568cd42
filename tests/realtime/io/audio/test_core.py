"""SyncCore on fake streams: the delay is what was asked, changes do not click, stalls and
late input leave no backlog behind."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.io.audio.core import SyncCore
from tests.realtime.io.audio.fakes import RATE, heard_delays, impulses, simulate

SETTLED = 0.6   # no sound passes in the streams' first SETTLED_S (0.5 s), while clocks settle


def test_sound_is_heard_exactly_target_after_capture():
    core = SyncCore(RATE, 1)
    x, at = impulses(3.0)
    played = simulate(core, x, 3.0, on_time=lambda t: core.set_target(0.05) if t > 0.1 else None)
    d = heard_delays(played, at)
    assert np.all(np.isnan(d[at < 0.5]))
    assert np.allclose(d[at > SETTLED], 0.05, atol=1.5 / RATE), d
    assert core.counts["short_blocks"] == 0 and core.counts["resyncs"] == 0
    assert core.applied == pytest.approx(0.05, abs=1.5 / RATE)


def test_silent_until_the_first_target_then_fades_in():
    core = SyncCore(RATE, 1)
    x = np.full((RATE * 2, 1), 0.5, np.float32)
    played = simulate(core, x, 2.0, on_time=lambda t: core.set_target(0.04) if t >= 1.0 else None)
    before = played.samples[played.times < 1.0]
    assert not before.any()
    after = played.samples[played.times >= 1.0]
    first = np.flatnonzero(after)[0]
    assert np.abs(np.diff(after[first:first + 2000])).max() < 0.01   # a fade, not a step
    assert after[-1000:] == pytest.approx(0.5)


def test_a_target_below_what_the_streams_allow_is_raised_to_the_floor():
    core = SyncCore(RATE, 1)
    core.set_target(0.0)
    x, at = impulses(3.0)
    played = simulate(core, x, 3.0, in_lat=0.008, out_lat=0.011)
    d = heard_delays(played, at)[2:]
    # the streams need in_lat + one block + out_lat at least, and up to one block more when
    # an output callback comes just before the next input block (+1.5 ms of margin)
    need = 0.008 + 256 / RATE + 0.011
    assert np.all((d >= need - 1e-4) & (d <= need + 256 / RATE + 0.002)), d
    assert core.counts["short_blocks"] <= 1   # only the very first block may lack input


def test_delay_changes_crossfade_without_clicks():
    f = 440.0
    n = 3 * RATE
    x = np.sin(2 * np.pi * f * np.arange(n) / RATE).astype(np.float32)[:, None]
    natural = 2 * np.pi * f / RATE   # the sine's own largest step (~0.058)
    core = SyncCore(RATE, 1, fade_s=0.03)

    def changes(t):
        core.set_target(0.03 if t < 1.0 else 0.0737 if t < 2.0 else 0.041)

    played = simulate(core, x, 3.0, on_time=changes)
    y = played.samples[played.times > 0.1]
    y = y[np.flatnonzero(y)[0]:]
    assert np.abs(np.diff(y)).max() < natural + 0.01
    assert core.counts["resyncs"] == 2
    assert core.applied == pytest.approx(0.041, abs=1.5 / RATE)


def test_small_target_moves_within_tolerance_are_left_alone():
    core = SyncCore(RATE, 1, tolerance_s=0.003)
    x, at = impulses(2.0)
    simulate(core, x, 2.0, on_time=lambda t: core.set_target(0.05 + 0.0014 * np.sin(t * 9)))
    assert core.counts["resyncs"] == 0


def test_a_stall_is_counted_and_recovered_within_a_second():
    core = SyncCore(RATE, 1)
    core.set_target(0.06)
    x, at = impulses(6.0, every=0.05)
    played = simulate(core, x, 6.0, stalls=((2.0, 2.3),))
    d = heard_delays(played, at)
    before = d[(at > SETTLED) & (at < 2.0 - 0.07)]
    after = d[at > 2.3 + 1.0]
    assert np.allclose(before, 0.06, atol=1.5 / RATE)
    assert np.allclose(after, 0.06, atol=1.5 / RATE), after
    assert core.counts["stalls"] == 1
    assert core.stall_events[0][1] == pytest.approx(0.3, abs=0.02)
    # the recovery itself: every impulse captured 0.25 s after the stall is on target
    assert np.allclose(d[(at > 2.55) & (at < 3.3)], 0.06, atol=0.002), d[(at > 2.3) & (at < 3.3)]


def test_a_late_input_raises_the_delay_only_while_it_is_late():
    core = SyncCore(RATE, 1)
    core.set_target(0.03)
    x, at = impulses(8.0)
    late = lambda t: 0.12 if 2.0 <= t < 4.0 else 0.0
    played = simulate(core, x, 8.0, in_extra=late)
    d = heard_delays(played, at)
    assert np.allclose(d[(at > SETTLED) & (at < 1.9)], 0.03, atol=1.5 / RATE)
    assert np.all(d[(at > 2.3) & (at < 3.8)] > 0.12)         # cannot be earlier than the input
    assert np.allclose(d[at > 6.5], 0.03, atol=1.5 / RATE), d  # 2 s later the backlog is gone


def test_ring_wraps_and_multichannel():
    core = SyncCore(RATE, 2, max_delay_s=0.2)
    core.set_target(0.15)
    x, at = impulses(5.0, channels=2)
    x[:, 1] = -x[:, 0]
    played = simulate(core, x, 5.0)
    assert np.allclose(heard_delays(played, at)[at > SETTLED], 0.15, atol=1.5 / RATE)


def test_targets_are_clamped():
    core = SyncCore(RATE, 1, max_delay_s=0.5)
    core.set_target(2.0)
    assert core.target == 0.5
    core.set_target(-1)
    assert core.target == 0.0
    core.set_target(None)
    assert core.effective_target() is None


def test_snapshot_is_plain_data():
    core = SyncCore(RATE, 1)
    core.set_target(0.05)
    x, _ = impulses(1.0)
    simulate(core, x, 1.0)
    snap = core.snapshot()
    assert snap["out_callbacks"] > 100 and snap["in_callbacks"] > 100
    assert snap["applied_ms"] == pytest.approx(50.0, abs=0.1)
    assert snap["peak_in"] > 0.3 and snap["peak_out"] == snap["peak_in"]
    assert len(core.history) > 10


def test_no_sound_until_the_clocks_have_settled():
    # PortAudio on PulseAudio: for its first second the input's buffer times slide (here by
    # 300 ms over 0.6 s); no sound may pass then, nor 0.5 s after
    core = SyncCore(RATE, 1)
    core.set_target(0.05)
    x, at = impulses(4.0, every=0.1)
    real_on_input = core.on_input
    core.on_input = lambda b, adc, now, cur, st=False: real_on_input(
        b, adc - max(0.0, 0.3 * (1 - now / 0.6)), now, cur, st)
    played = simulate(core, x, 4.0)
    d = heard_delays(played, at)
    assert np.all(np.isnan(d[at < 1.0]))
    assert np.allclose(d[at > 1.2], 0.05, atol=1.5 / RATE), d
    assert 1.05 < core.settled_at < 1.25
