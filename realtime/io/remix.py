"""Remix (UniFaceGAN's disentangled control, DESIGN §5b): the face state is (pose, expression), and
each part may come from its own source; the main driver gives the rest.

    --pose-from SOURCE / --expression-from SOURCE, SOURCE one of
        still            the neutral state (a steady head; a relaxed face)
        script           the scripted performance (`realtime.io.performance`), looped
        0, 1, ...        a camera
        CLIP | FOLDER    a clip or a folder of images

A secondary camera or clip has its own grabber, tracker and estimator (its own neutral
calibration). Live (``realtime``) it runs in its own thread and the newest state wins; offline
(a file driver processed frame by frame) it advances one frame per main frame, so the result
does not depend on the machine's speed, and holds its last state when it ends before the main
driver.

Combining, per main frame (`RemixStage`, after the estimate stage):
- pose from a source: its rotation; in reenact mode also its translation and scale; in swap
  mode the face must stay on the main driver's head, so position and size stay the main
  driver's and only the rotation is taken;
- expression from a source: its expression residual, rescaled region by region from the
  source's face to the main driver's (`realtime.mesh.fuse.retarget_gains`), so that the fuse
  stage's retargeting (profile over main driver) nets out to profile over source, with the
  source's own neutral lip gap under it (`realtime.mesh.fuse.lip_gap_offset`: the fuse stage
  puts the main driver's there);
- a tracked face's expression put with another source's pose loses the head turn it carries
  (`realtime.face.parallax.untwisted`): its own turns would otherwise turn the remixed head.
  The scripted performance's and the still state's expressions are synthetic and kept as they are.
"""
from __future__ import annotations

import shlex
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from realtime.core.errors import PuppeteerError
from realtime.core.frame import Frame
from realtime.core.paths import IMAGE_SUFFIXES
from realtime.core.text import count, printable
from realtime.face.estimate import Estimator, EstimatorConfig, set_teeth
from realtime.face.parallax import untwisted
from realtime.face.state import FaceState
from realtime.face.teeth import TeethGauge
from realtime.face.track import Tracker, quiet_native_stderr
from realtime.io.capture import CaptureError, input_paths, open_source
from realtime.io.grabber import Grabber
from realtime.io.performance import ScriptedSource
from realtime.io.source import CaptureTimeout
from realtime.mesh.fuse import lip_gap_offset, retarget_gains

__all__ = ["RemixError", "KEYWORDS", "both_remixed", "run_inputs", "StateSource", "StillState", "ScriptState",
           "TrackedState", "RemixStage", "open_state_source", "combine"]

KEYWORDS = ("still", "script")
SCRIPT_SECONDS = 10.0


def run_inputs(specs: Iterable[tuple[str | None, str]]) -> list[tuple[Path, str]]:
    """`input_paths` of every (spec, role) given: a run's driver and remix sources; a spec that is
    None or a remix keyword (`KEYWORDS`: "still", "script") reads no file."""
    return [found for spec, role in specs
            if spec is not None and str(spec).strip() not in KEYWORDS   # as open_state_source
            for found in input_paths(spec, role)]


def both_remixed(pose_from: str, expression_from: str, driver_advice: bool = True) -> str:
    """Why a reenactment cannot take both its pose and its expression from remix sources (the
    driver would give nothing), with what to do: drop one; with `driver_advice`, a clip or
    camera among them can be the driver itself (not a keyword, `KEYWORDS`, nor a picture);
    --mode swap takes both."""
    movable = [(flag, spec) for flag, spec in (("--pose-from", pose_from), ("--expression-from", expression_from))
               if str(spec).strip() not in KEYWORDS and Path(str(spec)).suffix.lower() not in IMAGE_SUFFIXES]
    advice = "drop one of them (the driver gives that part)"
    if movable and driver_advice:
        flag, spec = movable[0]
        shown = printable(shlex.quote(str(spec)))
        advice += f", or drive with {shown} (--driver {shown}, without {flag})"
    return (f"--pose-from {printable(pose_from)} and --expression-from {printable(expression_from)} leave the "
            f"driver nothing to give: {advice}; --mode swap takes both (there the driver gives the scene)")


class RemixError(PuppeteerError):
    """A remix source that cannot be opened."""


class StateSource(ABC):
    """One remix source: `state(frame, t)` is its face state for the main frame (t: the engine's
    clock); `neutral` its canonical neutral shape when known (None: no retargeting needed)."""

    neutral: np.ndarray | None = None
    tracked: bool = False     # its expression is a tracked face's (and so carries its turns)

    def start(self) -> None:  # noqa: B027 - optional hook, most sources need no start
        pass

    @abstractmethod
    def state(self, frame: Frame, t: float) -> FaceState:
        """The source's face state for the main frame at the engine's time `t`."""

    def close(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing
        pass


class StillState(StateSource):
    """The neutral state: no rotation, no displacement, no expression."""

    def state(self, frame: Frame, t: float) -> FaceState:
        return FaceState.neutral()


class ScriptState(StateSource):
    """The scripted performance on the profile's own neutral (`neutral`), looped every
    `duration_s`; by the engine's clock (media time offline, wall time live)."""

    def __init__(self, neutral: np.ndarray, duration_s: float = SCRIPT_SECONDS):
        self.neutral = np.asarray(neutral, np.float64)
        self.source = ScriptedSource(self.neutral, frames=2, duration_s=duration_s)
        self.duration_s = float(duration_s)
        self._t0: float | None = None

    def state(self, frame: Frame, t: float) -> FaceState:
        if self._t0 is None:
            self._t0 = t
        return self.source.state_at((t - self._t0) % self.duration_s)


class TrackedState(StateSource):
    """A camera or a clip, tracked and estimated on its own (see the module docstring)."""

    tracked = True

    def __init__(self, source, realtime: bool, tracker=None, estimator: Estimator | None = None,
                 max_frames: int | None = None, rate: float | None = None):
        self.source = source
        # live: track at most this many frames a second (the main loop's rate: only the newest
        # state is used; a 120 fps remix clip tracked whole took the CPU the main loop needed)
        self.rate = rate
        self.realtime = bool(realtime) or bool(getattr(source, "is_live", False))
        self.fps = float(getattr(source, "fps", 30.0) or 30.0)
        self.grabber = Grabber(source, realtime=self.realtime)
        self.tracker = tracker
        self.estimator = estimator if estimator is not None else Estimator(EstimatorConfig())
        self.teeth = TeethGauge()
        self._latest = FaceState.neutral(present=False)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._ended = False
        self.error: BaseException | None = None
        #: why it stopped giving states before its end (an undecodable picture in a folder): its
        #: last state is held for the rest of the run, and the run's summary says so
        self.broken: str | None = None
        #: the main driver's frames that came after it ended (its last state held for them)
        self.held = 0
        self.label = "the remix source"       # how the run's summary names it (`open_state_source`)
        self.frames = 0                       # frames it gave, those where the tracker saw a face,
        self.seen = 0                         # and those whose face the estimator followed (the
        self.faces = 0                        # ones that gave a pose or an expression)

    @property
    def neutral(self) -> np.ndarray | None:   # type: ignore[override]
        n = self.estimator.neutral
        return None if n is None else n.shape

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.grabber.start()
        if self.realtime:
            self._thread = threading.Thread(target=self._run, name="remix", daemon=True)
            self._thread.start()

    def _track(self, f: Frame, t: float) -> FaceState:
        if f.state is not None:
            return f.state
        if f.tracked:                  # a tracked clip: its frames bring their landmarks
            lm = f.landmarks
        else:
            if self.tracker is None:
                with quiet_native_stderr():
                    self.tracker = Tracker(static=False)
            lm = self.tracker(f.image) if f.image is not None else None
        state = self.estimator(lm, t)
        self.frames += 1
        self.seen += lm is not None
        self.faces += bool(state.present)
        set_teeth(state, self.teeth, f, lm, t)
        return state

    def _run(self) -> None:
        period = 1.0 / self.rate if self.rate else 0.0
        next_at = time.perf_counter()
        try:
            while not self._stop.is_set():
                wait = next_at - time.perf_counter()      # the frames meanwhile replace one another
                if wait > 0.0 and self._stop.wait(wait):
                    return
                next_at = max(next_at + period, time.perf_counter())
                try:
                    f = self.grabber.get(timeout=0.5)
                except CaptureTimeout:     # a camera that paused (the thread used to end here)
                    continue
                if f is None:
                    self._ended = True
                    return
                s = self._track(f, f.t_capture)
                with self._lock:
                    self._latest = s
        except CaptureError as exc:    # a frame it cannot read: the rest of the run holds the last state
            self.broken = str(exc)
        except BaseException as exc:   # noqa: BLE001 - reported by state()
            self.error = exc

    def state(self, frame: Frame, t: float) -> FaceState:
        if not self._started:
            self.start()
        if self.error is not None:
            raise self.error
        if self.realtime:
            self.held += self._ended
            with self._lock:
                return self._latest
        if not self._ended:
            try:
                f = self.grabber.get()
            except CaptureError as exc:    # as in `_run`: a second input's bad frame ends it, not the run
                self.broken, f = str(exc), None
            if f is None:
                self._ended = True
            else:
                self._latest = self._track(f, f.index / self.fps)
        self.held += self._ended
        return self._latest

    def close(self) -> None:
        self._stop.set()
        self.grabber.stop()
        if self._thread is not None:
            self._thread.join(2.0)
        if self.tracker is not None:
            self.tracker.close()
            self.tracker = None


def open_state_source(spec: str, *, profile_neutral: np.ndarray, realtime: bool,
                      fps: float | None = None, what: str = "--pose-from",
                      rate: float | None = None) -> StateSource:
    """The remix source `spec` names (see the module docstring); RemixError when it cannot be
    opened. `rate`: live, the most frames a second it tracks (`TrackedState`)."""
    text = str(spec).strip()
    if text == "still":
        return StillState()
    if text == "script":
        return ScriptState(profile_neutral)
    try:
        source = open_source(text, fps=fps)
    except CaptureError as exc:
        raise RemixError(f"{what} {spec!r}: {exc} (or use one of: {', '.join(KEYWORDS)})") from None
    if getattr(source, "frame_count", None) == 1:      # a picture, a folder of one, a one-frame clip
        source.close()
        raise RemixError(f"{what} {spec!r} is a single frame (a picture, or a clip or folder of one), "
                         f"which has no motion to give (its pose and expression are its own neutral, the "
                         f"same as `still`): use a clip, a camera, a folder of a performance's frames, "
                         f"or one of: {', '.join(KEYWORDS)}")
    tracked = TrackedState(source, realtime=realtime, rate=rate)
    tracked.label = f"{what} {printable(text)}"
    return tracked


def combine(main: FaceState, pose: FaceState | None, expression: FaceState | None, *,
            keep_placement: bool = False, expression_scale: np.ndarray | None = None,
            untwist: bool = False, expression_offset: np.ndarray | None = None) -> FaceState:
    """The remixed state: `main` with its pose from `pose` (rotation; translation and scale too
    unless `keep_placement`) and its expression from `expression` (times `expression_scale`,
    (478, 1), when given, plus `expression_offset` (478, 3), when given: the lips' gap of the
    source's neutral, `realtime.mesh.fuse.lip_gap_offset`). With `untwist` the expression loses
    its turn-like part (`realtime.face.parallax.untwisted`) before it is scaled: the part its
    own face's turn left in it; the teeth its mouth shows go with it. `present` stays the main
    driver's."""
    out = FaceState(rotation=main.rotation, translation=main.translation, scale=main.scale,
                    expression=main.expression, present=main.present,
                    teeth=expression.teeth if expression is not None else main.teeth,
                    tongue=expression.tongue if expression is not None else main.tongue)
    if pose is not None:
        out.rotation = pose.rotation
        if not keep_placement:
            out.translation = pose.translation
            out.scale = pose.scale
    e = expression.expression if expression is not None else main.expression
    if untwist:
        e = untwisted(e)
    if expression is not None and expression_scale is not None:
        e = e * expression_scale
    if expression is not None and expression_offset is not None:
        e = e + expression_offset
    out.expression = e
    return out


class RemixStage:
    """Frame.state → Frame.state with the pose and/or the expression of other sources (see the
    module docstring). `main_neutral()` gives the main driver's calibrated neutral (an object with
    `.shape`, or None); `clock(frame)` the engine's time."""

    name = "remix"

    def __init__(self, pose: StateSource | None = None, expression: StateSource | None = None,
                 main_neutral=lambda: None, clock=lambda f: time.perf_counter(),
                 keep_placement: bool = False):
        self.pose, self.expression = pose, expression
        self.main_neutral = main_neutral
        self.clock = clock
        self.keep_placement = keep_placement
        self._scale_key: tuple | None = None
        self._scale: np.ndarray | None = None
        self._offset: np.ndarray | None = None     # `lip_gap_offset`, with _scale
        self.last: dict = {}     # the sources' states of the last frame ("pose", "expression")

    def sources(self) -> list[StateSource]:
        return [s for s in (self.pose, self.expression) if s is not None]

    def _expression_scale(self) -> np.ndarray | None:
        main = self.main_neutral()
        src = self.expression.neutral if self.expression is not None else None
        if main is None or src is None:
            return None
        key = (id(main), id(src))
        if key != self._scale_key:
            self._scale_key = key
            m, s = np.asarray(main.shape, np.float64), np.asarray(src, np.float64)
            self._scale = retarget_gains(m, s)
            self._offset = lip_gap_offset(m, s, self._scale)
        return self._scale

    def _untwist(self) -> bool:
        """Whether the combined expression is a tracked face's put with another source's pose
        (`--pose-from CLIP --expression-from CLIP` with one clip counts too: two sources)."""
        if self.expression is not None:
            return self.expression.tracked
        return self.pose is not None           # the main driver's expression, another pose

    def __call__(self, frame: Frame) -> None:
        if frame.state is None or frame.index < 0:     # warm-up frames: nothing to mix
            return
        t = self.clock(frame)
        pose = self.pose.state(frame, t) if self.pose is not None else None
        expr = self.expression.state(frame, t) if self.expression is not None else None
        self.last = {"pose": pose, "expression": expr}
        scale = self._expression_scale() if expr is not None else None
        frame.state = combine(frame.state, pose, expr, keep_placement=self.keep_placement,
                              expression_scale=scale, untwist=self._untwist(),
                              expression_offset=self._offset if scale is not None else None)

    def faces_missed(self, quiet: float) -> list[str]:
        """A line for each tracked source whose face was missing from more than ``1 − quiet`` of
        the frames it gave (none else): a remix clip or camera with no face gives nothing —
        the neutral state stands in — and the run would otherwise look normal."""
        lines = []
        for src in self.sources():
            if isinstance(src, TrackedState) and src.broken is not None:
                lines.append(f"{src.label}: stopped after {count(src.frames, 'frame')}: {src.broken}; its last "
                             f"state was held for the rest of the run")
            elif isinstance(src, TrackedState) and src.held:
                lines.append(f"{src.label}: ended before the driver ({count(src.frames, 'frame')} tracked): its "
                             f"last state was held for the rest of the run ({count(src.held, 'frame')} with a face)")
            if not isinstance(src, TrackedState) or src.frames == 0 or src.faces >= quiet * src.frames:
                continue
            frames = f"{src.frames} frame{'s' if src.frames != 1 else ''}"
            if src.faces == 0:
                why = (f"no face followed in any of its {frames} (the tracker saw one in {src.seen}; a "
                       f"face is followed once it is seen in one place a few frames running)"
                       if src.seen else f"no face found in any of its {frames}")
                lines.append(f"{src.label}: {why}: it gave nothing (the neutral state stood in, as with "
                             f"`still`)")
            else:
                lines.append(f"{src.label}: face followed in {src.faces} of its {frames}")
        return lines

    def close(self) -> None:
        for s in self.sources():
            s.close()
