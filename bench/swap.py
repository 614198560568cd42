"""The quality pass of the swap mode (`run.py bench --mode swap --quality`, DESIGN §5b, issue #17).

The output is the driver's own frame with the face replaced, so it is measured against the
driver's frame and against the profile's photo. One pass drives the engine over every frame
(media clock, nothing dropped) and measures:

- ``id_photo`` / ``id_driver`` — dlib ResNet descriptor distance (`bench.metrics.IdentityEncoder`,
  as ``id_dist``) between the output's face and the profile's photo (its crop box, as for
  ``id_dist``), and between the output's face and the driver's own face in the same frame (the
  same box of the input frame: a square around the driver's landmarks, 1.8× their extent, at
  256²); means over every ``id_stride``-th frame where dlib finds the faces. ``id_margin`` =
  id_driver − id_photo: the swap shows the profile's identity when id_photo < 0.6 (dlib's
  same-person threshold) and the margin is ≥ 0.1. ``quality_info.id_driver_photo``: the two
  people's own distance (the driver's input face against the photo), for scale.
- the expression fidelity (`bench.fidelity`): driver and output each tracked on their own,
  gain and r per signal (mouth, eyes, brows, gaze, yaw, pitch); ``quality_info.follow_split``:
  the same split at the identity's posed mesh (`bench.fidelity.split_follow`).
- ``psnr_scene`` — PSNR (dB) of the output against the input over the pixels outside the
  driver's face hull grown 25% about its centroid (all pixels when no face is found), pooled
  over the clip (one MSE); capped at 100 dB (the swap leaves the scene exactly as it is, which
  is +inf).
- ``fwe_face`` / ``fwe_face_driver`` — flow warping error (AP-GAN eq. 14–15, short + long term,
  L1 on [0, 1]) of the face region, of the output and of the driver's own frames, each warped
  with its own flow (as ``fwe`` of the reenactment's pass: how much the picture flickers), on a
  square box 1.3× the driver's landmarks at frame t, masked to their hull; ``fwe_ratio`` =
  fwe_face / fwe_face_driver (≤ 1.2: the swap flickers no more than the video itself).
  ``fwe_face_driverflow`` / ``fwe_ratio_driverflow``: the output warped with the *driver's*
  flow instead (the seed's definition, where the output is measured against the original
  video's motion): it also counts every place where the swapped face's features sit elsewhere
  than the driver's (another identity's eyes and lips do), so it is larger by construction.
- ``frames_in`` / ``frames_out`` (quality_info): one output per input frame.

`SwapExtremes` keeps the frame pairs of a contact sheet: the first frame with a face, the
driver's widest mouth, furthest turn and largest lighting change (its face's mean luma against
the first frame's).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from bench import fidelity, metrics
from bench.quality import QualityResult, _identity_encoder
from bench.remix import reference_signals
from realtime.face.topology import N_LANDMARKS
from realtime.face.track import Tracker
from realtime.io.capture import Grabber

__all__ = ["swap_quality_pass", "SwapExtremes", "hull_mask", "PSNR_CAP"]

ID_STRIDE = 10
ID_BOX = 1.8          # the identity crop: this many times the landmarks' extent, square
FWE_BOX = 1.3         # the flow box: this many times the landmarks' extent, square
HULL_GROWTH = 1.25    # the scene is what lies outside the face hull grown by this factor
PSNR_CAP = 100.0


def hull_mask(landmarks: np.ndarray, shape: tuple[int, ...], grow: float = 1.0) -> np.ndarray:
    """(H, W) bool: inside the convex hull of the landmarks (x, y), scaled by `grow` about the
    landmarks' centroid."""
    xy = np.asarray(landmarks, np.float64)[:N_LANDMARKS, :2]
    c = xy.mean(0)
    pts = c + grow * (xy - c)
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(m, hull, 1)
    return m.astype(bool)


def square_box(landmarks: np.ndarray, scale: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) integer square box, `scale` × the landmarks' larger extent, centred on
    them, clipped to the image."""
    c, side = fidelity.face_square(landmarks, scale)
    half = side / 2.0
    h, w = shape[:2]
    x0, y0 = int(max(0, np.floor(c[0] - half))), int(max(0, np.floor(c[1] - half)))
    x1, y1 = int(min(w, np.ceil(c[0] + half))), int(min(h, np.ceil(c[1] + half)))
    return x0, y0, x1, y1


def _face_chip(image: np.ndarray, landmarks: np.ndarray, size: int = 256) -> np.ndarray:
    x0, y0, x1, y1 = square_box(landmarks, ID_BOX, image.shape)
    return cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------------------ contact sheet

SWAP_SHEET = ("first face", "widest mouth", "furthest turn", "lighting change")


@dataclass
class SwapExtremes:
    """Driver / output frame pairs for the swap's contact sheet (`SWAP_SHEET`), offered every
    frame while a clip streams; images kept at `height` pixels; `start`: the clip's frame number
    of the pass's first frame (as `fidelity.Extremes`')."""

    height: int = 256
    best: dict = field(default_factory=dict)   # label -> (score, clip frame, driver img, output img)
    start: int = 0
    _luma0: float | None = None

    def offer(self, index: int, signals: np.ndarray, luma: float | None, driver: np.ndarray,
              output: np.ndarray) -> None:
        if luma is None or not np.all(np.isfinite(signals)):
            return
        if self._luma0 is None:
            self._luma0 = luma
        scores = {"first face": 1.0 if "first face" not in self.best else -np.inf,
                  "widest mouth": signals[fidelity.SIGNALS.index("mouth_open")],
                  "furthest turn": abs(signals[fidelity.SIGNALS.index("yaw")]),
                  "lighting change": abs(luma - self._luma0)}
        for label, score in scores.items():
            if score > self.best.get(label, (-np.inf,))[0]:
                # whole frames: the swap's sheet shows the scene kept around the face too
                self.best[label] = (score, self.start + index, fidelity.face_view(driver, None, self.height),
                                    fidelity.face_view(output, None, self.height))

    def sheet(self, title: str = "") -> np.ndarray:
        """RGB uint8: one column per entry (label and the clip's frame number on top), driver above
        output."""
        ex = fidelity.Extremes(height=self.height)
        ex.best = self.best          # (their frame numbers are the clip's already: `offer`)
        return fidelity.contact_sheet(ex, title, labels=SWAP_SHEET)


# ------------------------------------------------------------------------------ the pass

def swap_quality_pass(engine_factory, profile, source, *, fps: float, total: int | None = None,
                      id_stride: int = ID_STRIDE, desc: str = "quality swap",
                      extremes: SwapExtremes | None = None, floor: bool = False) -> QualityResult:
    """Drive a fresh swap engine (``engine_factory()``) with every frame of `source` and measure
    the output (see the module docstring); `floor`: as `bench.quality.quality_pass`'s."""
    res = QualityResult()
    notes = res.notes
    engine = out_tracker = grabber = probe = None
    n = {"frames_in": 0, "frames_out": 0, "driver_tracked": 0, "output_tracked": 0, "id_samples": 0}
    nan_sig = np.full(len(fidelity.SIGNALS), np.nan)
    sig_d: list[np.ndarray] = []
    sig_o: list[np.ndarray] = []
    sig_m: list[np.ndarray] = []
    id_p, id_d, id_dp = [], [], []
    sq_err, sq_n = 0.0, 0
    fwe_o, fwe_d, fwe_x = [], [], []
    try:
        engine = engine_factory()
        out_tracker = Tracker(static=False)
        probe = fidelity.FloorProbe() if floor else None
        grabber = Grabber(source, realtime=False)
        encoder = _identity_encoder(notes)
        id_ref = None
        if encoder is not None:
            crop = int(profile.crop_size)
            src_crop = cv2.warpAffine(profile["image"], profile["crop_from_image"].astype(np.float64),
                                      (crop, crop), flags=cv2.INTER_LINEAR)
            id_ref = encoder.descriptor(src_crop)
            if id_ref is None:
                notes.append("id_photo omitted: dlib finds no face in the profile's source image")
                encoder = None
        first = prev = None          # (output, driver) full frames
        grabber.start()
        with tqdm(total=total, desc=desc, unit="frame", file=sys.stderr, disable=None, leave=False) as bar:
            while True:
                frame = grabber.get()
                if frame is None:
                    break
                n["frames_in"] += 1
                engine.process(frame)
                out, img, lm_d = frame.output, frame.image, frame.landmarks
                if out is not None:
                    n["frames_out"] += 1
                lm_o = out_tracker(out)
                n["driver_tracked"] += lm_d is not None
                n["output_tracked"] += lm_o is not None
                s_d = nan_sig if lm_d is None else fidelity.face_signals(lm_d)
                sig_d.append(reference_signals(engine, s_d))
                sig_o.append(nan_sig if lm_o is None else fidelity.face_signals(lm_o))
                sig_m.append(fidelity.mesh_signals(frame.vertices))
                # the scene: outside the driver's face hull grown 25%
                scene = ~hull_mask(lm_d, img.shape, HULL_GROWTH) if lm_d is not None else np.ones(img.shape[:2], bool)
                diff = out.astype(np.float64)[scene] - img.astype(np.float64)[scene]
                sq_err += float((diff * diff).sum())
                sq_n += diff.size
                luma = None
                if lm_d is not None:
                    face = hull_mask(lm_d, img.shape)
                    luma = float((img[face].astype(np.float64) @ [0.299, 0.587, 0.114]).mean())
                if extremes is not None:
                    extremes.offer(frame.index, s_d, luma, img, out)
                if probe is not None:
                    probe.offer(img, lm_d)
                # identity
                if encoder is not None and lm_d is not None and (n["frames_in"] - 1) % id_stride == 0:
                    n["id_samples"] += 1
                    d_out = encoder.descriptor(_face_chip(out, lm_d))
                    d_in = encoder.descriptor(_face_chip(img, lm_d))
                    if d_out is not None:
                        id_p.append(float(np.linalg.norm(d_out - id_ref)))
                        if d_in is not None:
                            id_d.append(float(np.linalg.norm(d_out - d_in)))
                    if d_in is not None:
                        id_dp.append(float(np.linalg.norm(d_in - id_ref)))
                # temporal stability of the face region, with the driver's flow
                if lm_d is not None:
                    if prev is not None:
                        fo, fd, fx = _fwe_pair(out, img, prev, first, lm_d)
                        fwe_o.append(fo)
                        fwe_d.append(fd)
                        fwe_x.append(fx)
                    if first is None:
                        first = (out, img)
                    prev = (out, img)
                else:
                    prev = None
                bar.update(1)
    finally:
        for closer in (grabber and grabber.stop, out_tracker and out_tracker.close,
                       probe and probe.close, engine and engine.close, source.close):
            if closer:
                closer()

    q = res.metrics
    if probe is not None:
        res.info["floor"] = probe.result(notes)
        res.info["floor_mirror"] = probe.mirror_stats()
    if encoder is not None:
        if id_p:
            q["id_photo"] = float(np.mean(id_p))
        if id_d:
            q["id_driver"] = float(np.mean(id_d))
        if id_p and id_d:
            q["id_margin"] = q["id_driver"] - q["id_photo"]
        if not id_p:
            notes.append("id_photo, id_driver omitted: dlib found no face in any sampled output frame")
    if sq_n:
        mse = sq_err / sq_n
        q["psnr_scene"] = PSNR_CAP if mse <= 255.0 ** 2 * 10 ** (-PSNR_CAP / 10) else \
            float(10.0 * np.log10(255.0 ** 2 / mse))
    ok = (np.isfinite(fwe_o) & np.isfinite(fwe_d) & np.isfinite(fwe_x)) if fwe_o else np.zeros(0, bool)
    if ok.any():
        q["fwe_face"] = float(np.asarray(fwe_o)[ok].mean())
        q["fwe_face_driver"] = float(np.asarray(fwe_d)[ok].mean())
        q["fwe_face_driverflow"] = float(np.asarray(fwe_x)[ok].mean())
        if q["fwe_face_driver"] > 0:
            q["fwe_ratio"] = q["fwe_face"] / q["fwe_face_driver"]
            q["fwe_ratio_driverflow"] = q["fwe_face_driverflow"] / q["fwe_face_driver"]
    if sig_d:
        res.follow = fidelity.follow_stats(np.stack(sig_d), np.stack(sig_o))
        res.info["follow_split"] = fidelity.split_follow(np.stack(sig_d), np.stack(sig_m), np.stack(sig_o))
        res.info["blinks"] = fidelity.blink_check(np.stack(sig_d), np.stack(sig_o))
    res.info.update(n, id_faces=len(id_p), fwe_pairs=int(ok.sum()),
                    id_driver_photo=float(np.mean(id_dp)) if id_dp else None,
                    output_std=fidelity.signal_std(np.stack(sig_o)) if sig_o else {})
    return res


def _fwe_pair(out, img, prev, first, lm) -> tuple[float, float, float]:
    """E_warp(t, t−1) + E_warp(t, first) on the face box of frame t (AP-GAN eq. 14–15): of the
    output with its own flows, of the driver with its own, and of the output with the driver's."""
    x0, y0, x1, y1 = square_box(lm, FWE_BOX, img.shape)
    cut = lambda a: a[y0:y1, x0:x1]
    mask = cut(hull_mask(lm, img.shape))
    unit = metrics._to_unit_float
    o_t, d_t = cut(out), cut(img)
    own = drv = cross = 0.0
    for o_ref, d_ref in (prev, first):
        o_r, d_r = cut(o_ref), cut(d_ref)
        f_fw, f_bw = metrics.optical_flow(o_t, o_r), metrics.optical_flow(o_r, o_t)
        own += metrics._warp_err(unit(o_t), unit(o_r), f_fw, f_bw, mask, "l1")
        f_fw, f_bw = metrics.optical_flow(d_t, d_r), metrics.optical_flow(d_r, d_t)
        drv += metrics._warp_err(unit(d_t), unit(d_r), f_fw, f_bw, mask, "l1")
        cross += metrics._warp_err(unit(o_t), unit(o_r), f_fw, f_bw, mask, "l1")
    return own, drv, cross
