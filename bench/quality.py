"""The offline quality pass of `run.py bench --quality` (DESIGN §8).

One pass drives the engine over every frame of a driver (media clock, nothing dropped), tracks
the avatar it outputs with its own MediaPipe graph and compares. What each metric is, exactly:

- ``expr_err`` — expression error, dimensionless (fraction of the interocular distance,
  :func:`bench.metrics.expression_error` in 2-D). Compared in the canonical (frontalised)
  frame, so pose does not leak into it: the output's tracked landmarks are measured with
  ``Estimator.measure`` against the output's neutral (the profile's own landmarks, which is what
  the engine shows for a neutral state) and put on the target neutral,
  ``N_T + E_out``; the reference is the *retargeted driver expression* the fuse stage would
  build from the *unfiltered* driver measurement, ``Recombiner.canonical(measure(driver))``
  with the default ``FuseConfig`` whatever the engine's (target neutral + per-region gains ·
  driver residual, the lips' gap at rest the driver's, lids and lips unfolded), so a variant
  that damps or exaggerates expressions shows as error. The error covers retargeting settings,
  rendering fidelity, tracking of the avatar and the engine's smoothing lag.
- ``pose_err_deg`` — mean geodesic angle (degrees) between the output's rotation relative to
  its neutral and the driver's rotation relative to its calibrated neutral, both from
  ``Estimator.measure`` (unfiltered); with ``--pose-from`` the pose source's rotation as the
  engine used it instead of the driver's. With ``--expression-from``, ``expr_err`` is left out
  (a note says so): the fidelity rows are then measured against the expression source.
  Frames enter these two only once the driver's neutral calibration is complete (before, the
  engine itself runs on a provisional neutral) and only where both faces are tracked.
- ``id_dist`` — dlib ResNet descriptor distance between the avatar's face crop of the output
  (the profile's crop box, sampled every ``id_stride`` frames) and the same crop of the
  profile's source image; mean over sampled frames where dlib finds a face. Omitted (with a
  note) when dlib or its models are not installed.
- ``fwe`` — flow warping error (AP-GAN eq. 15, short + long term, L1 on [0, 1]) of the output's
  face crop (the profile's crop box at the generator's resolution, crop_size²; outside it the
  output is the still photo). Flows and occlusion masks come from the output itself
  (``reference=None``): the driver's pixels are not aligned with the avatar's (another face,
  elsewhere, another size), so its flow would not describe the output's motion.
  ``fwe_short`` / ``fwe_long`` are its two terms (frame t against t−1, and against the first
  frame): flicker shows in the first, the content's own change (expressions, turns) mostly in
  the second.
- ``jitter_px`` — landmark jitter (:func:`bench.metrics.landmark_jitter_px`, output pixels) of
  the output's tracked landmarks, pooled over the output's still segments
  (:func:`bench.metrics.still_segments`, defaults: < 1.5 px/frame median speed, ≥ 10 frames).
  Omitted when the output has no still segment. A straight-line drift per segment is removed
  first (`detrend`), so a slowly drifting "still" head does not count as jitter.
- ``jitter_still_driver_px`` — the same jitter over the frames where the *driver's* face is
  still (:func:`bench.metrics.jitter_where_still`; ``quality_info.driver_still_frames`` of
  them): the same frames whatever the engine draws, so two engines compare on equal terms (the
  output's own still segments shrink as its face moves more, and shift between runs).
- the expression fidelity (`bench.fidelity`, ``follow``): gain and r per signal of the output
  against the driver — against the remix sources where the engine takes its pose or
  expression from them (`bench.remix`); ``quality_info.output_std``: each output signal's
  standard deviation (null for one never measured: no output face tracked), and
  ``quality_info.output_pose_std``: the output head's rotation (yaw, pitch, roll) measured on
  the skull's rigid points only (`bench.remix.rigid_pose_std`; a still pose reads ~0 there,
  while the face-frame yaw moves with an asymmetric expression), and
  ``quality_info.mesh_pose_std`` the same on the engine's posed mesh (`Frame.vertices`): the
  head motion the engine drew. The tracker's reading sits above it by its own coupling of
  expression into rotation (MediaPipe turns its whole mesh a little as a mouth opens: on d10 →
  s1 with `--pose-from still` the mesh reads 0.05° yaw, the tracked output 0.47°; 0.76° before
  the remix took the driver's turn out of its expression, `realtime.face.parallax`).
- ``quality_info.follow_split`` (`bench.fidelity.split_follow`): where the motion is lost —
  each signal's gain and r measured on the engine's posed mesh against the driver (``mesh``),
  and on the tracked output against that mesh (``picture``).
- ``quality_info.floor`` (``--floor``, `bench.fidelity.FloorProbe`): the same fidelity measure
  on the driver against its own copy downscaled to 40% and back, per signal: the best r an
  engine can read on this clip (a signal the driver hardly moves reads low even there).
  ``quality_info.floor_mirror``: the same against the driver's frames flipped left to right,
  tracked, and flipped back (`fidelity.unmirror`): the same motion in another picture, as an
  output is; far under ``floor`` where the tracker's reading depends on the picture (d10's yaw).
- ``quality_info.driver_own`` (``--floor``, `DriverReference`): ``fwe`` (with ``fwe_short``,
  ``fwe_long``) and ``id_dist`` measured on the driver's own frames, framed as enrollment would
  frame a photo of them (the crop box of the driver's first tracked frame, at the profile's crop
  size): what a real video of a face reads on the same measures. Its ``id_dist`` is the driver's
  distance to its own first frame: how far a real face's expressions and turns carry it from
  itself by dlib's measure; ``id_r``: the Pearson r of that distance and the output's
  ``id_dist`` over the frames both were sampled. On d10 → s1 the driver reads 0.28 against the
  output's 0.37, with ``id_r`` 0.69: much of an avatar's identity distance is the expression it
  was asked to make.
- ``psnr`` / ``ssim`` (self-reenactment only: the driver frames are the ground truth) — mean
  over frames of skimage's PSNR (dB) and SSIM of output vs real frame, whole frame; and
  ``psnr_face`` / ``ssim_face`` on the face box of the real frame (its tracked landmarks' box,
  enlarged 1.2× about its centre), ``psnr_mouth`` / ``ssim_mouth`` on its lips' box enlarged
  1.6× (teeth, lips and the skin around them), ``psnr_eyes`` on each eye's lid contours' box
  enlarged 1.6× (the mean of the two eyes').

Self-reenactment pins the driver's neutral to the profile's reference frame (same person, same
camera): every state is then relative to the photo the avatar was made from, so a perfect
engine would reproduce the real frames. Elsewhere the driver's neutral is calibrated exactly
as the engine calibrates it (same frames, same media clock).

Memory stays bounded: frames are streamed (the FWE reads a generator), only landmarks and
per-frame scalars are kept.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from bench import fidelity, metrics
from bench.remix import reference_signals, remixed, rigid_pose_std
from profiles.enroll import photo_framing
from realtime.face import topology
from realtime.face.estimate import Estimator
from realtime.face.topology import N_LANDMARKS
from realtime.face.track import Tracker
from realtime.image.composite import fit_affine
from realtime.io.capture import Grabber
from realtime.mesh.fuse import FuseConfig, Recombiner

__all__ = ["QualityResult", "quality_pass", "pin_neutral", "face_box", "QUALITY_KEYS", "DriverReference"]

QUALITY_KEYS = ("expr_err", "pose_err_deg", "id_dist", "fwe", "fwe_short", "fwe_long", "jitter_px",
                "jitter_still_driver_px", "psnr", "ssim")
ID_STRIDE = 10
FACE_BOX_SCALE = 1.2


@dataclass
class QualityResult:
    metrics: dict = field(default_factory=dict)   # only metrics that were measured
    follow: dict = field(default_factory=dict)    # bench.fidelity.follow_stats of the pass
    info: dict = field(default_factory=dict)      # counts behind them
    notes: list = field(default_factory=list)     # why a metric is absent, caveats


class DriverReference:
    """The quality pass's measures on the driver's own video (``quality_info.driver_own``): its
    face framed as enrollment frames a photo (`profiles.enroll.photo_framing` of the first
    frame with a face, fixed from then on, `crop_size`² px), then the flow warping error
    of those crops and every `id_stride`-th crop's dlib distance to the first one (`encoder`:
    `bench.metrics.IdentityEncoder`, or None to leave identity out).

    `offer(image, landmarks, index)` per driver frame (landmarks in its pixels; None: no face —
    the frame still counts once the box is set, since the box does not move; `index`: the
    pass's frame number, identity sampled where it is a multiple of `id_stride`); `result()`,
    which with the output's per-frame identity distances ({index: distance}) also says how
    closely the two move together."""

    def __init__(self, crop_size: int, encoder=None, id_stride: int = ID_STRIDE):
        self.size, self.encoder, self.id_stride = int(crop_size), encoder, int(id_stride)
        self.affine = None
        self.fwe = metrics.FlowWarpingError()
        self.frames = 0
        self._ref = None
        self.ids: dict[int, float] = {}        # frame index → distance to the first framed crop

    def offer(self, image: np.ndarray | None, landmarks: np.ndarray | None, index: int) -> None:
        if image is None:
            return
        if self.affine is None:
            if landmarks is None:
                return
            self.affine = photo_framing(np.asarray(landmarks, np.float64)[:N_LANDMARKS], self.size)[2]
        crop = cv2.warpAffine(np.ascontiguousarray(image), self.affine, (self.size, self.size),
                              flags=cv2.INTER_LINEAR)
        self.fwe.push(crop)
        if self.encoder is not None:
            if self.frames == 0:
                self._ref = self.encoder.descriptor(crop)
            elif self._ref is not None and index % self.id_stride == 0:
                d = self.encoder.distance(crop, self._ref)
                if d is not None:
                    self.ids[int(index)] = d
        self.frames += 1

    def result(self, output_ids: dict[int, float] | None = None) -> dict:
        """{"fwe", "fwe_short", "fwe_long", "id_dist", "id_r", "frames", "id_samples"}: ``id_r``
        is the Pearson r over the frames both were sampled of the driver's distance to itself
        and `output_ids` (the output's distance to the photo). A value is None where it could not
        be measured (fewer than two framed frames; no identity encoder, or dlib found no face in
        the first crop; fewer than three common frames)."""
        ids = list(self.ids.values())
        out = {"fwe": None, "fwe_short": None, "fwe_long": None, "frames": self.frames,
               "id_dist": float(np.mean(ids)) if ids else None, "id_samples": len(ids), "id_r": None}
        common = sorted(set(self.ids) & set(output_ids or {}))
        if len(common) >= 3:
            a = np.array([self.ids[i] for i in common])
            b = np.array([output_ids[i] for i in common])      # type: ignore[index]
            if a.std() > 0 and b.std() > 0:
                out["id_r"] = float(np.corrcoef(a, b)[0, 1])
        if self.frames >= 2:
            t = self.fwe.result()
            if np.isfinite(t["fwe"]):
                out.update(fwe=t["fwe"], fwe_short=t["short"], fwe_long=t["long"])
        return out


def pin_neutral(estimator: Estimator, landmarks: np.ndarray) -> None:
    """Freeze `estimator`'s neutral to one known face (its landmarks, pixels): calibration is
    skipped and every measurement is relative to that face."""
    estimator.calibrator.pin(np.asarray(landmarks, np.float64))


# The mouth region: the lips' box enlarged 1.6× (teeth, lips and the skin around them).
MOUTH_BOX_SCALE = 1.6


def _mouth_points():
    return np.array(sorted(set(topology.OUTER_LIP) | set(topology.INNER_LIP_UPPER)
                           | set(topology.INNER_LIP_LOWER)))


MOUTH_POINTS = _mouth_points()
# The eyes' regions: each eye's lid contours' box enlarged 1.6× (the white, the iris, the lids'
# margins and lashes, the skin around them); `psnr_eyes` is the mean of the two eyes' PSNR.
EYE_BOX_SCALE = 1.6
EYE_POINTS = tuple(np.array(sorted(set(upper) | set(lower))) for upper, lower in (
    (topology.RIGHT_EYE_UPPER, topology.RIGHT_EYE_LOWER), (topology.LEFT_EYE_UPPER, topology.LEFT_EYE_LOWER)))


def face_box(landmarks: np.ndarray, shape: tuple[int, ...], scale: float = FACE_BOX_SCALE):
    """(x0, y0, x1, y1) of the landmarks' box enlarged `scale`× about its centre, clipped to an
    image of `shape`; None when empty."""
    xy = np.asarray(landmarks, np.float64)[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    c, half = (lo + hi) / 2.0, (hi - lo) / 2.0 * scale
    h, w = shape[:2]
    x0, y0 = max(0.0, c[0] - half[0]), max(0.0, c[1] - half[1])
    x1, y1 = min(float(w), c[0] + half[0]), min(float(h), c[1] + half[1])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return (x0, y0, x1, y1)


def _mean(values) -> float | None:
    a = np.asarray([v for v in values if v is not None], np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


def _identity_encoder(notes: list):
    if not metrics.IdentityEncoder.available():
        notes.append(f"id_dist omitted: {metrics.IdentityEncoder.unavailable_reason()}")
        return None
    try:
        return metrics.IdentityEncoder(upsample=1)
    except Exception as exc:  # noqa: BLE001 - an optional extra: note it, never fail the run
        notes.append(f"id_dist omitted: dlib could not load its models ({exc})")
        return None


def quality_pass(engine_factory, profile, source, *, fps: float, total: int | None = None,
                 pin: np.ndarray | None = None, real_frames: bool = False,
                 id_stride: int = ID_STRIDE, desc: str = "quality",
                 extremes: fidelity.Extremes | None = None, floor: bool = False) -> QualityResult:
    """Drive a fresh engine (``engine_factory()``, offline options) with every frame of
    `source` and measure the output (see the module docstring).

    pin: driver landmarks to pin the driver's neutral to (self-reenactment: the enrollment
    frame, so the output should reproduce the real frames); None = calibrate as the engine does.
    real_frames: the driver frames are ground truth for the output (self-reenactment): adds
    psnr / ssim (whole frame, face box and mouth box) and psnr_eyes (each eye's lid box). Output
    and driver frames must then have one size.
    extremes: when given, it is offered every driver / output frame pair with the driver's own
    signals (a contact sheet: the picture above the output is the driver's, also under a remix).
    floor: also measure the measure's own floor on this driver (`fidelity.FloorProbe`):
    ``res.info["floor"]``, and the driver's own FWE and identity drift (`DriverReference`):
    ``res.info["driver_own"]``.
    The expression-fidelity signals (`bench.fidelity`) of driver and output go into
    ``res.follow`` (gain and r per signal) and ``res.info["blinks"]``.
    """
    res = QualityResult()
    notes = res.notes
    engine = out_tracker = grabber = probe = own = None
    try:
        engine = engine_factory()
        out_tracker = Tracker(static=False)
        probe = fidelity.FloorProbe() if floor else None
        grabber = Grabber(source, realtime=False)
        cfg = engine.options.estimator
        drv_est, out_est = Estimator(cfg), Estimator(cfg)
        if pin is not None:
            pin_neutral(engine.estimator, pin)
            pin_neutral(drv_est, pin)
        # The output's neutral is the profile photo itself: its landmarks in output pixels.
        img_h, img_w = profile["image"].shape[:2]
        a = fit_affine((img_w, img_h), engine.output_size)
        out_neutral = profile["landmarks"].astype(np.float64) * a[0, 0]
        out_neutral[:, :2] += a[:, 2]
        pin_neutral(out_est, out_neutral)
        target_neutral = engine.recombiner.target_neutral
        # The reference retargeting is the default one (gain 1), whatever the engine's fuse
        # config: a variant that exaggerates or damps expressions must show up as error.
        reference = Recombiner(profile["neutral"], profile.frame(), FuseConfig())
        bound = [None]

        crop = int(profile.crop_size)
        to_crop = engine.compositor.frame_to_crop.astype(np.float64)
        encoder = _identity_encoder(notes)
        own = DriverReference(crop, encoder, id_stride) if floor else None
        id_ref = None
        if encoder is not None:
            src_crop = cv2.warpAffine(profile["image"], profile["crop_from_image"].astype(np.float64),
                                      (crop, crop), flags=cv2.INTER_LINEAR)
            id_ref = encoder.descriptor(src_crop)
            if id_ref is None:
                notes.append("id_dist omitted: dlib finds no face in the profile's source image")
                encoder = None

        out_lms: list[np.ndarray] = []
        drv_lms: list[np.ndarray] = []
        expr_e, pose_e, id_d = [], [], []
        id_at: dict[int, float] = {}     # frame index → the output's identity distance
        psnr_w, ssim_w, psnr_f, ssim_f, psnr_m, ssim_m, psnr_e = [], [], [], [], [], [], []
        n = {"frames": 0, "driver_tracked": 0, "output_tracked": 0, "id_samples": 0}
        nan_lm = np.full((N_LANDMARKS, 3), np.nan, np.float32)
        nan_sig = np.full(len(fidelity.SIGNALS), np.nan)
        sig_d: list[np.ndarray] = []
        sig_o: list[np.ndarray] = []
        sig_m: list[np.ndarray] = []
        mesh_lms: list[np.ndarray] = []

        def frames() -> Iterator[np.ndarray]:
            grabber.start()
            with tqdm(total=total, desc=desc, unit="frame", file=sys.stderr, disable=None,
                      leave=False) as bar:
                while True:
                    frame = grabber.get()
                    if frame is None:
                        return
                    engine.process(frame)
                    i = n["frames"]
                    n["frames"] += 1
                    t = frame.index / fps
                    out = frame.output
                    lm_d = frame.landmarks
                    lm_o = out_tracker(out)
                    out_lms.append(nan_lm if lm_o is None else lm_o)
                    drv_lms.append(nan_lm if lm_d is None else np.asarray(lm_d[:N_LANDMARKS], np.float32))
                    mesh_lms.append(nan_lm if frame.vertices is None
                                    else frame.vertices[:N_LANDMARKS].astype(np.float32))
                    n["driver_tracked"] += lm_d is not None
                    n["output_tracked"] += lm_o is not None
                    drv_sig = nan_sig if lm_d is None else fidelity.face_signals(lm_d)
                    sig_d.append(reference_signals(engine, drv_sig))
                    sig_o.append(nan_sig if lm_o is None else fidelity.face_signals(lm_o))
                    sig_m.append(fidelity.mesh_signals(frame.vertices))
                    if extremes is not None and frame.image is not None:
                        # the driver's own extremes, under its own picture: not a remix source's
                        # (--expression-from), which is not the picture above the output
                        extremes.offer(frame.index, drv_sig, frame.image, out, (lm_d, lm_o))
                    if probe is not None:
                        probe.offer(frame.image, lm_d)
                    if own is not None:
                        own.offer(frame.image, lm_d, i)
                    s_d = drv_est.measure(lm_d, t) if lm_d is not None else None
                    if s_d is not None and lm_o is not None and drv_est.calibrator.done:
                        if bound[0] is not drv_est.neutral:
                            reference.bind_driver(drv_est.neutral.shape)
                            bound[0] = drv_est.neutral
                        s_o = out_est.measure(lm_o, t)
                        # against what the engine was told to follow: a remix source's pose
                        # where it takes one; no expression error where the expression came
                        # from another source (its fidelity rows are measured against it)
                        sources = remixed(engine)
                        if sources.get("expression") is None:
                            ref = reference.canonical(s_d)[:, :2]
                            got = (target_neutral + s_o.expression)[:, :2]
                            expr_e.append(metrics.expression_error(got, ref))
                        pose_ref = sources.get("pose") or s_d
                        pose_e.append(metrics.pose_error_deg(s_o.rotation, pose_ref.rotation))
                    face = cv2.warpAffine(out, to_crop, (crop, crop), flags=cv2.INTER_LINEAR)
                    if encoder is not None and i % id_stride == 0:
                        n["id_samples"] += 1
                        id_d.append(encoder.distance(face, id_ref))
                        if id_d[-1] is not None:
                            id_at[i] = id_d[-1]
                    if real_frames:
                        real = frame.image
                        if real.shape != out.shape:
                            raise ValueError(f"self-reenactment: output {out.shape} and real "
                                             f"frame {real.shape} differ in size")
                        psnr_w.append(metrics.psnr(out, real))
                        ssim_w.append(metrics.ssim(out, real))
                        box = face_box(lm_d, real.shape) if lm_d is not None else None
                        if box is not None:
                            psnr_f.append(metrics.psnr(out, real, box=box))
                            ssim_f.append(metrics.ssim(out, real, box=box))
                        mbox = (face_box(lm_d[MOUTH_POINTS], real.shape, MOUTH_BOX_SCALE)
                                if lm_d is not None else None)
                        if mbox is not None:
                            psnr_m.append(metrics.psnr(out, real, box=mbox))
                            ssim_m.append(metrics.ssim(out, real, box=mbox))
                        eboxes = ([face_box(lm_d[p], real.shape, EYE_BOX_SCALE) for p in EYE_POINTS]
                                  if lm_d is not None else [None])
                        if all(b is not None for b in eboxes):
                            psnr_e.append(float(np.mean([metrics.psnr(out, real, box=b) for b in eboxes])))
                    bar.update(1)
                    yield face

        fwe = fwe_terms = None
        try:
            terms = metrics.flow_warping_error(frames(), return_terms=True)
            fwe = terms["fwe"] if terms["n_pairs"] else None
            fwe_terms = (terms["short"], terms["long"]) if terms["n_pairs"] else None
            res.info["fwe_pairs"] = terms["n_pairs"]
        except ValueError as exc:
            if n["frames"] >= 2:
                raise
            notes.append(f"fwe omitted: {exc}")
    finally:
        for closer in (grabber and grabber.stop, out_tracker and out_tracker.close,
                       probe and probe.close, engine and engine.close, source.close):
            if closer:
                closer()

    q = res.metrics
    if probe is not None:
        res.info["floor"] = probe.result(notes)
        res.info["floor_mirror"] = probe.mirror_stats()
    if own is not None:
        res.info["driver_own"] = own.result(id_at)
    e, pose_mean = _mean(expr_e), _mean(pose_e)
    if e is not None:
        q["expr_err"] = e
    if pose_mean is not None:
        q["pose_err_deg"] = pose_mean
    if pose_mean is not None and e is None:
        notes.append("expr_err omitted: the expression came from --expression-from (its fidelity "
                     "rows are measured against that source)")
    elif pose_mean is None:
        notes.append("expr_err, pose_err_deg omitted: no frame where the driver (calibrated) "
                     "and the output were both tracked")
    ids = [d for d in id_d if d is not None]
    if encoder is not None:
        if ids:
            q["id_dist"] = float(np.mean(ids))
        else:
            notes.append("id_dist omitted: dlib found no face in any sampled output frame")
    if fwe is not None and np.isfinite(fwe):
        q["fwe"] = fwe
        q["fwe_short"], q["fwe_long"] = fwe_terms
    lms = np.stack(out_lms) if out_lms else np.zeros((0, N_LANDMARKS, 3), np.float32)
    segs = metrics.still_segments(lms[..., :2]) if len(lms) >= 2 else []
    if segs:
        q["jitter_px"] = metrics.landmark_jitter_px(lms[..., :2], segs)
    else:
        notes.append("jitter_px omitted: the output has no still segment (≥ 10 frames moving "
                     "< 1.5 px/frame)")
    if len(lms) >= 2:
        jit, still = metrics.jitter_where_still(np.stack(drv_lms)[..., :2], lms[..., :2])
        res.info["driver_still_frames"] = still
        if still:
            q["jitter_still_driver_px"] = jit
        elif np.isnan(np.stack(drv_lms)[..., 0]).all():
            notes.append("jitter_still_driver_px omitted: no face was found in the driver")
        else:
            notes.append("jitter_still_driver_px omitted: the driver's face is never still "
                         "(≥ 10 frames moving < 1.5 px/frame)")
    if sig_d:
        res.follow = fidelity.follow_stats(np.stack(sig_d), np.stack(sig_o))
        res.info["follow_split"] = fidelity.split_follow(np.stack(sig_d), np.stack(sig_m), np.stack(sig_o))
        res.info["blinks"] = fidelity.blink_check(np.stack(sig_d), np.stack(sig_o))
        res.info["output_std"] = fidelity.signal_std(np.stack(sig_o))   # null: never tracked
        res.info["output_pose_std"] = rigid_pose_std(lms)
        if mesh_lms:
            res.info["mesh_pose_std"] = rigid_pose_std(np.stack(mesh_lms))
    if real_frames:
        for key, vals in (("psnr", psnr_w), ("ssim", ssim_w),
                          ("psnr_face", psnr_f), ("ssim_face", ssim_f),
                          ("psnr_mouth", psnr_m), ("ssim_mouth", ssim_m), ("psnr_eyes", psnr_e)):
            m = _mean(vals)
            if m is not None:
                q[key] = m
    res.info.update(n, pose_expr_frames=len(expr_e), still_segments=len(segs),
                    still_frames=int(sum(b - a for a, b in segs)),
                    id_faces=len(ids))
    return res

