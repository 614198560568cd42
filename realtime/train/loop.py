"""The training loop of the neural tier: `run.py train`.

Trains the generator of one profile on self-reenactment pairs of its own video (dataset.py),
with the losses and steps of `realtime.train.step`, for a number of steps or minutes. Writes into the profile:

    neural/train_state.safetensors   models + optimizers + step (resume)
    neural/generator.safetensors     the generator alone (what the neural tier loads)
    neural/losses.png                loss curves
    neural/samples.png               rows render, output, real and their differences ×4, labelled

and `run.py train` switches the profile's tier to "neural" where the generator improves on the
frames held out of training (`TrainOptions.train_on`, `dataset.held_out`; the checkpoint records
which, so that a resumed run knows whether it trained on them). The files are listed with their
sha256.

Checkpoints are written under temporary names and handed to `commit` ({name: temporary file}),
which moves them into place: `run.py train` commits them into the profile with
`profiles.store.commit_files`, so a Ctrl-C at any moment leaves a profile that loads. A Ctrl-C
(KeyboardInterrupt) during the steps saves the steps done since the last checkpoint the same way
before it propagates, so the next run resumes from them.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from realtime.core.errors import PuppeteerError
from realtime.core.profile import GENERATOR_FILE, STATE_FILE
from realtime.core.text import count as counted
from realtime.tiers.neural.checkpoint import load_checkpoint, load_generator, save_checkpoint
from realtime.tiers.neural.model import NeuralConfig
from realtime.train.dataset import render_l1
from realtime.train.step import TrainConfig, make_models, make_optimizers, train_step


@dataclass
class TrainOptions:
    resolution: int = 128
    steps: int | None = None
    minutes: float | None = None
    batch: int = 4
    device: str = "cpu"
    threads: int | None = None
    checkpoint_every: int = 200
    checkpoint_minutes: float = 10.0    # and at least this often: 200 steps at 512² on a CPU are 1.5 h
    seed: int = 0
    resume: bool = True
    temporal: bool = True
    augment: float = 1.0            # strength of the random framing jitter (0: none), see _augment
    train_config: TrainConfig = field(default_factory=TrainConfig)
    # the pairs trained on (indices; None: all), and (clip, its frames held out) recorded with the
    # checkpoint: `dataset.held_out` keeps frames of the clip from training to test the generator on
    train_on: np.ndarray | None = None
    held_out: tuple[str, tuple] | None = None


def _batch(pairs, idx: np.ndarray, device, temporal: bool) -> dict:
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)
    b = {"render": t(pairs.render[idx]), "mask": t(pairs.mask[idx]), "target": t(pairs.target[idx]),
         "hint": t(np.repeat(pairs.hint, len(idx), axis=0))}
    if temporal:
        prev = pairs.prev[idx]
        if (prev >= 0).all():
            b.update(prev_render=t(pairs.render[prev]), prev_mask=t(pairs.mask[prev]),
                     prev_target=t(pairs.target[prev]), flow=t(pairs.flow[idx]),
                     visible=t(pairs.visible[idx]))
    return b


def _augment(batch: dict, rng: np.random.Generator, strength: float) -> dict:
    """The same random similarity transform (shift ≤ 4 % of the side, scale ±5 %, rotation
    ±3°, times `strength`) applied to each sample's render, mask and target: the clip shows the
    head at one distance and place, the live driver does not, and without it the network
    learns per-position corrections of those few frames (blotches elsewhere). Temporal batches
    are left alone (their flow would have to follow the jitter)."""
    b = batch["render"].shape[0]
    shift = rng.uniform(-0.08, 0.08, (b, 2)) * strength      # affine_grid units: side = 2
    scale = 1.0 + rng.uniform(-0.05, 0.05, b) * strength
    angle = np.deg2rad(rng.uniform(-3.0, 3.0, b) * strength)
    theta = np.zeros((b, 2, 3), np.float32)
    theta[:, 0, 0] = theta[:, 1, 1] = np.cos(angle) / scale
    theta[:, 0, 1] = -np.sin(angle) / scale
    theta[:, 1, 0] = np.sin(angle) / scale
    theta[:, :, 2] = shift
    ref = batch["render"]
    grid = F.affine_grid(torch.from_numpy(theta).to(ref.device, ref.dtype), list(ref.shape),
                         align_corners=False)
    out = dict(batch)
    for k in ("render", "mask", "target"):
        out[k] = F.grid_sample(batch[k], grid, mode="bilinear", padding_mode="border",
                               align_corners=False)
    return out


class TrainingDiverged(PuppeteerError):
    """A step's losses, or the models' weights, are NaN or infinite: the training diverged, and
    nothing from that step on is saved (it would replace the last good checkpoint)."""


def _diverged(step: int, saved: int, what: str) -> TrainingDiverged:
    kept = (f"the checkpoint of step {saved} is kept (`train` resumes from it, drawing the same batches, "
            f"so it may diverge there again; --restart starts afresh)" if saved
            else "nothing was saved; train again (--restart starts afresh)")
    return TrainingDiverged(f"the training diverged at step {step}: {what} NaN or infinity; {kept}")


def _finite_weights(models: dict) -> bool:
    return all(bool(torch.isfinite(p).all()) for m in models.values() for p in m.parameters())


def _replace_all(files: dict[str, Path], out_dir: Path) -> None:
    for name, tmp in files.items():
        os.replace(tmp, out_dir / name)


def _resumed_rng(state, seed: int, step: int) -> np.random.Generator:
    """numpy's generator as the checkpoint left it; one seeded by (seed, step) for a checkpoint
    written before it kept that state (or with a state this numpy does not take)."""
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = state
        return rng
    except (TypeError, ValueError, KeyError, OverflowError):
        return np.random.default_rng([seed, step])


def _resumed_history(history) -> list[dict]:
    """The loss history a checkpoint's extra holds: its entries that are {"step": int, loss name:
    number, ...}. Others (a damaged or hand-made file) are left out: they only feed the plot, and
    one of them made the finished run's `draw_losses` fail with a traceback."""
    if not isinstance(history, list):
        return []
    return [h for h in history if isinstance(h, dict) and type(h.get("step")) is int
            and all(isinstance(k, str) and type(v) in (int, float) for k, v in h.items())]


#: The loss history keeps at most about this many steps (`_thinned`); the checkpoint carries it.
HISTORY_CAP = 5000


def _thinned(history: list[dict], stride: int, cap: int) -> tuple[list[dict], int]:
    """(`history` thinned, its new stride) where it holds more than `cap` steps: its last tenth of
    `cap` stays whole, the steps before it are kept only every `stride`-th pair of steps (a pair:
    the odd step and the temporal one after it, so both kinds stay), the stride (kept with the
    history: each thinning keeps the steps the last one kept) doubled until they fill at most half
    the rest. Before: the checkpoint kept the last 5000 steps, and `losses.png`
    of a long run silently began at its step 5000-from-the-end."""
    if len(history) <= cap:
        return history, stride
    recent = max(1, cap // 10)
    old, new = history[:-recent], history[-recent:]
    while True:
        kept = [h for h in old if ((h["step"] - 1) // 2) % stride == 0]
        if len(kept) <= (cap - recent) // 2 or stride >= 1 << 40:
            return kept + new, stride
        stride *= 2


def _held_out_record(extra: dict | None, step: int) -> dict:
    """{clip: its frames held out, or None where they were trained on} of a checkpoint's extra;
    a checkpoint of steps written before frames were held out: {"*": None} (any clip's)."""
    record = (extra or {}).get("held_out")
    if not isinstance(record, dict):
        return {"*": None} if step else {}
    return {k: (None if v is None else tuple(v)) for k, v in record.items()
            if isinstance(k, str) and (v is None or (isinstance(v, list) and all(type(f) is int for f in v)))}


def remove_partials(out_dir: Path) -> list[str]:
    """Remove what a killed run left of its writes in `out_dir` (a checkpoint's or a plot's
    temporary file: a kill no signal handler sees leaves them until the next save, and the plots'
    until the next finished run); returns their names. Run under the profile's writer lock."""
    names = [f".{n}.partial{tail}" for n in (STATE_FILE, GENERATOR_FILE) for tail in ("", ".tmp")]
    names += [f".{n}.partial.png" for n in ("losses", "samples")]
    gone = []
    for name in names:
        path = out_dir / name
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.unlink()
                gone.append(name)
    return gone


def train(pairs, out_dir: Path, options: TrainOptions, progress=None, on_checkpoint=None,
          commit=None) -> dict:
    """Train on `pairs` (dataset.PairSet); checkpoints go to out_dir: written to temporary files
    and handed to `commit({file name: temporary path})` (default: renamed into `out_dir`), then
    `on_checkpoint(step)` is called. Returns a summary. Interrupted (KeyboardInterrupt) with
    steps done since the last checkpoint, it saves them as one (a step cut short may have moved
    part of the models: harmless to training) and re-raises."""
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    # One thread unless asked: on 2 cores a second torch thread waits on a busy core (3-17 s a
    # step measured vs 0.43 s on one), and numba's OpenMP pool resets the count behind torch's
    # back, so it is re-asserted before every step.
    threads = options.threads or 1
    device = torch.device(options.device)
    cfg = NeuralConfig.for_resolution(options.resolution)
    models = make_models(cfg, device)
    opts = make_optimizers(models, options.train_config)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = out_dir / STATE_FILE
    step = 0
    history: list[dict] = []
    stride = [1]            # the history's thinning (`_thinned`)
    extra: dict = {}
    if options.resume and state.is_file():
        # the random streams go on where they stopped (torch's in the checkpoint, numpy's in its
        # extra): a resumed run draws the batches an uninterrupted one would have, not the first
        # run's again
        meta = load_checkpoint(state, models, opts, device=device, restore_rng=True)
        step = int(meta["step"])
        extra = meta.get("extra") if isinstance(meta.get("extra"), dict) else {}
        history = _resumed_history(extra.get("history"))
        stride[0] = s if type(s := extra.get("history_stride")) is int and 1 <= s <= 1 << 40 else 1
        rng = _resumed_rng(extra.get("numpy_rng"), options.seed, step)
    # the frames held out: whether the steps resumed trained on them (then testing on them says
    # nothing), and what the checkpoints record (for the next run's test)
    record = _held_out_record(extra, step)
    unseen = True
    if options.held_out is not None:
        clip, frames = options.held_out[0], tuple(options.held_out[1])
        unseen = "*" not in record and record.get(clip, frames) == frames and bool(frames)
        record[clip] = frames if unseen else None
    else:                   # trained on every pair of a clip not named: any clip's held-out frames
        record = {"*": None}
    pool_all = np.arange(len(pairs)) if options.train_on is None else np.asarray(options.train_on, np.int64)
    allowed = np.zeros(len(pairs), bool)
    allowed[pool_all] = True
    # the temporal batches too: a pair and its previous frame both trained on
    with_prev = np.flatnonzero((pairs.prev >= 0) & allowed & allowed[np.maximum(pairs.prev, 0)])
    deadline = None if options.minutes is None else time.monotonic() + 60.0 * options.minutes
    target_steps = None if options.steps is None else step + options.steps
    t0 = time.monotonic()
    saved = [step]          # the step of the last checkpoint (or of the one resumed)
    saved_at_start = step   # 0, or the step resumed from: `steps` - this are this run's
    saved_at = [t0]         # when the last checkpoint was written (or the run began)

    def save():
        if not _finite_weights(models):     # a step that diverged: the last good checkpoint stays
            raise _diverged(step, saved[0], "the models' weights hold")
        extra = {"history": history, "history_stride": stride[0], "frames": int(len(pairs)),
                 "numpy_rng": rng.bit_generator.state,
                 "held_out": {k: None if v is None else list(v) for k, v in record.items()}}
        tmp = {name: out_dir / f".{name}.partial" for name in (STATE_FILE, GENERATOR_FILE)}
        try:
            save_checkpoint(tmp[STATE_FILE], models, opts, step=step, config=cfg,
                            train_config=options.train_config, extra=extra)
            save_checkpoint(tmp[GENERATOR_FILE], {"G": models["G"]}, step=step, config=cfg,
                            save_rng=False)
            (commit or (lambda files: _replace_all(files, out_dir)))(tmp)
        finally:
            for path in tmp.values():      # what a Ctrl-C inside save_checkpoint leaves
                for leftover in (path, path.with_name(path.name + ".tmp")):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
        saved[0] = step
        saved_at[0] = time.monotonic()
        if on_checkpoint is not None:
            on_checkpoint(step)

    streams = None          # set while a step runs: the random streams before its draws
    try:
        while True:
            if target_steps is not None and step >= target_steps:
                break
            # at least one step whatever the minutes: a deadline passed before the first would
            # write an untrained generator (over the last one, with --restart) as "trained 0 steps"
            if deadline is not None and step > saved_at_start and time.monotonic() >= deadline:
                break
            # the random streams before this step's draws: a step cut short by Ctrl-C is saved
            # undone, so the resumed run draws its batch again (as an uninterrupted run would)
            streams = (rng.bit_generator.state, torch.get_rng_state())
            temporal = options.temporal and len(with_prev) >= options.batch and step % 2 == 1
            pool = with_prev if temporal else pool_all
            idx = rng.choice(pool, size=min(options.batch, len(pool)), replace=False)
            torch.set_num_threads(threads)
            batch = _batch(pairs, idx, device, temporal)
            if options.augment > 0 and "flow" not in batch:
                batch = _augment(batch, rng, options.augment)
            losses = train_step(models, opts, batch, options.train_config)
            bad = [k for k, v in losses.items() if not math.isfinite(float(v))]
            if bad:     # (before: trained on, and the next checkpoint replaced the last good one)
                what = f"its {', '.join(bad)} {'loss is' if len(bad) == 1 else 'losses are'}"
                raise _diverged(step + 1, saved[0], what)
            step += 1
            streams = None
            history.append({"step": step, **{k: round(float(v), 5) for k, v in losses.items()}})
            if len(history) > HISTORY_CAP:
                history[:], stride[0] = _thinned(history, stride[0], HISTORY_CAP)
            if progress is not None:
                progress(step, losses)
            # every checkpoint_every steps, and every checkpoint_minutes (before: 200 steps only, so
            # a kill no signal handler sees, the OOM killer's, lost up to 1.5 h of a 512² CPU run)
            if (step % options.checkpoint_every == 0
                    or time.monotonic() - saved_at[0] >= 60.0 * options.checkpoint_minutes):
                save()
        # the last save, in the try: a Ctrl-C while it writes saves again (before: outside, and
        # the run's steps since its last checkpoint were lost)
        save()
    except KeyboardInterrupt:
        if step > saved[0]:
            if streams is not None:
                rng.bit_generator.state = streams[0]
                torch.set_rng_state(streams[1])
            save()
        raise
    return {"steps": step, "resumed_at": saved_at_start, "seconds": time.monotonic() - t0, "history": history,
            "config": cfg.to_dict(), "held_out_unseen": unseen}


SAMPLE_ROWS = ("render", "output", "real", "|output-real| x4", "|render-real| x4")


@torch.inference_mode()
def samples(pairs, generator_path: Path, count: int = 4) -> np.ndarray:
    """(H, W, 3) uint8 RGB image grid of `count` evenly spaced frames, one row each of
    `SAMPLE_ROWS`, each named in a column on the left: the atlas render the generator corrects,
    its output, the real frame, and the output's and the render's differences to the real
    frame (amplified 4×: a few steps change the output too little to see side by side)."""
    import cv2  # noqa: PLC0415 - only for the labels

    g = load_generator(generator_path)
    idx = np.linspace(0, len(pairs) - 1, count).round().astype(int)
    r = torch.from_numpy(pairs.render[idx])
    y = g(r, torch.from_numpy(pairs.mask[idx]), torch.from_numpy(np.repeat(pairs.hint, len(idx), 0))).numpy()
    real = pairs.target[idx]
    rows = [pairs.render[idx], y, real, 4.0 * np.abs(y - real) - 1.0, 4.0 * np.abs(pairs.render[idx] - real) - 1.0]
    to_img = lambda a: np.clip((np.concatenate(list(np.moveaxis(a, 1, 3)), axis=1) + 1) * 127.5, 0, 255)
    grid = np.concatenate([to_img(x) for x in rows], axis=0).astype(np.uint8)
    side = pairs.render.shape[-1]
    labels = np.full((grid.shape[0], 150, 3), 255, np.uint8)
    for i, name in enumerate(SAMPLE_ROWS):
        cv2.putText(labels, name, (6, i * side + side // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return np.ascontiguousarray(np.concatenate([labels, grid], axis=1))


@torch.inference_mode()
def face_l1(pairs, generator_path: Path, count: int = 64, chunk: int = 8,
            index: np.ndarray | None = None) -> tuple[float, float]:
    """(the base render's, the generator's output's) mean absolute difference to the real frame
    over the face mask, on `count` evenly spaced pairs of `index` (default: all), in [-1, 1]
    image units: whether the trained generator improves on the render it corrects (`run.py
    train` makes the neural tier the profile's default only where it does so on frames it did
    not train on, `dataset.held_out`)."""
    g = load_generator(generator_path)
    index = np.arange(len(pairs)) if index is None else np.asarray(index, np.int64)
    if not len(index):
        raise PuppeteerError("no pair to measure the face L1 on")
    idx = index[np.unique(np.linspace(0, len(index) - 1, min(count, len(index))).round().astype(int))]
    base = render_l1(pairs, idx)
    if not base == base:    # NaN: build_pairs refuses frames without a face in the crop, never so
        raise PuppeteerError("the face mask is empty in every training pair: no face lies in the "
                             "profile's crop, so there is no face L1 to measure")
    err, weight = 0.0, 0.0
    for lo in range(0, len(idx), chunk):
        part = idx[lo:lo + chunk]
        r, m, t = (torch.from_numpy(a[part]) for a in (pairs.render, pairs.mask, pairs.target))
        y = g(r, m, torch.from_numpy(np.repeat(pairs.hint, len(part), 0)))
        err += float((torch.abs(y - t) * m).sum())
        weight += 3.0 * float(m.sum())
    return float(base), err / weight


def loss_curves(history: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{loss: (steps, moving average)} of every loss any step logged (in first-seen order: the
    temporal loss runs on every other step only, so the first step has none), each averaged
    over the steps that logged it (a window of 1/100 of them); losses logged fewer than twice
    are left out."""
    steps = np.array([h["step"] for h in history])
    curves = {}
    for k in dict.fromkeys(k for h in history for k in h if k != "step"):
        v = np.array([h.get(k, np.nan) for h in history], np.float64)
        logged = np.isfinite(v)
        if logged.sum() < 2:
            continue
        w = max(1, int(logged.sum()) // 100)
        curves[k] = (steps[logged][w - 1:], np.convolve(v[logged], np.ones(w) / w, mode="valid"))
    return curves


#: Curves of fewer points than this are drawn with a marker on each.
FEW_POINTS = 20


def draw_losses(history: list[dict]) -> bytes:
    """The loss plot as PNG, drawn in memory (it writes no file: the caller writes it, so that an
    error while drawing, such as a font matplotlib cannot open, is never told as a refused
    write): the losses' moving averages against the step (`loss_curves`), each point marked
    where there are few; with too few steps for a curve (every loss logged once at most), each
    loss's logged values as points, and the plot says so; with no step, a plot that says so."""
    from matplotlib import colormaps  # noqa: PLC0415 - matplotlib: heavy, only for the plot
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - matplotlib: heavy, only for the plot
    from matplotlib.figure import Figure  # noqa: PLC0415 - matplotlib: heavy, only for the plot
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 - matplotlib: heavy, only for the plot

    fig = Figure(figsize=(11, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    tab20 = colormaps["tab20"].colors            # 11 losses: more than the default 10 colours
    ax.set_prop_cycle(color=list(tab20[0::2]) + list(tab20[1::2]))
    curves = loss_curves(history)
    steps = sorted({int(h["step"]) for h in history})
    note = None
    if len(steps) < FEW_POINTS:     # a few steps: a loss logged once is a point, not left out
        logged = {k: [(h["step"], h[k]) for h in history if np.isfinite(h.get(k, np.nan))]
                  for k in dict.fromkeys(k for h in history for k in h if k != "step")}
        curves = {k: curves.get(k) or tuple(np.array(v, np.float64) for v in zip(*pts))
                  for k, pts in logged.items() if pts}
        if all(len(x) < 2 for x, _ in curves.values()):
            what = f"only {counted(len(steps), 'step')}" if steps else "no step"
            note = (f"{what} logged: too few for the losses' curves"
                    + (" (each loss's value is a point)" if curves else "") + "; train on for curves")
    for k, (x, y) in curves.items():
        few = len(x) < FEW_POINTS
        ax.plot(x, y, label=k, marker="o" if few else None, markersize=5 if len(x) < 2 else 3,
                linestyle="-" if len(x) > 1 else "none")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(steps) == 1:     # one step: centre it rather than at the edge of a unit-wide axis
        ax.set_xlim(steps[0] - 1, steps[0] + 1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss" if note else "loss (moving average)")
    ax.set_title("neural tier training")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    if note:            # under the axes: inside them it could hide a point
        fig.text(0.5, 0.015, note, ha="center", va="bottom", fontsize=10,
                 bbox={"boxstyle": "round", "facecolor": "lightyellow", "edgecolor": "0.6"})
    fig.tight_layout(rect=(0, 0.07, 1, 1) if note else None)
    png = io.BytesIO()
    fig.savefig(png, format="png")
    return png.getvalue()


def summary_json(result: dict) -> str:
    last = result["history"][-1] if result["history"] else {}
    return json.dumps({"steps": result["steps"], "seconds": round(result["seconds"], 1), "last": last})
