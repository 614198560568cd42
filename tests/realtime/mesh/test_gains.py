"""realtime.mesh.gains and their use in the fuse stage: per-region expression gains."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.face import geometry as G
from realtime.face import topology as T
from realtime.face.state import FaceState
from realtime.mesh.fuse import FuseConfig, Recombiner
from realtime.mesh.gains import REGIONS, GainError, check_gains, gains_argument, landmark_gains, parse_gains


def test_parse_and_check():
    assert parse_gains("eyes=1.2, mouth=0.9") == {"eyes": 1.2, "mouth": 0.9}
    for bad, match in (("eyes", "REGION=VALUE"), ("nose=1", "unknown region"),
                       ("eyes=big", "not a number"), ("eyes=-1", "outside"), ("eyes=nan", "outside"),
                       ("pose=4", "outside"), ("eyes=1,eyes=2", "eyes is given twice")):
        with pytest.raises(GainError, match=match):
            parse_gains(bad)
    with pytest.raises(GainError, match="mapping"):
        check_gains([1, 2])


@pytest.mark.parametrize("text, message", [
    ("", "--gain: no REGION=VALUE in '': give e.g. eyes=1.2,mouth=0.9, or drop --gain"),
    ("  ", "--gain: no REGION=VALUE in '  ': give e.g. eyes=1.2,mouth=0.9, or drop --gain"),
    ("eyes=1,,mouth=2", "--gain: 'eyes=1,,mouth=2' has an empty item (two commas in a row, or one at an end): give "
                        "REGION=VALUE[,REGION=VALUE...] (e.g. eyes=1.2,mouth=0.9)"),
    ("eyes=1,", "--gain: 'eyes=1,' has an empty item (two commas in a row, or one at an end): give "
                "REGION=VALUE[,REGION=VALUE...] (e.g. eyes=1.2,mouth=0.9)"),
])
def test_an_empty_gain_or_an_empty_item_is_refused(text, message, capsys):
    """Before the fix (bad-input review): `--gain ""` and `--gain eyes=1,,mouth=2` were taken
    silently (the empty items skipped: a value the user meant to give, lost)."""
    import run

    with pytest.raises(GainError) as exc:
        parse_gains(text)
    assert str(exc.value) == message
    with pytest.raises(SystemExit) as stop:
        run.build_parser().parse_args(["live", "--profile", "p", "--gain", text])
    assert stop.value.code == 2
    assert "error: argument --gain: " + message.removeprefix("--gain: ") in capsys.readouterr().err


def test_the_argparse_type_leaves_the_option_name_to_argparse():
    import argparse

    assert gains_argument("mouth=0.9") == {"mouth": 0.9}
    with pytest.raises(argparse.ArgumentTypeError) as exc:
        gains_argument("nose=1")
    assert str(exc.value).startswith("unknown region 'nose'")
    with pytest.raises(argparse.ArgumentTypeError) as exc:
        gains_argument("eyes")                            # no value: the form it wants, once
    assert str(exc.value).startswith("expected REGION=VALUE") and "--gain" not in str(exc.value)


def test_landmark_gains_cover_their_regions_only():
    assert np.array_equal(landmark_gains({}), np.ones((T.N_LANDMARKS, 1)))
    g = landmark_gains({"mouth": 2.0})[:, 0]
    assert (g[list(T.INNER_LIP_UPPER)] == 2.0).all()
    assert g[T.FOREHEAD] == 1.0 and g[list(T.RIGHT_BROW)].max() == 1.0
    assert 1.0 < g[T.CHIN] <= 2.0                               # the lower face follows, feathered
    e = landmark_gains({"eyes": 0.0})[:, 0]
    assert (e[list(T.RIGHT_EYE_UPPER)] == 0.0).all()
    assert (e[list(T.RIGHT_IRIS) + list(T.LEFT_IRIS)] == 1.0).all()   # the gaze is its own region
    z = landmark_gains({"gaze": 0.0})[:, 0]
    assert (z[list(T.LEFT_IRIS)] == 0.0).all() and z[T.NOSE_TIP] == 1.0


def test_recombiner_scales_the_mouth_and_the_pose(astronaut_profile):
    p = astronaut_profile
    expr = np.zeros((T.N_LANDMARKS, 3))
    expr[list(T.INNER_LIP_LOWER[1:-1]), 1] = 0.05              # the lower lip drops
    state = FaceState(rotation=G.rotation_from_euler(10.0, 0.0, 0.0), expression=expr)
    plain = Recombiner(p["neutral"], p.frame())
    loud = Recombiner(p["neutral"], p.frame(), FuseConfig().with_gains({"mouth": 2.0, "pose": 0.5}))
    gap = lambda r: G.mouth_opening(r.canonical(state)) - G.mouth_opening(r.canonical(FaceState()))
    assert gap(loud) == pytest.approx(2 * gap(plain), rel=1e-3)
    yaw = lambda r: G.euler_from_rotation(r.pose(state).rotation @ r.pose(FaceState()).rotation.T)[0]
    assert yaw(plain) == pytest.approx(10.0, abs=1e-6) and yaw(loud) == pytest.approx(5.0, abs=1e-6)
    assert loud.set_gain("mouth", 1.0) == 1.0
    assert gap(loud) == pytest.approx(gap(plain), rel=1e-9)
    with pytest.raises(GainError):
        loud.set_gain("mouth", 5.0)


def test_engine_hotkeys_change_the_selected_gain(astronaut_profile):
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.io.sinks.window import key_to_event

    engine = Engine(astronaut_profile, EngineOptions(smooth=False))
    for key, event in (("2", "gain:brows"), ("+", "gain+"), ("+", "gain+"), ("-", "gain-")):
        assert key_to_event(ord(key)) == event
        assert engine.handle(event)
    assert engine.recombiner.config.gains()["brows"] == pytest.approx(1.1)
    assert "[brows 1.1]" in engine.gains_line()
    engine.handle("gain0")
    assert engine.recombiner.config.gains()["brows"] == 1.0
    engine.handle("gain:pose")
    for _ in range(40):
        engine.handle("gain+")
    assert engine.recombiner.config.gains()["pose"] == 3.0          # clamped to the range
    assert set(engine.recombiner.config.gains()) == set(REGIONS)


def test_swap_hotkeys_and_overlay_leave_out_the_gaze(astronaut_profile):
    """In swap the gaze gain does nothing (the driver's own eyes show): its hotkey selected it
    and '+' changed a number that changed nothing (code review); now it is not offered, and the
    overlay says so for two seconds (power-user review: '4' was silently ignored, and '+' then
    changed the eyes)."""
    from realtime.core.frame import Frame
    from realtime.engine.loop import HOTKEY_NOTICE_FRAMES, Engine, EngineOptions

    engine = Engine(astronaut_profile, EngineOptions(mode="swap", smooth=False, output_size=(128, 128)))
    engine.handle("gain:gaze")
    assert engine.gain_region == "eyes" and "gaze" not in engine.gains_line()
    said = []
    for i in range(HOTKEY_NOTICE_FRAMES + 1):
        frame = Frame(index=i, t_capture=i / 30.0, image=np.full((128, 128, 3), 90, np.uint8))
        engine.process(frame)
        said.append(frame.notes.get("hotkey"))
    assert said[0].startswith("gaze: no gain in swap (swap shows the driver's own eyes")
    assert said[0].endswith("'+'/'-' still change eyes")
    assert said[HOTKEY_NOTICE_FRAMES - 1] == said[0] and said[HOTKEY_NOTICE_FRAMES] is None
    engine.handle("gain:mouth")
    assert engine.gain_region == "mouth" and "[mouth 1.0]" in engine.gains_line()
    engine.close()


@pytest.mark.parametrize("start, end, own, expect", [
    ({"mouth": 1.0, "eyes": 1.0}, {"mouth": 1.0, "eyes": 1.0}, {}, None),
    ({"mouth": 1.0, "eyes": 1.0}, {"mouth": 1.2, "eyes": 1.0}, {},
     "hotkeys changed the gains: mouth 1 → 1.2; to start there next time: --gain mouth=1.2 (or settings: "
     "gains: {mouth: 1.2} in the profile's profile.yaml)"),
    # a --gain the hotkeys left alone is part of where the run ended
    ({"mouth": 1.0, "eyes": 1.5}, {"mouth": 0.8, "eyes": 1.5}, {},
     "hotkeys changed the gains: mouth 1 → 0.8; to start there next time: --gain eyes=1.5,mouth=0.8 (or "
     "settings: gains: {eyes: 1.5, mouth: 0.8} in the profile's profile.yaml)"),
    # the profile's own gains stay in the settings it suggests
    ({"mouth": 0.8, "eyes": 1.0}, {"mouth": 0.8, "eyes": 1.2}, {"mouth": 0.8},
     "hotkeys changed the gains: eyes 1 → 1.2; to start there next time: --gain eyes=1.2 (or settings: "
     "gains: {mouth: 0.8, eyes: 1.2} in the profile's profile.yaml)"),
    # back to the profile's own: nothing to pass
    ({"mouth": 1.5, "eyes": 1.0}, {"mouth": 1.1, "eyes": 1.0}, {"mouth": 1.1},
     "hotkeys changed the gains: mouth 1.5 → 1.1; they end as the profile's own (no --gain starts there)"),
])
def test_the_hotkey_note_says_where_the_gains_ended(start, end, own, expect):
    from realtime.mesh.gains import hotkey_note

    assert hotkey_note(start, end, own, regions=("eyes", "mouth")) == expect

