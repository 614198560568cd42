"""The preview overlay: pure, draws landmarks and the timing box."""
from __future__ import annotations

import numpy as np

from realtime.core.frame import Frame
from realtime.io.sinks.overlay import draw_overlay


def test_draw_overlay_is_pure_and_draws():
    img = np.full((120, 160, 3), 200, np.uint8)
    f = Frame(index=0, t_capture=0.0, output=img)
    f.face_points = np.array([[100.0, 100.0], [150.0, 110.0], [-5, 3], [1e6, 5], [np.nan, 1]], np.float32)
    f.timings = {"track": 3.25, "render": 1.5}
    out = draw_overlay(img, f, fps=29.7)
    assert (img == 200).all()  # input untouched
    assert out.shape == img.shape and out.dtype == np.uint8
    assert tuple(out[100, 100]) == (0, 255, 0) and tuple(out[110, 150]) == (0, 255, 0)
    assert (out[:20, :40] != 200).any()  # the text box in the corner
    assert (out[75:95, 110:140] == 200).all()  # nothing else
    # the driver's landmarks alone are not drawn (power-user review: in reenactment they were
    # stretched over an output that shows another face, and floated beside it)
    g = Frame(index=0, t_capture=0.0, output=img, image=np.zeros((60, 80, 3), np.uint8))
    g.landmarks = np.array([[50.0, 50.0, 0.0]], np.float32)
    assert (draw_overlay(img, g, None)[80:, 60:] == 200).all()
    # no landmarks, no timings: still fine
    plain = draw_overlay(img, Frame(index=1, t_capture=0.0, output=img), None)
    assert plain.shape == img.shape


def test_the_notes_symbols_are_drawn_in_ascii(monkeypatch):
    """OpenCV's Hershey fonts draw ASCII only: the governor's note 'render 400² → 320²' showed
    as 'render 400?? ??? 320??' in the window (seen on a screenshot under Xvfb)."""
    from realtime.io.sinks import overlay

    drawn = []
    monkeypatch.setattr(overlay.cv2, "putText", lambda img, text, *a, **k: drawn.append(text))
    f = Frame(index=0, t_capture=0.0, notes={"render": "render 400² → 320² (real-time budget)"})
    overlay.draw_overlay(np.zeros((240, 320, 3), np.uint8), f, 30.0)
    assert "render 400^2 -> 320^2 (real-time budget)" in drawn and all(t.isascii() for t in drawn)


def test_a_note_wider_than_the_frame_is_cut_onto_more_lines(monkeypatch):
    """Before (stop 61's review): the swap's gaze-hotkey notice ran off a 640 px window,
    "... '+'/'-' still change eyes" cut at "inside the profil"."""
    from realtime.io.sinks import overlay

    drawn = []
    monkeypatch.setattr(overlay.cv2, "putText", lambda img, text, org, *a, **k: drawn.append((text, org)))
    note = "gaze: no gain in swap (your own eyes show through the profile's lids); '+'/'-' still change eyes"
    f = Frame(index=0, t_capture=0.0, notes={"hotkey": note})
    overlay.draw_overlay(np.zeros((480, 320, 3), np.uint8), f, 30.0)
    texts = [t for t, _ in drawn[1:]]
    assert len(texts) > 1 and " ".join(t.strip() for t in texts) == note
    font = overlay.cv2.FONT_HERSHEY_SIMPLEX
    assert all(overlay.cv2.getTextSize(t, font, 0.4, 1)[0][0] <= 310 for t in texts)
    assert [org[1] for _, org in drawn] == sorted({org[1] for _, org in drawn})   # a line each
    assert overlay._wrapped("a" * 80, 10, lambda t: len(t) <= 10) == ["a" * 80]   # one word: whole
