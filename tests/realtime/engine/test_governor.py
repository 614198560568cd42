"""The render size's real-time governor (realtime.engine.governor) and its wiring in the Engine."""
import cv2
import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.engine.governor import RenderGovernor, ladder
from realtime.engine.loop import Engine, EngineOptions
from realtime.face.state import FaceState

PERIOD = 1.0 / 30.0          # 33.3 ms; the budget at 0.7 is 23.3 ms


def test_ladder_steps_down_by_a_fifth_to_the_profiles_size():
    assert ladder(400, 256, 16) == [400, 320, 256]
    assert ladder(576, 256, 16) == [576, 464, 384, 320, 256]
    assert ladder(272, 256, 16) == [272, 256]
    assert ladder(256, 256, 16) == [256]
    assert ladder(400, 200, 16) == [400, 320, 256, 200]        # not 256, 208, 200
    assert all(s % 16 == 0 for s in ladder(544, 256, 16))


def _feed(gov, ms, n, scalable=0.0):
    return [r for r in (gov.observe(ms, scalable) for _ in range(n)) if r is not None]


def test_a_machine_that_keeps_up_keeps_the_size_until_another_program_takes_the_cpu():
    """It watches the whole run: a video call started later on the same cores (frames at 30 ms)
    steps the size down at once, though the first windows fitted (it used to stop watching
    after the first window that fit: two busy loops beside d10 → s1 then dropped 10 % of the
    frames at 400², 1 % at 256²)."""
    gov = RenderGovernor([400, 320, 256], PERIOD, window=30, settle=10)
    assert _feed(gov, 20.0, 400) == [] and gov.size == 400 and not gov.lowered
    assert _feed(gov, 30.0, 29) == [] and gov.observe(30.0) == 256 and gov.lowered
    assert [(a, b) for a, b, _ in gov.steps] == [(400, 256)]


def test_the_size_comes_back_once_the_load_has_gone():
    """Stepped down to 256² by a busy machine (30 ms frames), it steps back up once RAISE_AFTER
    windows in a row predict a larger rung fits within RAISE_MARGIN of the budget: 12 ms at 256²,
    5 of it scaling with the area, predicts 400² at 7 + 5 × 2.44 = 19.2 ms ≤ 0.9 × 23.3: straight
    to 400². A window that predicts no room starts the count again."""
    gov = RenderGovernor([400, 320, 256], PERIOD, window=30, settle=10, raise_after=4)
    assert _feed(gov, 30.0, 39) == [] and gov.observe(30.0) == 256
    assert _feed(gov, 30.0, 300) == []                             # still busy: it stays
    assert _feed(gov, 12.0, 10 + 30 * 3, 5.0) == []                 # 3 roomy windows
    assert _feed(gov, 22.0, 30, 5.0) == []                          # 400² predicted at 29 ms: no room
    assert _feed(gov, 12.0, 30 * 4 - 1, 5.0) == [] and gov.observe(12.0, 5.0) == 400
    assert not gov.lowered and [(a, b) for a, b, _ in gov.steps] == [(400, 256), (256, 400)]
    assert gov.steps[-1][2] == pytest.approx(12.0)
    # 400² predicted at 7 + 8 × 2.44 = 26.5 ms but 320² at 7 + 8 × 1.56 = 19.5 ms: one rung up
    gov = RenderGovernor([400, 320, 256], PERIOD, window=30, settle=10, raise_after=4)
    assert _feed(gov, 30.0, 40) == [256]
    assert _feed(gov, 15.0, 10 + 30 * 4, 8.0) == [320]


def test_a_raise_that_overruns_doubles_the_wait_so_the_size_does_not_flap():
    """A machine on the edge: at 320² frames take 16 ms (6 scaling), so 400² is predicted to fit
    (19.4 ms), but there they take 25 ms. Each raise that overruns doubles the windows the next
    one waits for (4, 8, 16, 32, then RAISE_MAX × 4): 10 minutes of frames try 400² 12 times,
    ever more seldom, where a fixed wait tried it every ~6 s (106 times); a raise that holds
    brings the wait back."""
    from realtime.engine.governor import RAISE_MAX

    gov = RenderGovernor([400, 320, 256], PERIOD, window=30, settle=10, raise_after=4)
    machine = {400: (25.0, 9.4), 320: (16.0, 6.0)}
    ups = []
    for i in range(30 * 600):
        if gov.observe(*machine[gov.size]) == 400:
            ups.append(i)
    assert gov.steps[0][:2] == (400, 320) and len(ups) == 12 and len(gov.steps) <= 25
    assert all(b - a <= c - b for a, b, c in zip(ups, ups[1:], ups[2:]))     # never sooner than before
    assert gov.raise_wait == RAISE_MAX * 4
    machine[400] = (18.0, 9.4)                       # the load went: 400² holds
    for _ in range(30 * 120):
        gov.observe(*machine[gov.size])
    assert gov.size == 400 and gov.raise_wait == 4


def test_an_overrun_goes_to_the_largest_rung_predicted_to_fit():
    """Medians 26 ms total, 12 ms of it scaling with the crop's area, at 400²: 320² is predicted
    at 14 + 12 × 0.64 = 21.7 ms ≤ 23.3: one step, to 320. At 30 ms total: 320² would take 25.7,
    so it goes to 256² in one step."""
    gov = RenderGovernor([400, 320, 256], PERIOD, window=30, settle=10)
    assert [gov.observe(26.0, 12.0) for _ in range(39)] == [None] * 39
    assert gov.observe(26.0, 12.0) == 320 and gov.lowered
    gov = RenderGovernor([400, 320, 256], PERIOD, window=30, settle=10)
    assert _feed(gov, 30.0, 39, 12.0) == [] and gov.observe(30.0, 12.0) == 256


def test_a_rung_that_still_overruns_steps_again_and_never_below_the_last():
    gov = RenderGovernor([400, 320, 256], PERIOD, window=30, settle=10)
    assert _feed(gov, 26.0, 39, 12.0) == [] and gov.observe(26.0, 12.0) == 320
    assert _feed(gov, 30.0, 39) == [] and gov.observe(30.0) == 256     # slower than predicted
    assert _feed(gov, 30.0, 100) == []           # nothing below the last rung
    assert [(a, b) for a, b, _ in gov.steps] == [(400, 320), (320, 256)]
    assert gov.steps[1][2] == pytest.approx(30.0)


def test_the_decision_is_the_windows_median_not_a_spike():
    gov = RenderGovernor([400, 320], PERIOD, window=30, settle=0)
    times = [20.0] * 20 + [200.0] * 10       # a third of the frames hitch: the median fits
    assert [gov.observe(t) for t in times] == [None] * 30 and gov.size == 400
    gov = RenderGovernor([400, 320], PERIOD, window=30, settle=0)
    assert [gov.observe(t) for t in [20.0] * 14 + [27.0] * 16][-1] == 320


def test_bad_settings_are_refused_with_their_values():
    with pytest.raises(ValueError, match="budget 1.5"):
        RenderGovernor([400, 320], PERIOD, budget=1.5)
    with pytest.raises(ValueError, match="sizes"):
        RenderGovernor([], PERIOD)
    with pytest.raises(ValueError, match="raise_after 0"):
        RenderGovernor([400, 320], PERIOD, raise_after=0)


def _big(profile, **kw):
    """The astronaut at a 1024² output: automatic render size 384 (> her 256² crop)."""
    return Engine(profile, EngineOptions(output_size=(1024, 1024), fps=30.0, kernel_threads=1, **kw))


def test_the_engine_governs_only_a_live_automatic_reenactment(astronaut_profile):
    on = _big(astronaut_profile, realtime=True, adapt_render_size=True)
    assert on.governor is not None and on.governor.sizes == [384, 320, 256]
    for kw in ({"realtime": False, "adapt_render_size": True},             # a file: no deadline
               {"realtime": True},                                          # not asked
               {"realtime": True, "adapt_render_size": True, "render_size": 384}):   # size given
        engine = _big(astronaut_profile, **kw)
        assert engine.governor is None
        engine.close()
    small = Engine(astronaut_profile, EngineOptions(fps=30.0, kernel_threads=1, realtime=True,
                                                    adapt_render_size=True))
    assert small.render_size == 256 and small.governor is None              # nothing to step to
    on.close()
    small.close()


class _StandInTracker:
    """Finds no face; records the images it was given."""

    closed = False

    def __init__(self):
        self.seen = []

    def __call__(self, image):
        self.seen.append(image)
        return None

    def close(self):
        self.closed = True


def _drawn(i):
    """A live frame that drew a tracked face: a camera image and a present (scripted) state."""
    return Frame(index=i, t_capture=0.0, image=np.zeros((64, 64, 3), np.uint8), state=FaceState.neutral())


def _ticking(monkeypatch, step_s):
    """time.perf_counter advancing `step_s` a call: every timed stage takes about that long."""
    import itertools
    import time as time_mod

    ticks = itertools.count()
    monkeypatch.setattr(time_mod, "perf_counter", lambda: next(ticks) * step_s)


def _overrun(engine, monkeypatch, frames):
    """Process `frames` as if every stage took 50 ms; returns their notes."""
    _ticking(monkeypatch, 0.05)
    try:
        return [engine.process(f).notes for f in frames]
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("remix", [None, "still"])
def test_an_overrunning_engine_redraws_smaller_and_keeps_its_state(astronaut_profile, monkeypatch, remix):
    """Frames that overrun the budget: after the settle frames and one window the engine
    rebuilds at the next rung. The stage list keeps its order; the tracker, the estimator, the
    remix stage, the disclosure stage (the label and mark), the gains and the passthrough
    toggle carry over; the frames after it are drawn at the new size, the same picture at low
    frequencies with the same disclosure label; the overlay says so from then on."""
    tracker = _StandInTracker()
    engine = Engine(astronaut_profile, EngineOptions(output_size=(1024, 1024), fps=30.0, kernel_threads=1,
                                                     realtime=True, adapt_render_size=True,
                                                     pose_from=remix), tracker=tracker)
    gov = engine.governor
    names = [st.name for st in engine.stages]
    estimator, disclosure, remix_stage = engine.estimator, engine.disclosure, engine.remix
    assert (remix_stage is None) == (remix is None)
    engine.recombiner.set_gain("mouth", 1.3)
    first = engine.process(_drawn(0))
    assert "render" not in first.notes
    engine.handle("toggle")                             # passthrough on before the rebuild
    notes = _overrun(engine, monkeypatch, [_drawn(i) for i in range(1, gov.settle + gov.window)])
    assert engine.render_size == 256 and engine.rig.crop_size == 256   # 50 ms a stage: the last rung
    assert ["render" in n for n in notes] == [False] * (len(notes) - 1) + [True]
    assert notes[-1]["render"] == "render 384² → 256² (real-time budget)"
    assert [st.name for st in engine.stages] == names
    assert engine.stages[0].tracker is tracker
    assert engine.estimator is estimator and engine.stages[1].estimator is estimator
    assert engine.stages[-1] is engine.disclosure is disclosure
    if remix is not None:
        assert engine.stages[2] is remix_stage is engine.remix
    assert engine.recombiner.config.gains()["mouth"] == pytest.approx(1.3)
    assert engine.compositor.passthrough
    engine.handle("toggle")
    after = engine.process(_drawn(99))
    assert after.render.shape == (256, 256, 3) and after.output.shape == first.output.shape
    assert after.notes["render"] == "render 384² → 256² (real-time budget)"     # and it stays
    a, b = (o.astype(np.float32) for o in (first.output, after.output))
    assert np.abs(a - b).mean() < 3.0
    h, w = a.shape[:2]                                   # the label's corner (bottom right)
    assert np.abs(a[int(h * 0.9):, int(w * 0.7):] - b[int(h * 0.9):, int(w * 0.7):]).max() <= 1.0
    engine.close()
    assert tracker.closed


def test_an_engine_stepped_down_by_a_busy_machine_draws_full_size_again(astronaut_profile, monkeypatch):
    """Overrun to 256² (50 ms stages), then fast frames (0.5 ms stages): after RAISE_AFTER roomy
    windows it rebuilds at 384² again; the overlay says it is back for RENDER_BACK_FRAMES frames,
    then says nothing about the render size."""
    from realtime.engine.loop import RENDER_BACK_FRAMES

    engine = Engine(astronaut_profile, EngineOptions(output_size=(1024, 1024), fps=30.0, kernel_threads=1,
                                                     realtime=True, adapt_render_size=True),
                    tracker=_StandInTracker())
    gov = engine.governor
    _overrun(engine, monkeypatch, [_drawn(i) for i in range(gov.settle + gov.window)])
    assert engine.render_size == 256
    frames = [_drawn(100 + i) for i in range(gov.settle + gov.raise_after * gov.window + RENDER_BACK_FRAMES + 1)]
    _ticking(monkeypatch, 0.0005)
    try:
        notes = [engine.process(f).notes.get("render") for f in frames]
    finally:
        monkeypatch.undo()
    k = gov.settle + gov.raise_after * gov.window - 1        # the frame whose window decided
    assert notes[:k] == ["render 384² → 256² (real-time budget)"] * k
    assert engine.render_size == 384 and engine.rig.crop_size == 384 and not gov.lowered
    back = notes[k:]
    assert back[:RENDER_BACK_FRAMES] == ["render back to 384² (the machine has room again)"] * RENDER_BACK_FRAMES
    assert back[RENDER_BACK_FRAMES:] == [None] * (len(back) - RENDER_BACK_FRAMES)
    assert [(a, b) for a, b, _ in gov.steps] == [(384, 256), (256, 384)]
    engine.close()


def test_frames_without_a_drawn_face_are_not_judged(astronaut_profile, monkeypatch):
    """Held frames (no image) and frames where the face is lost cost less than a drawn face:
    they are left out of the governor's window, so they can neither pass nor fail it."""
    engine = Engine(astronaut_profile, EngineOptions(output_size=(1024, 1024), fps=30.0, kernel_threads=1,
                                                     realtime=True, adapt_render_size=True),
                    tracker=_StandInTracker())
    gov = engine.governor
    held = [Frame(index=i, t_capture=0.0, state=FaceState.neutral()) for i in range(60)]
    lost = [Frame(index=60 + i, t_capture=0.0, image=np.zeros((64, 64, 3), np.uint8),
                  state=FaceState.neutral(present=False)) for i in range(60)]
    _overrun(engine, monkeypatch, held + lost)
    assert engine.render_size == 384 and gov.steps == []
    engine.close()


def test_the_governor_is_for_the_cpu_warp_and_atlas_tiers(astronaut_profile):
    """Not on a GPU (the drawing is not what overruns there) nor the neural tier (its own
    resolution; a rebuild reloads its network)."""
    from realtime.core.context import CpuContext

    opts = {"output_size": (1024, 1024), "fps": 30.0, "kernel_threads": 1, "realtime": True,
            "adapt_render_size": True}
    on_gpu = Engine(astronaut_profile, EngineOptions(**opts, device="cuda"), device=CpuContext())
    assert on_gpu.governor is None
    on_gpu.close()
    for tier, governed in (("warp", True), ("neural", False)):
        engine = Engine.__new__(Engine)
        engine.options, engine.render_size = EngineOptions(**opts, tier=tier), 384
        assert (engine._governor(astronaut_profile) is not None) == governed


def test_presize_steps_before_the_first_frame_and_keeps_watching():
    gov = RenderGovernor([400, 320, 256], PERIOD, window=30, settle=10)
    assert gov.presize(20.0, 10.0) is None and gov.steps == []
    assert gov.presize(26.0, 12.0) == 320                                # predicted 21.7 ms
    assert _feed(gov, 30.0, 39) == [] and gov.observe(30.0) == 256       # the real frames decide
    assert [(a, b) for a, b, _ in gov.steps] == [(400, 320), (320, 256)]


@pytest.mark.parametrize("step_s, size", [(0.05, 256), (0.0005, 384)])
def test_warm_up_times_the_machine_and_draws_smaller_before_the_first_frame(astronaut_profile, monkeypatch,
                                                                           step_s, size):
    """A governed engine's warm-up tracks the profile's own photo and times neutral frames: on a
    machine whose stages take 50 ms it is drawing at the last rung before any real frame (and
    has forgotten the photo's face: a blank frame follows it); on a fast one it keeps 384²."""
    tracker = _StandInTracker()
    engine = Engine(astronaut_profile, EngineOptions(output_size=(1024, 1024), fps=30.0, kernel_threads=1,
                                                     realtime=True, adapt_render_size=True), tracker=tracker)
    _ticking(monkeypatch, step_s)
    try:
        engine.warm_up()
    finally:
        monkeypatch.undo()
    assert engine.render_size == size and engine.rig.crop_size == size
    from realtime.engine.loop import _webcam_framing

    framed = _webcam_framing(astronaut_profile)
    assert framed.shape == (512, 512, 3) and framed.dtype == np.uint8
    assert sum(np.array_equal(im, framed) for im in tracker.seen) == 4
    assert tracker.seen[-1].shape == (64, 64, 3) and not tracker.seen[-1].any()
    assert [st.name for st in engine.stages][-1] == "disclose"
    assert engine.governor.lowered == (size == 256)
    engine.close()


class _SlowTracker(_StandInTracker):
    """A tracker that takes `ticks` clock ticks a call (the stages take one each)."""

    def __init__(self, ticks):
        super().__init__()
        self.ticks = ticks

    def __call__(self, image):
        import time as time_mod

        for _ in range(self.ticks):
            time_mod.perf_counter()
        return super().__call__(image)


@pytest.mark.parametrize("track", [True, False])
def test_the_trackers_time_counts_at_start_up_and_a_tracked_clip_skips_it(astronaut_profile, monkeypatch, track):
    """Stages at 0.5 ms and a tracker at 40 ms: the tracker alone overruns the budget, so the
    engine starts smaller; a tracked clip (warm_up(track=False): no MediaPipe live) neither
    calls the tracker nor counts it, and keeps 384²."""
    tracker = _SlowTracker(80)
    engine = Engine(astronaut_profile, EngineOptions(output_size=(1024, 1024), fps=30.0, kernel_threads=1,
                                                     realtime=True, adapt_render_size=True), tracker=tracker)
    _ticking(monkeypatch, 0.0005)
    try:
        engine.warm_up(track=track)
    finally:
        monkeypatch.undo()
    assert engine.render_size == (256 if track else 384)
    assert (tracker.seen != []) == track
    engine.close()


def test_the_framing_depends_on_the_face_only(astronaut_profile):
    """A face small in a large photo (the astronaut padded by 1000 px) is framed exactly as in
    the photo itself: a square twice the face's box, resized to 512²."""
    from realtime.engine.loop import _webcam_framing

    image = np.asarray(astronaut_profile["image"])
    lm = np.asarray(astronaut_profile["landmarks"], np.float64)
    framed = _webcam_framing({"image": image, "landmarks": lm})
    padded = _webcam_framing({"image": np.pad(image, ((0, 1000), (0, 1000), (0, 0))), "landmarks": lm})
    np.testing.assert_array_equal(framed, padded)
    assert not np.array_equal(framed, cv2.resize(image, (512, 512)))
