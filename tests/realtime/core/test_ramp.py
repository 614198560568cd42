from __future__ import annotations

import numpy as np
import pytest

from realtime.core.ramp import smoothstep


@pytest.mark.parametrize("x, want", [(-1.0, 0.0), (0.0, 0.0), (0.25, 0.15625), (0.5, 0.5), (1.0, 1.0), (3, 1.0)])
def test_smoothstep_of_a_number(x, want):
    assert smoothstep(x) == pytest.approx(want)


def test_smoothstep_of_an_array_keeps_its_dtype_and_matches_the_numbers():
    x = np.linspace(-0.5, 1.5, 21, dtype=np.float32)
    y = smoothstep(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [smoothstep(float(v)) for v in x], rtol=1e-6)
    assert np.all(np.diff(y) >= 0)
