"""The loop: capture → track → estimate → [remix] → fuse → render → generate → smooth → composite
→ disclose → sink.

`Engine` wires the stages for one avatar profile, in that order: `Engine._reenact_stages`
(reenact, the default) or `realtime.engine.swap.build_swap` (swap: its own track, fuse and
composite, plus attributes and glasses before the composite; see `realtime.swap`). A remix stage
(`--pose-from`, `--expression-from`) goes in after estimate, and the disclosure stage is always
last. `run` drives frames from a Grabber through the engine into a (threaded) sink and measures
every frame. Each stage reads some Frame fields and writes others (DESIGN §2).
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import threading
import time
from dataclasses import dataclass, field

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from kernels import work_stealing
from realtime.core import stop as user_stop
from realtime.core.context import open_device
from realtime.core.errors import ProfileError, PuppeteerError
from realtime.core.frame import Frame
from realtime.core.profile import GENERATOR_PATH, ProfileLike, cli_name
from realtime.core.text import count
from realtime.engine.governor import SCALABLE_STAGES, RenderGovernor, ladder
from realtime.engine.sizing import (
    MAX_RENDER_SIZE,
    RENDER_MULTIPLE,
    SHARPEN,
    choose_render_size,
    crop_side_in_output,
    texture_sharpen,
)
from realtime.engine.swap import build_swap
from realtime.face.estimate import EstimateStage, Estimator, EstimatorConfig
from realtime.face.state import FaceState
from realtime.face.track import Tracker, TrackStage, quiet_native_stderr
from realtime.image.composite import CompositeStage
from realtime.image.crop import square_crop
from realtime.image.disclose import DisclosureOptions, DisclosureStage
from realtime.image.render import RenderStage
from realtime.image.smooth import SmoothStage
from realtime.io.audio.report import AudioReport
from realtime.io.grabber import CaptureTimeout, Grabber
from realtime.io.remix import RemixStage, open_state_source
from realtime.mesh import rig as rig_mod
from realtime.mesh.fuse import FuseConfig, FuseStage, Recombiner
from realtime.mesh.gains import GAIN_RANGE, REGIONS, SWAP_OWN, hotkey_note, profile_gains
from realtime.mesh.scaled import ScaledProfile
from realtime.tiers.registry import GenerateStage, make_generator

#: Rows over `history` before the oldest are dropped: a bounded list, trimmed in chunks (the rows
#: never reach twice the history: Python keeps freed memory, so the peak is what a session holds).
HISTORY_SLACK = 300
#: Per-frame rows a live session keeps for its summary: the last five minutes at 30 fps.
LIVE_HISTORY = 9000
PENDING_MAX = 256  # rows awaiting a sink write before the oldest are given up as dropped
#: The run summary says in how many frames the driver's face was found when it was in fewer than
#: this share (a real-time run's first frame often comes before the tracker has the face).
FACE_FOUND_QUIET = 0.98
#: Frames the overlay shows what a hotkey that changes nothing says (two seconds at 30 fps).
HOTKEY_NOTICE_FRAMES = 60
#: Frames the overlay says the governor brought the render size back to full (two seconds at 30 fps).
RENDER_BACK_FRAMES = 60
#: The label and mark are drawn for this size until a swap frame of another size arrives.
DEFAULT_SWAP_LABEL_SIZE = (640, 480)
PRESIZE_FRAMES = 6  # neutral frames timed before a governed engine's first frame (Engine._presize)
PRESIZE_TRACKS = 4  # tracker runs on the profile's photo timed then (the first one is dropped)
#: Real frames cost more than that warm-up predicts (a tracked face's expression, the capture's
#: decoding beside the loop): 1.1-1.3x on the 2-core Xeon (d10 -> s1, 400^2: predicted 26.7-29.5
#: ms, real frames' median 29-31 ms).
PRESIZE_MARGIN = 1.25
MODES = ("reenact", "swap")  # reenact: the avatar in its own frame; swap: the driver's frame, face replaced


class ModeError(PuppeteerError, ValueError):
    """An engine mode that does not exist."""


def set_kernel_threads(n: int | None) -> int:
    """Numba's thread count for the kernels, and one thread for the BLAS libraries (numpy's,
    scipy's and OpenCV's OpenBLAS). Default: on 2 cores both when numba runs on TBB (work
    stealing, `kernels._threading`: a busy second core costs little), else one (a statically split
    kernel that waits for a descheduled thread costs a scheduler time slice); half the cores
    beyond 2. The frame's matrix products are small, and an idle OpenBLAS worker spins
    (sched_yield) after each: measured on the 2-core Xeon during a swap run, one burned 85 % of
    the second core."""
    threadpool_limits(1, user_api="blas")
    cores = os.cpu_count() or 1
    if n is None:
        if cores <= 2:
            n = cores if work_stealing() else 1
        else:
            n = min(4, cores // 2)
    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    numba.set_num_threads(n)
    return n


def is_held(frame: Frame) -> bool:
    """A frame the loop emitted while the source delivered nothing (`Grabber.held_frame`): a
    capture index but no image, landmarks or state (warm-up frames have negative indices,
    scripted ones a state)."""
    return frame.index >= 0 and frame.image is None and frame.landmarks is None and frame.state is None


@dataclass
class EngineOptions:
    tier: str | None = None                      # None: the profile's tier
    output_size: tuple[int, int] | None = None   # None: the profile image's size
    fps: float = 30.0                            # nominal rate (media clock offline)
    realtime: bool = False                       # filters on wall-clock time when True
    kernel_threads: int | None = None            # numba threads; None: set_kernel_threads decides
    smooth: bool = True                          # motion-compensated temporal smoothing
    device: str = "cpu"                          # "cpu" or "cuda": where render → composite run
    backend: str = "torch"                       # neural tier on CUDA: "torch" or "tensorrt"
    cuda_graphs: bool = True                     # neural tier on CUDA: replay torch from a graph
    render_size: int = 0                         # face crop side in px; 0: follow the output
    max_render_size: int = MAX_RENDER_SIZE       # cap of the automatic render size (CPU budget)
    adapt_render_size: bool = False              # realtime + automatic size: step it down while this
    #                                              machine's frames overrun (realtime.engine.governor)
    texture_sharpen: float = SHARPEN             # interpolation compensation where the paste-back
    #                                              magnifies (sizing.texture_sharpen); 0: none
    smile_folds: bool = True                     # reenact, warp tier: a smile shades the folds
    #                                              beside the nose and mouth (realtime.tiers.folds)
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    fuse: FuseConfig = field(default_factory=FuseConfig)
    mode: str = "reenact"                        # "reenact" or "swap" (realtime.engine.swap)
    even_grain: bool = True                      # swap: even a grainy or blotchy photo's face (realtime.swap.grain)
    fill_far_side: bool = True                   # swap: fill a turned photo's far side (realtime.swap.farside)
    lift_sockets: bool = True                    # swap: lift a photo's shaded eye sockets (realtime.swap.sockets)
    drop_fringe: bool = False                    # swap: a photo's fringe left out whole (realtime.swap.skin)
    keep_glasses: bool = True                    # swap: the driver's glasses rims kept in front (realtime.swap.glasses)
    hide_unswapped: bool = False                 # swap: a frame with no face swapped goes out blurred, not as it is
    pose_from: str | None = None                 # remix: the pose from another source (realtime.io.remix)
    expression_from: str | None = None           # remix: the expression from another source
    disclosure: DisclosureOptions = field(default_factory=DisclosureOptions)  # label + mark (CLI only)

    def disclosure_of_mode(self) -> DisclosureOptions:
        """`disclosure` as this mode draws it: the payload's mode, and the mode's label unless a
        text was given (a swap's says it is one)."""
        return dataclasses.replace(self.disclosure, mode=self.mode)


class Engine:
    """All the per-frame work for one profile, as an explicit list of stages.

    `device`: the device context (`realtime.core.context`) the image stages run on; default: the one
    `options.device` names (`DeviceUnavailable` when that device is not usable here). Stages
    that declare ``device_ready`` take the frame's arrays where they are; the others are
    wrapped by the context (`ctx.place`) so that they see host arrays.

    The face crop is drawn at `render_size` pixels a side (`realtime.engine.sizing`: it follows
    the crop box's size in the output). When that differs from the profile's own crop size,
    every stage from the rig on sees the profile through `view` (a `ScaledProfile`); otherwise
    `view` is the profile itself. Where the paste-back magnifies the crop, the texture is
    prefiltered against interpolation blur (`texture_sharpen`; 0 for a face small in the output).
    """

    def __init__(self, profile: ProfileLike, options: EngineOptions | None = None,
                 tracker: Tracker | None = None, device=None):
        self.options = options or EngineOptions()
        self.profile = profile
        self.device = ctx = device if device is not None else open_device(self.options.device)
        set_kernel_threads(self.options.kernel_threads)
        if self.options.mode not in MODES:
            raise ModeError(f"unknown mode {self.options.mode!r}; choose one of {', '.join(MODES)}")
        self.estimator = Estimator(self.options.estimator)
        # Seconds the filters' clock runs behind the capture time (realtime): the time this engine
        # sat paused while its stream went on elsewhere (a benchmark's interleaved blocks), so
        # its filters see its own frames as one stream, not a cut at every resume.
        self.paused_s = 0.0
        self._tracker = tracker
        self.gain_region = "eyes"     # the region the '+' / '-' hotkeys change
        self._hotkey_notice: list = []  # [text, frames left]: what a hotkey that did nothing says
        self.glasses = None           # the swap's GlassesStage (hotkey 'g'), set by build_swap
        self._last_output: np.ndarray | None = None   # the swap's last output, shown again for a held frame
        self._last_shown: tuple = (None, {})    # ... with its preview dots and notes
        if self.options.mode == "swap":
            # The swap draws the face at the profile's own crop size on the driver's frame
            # (realtime.swap.crop); sizing and the texture prefilter are the reenactment's.
            self.render_size, self.view, self.texture_sharpen = int(profile.crop_size), profile, 0.0
            self.stages = build_swap(self, profile, tracker)   # sets rig, recombiner, compositor
            size = self.options.output_size or DEFAULT_SWAP_LABEL_SIZE
            self.disclosure = DisclosureStage(profile, size, self.options.disclosure_of_mode(), ctx,
                                              bypass=lambda: self.compositor.passthrough)
        else:
            self.stages = self._reenact_stages(profile, tracker, ctx)
        self.stages.append(self.disclosure)
        self.remix = self._remix(profile)
        if self.remix is not None:   # after estimate: the state is mixed before it is fused
            self.stages.insert(2, self.remix)
        self.governor = self._governor(profile)
        self._render_notice = 0       # frames the overlay still says the render size is back

    def _governor(self, profile: ProfileLike) -> RenderGovernor | None:
        """The render size's real-time governor: only a live reenactment on the CPU with the warp
        or atlas tier whose size is automatic (`adapt_render_size`, `realtime`, no `render_size`)
        and larger than the profile's crop. (The neural tier runs at its own resolution and
        reloads its network when rebuilt; on a GPU the drawing is not what overruns.)"""
        o = self.options
        if not (o.adapt_render_size and o.realtime and o.mode == "reenact" and not o.render_size
                and o.device == "cpu" and (o.tier or profile.tier) in ("warp", "atlas")):
            return None
        sizes = ladder(self.render_size, int(profile.crop_size), RENDER_MULTIPLE)
        return RenderGovernor(sizes, 1.0 / o.fps) if len(sizes) > 1 else None

    def _resize(self, size: int) -> None:
        """Rebuild the reenactment's image stages at render size `size`, keeping the tracker, the
        estimator (its calibration), the fuse stage's binding, the remix, the disclosure stage
        (it depends on the output only), the gains and the passthrough toggle."""
        passthrough, disclosure = self.compositor.passthrough, self.disclosure
        gains = self.recombiner.config.gains()
        fuse = next(s for s in self.stages if s.name == "fuse")
        stages = self._reenact_stages(self.profile, self.stages[0].tracker, self.device, size)
        next(s for s in stages if s.name == "fuse").take_over(fuse)   # the driver's binding, its ease
        self.compositor.passthrough, self.disclosure = passthrough, disclosure
        for region, value in gains.items():   # shared with options.fuse today; kept explicitly
            self.recombiner.set_gain(region, value)
        stages.append(disclosure)
        if self.remix is not None:
            stages.insert(2, self.remix)
        self.stages = stages

    def _reenact_stages(self, profile: ProfileLike, tracker: Tracker | None, ctx,
                        size: int | None = None) -> list:
        """The reenactment's stage list (DESIGN §2); sets rig, recombiner, compositor, disclosure.
        `size`: the render size (default: `choose_render_size`'s)."""
        self.render_size = size or choose_render_size(profile, self.options.output_size,
                                                      self.options.render_size or None,
                                                      self.options.max_render_size)
        view = self.view = (profile if self.render_size == profile.crop_size
                            else ScaledProfile(profile, self.render_size))
        scale = self.render_size / float(profile.crop_size)  # crop px per profile crop px
        magnification = crop_side_in_output(profile, self.options.output_size) / self.render_size
        self.texture_sharpen = texture_sharpen(
            magnification, rig_mod.texel_density(view["crop_from_image"]) / magnification,
            self.options.texture_sharpen)
        self.rig = rig_mod.build(view, texture_sharpen=self.texture_sharpen)
        self.recombiner = Recombiner(profile["neutral"], profile.frame(), self.options.fuse)
        self.compositor = CompositeStage(profile, self.options.output_size, ctx, render=view)
        self.compositor.download = False  # the disclosure stage works on the device, then downloads
        self.disclosure = DisclosureStage(profile, self.compositor.size, self.options.disclosure_of_mode(),
                                          ctx, bypass=lambda: self.compositor.passthrough,
                                          background=self.compositor.background)
        untrained = GENERATOR_PATH not in getattr(profile, "files", {})
        if self.options.tier is None and profile.tier == "neural" and untrained:
            other = "atlas" if getattr(profile, "has_atlas", False) else "warp"     # the YAML's tier, set by hand
            raise ProfileError(f"profile {cli_name(profile)!r}: its profile.yaml says tier neural, but it "
                               f"lists no trained generator: set 'tier: {other}' there, or pass --tier {other}")
        generator = make_generator(self.options.tier or profile.tier, view, self.rig, ctx,
                                   backend=self.options.backend,
                                   cuda_graphs=self.options.cuda_graphs, fps=self.options.fps,
                                   folds=self.options.smile_folds)
        return [ctx.place(stage) for stage in (
            TrackStage(tracker),
            EstimateStage(self.estimator, self.clock),
            # no ease of the lips' rest gap under a remixed expression: the remix cancels the
            # whole gap at once (`realtime.io.remix`, `lip_gap_offset`)
            FuseStage(self.recombiner, self.rig, lambda: self.estimator.neutral,
                      None if self.options.expression_from is not None else self.clock,
                      self.estimator.config.ease_s),
            RenderStage(self.rig, ctx),
            GenerateStage(generator),
            SmoothStage(self.rig, max_step_px=SmoothStage.MAX_STEP_PX * scale,
                        enabled=self.options.smooth, ctx=ctx),
            self.compositor,
        )]

    def _remix(self, profile) -> RemixStage | None:
        """The remix stage of `options.pose_from` / `options.expression_from`, or None."""
        o = self.options
        if o.pose_from is None and o.expression_from is None:
            return None
        opened = {}
        for what, spec in (("--pose-from", o.pose_from), ("--expression-from", o.expression_from)):
            if spec is not None:
                opened[what] = open_state_source(spec, profile_neutral=profile["neutral"],
                                                 realtime=o.realtime, fps=None, what=what, rate=o.fps)
        return RemixStage(opened.get("--pose-from"), opened.get("--expression-from"),
                          main_neutral=lambda: self.estimator.neutral, clock=self.clock,
                          keep_placement=o.mode == "swap")

    @property
    def output_size(self) -> tuple[int, int]:
        return self.compositor.size

    def clock(self, frame: Frame) -> float:
        """Time the filters see: wall clock live (the capture time less `paused_s`), media time
        (index / fps) offline."""
        if self.options.realtime:
            return frame.t_capture - self.paused_s
        return frame.index / self.options.fps

    def process(self, frame: Frame) -> Frame:
        """Run every stage on `frame`; its timings come from the device context's timer
        (perf_counter on the CPU, CUDA events on the GPU, read after the frame's one sync)."""
        if self.options.mode == "swap" and is_held(frame):
            # The camera gave nothing new (`Grabber.held_frame`). The swap shows the driver's own
            # scene, so its last output again (its label and mark on it), not a black frame; and
            # no stage runs: a held frame is no news, not an absent face (the estimator's belief,
            # the crop follower, the colour and glasses memories keep theirs; a camera at half
            # the run's rate held every other frame and the face was never believed).
            if self._last_output is not None:
                frame.output, frame.face_points, frame.notes = self._last_output, *self._last_shown
                return frame
        timer = self.device.timer()
        with self.device.activate():
            for stage in self.stages:
                mark = timer.start()
                stage(frame)
                timer.stop(stage.name, mark)
        stage_ms = timer.result()
        frame.timings.update(stage_ms)
        swap = self.options.mode == "swap"
        if swap and frame.index >= 0 and frame.output is not None:
            self._last_output = frame.output       # never written to after the sink takes it
        if self.governor is not None:
            # judged on frames that drew a tracked face (no-face and held frames cost less)
            drawn = frame.index >= 0 and frame.image is not None and frame.state is not None and frame.state.present
            if drawn and (size := self.governor.observe(*_frame_cost(stage_ms))) is not None:
                self._resize(size)
                self._render_notice = RENDER_BACK_FRAMES if not self.governor.lowered else 0
            if self.governor.lowered:
                frame.notes["render"] = (f"render {self.governor.sizes[0]}² → {self.render_size}² "
                                         f"(real-time budget)")
            elif self._render_notice > 0:   # back at the full size: said for a moment
                frame.notes["render"] = f"render back to {self.render_size}² (the machine has room again)"
                self._render_notice -= 1
        frame.notes["gains"] = self.gains_line()
        if self.glasses is not None:
            frame.notes["glasses"] = self.glasses.status()
        notice = self.estimator.notice(self.clock(frame))
        if notice is not None:
            frame.notes["face"] = notice   # e.g. a new face: the estimator recalibrates by itself
        if self._hotkey_notice and self._hotkey_notice[1] > 0:
            frame.notes["hotkey"] = self._hotkey_notice[0]
            self._hotkey_notice[1] -= 1
        if swap:
            self._last_shown = (frame.face_points, dict(frame.notes))   # the preview's, for a held frame
        return frame

    def gain_regions(self) -> tuple[str, ...]:
        """The regions whose gain does something: all, less those swap takes from the driver
        (`realtime.mesh.gains.SWAP_OWN`: gaze, as it shows the driver's own eyes, unless
        `expression_from` gives the profile's eyeballs; pose, as the face sits on the driver's
        head, unless `pose_from` moves it)."""
        swap = self.options.mode == "swap"
        return tuple(r for r in REGIONS
                     if not (swap and r in SWAP_OWN and getattr(self.options, SWAP_OWN[r][0]) is None))

    def gains_line(self) -> str:
        """The per-region gains for the overlay; the selected region (hotkeys) in brackets."""
        g = self.recombiner.config.gains()
        return "gain " + " ".join(f"[{r} {g[r]:.1f}]" if r == self.gain_region else f"{r} {g[r]:.1f}"
                                  for r in self.gain_regions())

    def warm_up(self, track: bool = True) -> None:
        """Run two neutral frames through every stage (JIT compilation — a cold numba cache
        costs seconds —, MediaPipe graph start), so the first real frames are not late; then
        forget them (stages with a memory of the last frame are reset). `track=False` (a tracked
        clip drives: its frames carry their landmarks) leaves MediaPipe unloaded."""
        if track:
            blank = Frame(index=-1, t_capture=time.perf_counter(),
                          image=np.zeros((64, 64, 3), np.uint8))
            with quiet_native_stderr():
                self.stages[0](blank)
        for _ in range(2):  # the second one runs the smoother's flow3d/warp too
            self.process(Frame(index=-1, t_capture=time.perf_counter(),
                               state=FaceState.neutral()))
        if self.governor is not None:
            self._presize(track)
        for stage in self.stages:
            for part in (stage, getattr(stage, "generator", None)):
                reset = getattr(part, "reset", None)
                if callable(reset):
                    reset()
        self._last_output, self._last_shown = None, (None, {})

    def _presize(self, track: bool, frames: int = PRESIZE_FRAMES) -> None:
        """Time this machine before the first frame, so that a governed engine that would overrun
        steps down now rather than after its first real frames (which the start-up overrun and
        the rebuild would drop): tracking the profile's own photo (a real face: the mesh model
        runs; framed as a webcam would, so a small face in a large photo is found), then
        forgetting it (a blank frame), plus `frames` neutral frames through the other stages.
        The governor keeps watching the real frames either way; what this cannot time (a remix
        source's own tracker) is left to it."""
        governor = self.governor
        if governor is None:
            return
        track_ms = 0.0
        if track:
            face = _webcam_framing(self.profile)
            times = []
            with quiet_native_stderr():
                for _ in range(PRESIZE_TRACKS):
                    t0 = time.perf_counter()
                    self.stages[0](Frame(index=-1, t_capture=t0, image=face))
                    times.append(1e3 * (time.perf_counter() - t0))
                self.stages[0](Frame(index=-1, t_capture=time.perf_counter(),
                                     image=np.zeros((64, 64, 3), np.uint8)))
            track_ms = float(np.median(times[1:]))
        rows = [_frame_cost(self.process(Frame(index=-1, t_capture=time.perf_counter(),
                                               state=FaceState.neutral())).timings)
                for _ in range(frames)]
        total, scalable = (float(v) for v in np.median(np.asarray(rows), axis=0))
        size = governor.presize(PRESIZE_MARGIN * (track_ms + total), PRESIZE_MARGIN * scalable)
        if size is not None:
            self._resize(size)
            for _ in range(2):
                self.process(Frame(index=-1, t_capture=time.perf_counter(), state=FaceState.neutral()))

    def handle(self, event: str) -> bool:
        """Apply a hotkey event; returns False when the loop should stop."""
        if event == "recalibrate":
            self.estimator.recalibrate()
            self._hotkey_notice = ["recalibrating: keep a neutral face for a moment", HOTKEY_NOTICE_FRAMES]
        elif event == "toggle":
            self.compositor.passthrough = not self.compositor.passthrough
        elif event == "glasses" and self.glasses is not None:
            self.glasses.enabled = not self.glasses.enabled
        elif event == "glasses":             # reenact: the avatar wears what its photo wears
            self._hotkey_notice = ["g: your glasses are kept in --mode swap only", HOTKEY_NOTICE_FRAMES]
        elif event == "quit":
            return False
        elif event.startswith("gain:") and event[5:] in self.gain_regions():
            self.gain_region = event[5:]
        elif event.startswith("gain:") and event[5:] in SWAP_OWN:   # swap: the driver's own; said, not ignored
            why = SWAP_OWN[event[5:]][1]
            self._hotkey_notice = [f"{event[5:]}: no gain in swap ({why}); '+'/'-' still change "
                                   f"{self.gain_region}", HOTKEY_NOTICE_FRAMES]
        elif event in ("gain+", "gain-", "gain0"):
            current = self.recombiner.config.gains()[self.gain_region]
            step = {"gain+": 0.1, "gain-": -0.1}.get(event)
            value = 1.0 if step is None else round(current + step, 2)
            lo, hi = GAIN_RANGE
            self.recombiner.set_gain(self.gain_region, min(hi, max(lo, value)))
        return True

    def close(self) -> None:
        first = self.stages[0]
        close = getattr(first, "close", None)
        if callable(close):     # the swap's track stage: its tracker and its face detector
            close()
        elif first.tracker is not None:
            first.tracker.close()
        remix = getattr(self, "remix", None)
        if remix is not None:
            remix.close()


@dataclass
class RunReport:
    """What one run measured. `per_frame` rows: index, timings (ms by stage), latency_ms
    (capture→sink), face (tracked or not)."""

    frames: int = 0
    wall_s: float = 0.0
    capture_dropped: int = 0           # `Grabber.dropped`: the skipped ones included
    sink_dropped: int = 0
    capture_skipped: int = 0           # a paced clip's frames read after their time (`Grabber.skipped`)
    behind_s: float = 0.0              # a paced clip played this much slower (`Grabber.behind_s`)
    held: int = 0                      # frames emitted while the camera delivered nothing
    per_frame: list[dict] = field(default_factory=list)
    audio: AudioReport | None = None   # set by the caller when the run passed audio (--audio)
    warm_up_s: float | None = None     # the engine's warm-up before the first frame (`run`)
    offline: bool = False              # a file read ahead (`run`: a non-realtime grabber)
    remix_notes: list[str] = field(default_factory=list)   # remix sources with no face (`run`)
    gain_note: str | None = None       # the window's hotkeys changed the gains (`run`)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def dropped(self) -> int:
        return self.capture_dropped + self.sink_dropped

    def latencies(self, warmup: int = 0) -> np.ndarray:
        vals = [r["latency_ms"] for r in self.per_frame[warmup:] if r.get("latency_ms") is not None]
        return np.asarray(vals, np.float64)

    def stage_ms(self, warmup: int = 0) -> dict[str, np.ndarray]:
        rows = self.per_frame[warmup:]
        names = list(dict.fromkeys(n for r in rows for n in r["timings"]))   # a held frame has none
        return {n: np.array([r["timings"].get(n, np.nan) for r in rows]) for n in names}

    def summary(self, warmup: int = 0) -> str:
        lat = self.latencies(warmup)
        captured = self.frames + self.capture_dropped
        drop_pct = 100.0 * self.dropped / max(captured, 1)
        skipped = (f" ({self.capture_skipped} of them skipped: the clip's reader was behind and the next "
                   f"frame was due)" if self.capture_skipped else "")
        parts = [f"{count(self.frames, 'frame')} in {self.wall_s:.2f} s = {self.fps:.1f} fps",
                 f"dropped {self.dropped} ({drop_pct:.1f}%: capture {self.capture_dropped}{skipped}, "
                 f"sink {self.sink_dropped})"]
        if self.held:
            parts.append(f"held {self.held} (the source sent nothing in time: the last picture again)")
        if len(lat) and self.offline:   # frames wait in the read-ahead queue: not a camera's latency
            parts.append("time in the pipeline p50 {:.1f} ms, p95 {:.1f} ms (a file read ahead; "
                         "--realtime measures capture→sink)".format(*np.percentile(lat, [50, 95])))
        elif len(lat):
            parts.append("capture→sink p50 {:.1f} ms, p95 {:.1f} ms".format(*np.percentile(lat, [50, 95])))
        if self.behind_s > 0:
            parts.append(f"the clip played {self.behind_s:.1f} s slower than its rate (reading it took longer "
                         f"than its frames' interval, so skipping could not catch up)")
        if self.warm_up_s is not None:     # not in the fps: the run starts after it
            parts.append(f"warm-up {self.warm_up_s:.1f} s before the first frame")
        stages = ", ".join(f"{k} {np.nanmedian(v):.1f}" for k, v in self.stage_ms(warmup).items())
        text = "; ".join(parts) + (f"\nstage p50 ms: {stages}" if stages else "")
        if faces := self.faces_missed():
            text += f"\n{faces}"
        for line in self.remix_notes:
            text += f"\n{line}"
        if self.gain_note:
            text += f"\n{self.gain_note}"
        return text + (f"\n{self.audio.summary()}" if self.audio is not None else "")

    def faces_missed(self) -> str:
        """A line when the driver's face was missing from more than 2 % of the frames ("" else):
        a driver with no face (the wrong clip, a camera pointed elsewhere) otherwise ends with a
        normal-looking summary."""
        rows = [r for r in self.per_frame if "face" in r and not r.get("held")]   # held: no picture
        found = sum(bool(r["face"]) for r in rows) + _confirming(rows)
        if not rows or found >= FACE_FOUND_QUIET * len(rows):    # a first frame or a blink of a miss
            return ""
        span = f"the last {len(rows)}" if len(rows) < self.frames else f"{len(rows)}"
        span += " frame" if len(rows) == 1 else " frames"
        if found == 0 and (tracked := sum(bool(r.get("tracked")) for r in rows)):
            return (f"no face followed in any of {span}: the tracker saw one in {tracked}, but a face "
                    f"drives only once it is seen in one place a few frames running (a single picture, "
                    f"a face seen only now and then, or a folder of different photos never is)")
        if found == 0:
            return (f"no face found in any of {span}: nothing drove the output (is a face "
                    f"in view, lit and large enough?)")
        return f"face found in {found} of {span}"


def _confirming(rows: list[dict]) -> int:
    """Frames whose face the tracker saw but the estimator held back while it made sure of it
    (`Estimator.believe` holds a face up to `confirm_frames` - 1 frames, 2 by default, before the
    frame that believes it; a run's first frame is one): found, though not yet driving."""
    n, run = 0, 0
    held = max(EstimatorConfig().confirm_frames, EstimatorConfig().reappear_frames) - 1
    for r in rows:
        if r["face"]:
            n += min(run, held)        # a longer run's earlier frames were a face not believed
            run = 0
        elif r.get("tracked"):
            run += 1
        else:
            run = 0
    return n


@contextlib.contextmanager
def frozen_heap():
    """Keep the cyclic garbage collector off the objects that exist now (a collection, then
    `gc.freeze()`), until the block ends (`gc.unfreeze()`).

    Why: after start-up (torch, MediaPipe, numba, the profile) the heap holds ~180,000
    GC-tracked objects, and each full (generation-2) collection walks them all: 25-45 ms on the
    2-core CI machine, longer than a frame's 33 ms, so the live loop could drop a frame when one
    fell due (a 30-minute soak dropped single frames in 3 minutes; frozen, none in two such
    soaks). Frozen, those objects are skipped; what the loop allocates is still collected as
    usual, and refcounting frees frozen objects as before.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _webcam_framing(profile: ProfileLike, size: int = 512) -> np.ndarray:
    """(size, size, 3) uint8 RGB: the profile's photo cropped to a square twice its face's box
    (edges replicated) and resized, as a webcam frames a face."""
    lm = np.asarray(profile["landmarks"], np.float64)[:, :2]
    (x0, y0), (x1, y1) = lm.min(0), lm.max(0)
    side = 2.0 * max(x1 - x0, y1 - y0, 1.0)
    crop, _, _ = square_crop(np.asarray(profile["image"]), (x0 + x1) / 2.0, (y0 + y1) / 2.0, side, size)
    return np.ascontiguousarray(crop)


def _frame_cost(stage_ms: dict[str, float]) -> tuple[float, float]:
    """(all stages, the stages whose time scales with the crop's area) in ms, of one frame."""
    return sum(stage_ms.values()), sum(stage_ms.get(k, 0.0) for k in SCALABLE_STAGES)


def run(engine: Engine, grabber: Grabber, sink, max_frames: int | None = None,
        on_frame=None, stall_s: float = 1.5, history: int | None = None) -> RunReport:
    """Drive frames through `engine` into `sink` (a ThreadedSink) until the source ends,
    `max_frames` were emitted, or the user quits.

    When a live source stalls (no frame for `stall_s` nominal frame periods) the loop keeps
    emitting at the nominal rate with an empty frame, so the avatar eases to neutral instead of
    freezing. `on_frame(frame)` is called after each frame is handed to the sink.
    `history` bounds the per-frame rows kept in the report (a live session runs for hours);
    None keeps them all. A Ctrl-C (KeyboardInterrupt) in the loop leaves with the report of the
    frames done so far as the exception's ``report`` attribute (sink closed, counts filled in).
    """
    report = RunReport()
    report.offline = not grabber.realtime
    pending: dict[int, dict] = {}  # rows waiting for their sink write, by frame index
    lock = threading.Lock()        # the sink worker fills them in from its own thread

    def written(frame: Frame) -> None:
        with lock:
            row = pending.pop(frame.index, None)
        if row is not None:
            row["latency_ms"] = frame.latency_ms()

    sink.on_written = written
    t_warm = time.perf_counter()
    engine.warm_up(track=not getattr(grabber.source, "tracked", False))  # tracked: no MediaPipe
    report.warm_up_s = time.perf_counter() - t_warm
    period = 1.0 / engine.options.fps
    recombiner = getattr(engine, "recombiner", None)    # the gains the window's hotkeys change
    gains_at_start = recombiner.config.gains() if recombiner is not None else None
    stopped: KeyboardInterrupt | None = None
    with frozen_heap():
        t_start = time.perf_counter()
        grabber.start()
        try:
            while max_frames is None or report.frames < max_frames:
                held = False
                try:
                    frame = grabber.get(timeout=stall_s * period if grabber.realtime else None)
                except CaptureTimeout:
                    frame, held = grabber.held_frame(), True
                    report.held += 1
                if frame is None:
                    break
                engine.process(frame)
                row = {"index": frame.index, "timings": dict(frame.timings), "latency_ms": None,
                       "face": bool(frame.state is not None and frame.state.present),
                       "tracked": frame.landmarks is not None, "held": held}
                with lock:
                    pending[frame.index] = row
                    if len(pending) > PENDING_MAX:  # frames the sink dropped are never written
                        for index in sorted(pending)[:-PENDING_MAX // 2]:
                            del pending[index]
                report.per_frame.append(row)
                if history is not None and len(report.per_frame) > history + HISTORY_SLACK:
                    del report.per_frame[:-history]
                sink.write(frame)
                report.frames += 1
                if on_frame is not None:
                    on_frame(frame)
                if not all(engine.handle(e) for e in sink.poll_events()):
                    break
        except KeyboardInterrupt as stop:
            stopped = stop
        finally:
            # a Ctrl-C here (a second one, or one as the run ended) must not cut the file short
            late = user_stop.through_stops(grabber.stop, sink.close)
            report.wall_s = time.perf_counter() - t_start
            if (remix := getattr(engine, "remix", None)) is not None:
                report.remix_notes = remix.faces_missed(FACE_FOUND_QUIET)
            report.capture_dropped = grabber.dropped
            report.capture_skipped, report.behind_s = grabber.skipped, grabber.behind_s
            report.sink_dropped = getattr(sink, "sink_dropped", 0)
            if recombiner is not None and gains_at_start is not None:
                own = profile_gains(engine.profile) if hasattr(engine.profile, "settings") else {}
                report.gain_note = hotkey_note(gains_at_start, recombiner.config.gains(), own,
                                               engine.gain_regions())
        stopped = stopped or late
        if stopped is not None:
            stopped.report = report    # type: ignore[attr-defined]
            raise stopped
    return report
