"""realtime.face.filters: OneEuroFilter (Casiez et al. 2012) and Speed."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.face.filters import OneEuroFilter, Speed

FPS = 30.0


def _run(f, signal, fps=FPS):
    return np.array([f(x, i / fps) for i, x in enumerate(signal)])


def test_constant_signal_passes_unchanged():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    x = np.array([[1.5, -2.0, 3.25], [0.0, 7.0, -1e3]])
    for i in range(50):
        np.testing.assert_array_equal(f(x, i / FPS), x)


def test_first_sample_passes_and_output_is_a_copy():
    f = OneEuroFilter()
    x = np.array([1.0, 2.0])
    y = f(x, 0.0)
    np.testing.assert_array_equal(y, x)
    y[0] = 99.0
    np.testing.assert_array_equal(f(x, 1 / FPS), x)  # internal state not aliased


def test_step_response_matches_the_exponential_smoothing_factor():
    """beta = 0 is a first-order low-pass: after a step, y1 = alpha with
    alpha = 1 / (1 + tau / dt), tau = 1 / (2 pi fc)."""
    fc, dt = 1.0, 1.0 / FPS
    f = OneEuroFilter(min_cutoff=fc, beta=0.0)
    f(0.0, 0.0)
    alpha = 1.0 / (1.0 + (1.0 / (2 * np.pi * fc)) / dt)
    y1 = float(f(1.0, dt))
    assert y1 == pytest.approx(alpha, rel=1e-9)
    y2 = float(f(1.0, 2 * dt))
    assert y2 == pytest.approx(alpha + (1 - alpha) * alpha, rel=1e-9)


def test_noise_on_a_still_signal_is_reduced():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, size=(300, 4)) + 5.0
    out = _run(OneEuroFilter(min_cutoff=1.0, beta=0.05), noise)
    ratio = out[30:].std(0) / noise[30:].std(0)
    assert (ratio < 0.5).all()
    np.testing.assert_allclose(out[30:].mean(0), 5.0, atol=0.3)  # no bias


def test_fast_ramp_lags_less_with_beta():
    t = np.arange(60) / FPS
    ramp = 100.0 * t  # 100 units per second
    lag = {}
    for beta in (0.0, 0.05, 0.5):
        out = _run(OneEuroFilter(min_cutoff=1.0, beta=beta), ramp)
        lag[beta] = float(np.mean(ramp[30:] - out[30:]))
    assert lag[0.0] > 0  # a low-pass lags behind a ramp
    assert lag[0.5] < lag[0.05] < lag[0.0]
    assert lag[0.5] < 0.2 * lag[0.0]
    # the beta=0 steady-state lag of a first-order filter is speed * tau
    assert lag[0.0] == pytest.approx(100.0 / (2 * np.pi), rel=0.1)


def test_cutoff_adapts_per_element():
    """One element moving fast must not unlock the smoothing of a still, noisy one."""
    rng = np.random.default_rng(1)
    n = 200
    x = np.zeros((n, 2))
    x[:, 0] = 200.0 * np.arange(n) / FPS
    x[:, 1] = rng.normal(0, 0.02, n)
    out = _run(OneEuroFilter(min_cutoff=1.0, beta=0.5), x)
    alone = _run(OneEuroFilter(min_cutoff=1.0, beta=0.5), x[:, 1:])
    np.testing.assert_allclose(out[:, 1], alone[:, 0], atol=1e-12)
    assert out[20:, 1].std() < 0.5 * x[20:, 1].std()


def test_reset_forgets_the_past():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    f(np.zeros(3), 0.0)
    assert not np.allclose(f(np.full(3, 10.0), 1 / FPS), 10.0)
    f.reset()
    np.testing.assert_array_equal(f(np.full(3, -4.0), 2 / FPS), -4.0)
    # after a reset the filter takes a new shape too
    f.reset()
    np.testing.assert_array_equal(f(np.ones((2, 2)), 3 / FPS), np.ones((2, 2)))


def test_non_increasing_time_does_not_blow_up():
    f = OneEuroFilter(min_cutoff=1.0, beta=1.0)
    f(0.0, 1.0)
    y = f(1.0, 1.0)  # same timestamp
    assert np.isfinite(y) and 0.0 <= float(y) <= 1.0
    y = f(2.0, 0.5)  # going back in time
    assert np.isfinite(y) and 0.0 <= float(y) <= 2.0


def test_bad_arguments():
    for kwargs in ({"min_cutoff": 0.0}, {"min_cutoff": -1.0}, {"d_cutoff": 0.0}, {"beta": -0.1}):
        with pytest.raises(ValueError):
            OneEuroFilter(**kwargs)
    f = OneEuroFilter()
    f(np.zeros(3), 0.0)
    with pytest.raises(ValueError):
        f(np.zeros(4), 0.1)


def test_floor_raises_the_cutoff():
    """A high cutoff floor lets a step through at once; a floor below the filter's own cutoff
    changes nothing."""
    step = np.array([0.0] + [1.0] * 5)
    plain = _run(OneEuroFilter(min_cutoff=1.0, beta=0.0), step)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    low = np.array([f(x, i / FPS, floor=0.5) for i, x in enumerate(step)])
    np.testing.assert_array_equal(low, plain)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    high = np.array([f(x, i / FPS, floor=1e4) for i, x in enumerate(step)])
    assert high[1] > 0.99 and plain[1] < 0.2
    # per element: the floor broadcasts
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    f(np.zeros(2), 0.0)
    y = f(np.ones(2), 1 / FPS, floor=np.array([1e4, 0.0]))
    assert y[0] > 0.99 and y[1] == pytest.approx(plain[1])


def test_min_cutoff_per_element():
    f = OneEuroFilter(min_cutoff=np.array([1.0, 10.0]), beta=0.0)
    f(np.zeros(2), 0.0)
    y = f(np.ones(2), 1 / FPS)
    assert y[0] < y[1]
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=np.array([1.0, 0.0]))


def test_speed_of_a_ramp_and_of_a_still_signal():
    s = Speed(d_cutoff=2.0)
    assert s(np.array([1.0, 2.0]), 0.0) == 0.0
    for i in range(1, 60):
        v = s(np.array([1.0, 2.0]) + np.array([3.0, 4.0]) * i / FPS, i / FPS)
    assert v == pytest.approx(5.0, rel=1e-3)          # |(3, 4)| units per second
    still = Speed(d_cutoff=2.0)
    for i in range(30):
        v = still(np.array([7.0]), i / FPS)
    assert v == 0.0
    s.reset()
    assert s(np.array([0.0, 0.0]), 3.0) == 0.0
    with pytest.raises(ValueError):
        Speed(d_cutoff=0.0)


def test_a_rectified_speed_keeps_reading_through_a_turn():
    """Down fast for four frames, then up as fast (a blink's lids): the signed low-pass reads
    the turn as slowing down, the rectified one as motion; in one direction they agree."""
    path = [0.0, -1.0, -2.0, -3.0, -4.0, -3.0]
    signed, rectified = Speed(d_cutoff=2.0), Speed(d_cutoff=2.0, rectified=True)
    for i, x in enumerate(path):
        v_signed, v_rect = signed(np.array([x]), i / FPS), rectified(np.array([x]), i / FPS)
        if i < len(path) - 1:
            assert v_rect == pytest.approx(v_signed)
    assert v_rect > 2.5 * v_signed
