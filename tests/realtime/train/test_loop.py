"""realtime.train.loop: checkpoints, resume, and what a Ctrl-C keeps."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.core.profile import GENERATOR_FILE, STATE_FILE
from realtime.tiers.neural.checkpoint import load_checkpoint
from realtime.train import loop as T
from realtime.train.step import make_models, make_optimizers
from tests.realtime.train import Pairs


def _options(steps: int) -> T.TrainOptions:
    return T.TrainOptions(resolution=32, steps=steps, batch=2, temporal=False)


def _stop_at(monkeypatch, calls: int) -> None:
    """train_step does nothing, and its `calls`-th call is a Ctrl-C."""
    count = [0]

    def step(models, opts, batch, config):
        count[0] += 1
        if count[0] == calls:
            raise KeyboardInterrupt
        return {"rec": 0.5}

    monkeypatch.setattr(T, "train_step", step)


def _saved_step(out) -> int:
    cfg = T.NeuralConfig.for_resolution(32)
    models = make_models(cfg, "cpu")
    return int(load_checkpoint(out / STATE_FILE, models, make_optimizers(models, T.TrainConfig()))["step"])


def test_ctrl_c_saves_the_steps_done_and_the_next_run_resumes_from_them(tmp_path, monkeypatch):
    """Before: a Ctrl-C at step 17 of 50 (checkpoints every 200) left nothing and the next run
    started from 0."""
    out, checkpoints, commits = tmp_path / "neural", [], []
    _stop_at(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        T.train(Pairs(), out, _options(10), on_checkpoint=checkpoints.append,
                commit=lambda files: (commits.append(sorted(files)), T._replace_all(files, out)))
    assert checkpoints == [3] and commits == [[GENERATOR_FILE, STATE_FILE]]
    assert sorted(p.name for p in out.iterdir()) == [GENERATOR_FILE, STATE_FILE]   # no leftovers
    assert _saved_step(out) == 3
    _stop_at(monkeypatch, 0)
    result = T.train(Pairs(), out, _options(2))
    assert (result["steps"], result["resumed_at"]) == (5, 3)   # 2 steps this run (power-user review:
    assert T.train(Pairs(), tmp_path / "fresh", _options(1))["resumed_at"] == 0   # "577 steps" were 300)


def test_ctrl_c_before_a_new_step_writes_nothing(tmp_path, monkeypatch):
    out, checkpoints = tmp_path / "neural", []
    _stop_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        T.train(Pairs(), out, _options(10), on_checkpoint=checkpoints.append)
    assert checkpoints == [] and list(out.iterdir()) == []


@pytest.mark.parametrize("resume", [False, True])
def test_minutes_that_pass_before_a_step_still_train_one(tmp_path, monkeypatch, resume):
    """Before the fix (audit, helper 90): `train --minutes 1e-9` trained 0 steps, wrote an
    untrained generator (over the last one with --restart) and said "trained 0 steps"."""
    out = tmp_path / "neural"
    _stop_at(monkeypatch, 0)
    if resume:
        T.train(Pairs(), out, _options(3))
    result = T.train(Pairs(), out, T.TrainOptions(resolution=32, minutes=1e-9, batch=2, temporal=False))
    assert (result["steps"], result["resumed_at"]) == ((4, 3) if resume else (1, 0))
    assert _saved_step(out) == result["steps"]


def test_face_l1_of_an_untrained_generator_is_the_renders(tmp_path):
    """An untrained generator reproduces its render (zero-initialised output), so `train` keeps
    the atlas as the default tier; the render's L1 is the masked mean over the chosen pairs."""
    import numpy as np

    out = tmp_path / "neural"
    T.train(Pairs(), out, _options(0))
    pairs = Pairs()
    pairs.mask = pairs.mask.copy()
    pairs.mask[:, :, :16] = 0.0                    # only the lower half counts
    base, output = T.face_l1(pairs, out / GENERATOR_FILE, count=3, chunk=2)
    idx = [0, 2, 3]                                # linspace(0, 3, 3) rounded
    want = np.abs(pairs.render[idx] - pairs.target[idx])[:, :, 16:].mean()
    assert base == pytest.approx(want, rel=1e-5)
    assert output == pytest.approx(base, rel=1e-4)


def test_face_l1_of_pairs_without_a_face_is_an_error_not_zero(tmp_path):
    """Before (a new-user review): an empty face mask measured 0/1e-6 = 0.0000, reported by
    `train` as the face L1 of the render and of the output."""
    from realtime.core.errors import PuppeteerError

    out = tmp_path / "neural"
    T.train(Pairs(), out, _options(0))
    pairs = Pairs()
    pairs.mask = pairs.mask * 0.0
    with pytest.raises(PuppeteerError, match="the face mask is empty in every training pair"):
        T.face_l1(pairs, out / GENERATOR_FILE)


@pytest.mark.parametrize("shift", [None, 0.25])
def test_face_l1_measures_the_generators_own_output(monkeypatch, shift):
    """The second number is the generator's output's L1, not the render's again: a generator
    that returns the real frame scores 0, one that shifts the render scores the shifted L1."""
    import numpy as np
    import torch

    pairs = Pairs()

    def generator(render, mask, hint):
        target = torch.from_numpy(pairs.target)
        batch = [int(np.argmin(np.abs(pairs.render - r.numpy()).sum(axis=(1, 2, 3)))) for r in render]
        return target[batch] if shift is None else render + shift

    monkeypatch.setattr(T, "load_generator", lambda path: generator)
    base, output = T.face_l1(pairs, "unused", count=4, chunk=3)
    m = pairs.mask
    want = lambda y: float((np.abs(y - pairs.target) * m).sum() / (3.0 * m.sum()))  # noqa: E731
    assert base == pytest.approx(want(pairs.render), rel=1e-5)
    assert output == pytest.approx(0.0 if shift is None else want(pairs.render + shift), abs=1e-6, rel=1e-5)


def test_a_resumed_training_is_the_uninterrupted_one(tmp_path):
    """Before (stop 60's new-user review): each run re-seeded numpy and torch, so a resumed run
    drew the first run's batches again and its losses left the uninterrupted run's at once."""
    straight = T.train(Pairs(), tmp_path / "straight", _options(4))["history"]
    T.train(Pairs(), tmp_path / "split", _options(2))
    resumed = T.train(Pairs(), tmp_path / "split", _options(2))
    assert resumed["resumed_at"] == 2
    assert resumed["history"] == straight


def test_a_checkpoint_without_numpys_state_still_resumes(tmp_path):
    """An older checkpoint (no numpy state in its extra): seeded by (seed, step), it trains on."""
    import numpy as np

    rng = T._resumed_rng(None, 0, 7)
    assert isinstance(rng, np.random.Generator)
    assert rng.integers(1 << 30) == np.random.default_rng([0, 7]).integers(1 << 30)
    kept = np.random.default_rng(3)
    state = kept.bit_generator.state
    assert T._resumed_rng(state, 0, 7).integers(1 << 30) == kept.integers(1 << 30)


def test_a_run_resumed_from_a_checkpoint_without_numpys_state_trains_on(tmp_path):
    """End to end: a checkpoint written before numpy's stream was kept (its extra has no
    numpy_rng) resumes at its step, and the same way each time (its stream is seeded by step)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    out = tmp_path / "neural"
    T.train(Pairs(), out, _options(2))
    state = out / STATE_FILE
    with safe_open(str(state), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    key = next(iter(metadata))
    meta = json.loads(metadata[key])
    assert "numpy_rng" in meta["extra"]
    del meta["extra"]["numpy_rng"]
    save_file(tensors, str(state), metadata={key: json.dumps(meta)})
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / STATE_FILE).write_bytes(state.read_bytes())
    resumed = T.train(Pairs(), out, _options(2))
    assert (resumed["resumed_at"], resumed["steps"]) == (2, 4)
    assert T.train(Pairs(), copy, _options(2))["history"] == resumed["history"]   # the same stream


def test_the_loss_plot_has_the_losses_logged_on_every_other_step():
    """Before (stop 60's new-user review): the curves were the first step's keys, and the
    temporal loss (odd steps only) was never drawn; where drawn, its gaps counted as zeros."""
    import numpy as np

    history = [{"step": s, "rec": 0.5, **({"tmp": 0.2} if s % 2 == 0 else {})} for s in range(1, 401)]
    history[0]["once"] = 1.0
    curves = T.loss_curves(history)
    assert list(curves) == ["rec", "tmp"]                      # "once": a single value, no curve
    x, y = curves["tmp"]
    assert (x % 2 == 0).all() and np.allclose(y, 0.2)          # its own steps, not halved by gaps
    assert len(curves["rec"][0]) == 400 - 4 + 1                # a window of 4 (1/100 of 400)


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_a_loss_plot_of_a_few_steps_draws_their_points(tmp_path, steps):
    """Before (a new-user review): `train --steps 1` printed matplotlib's "No artists with labels
    found to put in legend" and losses.png was empty axes (a loss logged once has no curve).
    Now each loss's values are drawn as points (coloured markers, in the legend), and with no
    curve at all the plot says that there are too few steps for one."""
    import warnings

    import cv2

    history = [{"step": s, "rec": 0.5 / s, "ssim": 0.3, "d_real": -0.02, **({"tmp": 0.2} if s % 2 == 0 else {})}
               for s in range(1, steps + 1)]
    path = tmp_path / "losses.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path.write_bytes(T.draw_losses(history))
    hsv = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2HSV)
    coloured = (hsv[..., 1] > 120) & (hsv[..., 2] > 80)       # the markers (the axes are grey)
    assert coloured.sum() > 100

    seen = {}
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    real_text = Figure.text
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "text", lambda self, *a, **k: seen.setdefault("note", a[2]) and real_text(self, *a, **k))
        mp.setattr(Axes, "legend", lambda self, *a, **k: seen.setdefault("legend", [t.get_label() for t in self.lines]))
        T.draw_losses(history)
    assert seen["legend"] == ["rec", "ssim", "d_real"] + (["tmp"] if steps > 1 else [])
    if steps == 1:
        assert seen["note"] == ("only 1 step logged: too few for the losses' curves (each loss's value is a "
                                "point); train on for curves")
    else:
        assert "note" not in seen


def test_the_sample_sheet_names_its_rows(tmp_path):
    """Before (stop 60's new-user review): 3×4 crops and nothing to say which row was which."""
    import cv2
    import numpy as np

    out = tmp_path / "neural"
    T.train(Pairs(), out, _options(1))
    grid = T.samples(Pairs(), out / GENERATOR_FILE)
    side = Pairs().render.shape[-1]
    assert grid.dtype == np.uint8 and grid.shape[0] == len(T.SAMPLE_ROWS) * side
    cv2.imwrite(str(tmp_path / "s.png"), grid)
    labels, crops = grid[:, :150], grid[:, 150:]
    assert crops.shape[1] == 4 * side
    for i in range(len(T.SAMPLE_ROWS)):          # each row's label column has its (dark) text
        assert (labels[i * side:(i + 1) * side] < 128).any()
    # the difference rows are the crops' own: |output - real| ×4 from the output and real rows
    y, real = (crops[k * side:(k + 1) * side].astype(float) for k in (1, 2))
    diff = crops[3 * side:4 * side].astype(float)
    expect = np.clip(4.0 * np.abs(y - real), 0, 255)
    assert np.abs(diff - expect).mean() < 6.0


def test_a_step_cut_short_is_drawn_again_when_the_training_resumes(tmp_path, monkeypatch):
    """A Ctrl-C inside step 3 saves steps 1-2 with the random streams from before step 3's
    draws (stop 60's review: they were saved after them, so the resumed run skipped that batch)."""
    import torch

    def recording(stop_at=None):
        calls = [0]

        def step(models, opts, batch, config):
            calls[0] += 1
            if calls[0] == stop_at:
                raise KeyboardInterrupt
            return {"rec": float(sum(float(v.sum()) for v in batch.values() if torch.is_tensor(v)))}
        return step

    monkeypatch.setattr(T, "train_step", recording())
    straight = T.train(Pairs(), tmp_path / "straight", _options(4))["history"]
    monkeypatch.setattr(T, "train_step", recording(stop_at=3))
    with pytest.raises(KeyboardInterrupt):
        T.train(Pairs(), tmp_path / "cut", _options(4))
    assert _saved_step(tmp_path / "cut") == 2
    monkeypatch.setattr(T, "train_step", recording())
    assert T.train(Pairs(), tmp_path / "cut", _options(2))["history"] == straight


@pytest.mark.parametrize("extra", [[1, 2], {"history": "abc"}, {"history": [1, {"step": 1, "rec": 0.5}]},
                                   {"history": [{"step": "x"}]}, {"history": [{"rec": 1.0}]}])
def test_a_checkpoint_with_a_malformed_history_resumes_and_plots(tmp_path, monkeypatch, extra):
    """Before (train audit): a train_state whose extra was not a dict failed at load with an
    AttributeError traceback, and one whose history held other entries than {"step": int, loss:
    number} trained every step asked and then failed in `plot_losses` (now `draw_losses`) with a traceback."""
    from realtime.tiers.neural.checkpoint import save_checkpoint

    out = tmp_path / "neural"
    cfg = T.NeuralConfig.for_resolution(32)
    models = make_models(cfg, "cpu")
    save_checkpoint(out / STATE_FILE, models, make_optimizers(models, T.TrainConfig()), step=3, config=cfg,
                    extra=extra)
    monkeypatch.setattr(T, "train_step", lambda *a: {"rec": 0.5})
    result = T.train(Pairs(), out, _options(2))
    assert (result["resumed_at"], result["steps"]) == (3, 5)
    assert all(type(h["step"]) is int for h in result["history"])
    assert T.draw_losses(result["history"]).startswith(b"\x89PNG")


@pytest.mark.parametrize("how", ["loss", "weights"])
def test_a_training_that_diverges_keeps_its_last_good_checkpoint(tmp_path, monkeypatch, how):
    """Before (train audit): a step whose losses (or weights) went NaN was trained on, and the next
    checkpoint (every 200 steps, at a Ctrl-C, at the end) replaced the last good one with NaN
    weights, which load refuses ("train it again with --restart"): the whole training lost."""
    import torch

    out = tmp_path / "neural"
    T.train(Pairs(), out, _options(3))
    good = (out / STATE_FILE).read_bytes()
    calls = [0]

    def step(models, opts, batch, config):
        calls[0] += 1
        if calls[0] == 2:
            with torch.no_grad():
                next(models["G"].parameters()).fill_(float("nan"))
            if how == "loss":
                return {"rec": float("nan"), "adv": 0.1}
        return {"rec": 0.5}

    monkeypatch.setattr(T, "train_step", step)
    options = _options(10)
    options.checkpoint_every = 5        # step 5: a checkpoint after the NaN step
    with pytest.raises(T.TrainingDiverged, match=r"diverged at step 5: .*the checkpoint of step 3 is kept"):
        T.train(Pairs(), out, options)
    assert (out / STATE_FILE).read_bytes() == good
    assert sorted(p.name for p in out.iterdir()) == [GENERATOR_FILE, STATE_FILE]
    assert _saved_step(out) == 3


def test_a_slow_training_checkpoints_every_few_minutes(tmp_path, monkeypatch):
    """Before (train audit): checkpoints came every 200 steps only: at 512² on a 2-core CPU (about
    28 s a step) one in 1.5 h, so a kill that no handler sees (the OOM killer's SIGKILL) lost that."""
    clock = [1000.0]
    monkeypatch.setattr(T.time, "monotonic", lambda: clock[0])

    def step(models, opts, batch, config):
        clock[0] += 240.0           # 4 minutes a step
        return {"rec": 0.5}

    monkeypatch.setattr(T, "train_step", step)
    checkpoints = []
    T.train(Pairs(), tmp_path / "neural", _options(7), on_checkpoint=checkpoints.append)
    assert checkpoints == [3, 6, 7]     # 12 minutes after the start, 12 after that, and the end


def test_a_ctrl_c_during_the_last_save_still_saves_the_run(tmp_path, monkeypatch):
    """Before (train audit): the save at the end of a run was outside the Ctrl-C handler: a Ctrl-C
    while it wrote (seconds for a 512² state) lost every step since the last checkpoint."""
    real = T.save_checkpoint
    calls = [0]

    def save_checkpoint(*a, **k):
        calls[0] += 1
        if calls[0] == 1:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(T, "save_checkpoint", save_checkpoint)
    _stop_at(monkeypatch, 0)
    out, checkpoints = tmp_path / "neural", []
    with pytest.raises(KeyboardInterrupt):
        T.train(Pairs(), out, _options(3), on_checkpoint=checkpoints.append)
    assert checkpoints == [3] and _saved_step(out) == 3
    assert sorted(p.name for p in out.iterdir()) == [GENERATOR_FILE, STATE_FILE]


class _Clip(Pairs):
    """Twelve pairs of consecutive frames, each with its previous frame (temporal batches)."""
    n = 12
    rng = np.random.default_rng(1)
    render = rng.uniform(-1, 1, (n, 3, 32, 32)).astype(np.float32)
    target = rng.uniform(-1, 1, (n, 3, 32, 32)).astype(np.float32)
    mask = np.ones((n, 1, 32, 32), np.float32)
    prev = np.r_[-1, np.arange(n - 1)]
    flow = np.zeros((n, 32, 32, 2), np.float32)
    visible = np.ones((n, 32, 32), np.float32)


def test_frames_held_out_are_never_trained_on(tmp_path, monkeypatch):
    """Before (train audit): every pair was trained on, and the tier decided on them. Now no batch
    (nor a temporal batch's previous frame) holds a pair outside `train_on`."""
    drawn = []
    real = T._batch

    def batch(pairs, idx, device, temporal):
        drawn.extend(int(i) for i in idx)
        if temporal:
            drawn.extend(int(pairs.prev[i]) for i in idx)
        return real(pairs, idx, device, temporal)

    monkeypatch.setattr(T, "_batch", batch)
    _stop_at(monkeypatch, 0)
    options = T.TrainOptions(resolution=32, steps=30, batch=2, train_on=np.r_[0:5, 9:12],
                             held_out=("clip", (6, 7)))
    result = T.train(_Clip(), tmp_path / "neural", options)
    assert drawn and set(drawn) <= set(range(5)) | {9, 10, 11} and 9 in drawn
    assert result["held_out_unseen"] is True


def _held_out_of(out) -> dict:
    from realtime.tiers.neural.checkpoint import read_metadata

    return read_metadata(out / STATE_FILE)["extra"]["held_out"]


def test_a_checkpoint_says_which_frames_it_held_out_and_a_resumed_run_whether_it_saw_them(tmp_path, monkeypatch):
    """The checkpoint records each clip's held-out frames; a run resumed from one that trained on
    the frames it now holds out (written before frames were held out, or another split) says so,
    and `run.py train` then keeps the atlas as the default tier."""
    _stop_at(monkeypatch, 0)
    out = tmp_path / "neural"
    held = lambda frames: T.TrainOptions(resolution=32, steps=2, batch=2, temporal=False,   # noqa: E731
                                         train_on=np.arange(3), held_out=("clip", frames))
    assert T.train(Pairs(), out, held((3,)))["held_out_unseen"] is True
    assert _held_out_of(out) == {"clip": [3]}
    assert T.train(Pairs(), out, held((3,)))["held_out_unseen"] is True           # the same split
    other = T.TrainOptions(resolution=32, steps=2, batch=2, temporal=False, held_out=("other", (0,)))
    assert T.train(Pairs(), out, other)["held_out_unseen"] is True                # another clip
    assert T.train(Pairs(), out, held((2,)))["held_out_unseen"] is False          # frame 2 trained on
    assert _held_out_of(out) == {"clip": None, "other": [0]}
    assert T.train(Pairs(), out, held((2,)))["held_out_unseen"] is False          # for good
    old = tmp_path / "old"                       # trained on all the pairs of a clip it does not name
    T.train(Pairs(), old, _options(2))
    assert T.train(Pairs(), old, held((3,)))["held_out_unseen"] is False
    from realtime.tiers.neural.checkpoint import save_checkpoint

    cfg = T.NeuralConfig.for_resolution(32)      # a checkpoint from before frames were held out
    models = make_models(cfg, "cpu")
    save_checkpoint(old / STATE_FILE, models, make_optimizers(models, T.TrainConfig()), step=3, config=cfg,
                    extra={"history": []})
    assert T.train(Pairs(), old, held((3,)))["held_out_unseen"] is False
    fresh = T.TrainOptions(resolution=32, steps=2, batch=2, temporal=False, resume=False,
                           train_on=np.arange(3), held_out=("clip", (3,)))
    assert T.train(Pairs(), old, fresh)["held_out_unseen"] is True                # --restart


def test_face_l1_measures_the_pairs_it_is_given(monkeypatch):
    """The held-out pairs' face L1 is theirs, not the whole set's."""
    pairs = Pairs()
    monkeypatch.setattr(T, "load_generator", lambda path: lambda r, m, h: r)
    base, _ = T.face_l1(pairs, "unused", index=np.array([1, 3]))
    want = float(np.abs(pairs.render[[1, 3]] - pairs.target[[1, 3]]).mean())
    assert base == pytest.approx(want, rel=1e-5)


def test_a_long_training_s_loss_history_covers_it_from_its_first_step(tmp_path, monkeypatch):
    """Before (train audit): the checkpoint kept the last 5000 steps, so `losses.png` of a long
    (or resumed) run silently began thousands of steps in. Now the older steps are thinned
    evenly (both kinds of step, the temporal one and the other), the recent ones kept whole."""
    monkeypatch.setattr(T, "HISTORY_CAP", 40)
    _stop_at(monkeypatch, 0)
    out = tmp_path / "neural"
    result = T.train(Pairs(), out, _options(150))
    for history in (result["history"], T._resumed_history(
            __import__("realtime.tiers.neural.checkpoint", fromlist=["x"]).read_metadata(out / STATE_FILE)
            ["extra"]["history"])):
        steps = [h["step"] for h in history]
        assert steps[0] <= 2 and steps[-1] == 150 and len(steps) <= 40 and steps == sorted(steps)
        assert steps[-4:] == [147, 148, 149, 150]                   # the last ones whole
        early = [s for s in steps if s <= 75]                        # evenly thinned, in pairs of steps
        pairs = np.diff(sorted({(s - 1) // 2 for s in early}))
        assert len(pairs) >= 3 and len(set(pairs)) == 1 and len(early) == 2 * (len(pairs) + 1)
    resumed = T.train(Pairs(), out, _options(150))                  # a resumed run thins as one would
    steps = [h["step"] for h in resumed["history"]]
    assert steps[0] <= 2 and steps[-1] == 300 and len(steps) <= 40


def test_remove_partials_removes_what_a_killed_save_left_and_nothing_else(tmp_path):
    out = tmp_path / "neural"
    out.mkdir()
    left = [f".{STATE_FILE}.partial", f".{GENERATOR_FILE}.partial.tmp", ".losses.partial.png"]
    kept = [STATE_FILE, "notes.partial", ".other.partial"]
    for name in left + kept:
        (out / name).write_bytes(b"x")
    assert sorted(T.remove_partials(out)) == sorted(left)
    assert sorted(p.name for p in out.iterdir()) == sorted(kept)
