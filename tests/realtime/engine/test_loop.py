"""realtime.engine.loop: Engine (the stage list) and run() (grabber → engine → threaded sink)."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.engine.loop import Engine, EngineOptions, RunReport, run, set_kernel_threads
from realtime.face import geometry as G
from realtime.face.estimate import EstimatorConfig
from realtime.io.capture import Grabber
from realtime.io.performance import ScriptedSource
from realtime.io.sinks import NullSink, ThreadedSink

SIZE = (320, 240)
FPS = 30.0


class _ImageSource:
    """A file-like source playing a list of RGB images (is_live False), or a camera-like one
    (is_live True) that stalls for `stall_s` after `stall_after` frames."""

    def __init__(self, images, is_live=False, stall_after=None, stall_s=0.0):
        self.images = list(images)
        self.fps = FPS
        self.size = (self.images[0].shape[1], self.images[0].shape[0])
        self.is_live = is_live
        self.frame_count = len(self.images)
        self.stall_after = stall_after
        self.stall_s = stall_s
        self._i = 0
        self._closed = threading.Event()

    def read(self):
        if self._i == self.stall_after:
            self._closed.wait(self.stall_s)
        if self._i >= len(self.images) or self._closed.is_set():
            return None
        img = self.images[self._i]
        self._i += 1
        return {"image": img}

    def close(self):
        self._closed.set()


class _Collect:
    def __init__(self):
        self.frames = []

    def __call__(self, frame):
        self.frames.append(frame)


@pytest.fixture(scope="module")
def driver_images(astronaut_rgb):
    """The astronaut upright, then rolled 20° (channels swapped: a driver that looks nothing
    like the avatar's photo), and a blank frame."""
    upright = np.ascontiguousarray(astronaut_rgb[:, :, ::-1])
    m = cv2.getRotationMatrix2D((256, 200), 20, 1.0)
    rolled = cv2.warpAffine(upright, m, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    blank = np.full_like(upright, 127)
    return upright, rolled, blank


def _engine(profile, **kw) -> Engine:
    return Engine(profile, EngineOptions(output_size=SIZE, fps=FPS, kernel_threads=1, **kw))


def _sink():
    return ThreadedSink(NullSink(), realtime=False)


def test_every_scripted_frame_gives_one_output(astronaut_profile):
    engine = _engine(astronaut_profile)
    assert engine.output_size == SIZE
    assert [s.name for s in engine.stages][:3] == ["track", "estimate", "fuse"]
    assert [s.name for s in engine.stages][-2:] == ["composite", "disclose"]
    source = ScriptedSource(astronaut_profile["neutral"], frames=12, fps=FPS)
    sink = _sink()
    sink.open(*engine.output_size, FPS)
    got = _Collect()
    report = run(engine, Grabber(source, realtime=False), sink, on_frame=got)
    engine.close()
    assert isinstance(report, RunReport)
    assert report.frames == 12 and sink.written == 12 and sink.sink.frames_written == 12
    # a file read ahead: the frames' time includes the queue, and the summary does not call it
    # capture→sink latency (before the fix: "47 fps … capture→sink p50 207 ms")
    assert report.offline and "time in the pipeline p50" in report.summary()
    assert "capture→sink p50" not in report.summary()
    assert [f.index for f in got.frames] == list(range(12))
    assert report.dropped == 0 and report.held == 0
    for f in got.frames:
        assert f.output.dtype == np.uint8 and f.output.shape == (SIZE[1], SIZE[0], 3)
        assert np.isfinite(f.render).all()
        assert f.t_sink is not None and f.latency_ms() >= 0
    # the performance moves the avatar: the frames are not all the same
    first = got.frames[0].output.astype(int)
    assert max(np.abs(f.output.astype(int) - first).mean() for f in got.frames) > 1.0
    rows = report.per_frame
    assert [r["index"] for r in rows] == list(range(12))
    assert all(r["face"] and r["latency_ms"] is not None for r in rows)
    assert set(rows[0]["timings"]) == {s.name for s in engine.stages}
    assert len(report.latencies()) == 12
    assert "12 frames" in report.summary()


def test_max_frames_stops_the_run(astronaut_profile):
    engine = _engine(astronaut_profile)
    source = ScriptedSource(astronaut_profile["neutral"], frames=50, fps=FPS)
    sink = _sink()
    sink.open(*engine.output_size, FPS)
    report = run(engine, Grabber(source, realtime=False), sink, max_frames=5)
    engine.close()
    assert report.frames == 5 and sink.written == 5


def test_history_bounds_the_rows_a_long_run_keeps(astronaut_profile, monkeypatch):
    """A live session runs for hours: at most `history` + HISTORY_SLACK rows, the newest kept."""
    from realtime.engine import loop

    monkeypatch.setattr(loop, "HISTORY_SLACK", 3)
    made = []
    monkeypatch.setattr(loop, "RunReport", lambda: made.append(RunReport()) or made[-1])
    engine = _engine(astronaut_profile)
    source = ScriptedSource(astronaut_profile["neutral"], frames=30, fps=FPS)
    sink = _sink()
    sink.open(*engine.output_size, FPS)
    sizes = []
    report = run(engine, Grabber(source, realtime=False), sink, history=5,
                 on_frame=lambda f: sizes.append(len(made[0].per_frame)))
    engine.close()
    assert report.frames == 30 and max(sizes) <= 5 + 3
    assert [r["index"] for r in report.per_frame][-1] == 29 and len(report.per_frame) <= 8


def test_the_loop_runs_with_the_start_up_heap_frozen(astronaut_profile):
    """The garbage collector skips what start-up made (a full collection of it costs a frame's
    time); new garbage cycles are still collected, and the heap is thawed when the run ends."""
    import gc
    import weakref

    class Node:
        pass

    engine = _engine(astronaut_profile)
    source = ScriptedSource(astronaut_profile["neutral"], frames=4, fps=FPS)
    sink = _sink()
    sink.open(*engine.output_size, FPS)
    seen = []

    def during(frame):
        a, b = Node(), Node()
        a.other, b.other = b, a                 # a cycle: only the collector can free it
        ref = weakref.ref(a)
        del a, b
        gc.collect()
        seen.append((gc.get_freeze_count(), ref() is None))

    assert gc.get_freeze_count() == 0
    run(engine, Grabber(source, realtime=False), sink, on_frame=during)
    engine.close()
    assert len(seen) == 4 and all(frozen > 10_000 and freed for frozen, freed in seen)
    assert gc.get_freeze_count() == 0


@pytest.mark.tracking
def test_no_face_keeps_emitting_and_eases_to_neutral(astronaut_profile, driver_images):
    """The driver turns its head, then leaves (blank frames): every input frame still gives an
    output frame, the avatar eases back to neutral within 300 ms and holds, and the blank
    driver image is never shown."""
    upright, rolled, blank = driver_images
    images = [upright] * 4 + [rolled] * 8 + [blank] * 14
    engine = _engine(astronaut_profile, estimator=EstimatorConfig(calibration_s=0.1))
    sink = _sink()
    sink.open(*engine.output_size, FPS)
    got = _Collect()
    report = run(engine, Grabber(_ImageSource(images), realtime=False), sink, on_frame=got)
    engine.close()
    assert report.frames == len(images) and sink.written == len(images)
    states = [f.state for f in got.frames]
    assert all(f.landmarks is not None for f in got.frames[:12])
    assert all(f.landmarks is None for f in got.frames[12:])
    roll_before = abs(states[11].angles[2])
    assert roll_before > 10, "the turned head was not tracked"
    t_lost = 12 / FPS
    for i in range(12, len(images)):
        s = states[i]
        if i / FPS - t_lost >= 0.3:
            assert not s.present
            np.testing.assert_allclose(s.rotation, np.eye(3), atol=1e-9)
            np.testing.assert_allclose(s.expression, 0.0, atol=1e-9)
    assert not any(r["face"] for r in report.per_frame[-5:])
    blank_out = cv2.resize(blank, SIZE, interpolation=cv2.INTER_AREA)
    for f in got.frames[12:]:
        assert f.output.shape == (SIZE[1], SIZE[0], 3)
        assert np.abs(f.output.astype(int) - blank_out.astype(int)).mean() > 20
    # the hold is the same image frame after frame
    np.testing.assert_array_equal(got.frames[-1].output, got.frames[-2].output)


@pytest.mark.tracking
def test_passthrough_toggle_shows_the_driver_only_when_asked(astronaut_profile, driver_images):
    upright, rolled, _ = driver_images
    engine = _engine(astronaut_profile)
    engine.warm_up()
    expected = cv2.resize(rolled, SIZE, interpolation=cv2.INTER_AREA)
    outs = {}
    for i, mode in enumerate(["avatar", "toggle", "passthrough", "toggle", "avatar2"]):
        if mode == "toggle":
            assert engine.handle("toggle") is True
            continue
        f = engine.process(Frame(index=i, t_capture=time.perf_counter(), image=rolled))
        outs[mode] = f.output
    engine.close()
    np.testing.assert_array_equal(outs["passthrough"], expected)
    for mode in ("avatar", "avatar2"):
        assert outs[mode].shape == expected.shape
        assert np.abs(outs[mode].astype(int) - expected.astype(int)).mean() > 20, mode


def test_handle_events(astronaut_profile):
    engine = _engine(astronaut_profile)
    assert engine.handle("quit") is False
    assert engine.handle("unknown") is True
    engine.estimator.calibrator.done = True
    assert engine.handle("recalibrate") is True
    assert not engine.estimator.calibrator.done
    engine.close()


@pytest.mark.parametrize("event, said", [("recalibrate", "recalibrating: keep a neutral face for a moment"),
                                         ("glasses", "g: your glasses are kept in --mode swap only")])
def test_a_hotkey_without_a_visible_effect_says_what_it_did(astronaut_profile, event, said):
    """Before (stop 61's review): 'n' (recalibrate) and, in reenact, 'g' showed nothing in the window."""
    engine = _engine(astronaut_profile)
    engine.handle(event)
    frame = engine.process(Frame(index=0, t_capture=0.0, image=np.full((64, 64, 3), 90, np.uint8)))
    engine.close()
    assert frame.notes.get("hotkey") == said


class _QuitAfter(NullSink):
    """A sink whose user presses 'q' after a few frames."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def poll_events(self):
        return ["quit"] if self.frames_written == self.n else []


def test_quit_event_from_the_sink_stops_the_loop(astronaut_profile):
    engine = _engine(astronaut_profile)
    source = ScriptedSource(astronaut_profile["neutral"], frames=90, fps=FPS)
    sink = ThreadedSink(_QuitAfter(3), realtime=False)
    sink.open(*engine.output_size, FPS)
    report = run(engine, Grabber(source, realtime=False), sink)
    engine.close()
    assert 3 <= report.frames < 30


def test_a_live_run_reports_the_gains_its_hotkeys_changed(astronaut_profile, monkeypatch):
    """Gains tuned with the window's hotkeys were lost when the run ended: its summary now says
    where they ended and how to start there (the keys '3' (mouth), '+', '+' pressed). A profile's
    own gains written as text in its YAML (which loading accepts) are read as numbers."""
    class Keys(NullSink):
        def poll_events(self):
            return {2: ["gain:mouth", "gain+"], 4: ["gain+"]}.get(self.frames_written, [])

    monkeypatch.setitem(astronaut_profile.settings, "gains", {"eyes": "1.5"})
    engine = Engine(astronaut_profile, EngineOptions(smooth=False, output_size=(128, 128), fps=30.0))
    sink = ThreadedSink(Keys(), realtime=False)
    sink.open(128, 128, 30.0)
    report = run(engine, Grabber(ScriptedSource(astronaut_profile["neutral"], frames=12, fps=30.0),
                                 realtime=False), sink)
    engine.close()
    assert report.gain_note is not None and report.gain_note.startswith("hotkeys changed the gains: mouth 1 → 1.2;")
    assert "--gain eyes=1,mouth=1.2" in report.summary()        # the run's eyes: 1, not the profile's 1.5


def _run_stalled(profile, images):
    source = _ImageSource(images, is_live=True, stall_after=2, stall_s=0.4)
    engine = _engine(profile)
    sink = ThreadedSink(NullSink(), realtime=True)
    sink.open(*engine.output_size, FPS)
    got = _Collect()
    report = run(engine, Grabber(source, realtime=True), sink, on_frame=got)
    engine.close()
    return report, got.frames


@pytest.mark.tracking
def test_stalled_live_source_emits_held_frames(astronaut_profile, driver_images):
    """A camera that delivers nothing for a while: the loop keeps emitting neutral frames at the
    nominal rate instead of freezing, then takes the camera's frames again."""
    upright, _, _ = driver_images
    report, frames = _run_stalled(astronaut_profile, [upright] * 3)
    assert report.frames == len(frames) == len(report.per_frame)
    assert report.held >= 3  # 0.4 s of silence at 30 fps, a held frame every 1.5 periods
    held = [f for f in frames if f.image is None]
    assert len(held) == report.held
    assert all(f.output is not None and f.output.shape == (SIZE[1], SIZE[0], 3) for f in held)
    assert frames[-1].image is not None  # the camera came back and its frame was used
    assert f"held {report.held} (the source sent nothing in time" in report.summary()   # said, not hidden


@pytest.mark.tracking
def test_held_frames_do_not_reuse_capture_indices(astronaut_profile, driver_images):
    upright, _, _ = driver_images
    report, frames = _run_stalled(astronaut_profile, [upright] * 3)
    indices = [f.index for f in frames]
    assert len(set(indices)) == len(indices), indices
    assert indices == sorted(indices), indices


def test_engine_clock_media_time_offline_and_wall_clock_live(astronaut_profile):
    offline = _engine(astronaut_profile)
    assert offline.clock(Frame(index=15, t_capture=123.0)) == pytest.approx(0.5)
    offline.close()
    live = _engine(astronaut_profile, realtime=True)
    assert live.clock(Frame(index=15, t_capture=123.0)) == 123.0
    live.paused_s = 100.0          # paused while its stream went on elsewhere (bench's blocks)
    assert live.clock(Frame(index=15, t_capture=123.0)) == pytest.approx(23.0)
    live.close()


def test_scripted_pose_reaches_the_output(astronaut_profile):
    """The neutral state reproduces the photo in the output frame; a scripted yaw turns it."""
    from realtime.face.state import FaceState

    engine = _engine(astronaut_profile)
    rest = engine.process(Frame(index=0, t_capture=0.0, state=FaceState.neutral())).output
    turned = engine.process(Frame(index=1, t_capture=0.0,
                                  state=FaceState(rotation=G.rotation_from_euler(30, 0, 0)))).output
    engine.close()
    bg = engine.compositor.background
    assert rest.shape == bg.shape == (SIZE[1], SIZE[0], 3)
    assert np.abs(rest.astype(int) - bg.astype(int)).mean() < 3
    assert np.abs(turned.astype(int) - rest.astype(int)).mean() > 2


def test_a_face_small_in_the_output_renders_at_the_profiles_size(astronaut_profile):
    """The default framing (the astronaut's head box is ~210 px of her 512² photo): the crop is
    drawn at the profile's own size, through the profile itself, with the texture as it is."""
    engine = Engine(astronaut_profile, EngineOptions(fps=FPS, kernel_threads=1))
    assert engine.render_size == astronaut_profile.crop_size
    assert engine.view is astronaut_profile and engine.texture_sharpen == 0.0
    assert engine.rig.crop_size == astronaut_profile.crop_size
    engine.close()


def test_a_large_face_renders_at_its_output_size_and_is_sharper(astronaut_profile):
    """At a 1024² output the astronaut's head box is ~420 px: drawn at 384² (≤ 1.1× paste-back
    magnification) instead of 256². The output agrees with the 256² one at low frequencies and
    holds more detail in the face. Her photo has fewer texels than that output has pixels (it
    is magnified 2×): the texture is not sharpened."""
    from realtime.engine.sizing import crop_side_in_output
    from realtime.face.state import FaceState

    size = (1024, 1024)
    big = Engine(astronaut_profile, EngineOptions(output_size=size, fps=FPS, kernel_threads=1))
    old = Engine(astronaut_profile, EngineOptions(output_size=size, fps=FPS, kernel_threads=1,
                                                  render_size=astronaut_profile.crop_size,
                                                  texture_sharpen=0.0))
    side = crop_side_in_output(astronaut_profile, size)
    assert big.render_size % 16 == 0 and side / big.render_size <= 1.1
    assert big.render_size > astronaut_profile.crop_size and big.texture_sharpen == 0.0
    assert big.view.crop_size == big.render_size == big.rig.crop_size
    assert old.render_size == astronaut_profile.crop_size and old.view is astronaut_profile
    # the bench's crop of the output stays the profile's crop box at the profile's size
    np.testing.assert_allclose(big.compositor.frame_to_crop, old.compositor.frame_to_crop)
    # the smoother's cut threshold is the same head motion at either size
    s_big, s_old = big.stages[5], old.stages[5]
    assert s_big.max_step_px == pytest.approx(s_old.max_step_px * big.render_size / 256)
    outs = []
    for engine in (big, old):
        f = engine.process(Frame(index=0, t_capture=0.0, state=FaceState.neutral()))
        assert f.render.shape == (engine.render_size, engine.render_size, 3)
        assert f.output.shape == (size[1], size[0], 3)
        outs.append(f.output)
        engine.close()
    lm = astronaut_profile["landmarks"][:, :2] * 2.0                   # 512² photo → 1024² output
    (x0, y0), (x1, y1) = np.floor(lm.min(0)).astype(int), np.ceil(lm.max(0)).astype(int)
    a, b = (cv2.cvtColor(o, cv2.COLOR_RGB2GRAY).astype(np.float32)[y0:y1, x0:x1] for o in outs)
    low = np.abs(cv2.GaussianBlur(a, (0, 0), 3.0) - cv2.GaussianBlur(b, (0, 0), 3.0))
    assert low.mean() < 1.5
    assert cv2.Laplacian(a, cv2.CV_32F).var() > 1.1 * cv2.Laplacian(b, cv2.CV_32F).var()


def test_a_photo_as_dense_as_the_output_gets_its_texture_sharpened(astronaut_rgb, astronaut_landmarks):
    """The same framing from a photo with twice the pixels: texels ≈ output pixels, the
    paste-back magnifies ~1.09×: the texture is prefiltered at full strength (sizing.SHARPEN),
    and the output holds more fine detail than without. The eye openings are left out: the eye
    layer draws them (realtime.tiers.eyes), not the texture."""
    from profiles.enroll import build_profile
    from realtime.engine.sizing import SHARPEN
    from realtime.face.state import FaceState
    from realtime.face.topology import LEFT_EYE_LOWER, LEFT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_UPPER

    big = cv2.resize(astronaut_rgb, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    profile = build_profile(big, np.asarray(astronaut_landmarks) * 2.0, name="a2", source="a2")
    outs = []
    for strength in (SHARPEN, 0.0):
        engine = Engine(profile, EngineOptions(fps=FPS, kernel_threads=1, output_size=(1024, 1024),
                                               texture_sharpen=strength))
        assert engine.render_size == 384
        assert engine.texture_sharpen == pytest.approx(strength, abs=1e-3)
        assert engine.rig.texture_sharpen == engine.texture_sharpen
        outs.append(engine.process(Frame(index=0, t_capture=0.0, state=FaceState.neutral())).output)
        engine.close()
    lm = np.asarray(astronaut_landmarks)[:, :2] * 2.0
    (x0, y0), (x1, y1) = np.floor(lm.min(0)).astype(int), np.ceil(lm.max(0)).astype(int)
    a, b = (cv2.cvtColor(o, cv2.COLOR_RGB2GRAY).astype(np.float32)[y0:y1, x0:x1] for o in outs)
    skin = np.ones(a.shape, np.uint8)
    for upper, lower in ((RIGHT_EYE_UPPER, RIGHT_EYE_LOWER), (LEFT_EYE_UPPER, LEFT_EYE_LOWER)):
        loop = np.round(lm[list(upper) + list(lower[::-1])] - (x0, y0)).astype(np.int32)
        cv2.fillPoly(skin, [loop], 0)
    skin = cv2.erode(skin, np.ones((9, 9), np.uint8)).astype(bool)   # and the lid lines
    lap_a, lap_b = (cv2.Laplacian(x, cv2.CV_32F)[skin] for x in (a, b))
    assert lap_a.var() > 1.5 * lap_b.var()
    assert np.abs(cv2.GaussianBlur(a, (0, 0), 3.0) - cv2.GaussianBlur(b, (0, 0), 3.0)).mean() < 1.0


def test_the_estimators_notice_goes_to_the_overlay(astronaut_profile, monkeypatch):
    """Issue #15: after recalibrating by itself on a new face the estimator says so, and the
    engine puts it in frame.notes (the window overlay's lines); nothing when it is silent."""
    from realtime.face.estimate import NEW_FACE_NOTICE
    from realtime.face.state import FaceState

    engine = _engine(astronaut_profile)
    quiet = engine.process(Frame(index=0, t_capture=0.0, state=FaceState.neutral()))
    assert "face" not in quiet.notes
    monkeypatch.setattr(engine.estimator, "_notice_t", 0.0)
    told = engine.process(Frame(index=1, t_capture=0.0, state=FaceState.neutral()))
    assert told.notes["face"] == NEW_FACE_NOTICE


def test_kernel_threads_and_one_blas_thread(monkeypatch):
    """An engine's process runs numba at the asked thread count and its BLAS libraries on one
    thread (their idle workers spin on the capture's and the tracker's core)."""
    import numba
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(2, user_api="blas"):
        assert set_kernel_threads(1) == 1 and numba.get_num_threads() == 1
        assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} <= {1}
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    import realtime.engine.loop as loop_mod

    monkeypatch.setattr(loop_mod, "work_stealing", lambda: False)    # OpenMP: one thread on 2 cores
    assert set_kernel_threads(None) == 1
    monkeypatch.setattr(loop_mod, "work_stealing", lambda: True)     # TBB: both
    assert set_kernel_threads(None) == min(2, numba.config.NUMBA_NUM_THREADS)
    set_kernel_threads(1)


@pytest.mark.parametrize("faces, frames, expect", [
    ([True] * 4, 4, ""),
    ([False] + [True] * 99, 100, ""),                  # the first frame of a real-time run: said nothing
    ([False] * 3 + [True] * 97, 100, "face found in 97 of 100 frames"),
    ([True, False, True, True], 4, "face found in 3 of 4 frames"),
    ([False] * 4, 4, "no face found in any of 4 frames: nothing drove the output"),
    ([False] * 4, 9, "no face found in any of the last 4 frames"),     # a live run keeps its last rows
])
def test_the_summary_says_when_the_driver_showed_no_face(faces, frames, expect):
    """Before the fix: a driver with no face in it (a wrong clip, a camera pointed away) ended
    with a summary like any other."""
    report = RunReport(frames=frames, wall_s=1.0,
                       per_frame=[{"index": i, "timings": {}, "latency_ms": 5.0, "face": f}
                                  for i, f in enumerate(faces)])
    assert report.faces_missed().startswith(expect) if expect else report.faces_missed() == ""
    assert (expect in report.summary()) if expect else "face" not in report.summary()



@pytest.mark.parametrize("rows, expect", [
    # a short run's first frame: the tracker saw the face, the estimator believed it on the second
    ([(True, False)] + [(True, True)] * 9, ""),
    # a face back after an absence, or a new face at a cut: held back up to two frames
    ([(True, True)] * 40 + [(True, False)] * 2 + [(True, True)] * 40, ""),
    # a face seen but not believed for long: not followed, so missed (all but the last two)
    ([(True, True)] * 40 + [(True, False)] * 6 + [(True, True)] * 40, "face found in 82 of 86 frames"),
    # no face at all for a frame is still missed
    ([(True, True)] * 9 + [(False, False)], "face found in 9 of 10 frames"),
])
def test_frames_held_back_while_a_face_is_confirmed_count_as_found(rows, expect):
    """Before (new-user review): "face found in 9 of 10 frames" on a short run whose face was in
    every frame: the estimator believes a face on its second frame (`reappear_frames`)."""
    report = RunReport(frames=len(rows), wall_s=1.0,
                       per_frame=[{"index": i, "timings": {}, "latency_ms": 5.0, "face": f, "tracked": t}
                                  for i, (t, f) in enumerate(rows)])
    assert report.faces_missed().startswith(expect) if expect else report.faces_missed() == ""

def test_held_frames_are_not_faces_missed_and_leave_the_stage_line(monkeypatch):
    """(code review) A camera at half the run's rate: every other frame is held (no picture),
    and the summary said "face found in 50 of 100 frames"; a held first row (no timings) also
    lost the stage p50 line. Held frames count neither way, and the stages come from all rows."""
    rows = [{"index": i, "timings": {} if i % 2 == 0 else {"track": 5.0, "render": 1.0},
             "latency_ms": 5.0, "face": i % 2 == 1, "tracked": i % 2 == 1, "held": i % 2 == 0}
            for i in range(100)]
    report = RunReport(frames=100, wall_s=1.0, per_frame=rows)
    assert report.faces_missed() == ""
    assert set(report.stage_ms()) == {"track", "render"}


def test_a_face_tracked_but_never_followed_is_not_called_missing():
    """Before (new-user review): a folder of six different portraits as the driver said "no face
    found ... (is a face in view, lit and large enough?)": the tracker saw every face, but each
    jumped from the last, and a face drives only once it stays in place a few frames."""
    report = RunReport(frames=6, wall_s=1.0,
                       per_frame=[{"index": i, "timings": {}, "latency_ms": 5.0, "face": False, "tracked": True}
                                  for i in range(6)])
    assert report.faces_missed().startswith("no face followed in any of 6 frames: the tracker saw one in 6")


def test_a_yaml_tier_without_its_generator_says_where_it_came_from(astronaut_profile):
    """A profile.yaml set to tier neural by hand, with no trained generator (stop 60's new-user
    review: live said only "has no trained generator ... or choose the warp tier", though the
    user never chose a tier); --tier given on the command line keeps the generator's message."""
    import dataclasses

    from realtime.core.errors import ProfileError

    by_hand = dataclasses.replace(astronaut_profile, tier="neural")
    with pytest.raises(ProfileError, match=r"^profile 'astronaut': its profile.yaml says tier neural, but it lists "
                                           r"no trained generator: set 'tier: warp' there, or pass --tier warp$"):
        Engine(by_hand, EngineOptions(output_size=(128, 128)))
    with pytest.raises(ProfileError, match=r"has no trained generator"):
        Engine(by_hand, EngineOptions(output_size=(128, 128), tier="neural"))
    engine = Engine(by_hand, EngineOptions(output_size=(128, 128), tier="warp"))
    engine.close()


def test_the_summary_says_which_drops_a_late_clip_reader_skipped_and_a_clip_played_slow():
    """Honesty audit: a paced clip whose reader fell behind played slow, none dropped; now the frames
    it skips are capture drops the summary tells apart, and a reader too slow for the clip says so."""
    report = RunReport(frames=400, wall_s=15.0, capture_dropped=50, capture_skipped=44, sink_dropped=2)
    line = report.summary()
    assert ("dropped 52 (11.6%: capture 50 (44 of them skipped: the clip's reader was behind and the next "
            "frame was due), sink 2)") in line
    assert "slower than its rate" not in line
    assert "capture 3, sink 0" in RunReport(frames=10, wall_s=1.0, capture_dropped=3).summary()
    slow = RunReport(frames=90, wall_s=4.5, behind_s=1.5).summary()
    assert "the clip played 1.5 s slower than its rate (reading it took longer than its frames' interval" in slow


def test_smile_folds_can_be_turned_off(astronaut_profile):
    """`EngineOptions.smile_folds` (live --no-smile-folds, bench --compare smile_folds=...)
    reaches the warp tier: a smiling frame differs with and without it, a frame at rest does not."""
    from realtime.face.state import FaceState
    from realtime.io.performance import Blendshapes

    smile = FaceState(expression=Blendshapes(astronaut_profile["neutral"].astype(np.float64))({"smile": 1.6}))
    out = {}
    for folds in (True, False):
        engine = _engine(astronaut_profile, smile_folds=folds)
        out[folds] = [engine.process(Frame(index=i, t_capture=i / FPS, state=s)).output
                      for i, s in enumerate((FaceState.neutral(), smile))]
        engine.close()
    np.testing.assert_array_equal(out[True][0], out[False][0])
    assert np.abs(out[True][1].astype(int) - out[False][1].astype(int)).max() >= 3
