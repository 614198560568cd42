"""bench.fidelity: the expression-fidelity signals, gains, the measure's floor and the contact
sheet."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench import fidelity as F
from bench.swap import SwapExtremes
from realtime.face import geometry as G
from realtime.face import topology as T


def _signals(lm):
    return dict(zip(F.SIGNALS, F.face_signals(lm)))


def test_signals_do_not_change_with_pose_or_size(astronaut_landmarks):
    lm = np.asarray(astronaut_landmarks, np.float64)
    base = _signals(lm)
    c = lm.mean(0)
    rot = G.rotation_from_euler(12.0, -8.0, 15.0)
    moved = (lm - c) @ rot.T * 1.7 + c + [40.0, -25.0, 0.0]
    again = _signals(moved)
    for k in ("mouth_open", "mouth_width", "eye_open_r", "eye_open_l", "brow_raise", "gaze_x", "gaze_y"):
        assert again[k] == pytest.approx(base[k], abs=2e-3), k
    assert again["yaw"] - base["yaw"] == pytest.approx(12.0, abs=1.5)


def test_signals_follow_the_features(astronaut_landmarks):
    lm = np.asarray(astronaut_landmarks, np.float64)
    base = _signals(lm)
    iod = G.interocular(lm)
    opened = lm.copy()
    opened[list(T.INNER_LIP_LOWER[1:-1]), 1] += 0.1 * iod          # jaw drops
    assert _signals(opened)["mouth_open"] - base["mouth_open"] == pytest.approx(0.1, abs=0.02)
    raised = lm.copy()
    raised[list(T.RIGHT_BROW) + list(T.LEFT_BROW), 1] -= 0.05 * iod  # brows up
    assert _signals(raised)["brow_raise"] > base["brow_raise"] + 0.03
    look = lm.copy()
    look[list(T.RIGHT_IRIS) + list(T.LEFT_IRIS), 0] += 0.05 * iod    # irises to the image right
    d = _signals(look)["gaze_x"] - base["gaze_x"]
    assert abs(d) > 0.05                                             # in eye widths
    # image right is the subject's left for a face looking at the camera: +x
    assert d > 0


def test_gain_and_r():
    rng = np.random.default_rng(0)
    d = rng.normal(0, 0.05, (200, len(F.SIGNALS)))
    d[:, [F.SIGNALS.index("yaw"), F.SIGNALS.index("pitch")]] *= 100   # degrees
    o = 0.7 * d + 0.3 + rng.normal(0, 0.001, d.shape)
    o[5:9] = np.nan                                                  # output lost for a moment
    st = F.follow_stats(d, o)
    for name in F.SIGNALS:
        assert st[name]["gain"] == pytest.approx(0.7, abs=0.02)
        assert st[name]["r"] > 0.99
        assert st[name]["n"] == 196
    still = np.zeros_like(d)
    assert F.follow_stats(still, o)["mouth_open"]["gain"] is None     # no motion, no gain
    assert not any(st[name]["small"] for name in F.SIGNALS)


def test_the_offset_is_what_gain_and_r_do_not_see():
    """A self-driven avatar whose every look lands 0.1 eye widths aside of its driver's follows
    at gain 1, r 1: the offset (median of output − driver) says it, and the table shows it."""
    from bench.benchmark import _follow_table

    rng = np.random.default_rng(3)
    d = rng.normal(0, 0.05, (120, len(F.SIGNALS)))
    o = d + 0.1
    o[:3] = np.nan
    st = F.follow_stats(d, o)
    gx = st["gaze_x"]
    assert gx["gain"] == pytest.approx(1.0) and gx["r"] == pytest.approx(1.0)
    assert gx["offset"] == pytest.approx(0.1)
    assert F.follow_stats(d[:0], o[:0])["gaze_x"]["offset"] is None
    row = next(line for line in _follow_table({"run": {"follow": st}}).splitlines() if "gaze_x offset" in line)
    assert row.split("|")[2].strip() == "+0.100"


def test_a_signal_that_barely_moves_is_marked_small():
    from bench.benchmark import _follow_table

    rng = np.random.default_rng(1)
    d = rng.normal(0, 0.05, (200, len(F.SIGNALS)))
    d[:, [F.SIGNALS.index("yaw"), F.SIGNALS.index("pitch")]] *= 100
    k = F.SIGNALS.index("brow_raise")
    d[:, k] = rng.normal(0, 1.5 * F.MIN_STD_DEFAULT, 200)              # moves, but hardly
    st = F.follow_stats(d, d + rng.normal(0, 0.001, d.shape))
    assert st["brow_raise"]["small"] and st["brow_raise"]["gain"] is not None
    assert st["brow_raise"]["std"] == pytest.approx(np.std(d[:, k]))
    assert not st["mouth_open"]["small"]
    table = _follow_table({"run": {"follow": st}})
    brow = next(line for line in table.splitlines() if line.startswith("| brow_raise"))
    mouth = next(line for line in table.splitlines() if line.startswith("| mouth_open"))
    assert brow.endswith(")* |") and "*" not in mouth and "hardly moves" in table
    d[:, k] *= 3
    assert "hardly moves" not in _follow_table({"run": {"follow": F.follow_stats(d, d)}})


def test_the_floor_copy_loses_fine_detail_only():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:120, 0:160]
    smooth = np.stack([80 + xx * 0.5, 60 + yy * 0.8, np.full_like(xx, 100.0)], -1)
    fine = rng.normal(0, 12, smooth.shape[:2])[..., None]
    img = np.clip(smooth + fine, 0, 255).astype(np.uint8)
    copy = F.floor_copy(img)
    assert copy.shape == img.shape and copy.dtype == np.uint8
    assert np.abs(copy[10:-10, 10:-10].astype(float) - smooth[10:-10, 10:-10]).mean() < 3.0
    assert np.abs(img.astype(float) - smooth).mean() > 8.0


class _Replay:
    """A stand-in tracker: returns the next of a list of landmark arrays (then None), whatever
    the image."""

    def __init__(self, landmarks):
        self.landmarks, self.i, self.closed = list(landmarks), 0, False

    def __call__(self, image):
        self.i += 1
        return self.landmarks[self.i - 1] if self.i <= len(self.landmarks) else None

    def close(self):
        self.closed = True


def test_the_floor_probe_reads_the_trackers_own_noise(astronaut_landmarks):
    """The copy's tracker sees the driver's mouth move (r ≈ 1) and, on a brow the driver holds
    still, only its own noise (r ≈ 0); a frame it loses is left out."""
    rng = np.random.default_rng(3)
    lm = np.asarray(astronaut_landmarks, np.float64)
    iod = G.interocular(lm)
    brows = list(T.RIGHT_BROW) + list(T.LEFT_BROW)
    driver, copy = [], []
    for i in range(60):
        d = lm.copy()
        d[list(T.INNER_LIP_LOWER[1:-1]), 1] += 0.1 * iod * (1 + np.sin(i / 4.0))
        d[brows, 1] += rng.normal(0, 0.008 * iod)                 # the driver's own tracker noise
        c = d.copy()
        c[brows, 1] += rng.normal(0, 0.008 * iod)                 # the copy's
        driver.append(d)
        copy.append(None if i == 7 else c)
    tracker = _Replay(copy)
    probe = F.FloorProbe(tracker=tracker, mirror=False)
    image = np.zeros((8, 8, 3), np.uint8)
    for d in driver:
        probe.offer(image, d)
    probe.offer(image, None)                                      # the driver lost: a row of NaN
    st = probe.stats()
    assert st["mouth_open"]["r"] > 0.99 and st["mouth_open"]["n"] == 59
    assert st["brow_raise"]["std"] > F.MIN_STD_DEFAULT and st["brow_raise"]["r"] < 0.7
    assert probe.pictures == 61
    probe.close()
    assert tracker.closed


def _flipped(lm, width):
    """What a tracker reads on the frame flipped left to right: the subject's right eye of the
    flipped face lies where the left one was, mirrored."""
    out = np.asarray(lm, np.float64)[T.MIRROR].copy()
    out[:, 0] = width - out[:, 0]
    return out


def test_unmirror_gives_the_frames_own_landmarks_back(astronaut_landmarks):
    """A head turned 10° reads -10° on the flipped frame; flipped back (`unmirror`), its
    landmarks and every signal are the frame's own, the turn +10° again."""
    lm = np.asarray(astronaut_landmarks, np.float64)
    c = lm.mean(0)
    turned = (lm - c) @ G.rotation_from_euler(10.0, 0.0, 0.0).T + c
    seen = _flipped(turned, 640)
    assert _signals(seen)["yaw"] == pytest.approx(-_signals(turned)["yaw"], abs=0.5)
    back = F.unmirror(seen, 640)
    np.testing.assert_allclose(back, turned, atol=1e-9)
    np.testing.assert_allclose(F.face_signals(back), F.face_signals(turned), atol=1e-9)


def test_the_mirror_floor_tracks_the_flipped_frame(astronaut_landmarks):
    """With `mirror`, each frame also goes to a second tracker flipped left to right, and what it
    reads, flipped back, is compared with the driver (`mirror_stats`); without, there is none."""
    lm = np.asarray(astronaut_landmarks, np.float64)
    iod = G.interocular(lm)
    width = 64
    driver = []
    for i in range(40):
        d = lm.copy()
        d[list(T.INNER_LIP_LOWER[1:-1]), 1] += 0.1 * iod * (1 + np.sin(i / 4.0))
        driver.append(d)

    class Flipped(_Replay):
        def __call__(self, image):
            self.images = getattr(self, "images", []) + [image]
            return super().__call__(image)

    mirror = Flipped([_flipped(d, width) for d in driver])
    probe = F.FloorProbe(tracker=_Replay(driver), mirror_tracker=mirror)
    image = np.zeros((8, width, 3), np.uint8)
    image[:, :4] = 255                                                # the left edge lit
    for d in driver:
        probe.offer(image, d)
    assert mirror.images[0][:, -4:].min() == 255 and mirror.images[0][:, :-4].max() == 0
    st = probe.mirror_stats()
    assert st["mouth_open"]["r"] > 0.999 and st["mouth_open"]["gain"] == pytest.approx(1.0, abs=1e-6)
    probe.close()
    assert mirror.closed
    plain = F.FloorProbe(tracker=_Replay(driver), mirror=False)
    plain.offer(image, driver[0])
    assert plain.mirror_tracker is None and plain.mirror_stats() == {}


def test_split_follow_says_where_the_motion_is_lost():
    """The mesh carries 0.9 of the driver's motion and the picture shows half of the mesh's:
    the split reads 0.9 and 0.5, and the two multiply to the output's own gain."""
    rng = np.random.default_rng(1)
    d = rng.normal(0, 0.05, (300, len(F.SIGNALS)))
    d[:, [F.SIGNALS.index("yaw"), F.SIGNALS.index("pitch")]] *= 100
    m = 0.9 * d + 0.02 + rng.normal(0, 0.001, d.shape)
    o = 0.5 * m - 0.01 + rng.normal(0, 0.001, d.shape)
    m[10:14] = np.nan                                                # no mesh for a moment
    split = F.split_follow(d, m, o)
    whole = F.follow_stats(d, o)
    for name in F.SIGNALS:
        g_mesh, g_pic = split["mesh"][name]["gain"], split["picture"][name]["gain"]
        assert g_mesh == pytest.approx(0.9, abs=0.02), name
        assert g_pic == pytest.approx(0.5, abs=0.02), name
        assert g_mesh * g_pic == pytest.approx(whole[name]["gain"], abs=0.02), name
        assert split["mesh"][name]["n"] == split["picture"][name]["n"] == 296


def test_mesh_signals_read_the_face_rows_of_the_vertices(astronaut_landmarks):
    lm = np.asarray(astronaut_landmarks, np.float64)
    extra = np.vstack([lm, np.full((40, 3), 1e4)])                  # the rig's other vertices
    assert np.array_equal(F.mesh_signals(extra), F.face_signals(lm))
    assert np.isnan(F.mesh_signals(None)).all() and len(F.mesh_signals(None)) == len(F.SIGNALS)


def test_the_table_of_one_run_shows_the_split():
    from bench.benchmark import _follow_table

    rng = np.random.default_rng(5)
    d = rng.normal(0, 0.05, (100, len(F.SIGNALS)))
    m, o = 0.9 * d, 0.45 * d + rng.normal(0, 0.001, d.shape)
    run = {"follow": F.follow_stats(d, o), "quality_info": {"follow_split": F.split_follow(d, m, o)}}
    lines = _follow_table({"run": run}).splitlines()
    assert lines[0] == "| fidelity: gain (r) | run | engine's mesh | output vs mesh |"
    mouth = next(line for line in lines if line.startswith("| mouth_open"))
    assert [c.strip()[:4] for c in mouth.split("|")[2:5]] == ["0.45", "0.90", "0.50"]
    # two variants side by side: no split columns (each has its own)
    both = _follow_table({"a": run, "b": run}).splitlines()[0]
    assert both == "| fidelity: gain (r) | a | b |"


def test_the_table_shows_the_floor():
    from bench.benchmark import _follow_table

    rng = np.random.default_rng(4)
    d = rng.normal(0, 0.05, (100, len(F.SIGNALS)))
    d[:, [F.SIGNALS.index("yaw"), F.SIGNALS.index("pitch")]] *= 100
    st = F.follow_stats(d, d + rng.normal(0, 0.01, d.shape))
    floor = F.follow_stats(d, d + rng.normal(0, 0.05, d.shape))
    info = {"floor": floor, "blinks": {"closed_frames": 2, "missed": 0}}
    table = _follow_table({"run": {"follow": st, "quality_info": info}})
    lines = table.splitlines()
    assert lines[0] == "| fidelity: gain (r) | run | floor r |"
    mouth = next(line for line in lines if line.startswith("| mouth_open"))
    assert mouth.endswith(f" {floor['mouth_open']['r']:.2f} |") and mouth.count("|") == 4
    assert all(line.count("|") == 4 for line in lines if line.startswith("| "))
    assert "floor r" not in _follow_table({"run": {"follow": st}})
    mirror = F.follow_stats(d, d + rng.normal(0, 0.2, d.shape))
    lines = _follow_table({"run": {"follow": st, "quality_info": dict(info, floor_mirror=mirror)}}).splitlines()
    assert lines[0] == "| fidelity: gain (r) | run | floor r | mirror r |"
    yaw = next(line for line in lines if line.startswith("| yaw"))
    assert yaw.endswith(f" {floor['yaw']['r']:.2f} | {mirror['yaw']['r']:.2f} |")
    assert all(line.count("|") == 5 for line in lines if line.startswith("| "))


def test_blink_check_allows_one_frame_of_lag():
    n = len(F.SIGNALS)
    d = np.full((20, n), 0.1)
    o = np.full((20, n), 0.1)
    k = F.SIGNALS.index("eye_open_r")
    d[10:12, k] = 0.01
    o[11:13, k] = 0.02                                               # one frame late: fine
    assert F.blink_check(d, o)["missed"] == 0
    o[11:13, k] = 0.05                                               # never shut: missed
    res = F.blink_check(d, o)
    assert res["closed_frames"] == 2 and res["missed"] == 2


def test_contact_sheet_shows_the_extremes():
    ex = F.Extremes(height=32)
    n = len(F.SIGNALS)
    for i in range(10):
        s = np.full(n, 0.1)
        s[F.SIGNALS.index("mouth_open")] = 0.05 * i                 # widest mouth at frame 9
        img = np.full((64, 48, 3), i * 20, np.uint8)
        ex.offer(i, s, img, 255 - img)
    assert ex.best["widest mouth"][1] == 9
    sheet = F.contact_sheet(ex, "d ← o")
    assert sheet.dtype == np.uint8 and sheet.ndim == 3 and sheet.shape[0] > 2 * 32


def test_a_sheet_shows_a_small_face_large():
    """A face a tenth of its frame fills the sheet's view (`face_view`); without landmarks the
    whole frame is shown, aspect kept."""
    img = np.zeros((400, 300, 3), np.uint8)
    img[200:240, 100:140] = 255                       # the "face": a white square
    lm = np.zeros((478, 3))
    lm[:, 0] = np.linspace(100, 140, 478)
    lm[:, 1] = np.linspace(200, 240, 478)
    view = F.face_view(img, lm, 64)
    assert view.shape == (64, 64, 3)
    white = view[..., 0] > 128
    side = 64 / F.FACE_VIEW                           # the face's size in the view
    assert abs(white.sum() - side * side) < 0.15 * side * side
    ys, xs = np.nonzero(white)
    assert abs(ys.mean() - 31.5) < 1.5 and abs(xs.mean() - 31.5) < 1.5   # centred
    whole = F.face_view(img, None, 64)
    assert whole.shape == (64, 48, 3)
    lm[5, 0] = np.nan                                 # a lost face: the whole frame
    assert F.face_view(img, lm, 64).shape == (64, 48, 3)


@pytest.mark.tracking
def test_self_drive_reports_fidelity(tmp_path, capsys):
    """`bench --self-drive` on a short synthetic clip: the fidelity table, the JSON and the
    sheet come out (the clip is the astronaut turned in 3-D, tests/profiles/test_enroll_video)."""
    import json

    from bench import cli
    from tests.profiles.test_enroll_video import make_clip

    clip = make_clip(tmp_path / "clip.avi", frames=12, size=256)
    parser = __import__("argparse").ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--self-drive", str(clip), "--frame", "2", "--warmup", "2", "--floor",
                              "--json", str(tmp_path / "b.json"), "--sheet", str(tmp_path / "s.png")])
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "fidelity: gain (r)" in out and "mouth_open" in out and "| floor r |" in out
    result = json.loads((tmp_path / "b.json").read_text())
    assert set(result["follow"]) == set(F.SIGNALS)
    assert set(result["quality_info"]["floor"]) == set(F.SIGNALS)
    assert set(result["quality_info"]["floor_mirror"]) == set(F.SIGNALS) and "| mirror r |" in out
    assert "psnr" in result["quality"]
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_self_drive_refuses_other_pairs(tmp_path):
    from bench import cli

    parser = __import__("argparse").ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--self-drive", "x.mp4", "--profile", "p"])
    assert cli.main(args) == 2


def test_the_floor_needs_a_quality_pass(capsys):
    from bench import cli

    parser = __import__("argparse").ArgumentParser()
    cli.add_arguments(parser)
    assert cli.main(parser.parse_args(["--profile", "p", "--driver", "x.mp4", "--floor"])) == 2
    assert "--floor" in capsys.readouterr().err
    # a self-reenactment is a quality pass: refused for its missing clip, not for --floor
    assert cli.main(parser.parse_args(["--self-reenact", "x.mp4", "--profile", "p", "--floor"])) == 2
    assert "--floor" not in capsys.readouterr().err


def test_the_sheet_says_closed_eyes_only_where_they_close(monkeypatch):
    """Before the fix: the contact sheet labelled its narrowest-eyes tile "closed eyes" on a driver
    that never closes them (d10, 60 frames: "closed eyes #46" showed open eyes, while the table
    said "closed eyes that arrive 0/0")."""
    texts = []
    real = F.cv2.putText
    monkeypatch.setattr(F.cv2, "putText", lambda img, text, *a, **k: (texts.append(text), real(img, text, *a, **k)))

    def sheet(eyes):
        ex = F.Extremes(height=320)           # columns wide enough for a label on one line
        for i, e in enumerate(eyes):
            s = np.full(len(F.SIGNALS), 0.1)
            s[[F.SIGNALS.index("eye_open_r"), F.SIGNALS.index("eye_open_l")]] = e
            img = np.full((64, 48, 3), i * 20, np.uint8)
            ex.offer(i, s, img, img)
        texts.clear()
        F.contact_sheet(ex)
        return texts[:2]

    assert sheet([0.2, 0.12, 0.3]) == ["widest eyes #2", "narrowest eyes #1"]     # open throughout
    assert sheet([0.2, 0.01, 0.3]) == ["widest eyes #2", "closed eyes #1"]        # a blink
    assert F.blink_check(np.full((3, len(F.SIGNALS)), F.CLOSED_EYE - 0.001),
                         np.zeros((3, len(F.SIGNALS))))["closed_frames"] == 6    # the table's threshold


def test_the_swap_sheet_says_how_much_the_light_changed():
    """Before (new-user review): d19's "lighting change #18" was a blink on a clip whose light
    never changes; the tile now says how much its face's luma moved."""
    assert F.sheet_label("lighting change", 2.4) == "light change 2/255"
    assert F.sheet_label("lighting change", 31.0) == "light change 31/255"
    assert F.sheet_label("widest mouth", 0.3) == "widest mouth"


def test_the_table_says_what_a_dash_means():
    """Before the fix: a '–' cell (yaw on a d0 self-drive: the driver hardly turns) had no legend;
    only '*' had a note under the table."""
    from bench.benchmark import _follow_table

    rng = np.random.default_rng(6)
    d = rng.normal(0, 0.05, (100, len(F.SIGNALS)))
    d[:, F.SIGNALS.index("pitch")] *= 100
    d[:, F.SIGNALS.index("yaw")] = rng.normal(0, 0.1, 100)          # below 0.5°: no gain
    o = d + rng.normal(0, 0.001, d.shape)
    st = F.follow_stats(d, o)
    assert st["yaw"]["gain"] is None
    table = _follow_table({"run": {"follow": st}})
    assert "| yaw | – |" in table
    assert table.splitlines()[-1] == ("– : yaw: the driver hardly moves it (std below 0.5°), so no gain (it "
                                      "would be tracking noise)")
    # with the split: the rows under the signals leave the split's columns empty, which says so
    run = {"follow": st, "quality_info": {"follow_split": F.split_follow(d, o, o),
                                          "blinks": {"closed_frames": 0, "missed": 0}}}
    legend = _follow_table({"run": run}).splitlines()[-1]
    assert legend.startswith("– : yaw: the driver hardly moves it")
    assert "yaw under output vs mesh: the engine's mesh hardly moves it (std below 0.5°)" in legend
    assert legend.endswith("the rows under the signals are the output's alone (none under engine's mesh, "
                           "output vs mesh)")
    few = F.follow_stats(d[:2], o[:2])
    assert "mouth_open, mouth_width" in _follow_table({"run": {"follow": few}}).splitlines()[-1]
    d[:, F.SIGNALS.index("yaw")] *= 100                                # it moves: no '–', no legend
    assert "– :" not in _follow_table({"run": {"follow": F.follow_stats(d, d)}})


def test_a_label_wider_than_its_column_is_wrapped_or_shrunk_to_fit():
    """Before (stop 58): a portrait clip's swap sheet (d13, 720x1280: columns 144 px) cut its
    labels off at the column's edge ("light change 4/25", "widest mouth #10")."""
    lines = F._label_lines("light change 25/255 #123", 136)
    assert len(lines) == 2 and " ".join(t for t, _ in lines) == "light change 25/255 #123"
    for text, scale in lines:
        assert cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= 136
    assert F._label_lines("widest mouth #10", 400) == [("widest mouth #10", 0.5)]   # fits: as it was
    ex = F.Extremes(height=32)
    for i in range(3):
        s = np.full(len(F.SIGNALS), 0.1)
        s[F.SIGNALS.index("mouth_open")] = 0.05 * i
        img = np.full((64, 24, 3), i * 20, np.uint8)                   # narrow columns
        ex.offer(i, s, img, 255 - img)
    sheet = F.contact_sheet(ex)
    assert sheet.shape[0] == 10 + 2 * 18 + 2 * ex.best["widest mouth"][2].shape[0]


def test_a_sheet_numbers_the_clips_own_frames():
    """Before the fix (review): a self-reenactment's sheet (s32.mp4 frames 90–149) numbered its
    tiles within the driven half ("widest mouth #18" was clip frame 108)."""
    texts = []
    real = F.cv2.putText

    def spy(img, text, *a, **k):
        texts.append(text)
        return real(img, text, *a, **k)
    for ex in (F.Extremes(height=320, start=90), SwapExtremes(height=320, start=90)):
        for i in range(20):
            s = np.full(len(F.SIGNALS), 0.1)
            s[F.SIGNALS.index("mouth_open")] = 0.5 if i == 18 else 0.1   # widest mouth: the 19th frame
            img = np.full((64, 48, 3), i * 10, np.uint8)
            if isinstance(ex, SwapExtremes):
                ex.offer(i, s, 100.0, img, img)
            else:
                ex.offer(i, s, img, img)
        assert ex.best["widest mouth"][1] == 108
        texts.clear()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(F.cv2, "putText", spy)
            ex.sheet() if isinstance(ex, SwapExtremes) else F.contact_sheet(ex)
        assert "widest mouth #108" in texts
        assert all(90 <= int(t.rsplit("#", 1)[1]) <= 109 for t in texts if "#" in t)
    plain = F.Extremes()                                 # a driver from its frame 0: as it was
    plain.offer(3, np.full(len(F.SIGNALS), 0.1), np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))
    assert plain.best["widest mouth"][1] == 3


def test_the_std_of_a_signal_never_measured_is_null_without_a_warning():
    """Before the fix (review): a quality pass whose faces were never tracked (s13.mp4, a tiny
    face) printed numpy's "RuntimeWarning: Degrees of freedom <= 0" from np.nanstd."""
    import warnings

    sig = np.full((5, len(F.SIGNALS)), np.nan)
    sig[:, F.SIGNALS.index("yaw")] = [1.0, 3.0, np.nan, 1.0, 3.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        std = F.signal_std(sig)
        assert set(std) == set(F.SIGNALS)
        assert std["yaw"] == pytest.approx(1.0)
        assert all(np.isnan(v) for k, v in std.items() if k != "yaw")
        assert all(np.isnan(v) for v in F.signal_std(np.zeros((0, len(F.SIGNALS)))).values())
