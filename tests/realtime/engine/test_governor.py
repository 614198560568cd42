"""The render size's real-time governor (realtime.engine.governor) and its wiring in the Engine."""
import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.engine.governor import RenderGovernor, ladder
from realtime.engine.loop import Engine, EngineOptions
from realtime.face.state import FaceState

PERIOD = 1.0 / 30.0          # 33.3 ms; the budget at 0.8 is 26.7 ms


def test_ladder_steps_down_by_a_fifth_to_the_profiles_size():
    assert ladder(400, 256, 16) == [400, 320, 256]
    assert ladder(576, 256, 16) == [576, 464, 384, 320, 256]
    assert ladder(272, 256, 16) == [272, 256]
    assert ladder(256, 256, 16) == [256]
    assert all(s % 16 == 0 for s in ladder(544, 256, 16))


def _feed(gov, ms, n):
    return [r for r in (gov.observe(ms) for _ in range(n)) if r is not None]


def test_a_machine_that_keeps_up_keeps_the_size_and_stops_watching():
    gov = RenderGovernor([400, 320, 256], PERIOD, window=30, settle=10)
    assert _feed(gov, 20.0, 40) == [] and gov.done and gov.size == 400
    assert _feed(gov, 90.0, 200) == []       # later overruns (another program) never resize


def test_an_overrun_steps_down_one_rung_per_window_and_never_below_the_last():
    gov = RenderGovernor([400, 320, 256], PERIOD, window=30, settle=10)
    assert _feed(gov, 30.0, 39) == []         # settle + one frame short of a window
    assert gov.observe(30.0) == 320
    assert _feed(gov, 30.0, 39) == [] and gov.observe(30.0) == 256
    assert gov.done and _feed(gov, 30.0, 100) == []
    assert [(a, b) for a, b, _ in gov.steps] == [(400, 320), (320, 256)]
    assert gov.steps[0][2] == pytest.approx(30.0)


def test_the_decision_is_the_windows_median_not_a_spike():
    gov = RenderGovernor([400, 320], PERIOD, window=30, settle=0)
    times = [20.0] * 20 + [200.0] * 10       # a third of the frames hitch: the median fits
    assert [gov.observe(t) for t in times] == [None] * 30 and gov.done and gov.size == 400
    gov = RenderGovernor([400, 320], PERIOD, window=30, settle=0)
    assert [gov.observe(t) for t in [20.0] * 14 + [27.0] * 16][-1] == 320


def test_bad_settings_are_refused_with_their_values():
    with pytest.raises(ValueError, match="budget 1.5"):
        RenderGovernor([400, 320], PERIOD, budget=1.5)
    with pytest.raises(ValueError, match="sizes"):
        RenderGovernor([], PERIOD)


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


def test_an_overrunning_engine_redraws_smaller_and_keeps_its_state(astronaut_profile, monkeypatch):
    """Frames that overrun the budget: after the settle frames and one window the engine
    rebuilds at the next rung; the estimator, the tracker, the gains and the passthrough toggle
    carry over, and the frames after it are drawn at the new size, the same picture at low
    frequencies."""
    import time as time_mod

    engine = _big(astronaut_profile, realtime=True, adapt_render_size=True)
    gov = engine.governor
    estimator, tracker = engine.estimator, engine.stages[0].tracker
    engine.recombiner.set_gain("mouth", 1.3)
    first = engine.process(Frame(index=0, t_capture=0.0, state=FaceState.neutral()))
    engine.handle("toggle")                             # passthrough on before the rebuild
    clock = iter(np.arange(0.0, 1e4, 0.05))            # every stage "takes" 50 ms
    monkeypatch.setattr(time_mod, "perf_counter", lambda: float(next(clock)))
    notes = []
    for i in range(1, gov.settle + gov.window + 1):
        notes.append(engine.process(Frame(index=i, t_capture=0.0, state=FaceState.neutral())).notes)
    monkeypatch.undo()
    assert engine.render_size == 320 and engine.rig.crop_size == 320
    said = [n["render"] for n in notes if "render" in n]
    assert said == ["render size 384² → 320² (real-time budget)"]     # once, on the frame it happened
    assert engine.estimator is estimator and engine.stages[0].tracker is tracker
    assert engine.recombiner.config.gains()["mouth"] == pytest.approx(1.3)
    assert engine.compositor.passthrough
    engine.handle("toggle")
    after = engine.process(Frame(index=99, t_capture=0.0, state=FaceState.neutral()))
    assert after.render.shape == (320, 320, 3) and after.output.shape == first.output.shape
    a, b = (o.astype(np.float32) for o in (first.output, after.output))
    assert np.abs(a - b).mean() < 3.0
    engine.close()
