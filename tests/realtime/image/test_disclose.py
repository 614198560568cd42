"""The disclosure stage: the label and the mark on every output frame, from the command line only."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from realtime.core.errors import PuppeteerError
from realtime.core.frame import Frame
from realtime.core.profile import ARRAYS_FILE
from realtime.image.disclose import (
    CORNERS,
    DisclosureOptions,
    DisclosureStage,
    LabelError,
    check_label_text,
    profile_fingerprint,
    render_label,
)
from realtime.image.mark import canonical_luma, cell_stats, detect, pattern
from realtime.image.payload import Payload


class FakeProfile(dict):
    files: dict = {}


def fake_profile(seed=0, files=None):
    rng = np.random.default_rng(seed)
    p = FakeProfile(image=rng.integers(0, 256, (50, 40, 3), dtype=np.uint8))
    p.files = files or {}
    return p


def grey(w=640, h=480, v=100):
    return np.full((h, w, 3), v, np.uint8)


def run_stage(options, img, profile=None):
    stage = DisclosureStage(profile or fake_profile(), (img.shape[1], img.shape[0]), options)
    frame = Frame(index=0, t_capture=0.0, output=img.copy())
    stage(frame)
    return stage, frame.output


def test_label_and_mark_by_default():
    img = grey()
    stage, out = run_stage(DisclosureOptions(), img)
    sprite, (y0, x0) = render_label("AI avatar", 640, 480, "bottom-right")
    h, w = sprite.shape[:2]
    assert y0 + h < 480 and x0 + w < 640 and y0 > 400 and x0 > 400  # bottom-right, inside
    box = np.zeros((480, 640), bool)
    box[y0:y0 + h, x0:x0 + w] = True
    diff = out.astype(int) - img
    assert np.abs(diff[~box]).max() <= 4 and (diff[~box] != 0).mean() > 0.5  # the mark, only
    assert (out[box] > 200).any() and (out[box] < 60).mean() > 0.3  # white text on a dark box
    d = detect(*cell_stats(canonical_luma(out)))
    assert d.found and d.payload == stage.payload


def test_no_label_keeps_the_mark():
    img = grey()
    _, out = run_stage(DisclosureOptions(label=False), img)
    expect = np.clip(img.astype(int) + pattern(_payload(), 640, 480)[..., None], 0, 255)
    np.testing.assert_array_equal(out, expect)


def test_both_off_is_the_identity():
    img = grey()
    _, out = run_stage(DisclosureOptions(label=False, mark=False), img)
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("corner", CORNERS)
@pytest.mark.parametrize("size", [(640, 480), (320, 240), (1280, 720), (16, 16), (200, 20)])
def test_the_label_fits_every_corner_and_size(corner, size):
    w, h = size
    sprite, (y0, x0) = render_label("AI avatar", w, h, corner)
    assert sprite.dtype == np.uint8 and sprite.shape[2] == 4
    assert 0 <= y0 and y0 + sprite.shape[0] <= h and 0 <= x0 and x0 + sprite.shape[1] <= w
    assert (y0 < h / 2) == corner.startswith("top") or h <= 20
    if min(w, h) >= 240:  # legible: the cap height is 4 % of the short side
        assert sprite.shape[0] >= 0.07 * min(w, h)


def test_label_text_is_checked():
    assert check_label_text("  deepfake demo ") == "deepfake demo"
    for bad in ("", "   ", "ümlaut", "x" * 41, "tab\there"):
        with pytest.raises(LabelError):
            check_label_text(bad)
    assert issubclass(LabelError, PuppeteerError)
    with pytest.raises(LabelError, match="corner"):
        DisclosureStage(fake_profile(), (64, 48), DisclosureOptions(label_corner="middle"))


def test_the_fingerprint_is_the_arrays_digest():
    assert profile_fingerprint(fake_profile(files={ARRAYS_FILE: {"sha256": "abcdef0123"}})) == 0xABCDEF
    a, b = fake_profile(1), fake_profile(2)
    assert profile_fingerprint(a) != profile_fingerprint(b)  # unsaved: the image's digest
    assert profile_fingerprint(a) == profile_fingerprint(fake_profile(1))


def test_swap_mode_goes_into_the_payload():
    stage, out = run_stage(DisclosureOptions(mode="swap", label=False), grey())
    assert detect(*cell_stats(canonical_luma(out))).payload.mode == "swap"


def test_a_profile_cannot_switch_the_label_or_the_mark_off(astronaut_profile):
    """Settings a profile ships are not options: the engine still labels and marks."""
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.face.state import FaceState

    sneaky = dataclasses.replace(astronaut_profile, settings={
        "label": False, "mark": False, "no_label": True,
        "disclosure": {"label": False, "mark": False}})
    engine = Engine(sneaky, EngineOptions(output_size=(320, 240), kernel_threads=1))
    out = engine.process(Frame(index=0, t_capture=0.0, state=FaceState.neutral())).output
    assert engine.stages[-1] is engine.disclosure and engine.disclosure.options == DisclosureOptions()
    d = detect(*cell_stats(canonical_luma(out)))
    assert d.found and d.payload.fingerprint == profile_fingerprint(sneaky)
    _, (y0, x0) = render_label("AI avatar", 320, 240, "bottom-right")
    assert (out[y0:, x0:] > 200).all(axis=2).any()  # the label's white text is there


def _payload():
    return Payload(fingerprint=profile_fingerprint(fake_profile()))


def test_the_passthrough_camera_is_not_labelled_or_marked():
    """The passthrough hotkey shows the driver's own camera: no avatar, not the engine's work."""
    img = grey()
    on = [True]
    stage = DisclosureStage(fake_profile(), (640, 480), DisclosureOptions(), bypass=lambda: on[0])
    frame = Frame(index=0, t_capture=0.0, output=img.copy())
    stage(frame)
    np.testing.assert_array_equal(frame.output, img)
    on[0] = False
    stage(frame)
    assert detect(*cell_stats(canonical_luma(frame.output))).found


class CountingCtx:
    """A device context whose transfers are counted (arrays stay numpy)."""

    def __init__(self):
        self.uploads = self.downloads = 0

    def upload(self, host, out=None):
        self.uploads += 1
        return host.copy()

    def to_device(self, a):
        return a

    def to_host(self, a):
        self.downloads += 1
        return a.copy()


def test_on_a_device_the_pattern_goes_up_once_and_each_frame_comes_down_once():
    ctx = CountingCtx()
    stage = DisclosureStage(fake_profile(), (320, 240), DisclosureOptions(), ctx)
    assert ctx.uploads == 2  # the mark and the label sprite, once
    for _ in range(3):
        frame = Frame(index=0, t_capture=0.0, output=grey(320, 240))
        stage(frame)
    assert ctx.uploads == 2 and ctx.downloads == 3
    assert detect(*cell_stats(canonical_luma(frame.output))).found
