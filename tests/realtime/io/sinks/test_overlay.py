"""The preview overlay: pure, draws landmarks and the timing box."""
from __future__ import annotations

import numpy as np

from realtime.core.frame import Frame
from realtime.io.sinks.overlay import draw_overlay


def test_draw_overlay_is_pure_and_draws():
    img = np.full((120, 160, 3), 200, np.uint8)
    f = Frame(index=0, t_capture=0.0, output=img)
    f.landmarks = np.array([[100.0, 100.0, 0.0], [150.0, 110.0, 0.0], [-5, 3, 0], [1e6, 5, 0],
                            [np.nan, 1, 0]], np.float32)
    f.timings = {"track": 3.25, "render": 1.5}
    out = draw_overlay(img, f, fps=29.7)
    assert (img == 200).all()  # input untouched
    assert out.shape == img.shape and out.dtype == np.uint8
    assert tuple(out[100, 100]) == (0, 255, 0) and tuple(out[110, 150]) == (0, 255, 0)
    assert (out[:20, :40] != 200).any()  # the text box in the corner
    assert (out[75:95, 110:140] == 200).all()  # nothing else
    # landmarks in driver pixels are scaled when the output has another size
    f.image = np.zeros((60, 80, 3), np.uint8)
    f.landmarks = np.array([[50.0, 50.0, 0.0]], np.float32)
    assert tuple(draw_overlay(img, f, None)[100, 100]) == (0, 255, 0)
    # no landmarks, no timings: still fine
    plain = draw_overlay(img, Frame(index=1, t_capture=0.0, output=img), None)
    assert plain.shape == img.shape
