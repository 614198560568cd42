"""Enrollment of a video: a 20–60 s clip of the target → a video profile with an appearance
atlas (tier 2, realtime/atlas.py). No training.

    python run.py enroll CLIP.mp4 --name NAME

Two passes over the clip (nothing but landmarks and a few numbers per frame is kept between
them, so a long clip needs little memory):

1. **Track** every frame (MediaPipe Face Mesh in tracking mode, progress bar) and measure per
   frame: the query point q (realtime.tiers.atlas.query.query_from_landmarks), sharpness, skin colour; every
   `multi_face_every` frames a detection-mode tracker counts the faces.
2. **Reject** frames (each rule is one line of `_reject`, counts end up in the profile's
   settings):
   - ``no_face``   — no face tracked, or within one frame of a tracking loss (re-acquired
     tracks jump);
   - ``multi_face`` — a second face in the picture (checked periodically, the whole
     neighbourhood of a positive check is dropped);
   - ``blurred``   — variance of the Laplacian of the face (resampled to 96² by its landmark
     box, so it does not depend on the face size) below `blur_fraction` × the clip's median;
   - ``unsteady``  — low landmark confidence: the frame's landmarks jump away from the mean of
     its two neighbours by more than `jump_factor` × the clip's median jump (and more than
     `jump_floor` interoculars);
   - ``occluded``  — a hand or object over the face shows up in two cheap ways: the rigid
     points (forehead, nose bridge, eye corners, temples) deform in the canonical frame, or the
     mean colour of five skin patches (cheeks, forehead, nose, chin) departs from the clip's
     median; either a robust z-score above `occlusion_z` (and an absolute floor) rejects.
3. **Reference** frame: the most neutral, frontal, sharp frame of typical size (small |yaw|,
   |pitch|, closed mouth, open eyes, interocular near the clip's median: the avatar keeps the
   reference's framing) becomes an ordinary warp-tier profile (profiles.enroll.build_profile),
   so everything an image profile does works for a video profile too.
4. **Keyframes**: non-maximum suppression over q with a k-d tree (the sharpest, least rolled
   frame within `prune_radius` of another wins), then farthest-point sampling down to
   `max_keyframes`, seeded with the reference, so the keyframes cover the clip's range of
   views and expressions. A clip needs at least 5 usable frames. The radius is small (0.03,
   about 1° of yaw): the query does not see everything that makes two frames look alike (lip
   shape at one opening, light as the head moves through the room), and the region pickers
   choose among the keyframes by lip and eye shape, so they need many to choose from. On
   s18's self-reenactment (first half, 141 frames), 0.1 kept 8 real keyframes and 0.03
   keeps 24 (each with a mirrored copy): mouth PSNR +0.4 dB.
5. **Flip**: a keyframe's mirror image (landmarks re-indexed by topology.MIRROR, yaw → −yaw) is
   added where no real keyframe lies within `flip_radius` of its mirrored query (fills a
   one-sided yaw range, FSGAN §3.6).
6. **Colour**: exposure and white-balance drift across the clip is removed from the keyframes,
   so the blend does not flicker as it moves between them, while the view-dependent shading
   stays: the skin colour (Lab mean of five patches) of the usable frames is fitted linearly on
   (yaw, pitch), and each keyframe is shifted (in Lab, clamped to `max_colour_shift`) by what the
   fit expects for its view minus what it measured, less a dead band (`colour_deadband`:
   expressions change the patches a little too; on the evaluation clips, which have no
   exposure drift, the fit's residuals stay under 1.2 units at p95, so nothing changes).
   Matching every keyframe to the reference's colour statistics instead cost 0.1–0.3 dB in
   self-reenactment: a turned face really is darker on one side.
7. **Triangulate** (Delaunay over the query dimensions that vary, realtime.tiers.atlas.query.AtlasMap) and
   store everything as plain arrays in the profile (`atlas_*`, see profiles/format.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from profiles.enroll import (IMAGE_EXTS, MAX_SIDE, MIN_INTEROCULAR_PX, EnrollError, build_profile,
                             check_name, enroll_image)
from profiles.format import Profile, profiles_root, save
from realtime.face import geometry, topology
from realtime.tiers.atlas.query import DIM_NAMES, AtlasMap, mirror_landmarks, query_from_landmarks
from realtime.face.track import Tracker
from realtime.face.track import find_face_boxes

VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
MIN_GOOD_FRAMES = 5
SKIN_PATCHES = (50, 280, 151, 6, 199)  # right cheek, left cheek, forehead, nose bridge, chin


@dataclass
class VideoEnrollConfig:
    max_keyframes: int = 48        # real keyframes (mirrored copies come on top)
    prune_radius: float = 0.03     # near-duplicate radius in query units (see below)
    flip_radius: float = 0.2       # add a mirror where no real keyframe is this close
    max_flipped: int = 24
    atlas_scale: float = 0.75      # keyframe crop side / profile crop size
    crop_margin: float = 1.25      # keyframe crop side / face landmark box side
    colour: bool = True            # remove exposure / white-balance drift between keyframes
    max_colour_shift: float = 10.0  # Lab units
    colour_deadband: float = 2.0   # Lab units of drift left alone (patch noise, expressions)
    blur_fraction: float = 0.5
    jump_factor: float = 4.0
    jump_floor: float = 0.01       # interoculars
    occlusion_z: float = 5.0
    multi_face_every: int = 15
    min_interocular_px: float = MIN_INTEROCULAR_PX


# ------------------------------------------------------------------------------- reading

def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise EnrollError(f"no such file: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise EnrollError(f"cannot open {path} as a video (supported: {', '.join(sorted(VIDEO_EXTS))})")
    return cap


def read_frames(path: Path, start: int = 0, stop: int | None = None):
    """(index, RGB uint8) for frames [start, stop), longest side capped at MAX_SIDE."""
    cap = _open(path)
    try:
        i = 0
        while stop is None or i < stop:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            if i >= start:
                scale = MAX_SIDE / max(bgr.shape[:2])
                if scale < 1.0:
                    bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                yield i, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()


def _count(path: Path) -> int | None:
    cap = _open(path)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    cap.release()
    return n if n > 0 else None


def _progress(total, desc, enabled):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", leave=False, disable=not enabled)


# ------------------------------------------------------------------------------- pass 1

@dataclass
class ClipTrack:
    """What pass 1 measures per frame (F frames; rows of untracked frames are NaN)."""

    frames: np.ndarray      # (F,) source frame indices
    landmarks: np.ndarray   # (F, 478, 3) float32 image pixels
    query: np.ndarray       # (F, 4)
    roll: np.ndarray        # (F,) degrees
    sharpness: np.ndarray   # (F,)
    colour: np.ndarray      # (F, 3) Lab mean of the skin patches
    faces: np.ndarray       # (F,) int8 faces found by the periodic check, −1 unchecked
    size: tuple[int, int]   # (width, height) after the MAX_SIDE cap
    fps: float


def _face_box(lm: np.ndarray) -> tuple[float, float, float]:
    xy = lm[: topology.N_MESH, :2]
    lo, hi = xy.min(0), xy.max(0)
    c = (lo + hi) / 2.0
    return float(c[0]), float(c[1]), float(max(hi - lo))


def _square(img: np.ndarray, cx: float, cy: float, side: float, size: int,
            interpolation=None) -> tuple[np.ndarray, float, np.ndarray]:
    """A size×size resample of the square box (centre, side) of `img`, border replicated;
    returns (crop, scale, origin) with crop px = (image px − origin + 0.5)·scale − 0.5."""
    side_i = max(2, int(np.ceil(side)))
    x0 = int(np.floor(cx - side_i / 2.0))
    y0 = int(np.floor(cy - side_i / 2.0))
    h, w = img.shape[:2]
    pad = [max(0, -y0), max(0, y0 + side_i - h), max(0, -x0), max(0, x0 + side_i - w)]
    sub = img[max(0, y0):min(h, y0 + side_i), max(0, x0):min(w, x0 + side_i)]
    if any(pad):
        sub = cv2.copyMakeBorder(sub, *pad, borderType=cv2.BORDER_REPLICATE)
    scale = size / side_i
    if interpolation is None:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = cv2.resize(sub, (size, size), interpolation=interpolation)
    return crop, scale, np.array([x0, y0], np.float64)


def _sharpness(rgb: np.ndarray, lm: np.ndarray) -> float:
    cx, cy, side = _face_box(lm)
    crop, _, _ = _square(rgb, cx, cy, side * 0.9, 96)
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def _skin_colour(rgb: np.ndarray, lm: np.ndarray) -> np.ndarray:
    r = max(2, int(round(0.05 * geometry.interocular(lm))))
    h, w = rgb.shape[:2]
    vals = []
    for i in SKIN_PATCHES:
        x, y = int(round(lm[i, 0])), int(round(lm[i, 1]))
        patch = rgb[max(0, y - r):min(h, y + r + 1), max(0, x - r):min(w, x + r + 1)]
        if patch.size:
            vals.append(patch.reshape(-1, 3).mean(0))
    if not vals:
        return np.full(3, np.nan)
    mean = np.float32(np.mean(vals, 0) / 255.0).reshape(1, 1, 3)
    return cv2.cvtColor(mean, cv2.COLOR_RGB2Lab).reshape(3).astype(np.float64)


def track_clip(path: Path, start: int = 0, stop: int | None = None, progress: bool = True,
               multi_face_every: int = 15) -> ClipTrack:
    """Pass 1: track frames [start, stop) of the clip and measure each (see module doc)."""
    n = _count(path)
    total = None if n is None else max(0, min(n, stop if stop is not None else n) - start)
    rows = []
    size, fps = None, 30.0
    cap = _open(path)
    f = cap.get(cv2.CAP_PROP_FPS)
    fps = float(f) if f and np.isfinite(f) and f > 0 else 30.0
    cap.release()
    nan_lm = np.full((topology.N_LANDMARKS, 3), np.nan, np.float32)
    with Tracker(static=False) as tracker, Tracker(static=True, max_faces=2, min_detection_confidence=0.7) as checker, \
            _progress(total, f"tracking {path.name}", progress) as bar:
        for k, (i, rgb) in enumerate(read_frames(path, start, stop)):
            size = (rgb.shape[1], rgb.shape[0])
            lm = tracker(rgb)
            faces = -1
            if multi_face_every and k % multi_face_every == 0:
                faces = len(checker.detect_all(rgb))
            if lm is None:
                rows.append((i, nan_lm, np.full(4, np.nan), np.nan, np.nan, np.full(3, np.nan), faces))
            else:
                fr = geometry.face_frame(lm)
                roll = geometry.euler_from_rotation(fr.rotation)[2]
                rows.append((i, lm, query_from_landmarks(lm), roll, _sharpness(rgb, lm),
                             _skin_colour(rgb, lm), faces))
            bar.update(1)
    if not rows:
        raise EnrollError(f"no frame could be decoded from {path.name}"
                          + (f" in frames {start}..{stop}" if start or stop else ""))
    cols = list(zip(*rows))
    return ClipTrack(frames=np.array(cols[0], np.int64),
                     landmarks=np.stack(cols[1]).astype(np.float32),
                     query=np.stack(cols[2]).astype(np.float64),
                     roll=np.array(cols[3], np.float64),
                     sharpness=np.array(cols[4], np.float64),
                     colour=np.stack(cols[5]).astype(np.float64),
                     faces=np.array(cols[6], np.int8), size=size, fps=fps)


# ------------------------------------------------------------------------------- rejection

def _robust_z(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    med = np.median(x[valid])
    mad = 1.4826 * np.median(np.abs(x[valid] - med)) + 1e-12
    return (x - med) / mad


def _reject(track: ClipTrack, cfg: VideoEnrollConfig) -> tuple[np.ndarray, dict[str, int]]:
    """(good (F,) bool, {reason: frames rejected for it}); reasons are checked in order and a
    frame is counted under the first that applies."""
    f = len(track.frames)
    tracked = np.isfinite(track.landmarks[:, 0, 0])
    reasons = np.full(f, "", object)

    def mark(mask, why):
        reasons[(reasons == "") & mask] = why

    near_loss = ~tracked.copy()
    near_loss[1:] |= ~tracked[:-1]
    near_loss[:-1] |= ~tracked[1:]
    mark(near_loss, "no_face")

    multi = np.zeros(f, bool)
    half = max(1, cfg.multi_face_every)
    for k in np.nonzero(track.faces >= 2)[0]:
        multi[max(0, k - half):k + half + 1] = True
    mark(multi, "multi_face")

    ok = tracked
    if ok.sum() >= 3:
        sharp = track.sharpness
        mark(ok & (sharp < cfg.blur_fraction * np.median(sharp[ok])), "blurred")

        lm = track.landmarks[:, : topology.N_MESH, :2].astype(np.float64)
        iod = np.array([geometry.interocular(l) if t else np.nan for l, t in zip(track.landmarks, ok)])
        jump = np.full(f, np.nan)
        both = ok[:-2] & ok[1:-1] & ok[2:]
        mid = 0.5 * (lm[:-2] + lm[2:])
        d = np.median(np.linalg.norm(lm[1:-1] - mid, axis=2), axis=1) / iod[1:-1]
        jump[1:-1] = np.where(both, d, np.nan)
        jv = np.isfinite(jump)
        if jv.sum() >= 3:
            limit = max(cfg.jump_factor * np.median(jump[jv]), cfg.jump_floor)
            mark(jv & (jump > limit), "unsteady")

        rigid = list(topology.RIGID)
        canon = np.full((f, len(rigid), 3), np.nan)
        for i in np.nonzero(ok)[0]:
            fr = geometry.face_frame(track.landmarks[i])
            canon[i] = fr.invert_points(track.landmarks[i, rigid].astype(np.float64))
        ref = np.nanmedian(canon[ok], axis=0)
        dev = np.sqrt(((canon - ref) ** 2).sum(2).mean(1))
        z = _robust_z(np.nan_to_num(dev, nan=0.0), ok)
        shape_bad = ok & (z > cfg.occlusion_z) & (dev > 0.03)
        colour = track.colour
        cv = ok & np.isfinite(colour).all(1)
        if cv.sum() >= 3:
            de = np.linalg.norm(colour - np.median(colour[cv], axis=0), axis=1)
            de = np.nan_to_num(de, nan=0.0)
            colour_bad = cv & (_robust_z(de, cv) > cfg.occlusion_z) & (de > 10.0)
        else:
            colour_bad = np.zeros(f, bool)
        mark(shape_bad | colour_bad, "occluded")

    good = reasons == ""
    counts = {k: int((reasons == k).sum()) for k in ("no_face", "multi_face", "blurred",
                                                     "unsteady", "occluded")}
    return good, counts


def _refuse_small_or_absent(track: ClipTrack, path: Path, cfg: VideoEnrollConfig,
                            start: int, stop: int | None) -> None:
    """EnrollError when the face cannot be animated: never tracked, tracked too rarely (a face
    too small for Face Mesh), several people, or an interocular distance below the minimum."""
    tracked = np.isfinite(track.landmarks[:, 0, 0])
    name = path.name
    checked = track.faces >= 0
    if checked.sum() >= 2 and (track.faces[checked] >= 2).mean() > 0.5:
        raise EnrollError(f"{name} shows several faces in most frames; use a clip of one person")
    if tracked.mean() < 0.3:
        mid = len(track.frames) // 2
        boxes = []
        for _, rgb in read_frames(path, start + mid, start + mid + 1):
            boxes = find_face_boxes(rgb)
        w, h = track.size
        if boxes:
            side = max(boxes[0][2], boxes[0][3])
            raise EnrollError(
                f"the face in {name} is too small to track: Face Mesh finds it in "
                f"{100 * tracked.mean():.0f}% of the frames; the face detector sees it about "
                f"{side:.0f} px wide in a {w}x{h} frame (Face Mesh needs a face about a fifth of "
                f"the frame wide or more); crop the video around the face or film closer")
        raise EnrollError(f"no human face found in {name} "
                          f"({100 * tracked.mean():.0f}% of frames tracked); use a clip where one "
                          f"face is clearly visible")
    iod = np.median([geometry.interocular(l) for l in track.landmarks[tracked]])
    if iod < cfg.min_interocular_px:
        raise EnrollError(f"the face in {name} is too small: {iod:.0f} px between the eye corners "
                          f"(median), need at least {cfg.min_interocular_px:.0f}; film closer")


# ------------------------------------------------------------------------------- selection

def choose_reference(query: np.ndarray, sharpness: np.ndarray, good: np.ndarray,
                     size: np.ndarray | None = None) -> int:
    """Index of the most neutral frontal sharp frame among `good`: small |yaw|, |pitch|, mouth
    closed, eyes open (relative to the clip's median), sharpness at least the median, and (when
    `size`, e.g. the interocular distance per frame, is given) a head size near the clip's
    median — the avatar keeps the reference's framing, so a typical one is best."""
    idx = np.nonzero(good)[0]
    if len(idx) == 0:
        raise ValueError("no good frame to choose a reference from")
    q = query[idx]
    eye_med = np.median(q[:, 3])
    score = (np.abs(q[:, 0]) + np.abs(q[:, 1]) + 2.0 * np.clip(q[:, 2], 0, None)
             + 2.0 * np.clip(eye_med - q[:, 3], 0, None))
    if size is not None:
        sz = np.asarray(size, np.float64)[idx]
        score = score + 5.0 * np.abs(np.log(sz / np.median(sz)))  # 10 % off ≈ 15° of yaw
    sharp = sharpness[idx]
    score = score + np.where(sharp >= np.median(sharp), 0.0, 1.0)
    return int(idx[int(np.argmin(score))])


def select_keyframes(query: np.ndarray, candidates: np.ndarray, quality: np.ndarray,
                     reference: int, max_keyframes: int = 48, radius: float = 0.1) -> np.ndarray:
    """Keyframe indices (the reference first) covering the candidates' query points.

    Non-maximum suppression with a k-d tree (a candidate within `radius` of a better one —
    higher `quality` — is dropped; the reference suppresses its neighbours first), then
    farthest-point sampling down to `max_keyframes`, seeded with the reference.
    """
    from scipy.spatial import cKDTree

    cand = np.asarray([c for c in np.asarray(candidates) if c != reference], np.int64)
    pts = query[cand]
    tree = cKDTree(pts) if len(cand) else None
    suppressed = np.zeros(len(cand), bool)
    kept = [reference]
    if tree is not None:
        suppressed[tree.query_ball_point(query[reference], radius)] = True
        for j in np.argsort(-quality[cand], kind="stable"):
            if suppressed[j]:
                continue
            kept.append(int(cand[j]))
            suppressed[tree.query_ball_point(pts[j], radius)] = True
    kept = np.asarray(kept, np.int64)
    if len(kept) <= max_keyframes:
        return kept
    chosen = [0]
    dist = np.linalg.norm(query[kept] - query[kept[0]], axis=1)
    while len(chosen) < max_keyframes:
        j = int(np.argmax(dist))
        chosen.append(j)
        dist = np.minimum(dist, np.linalg.norm(query[kept] - query[kept[j]], axis=1))
    return kept[chosen]


def flips_needed(real_query: np.ndarray, mirrored_query: np.ndarray, radius: float,
                 limit: int, prune: float = 0.1) -> np.ndarray:
    """Indices of the keyframes whose mirrored query lies farther than `radius` from every
    real keyframe (and farther than `prune` from every mirror already taken), farthest first,
    at most `limit`."""
    from scipy.spatial import cKDTree

    if len(real_query) == 0 or limit <= 0:
        return np.zeros(0, np.int64)
    d, _ = cKDTree(real_query).query(mirrored_query)
    order = [int(i) for i in np.argsort(-d, kind="stable") if d[i] > radius]
    taken: list[int] = []
    for i in order:
        if len(taken) >= limit:
            break
        if taken and np.min(np.linalg.norm(mirrored_query[taken] - mirrored_query[i], axis=1)) <= prune:
            continue
        taken.append(i)
    return np.asarray(taken, np.int64)


# ------------------------------------------------------------------------------- crops

def exposure_model(query: np.ndarray, colour: np.ndarray, good: np.ndarray) -> np.ndarray:
    """(3, 3) least-squares fit of the skin colour (Lab) on (1, yaw, pitch) over the good
    frames: the colour a frame of that view should have. What it does not explain (camera
    auto-exposure and white-balance drift, a passing shadow) is what `shift_colour` removes;
    the part that does depend on the view (the lit side of the face) stays."""
    ok = good & np.isfinite(colour).all(1) & np.isfinite(query[:, :2]).all(1)
    if ok.sum() < 6:
        return np.vstack([np.nanmedian(colour[ok], axis=0) if ok.any() else np.zeros(3),
                          np.zeros(3), np.zeros(3)])
    design = np.column_stack([np.ones(ok.sum()), query[ok, 0], query[ok, 1]])
    coef, *_ = np.linalg.lstsq(design, colour[ok], rcond=None)
    return coef


def expected_colour(model: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.array([1.0, q[0], q[1]]) @ model


def shift_colour(rgb: np.ndarray, delta_lab: np.ndarray) -> np.ndarray:
    """`rgb` with `delta_lab` (L, a, b) added to every pixel (Lab of float RGB in [0, 1])."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab += np.asarray(delta_lab, np.float32)
    out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def keyframe_crop(rgb: np.ndarray, lm: np.ndarray, size: int, margin: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(size×size RGB face crop, (478, 3) landmarks in its pixels)."""
    cx, cy, side = _face_box(lm)
    crop, s, origin = _square(rgb, cx, cy, side * margin, size)
    out = np.asarray(lm, np.float64).copy()
    out[:, :2] = (out[:, :2] - origin + 0.5) * s - 0.5
    out[:, 2] *= s
    return crop, out.astype(np.float32)


# ------------------------------------------------------------------------------- building

def build_video_profile(path: str | Path, name: str, crop_size: int = 256,
                        start: int = 0, stop: int | None = None,
                        config: VideoEnrollConfig | None = None,
                        progress: bool = True) -> Profile:
    """The atlas-tier profile of frames [start, stop) of the clip at `path` (no saving)."""
    path = Path(path)
    cfg = config or VideoEnrollConfig()
    track = track_clip(path, start, stop, progress, cfg.multi_face_every)
    _refuse_small_or_absent(track, path, cfg, start, stop)
    good, rejected = _reject(track, cfg)
    if good.sum() < MIN_GOOD_FRAMES:
        raise EnrollError(f"{path.name}: only {int(good.sum())} usable frames of {len(good)} "
                          f"(rejected: {', '.join(f'{k} {v}' for k, v in rejected.items() if v)}); "
                          f"use a steadier, sharper clip of one face")
    q = track.query
    iod = np.array([geometry.interocular(lm) if ok else np.nan
                    for lm, ok in zip(track.landmarks, np.isfinite(track.landmarks[:, 0, 0]))])
    ref = choose_reference(q, track.sharpness, good, iod)
    sharp = np.nan_to_num(track.sharpness, nan=0.0)
    quality = sharp / max(np.median(sharp[good]), 1e-9) - 0.05 * np.abs(np.nan_to_num(track.roll))
    keys = select_keyframes(q, np.nonzero(good)[0], quality, ref, cfg.max_keyframes,
                            cfg.prune_radius)

    # Pass 2: the reference image and the keyframe crops.
    atlas_size = int(round(crop_size * cfg.atlas_scale / 8.0)) * 8
    wanted = {int(track.frames[k]): k for k in keys}
    crops: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    ref_rgb = None
    with _progress(len(wanted), "keyframes", progress) as bar:
        last = max(wanted)
        for i, rgb in read_frames(path, start, last + 1):
            k = wanted.get(i)
            if k is None:
                continue
            if k == ref:
                ref_rgb = rgb
            crops[k] = keyframe_crop(rgb, track.landmarks[k], atlas_size, cfg.crop_margin)
            bar.update(1)
    if ref_rgb is None or len(crops) != len(keys):
        raise EnrollError(f"{path.name} changed while it was read (frames missing in the second "
                          f"pass)")

    images = [crops[k][0] for k in keys]
    lms = [crops[k][1] for k in keys]
    shifts = np.zeros((len(keys), 3))
    if cfg.colour:
        model = exposure_model(q, track.colour, good)
        band = cfg.colour_deadband  # what expressions do to the patches stays
        for j, k in enumerate(keys):
            if np.isfinite(track.colour[k]).all():
                d = expected_colour(model, q[k]) - track.colour[k]
                d = np.sign(d) * np.clip(np.abs(d) - band, 0.0, cfg.max_colour_shift)
                shifts[j] = d
                if np.abs(d).max() > 0.0:
                    images[j] = shift_colour(images[j], d)
    queries = [query_from_landmarks(l) for l in lms]
    frames = [int(track.frames[k]) for k in keys]
    flipped = [0] * len(keys)

    mirrored = [mirror_landmarks(l, atlas_size) for l in lms]
    mq = np.array([query_from_landmarks(m) for m in mirrored])
    for j in flips_needed(np.array(queries), mq, cfg.flip_radius, cfg.max_flipped,
                          cfg.prune_radius):
        images.append(np.ascontiguousarray(images[j][:, ::-1]))
        lms.append(mirrored[j])
        queries.append(mq[j])
        frames.append(frames[j])
        flipped.append(1)

    query = np.array(queries, np.float64)
    amap = AtlasMap.build(query)
    profile = build_profile(ref_rgb, track.landmarks[ref], name=name, source=path.name,
                            crop_size=crop_size, kind="video")
    arrays = dict(profile.arrays)
    arrays.update({
        "atlas_images": np.ascontiguousarray(np.stack(images), dtype=np.uint8),
        "atlas_landmarks": np.stack(lms).astype(np.float32),
        "atlas_query": query.astype(np.float32),
        "atlas_dims": amap.dims.astype(np.int32),
        "atlas_simplices": amap.simplices.astype(np.int32),
        "atlas_flipped": np.array(flipped, np.uint8),
        "atlas_frames": np.array(frames, np.int32),
    })
    lo, hi = query.min(0), query.max(0)
    settings = {
        "atlas": {
            "frames": int(len(track.frames)),
            "frame_range": [int(track.frames[0]), int(track.frames[-1])],
            "fps": float(track.fps),
            "usable_frames": int(good.sum()),
            "rejected": rejected,
            "reference_frame": int(track.frames[ref]),
            "keyframes": int(len(keys)),
            "flipped": int(sum(flipped)),
            "simplices": int(len(amap.simplices)),
            "dims": [DIM_NAMES[d] for d in amap.dims],
            "query_range": {DIM_NAMES[d]: [round(float(lo[d]), 3), round(float(hi[d]), 3)]
                            for d in range(4)},
            "crop_size": atlas_size,
            "colour_shift_max": round(float(np.abs(shifts).max()), 2),
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        },
    }
    return Profile(name=name, kind="video", source=path.name, arrays=arrays, tier="atlas",
                   crop_size=crop_size, settings=settings)


def enroll_video(path: str | Path, name: str, root: Path | None = None, crop_size: int = 256,
                 force: bool = False, config: VideoEnrollConfig | None = None,
                 progress: bool = True, start: int = 0, stop: int | None = None) -> Path:
    """Enroll a clip of the target as profile `name` (tier atlas); returns the folder."""
    path = Path(path)
    check_name(name)
    folder = (root or profiles_root()) / name
    if folder.exists() and not force:
        raise EnrollError(f"profile {name!r} exists already at {folder} (add --force to replace it)")
    profile = build_video_profile(path, name, crop_size=crop_size, start=start, stop=stop,
                                  config=config, progress=progress)
    return save(profile, folder, overwrite=force)


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def enroll(path: str | Path, name: str, root: Path | None = None, crop_size: int = 256,
           force: bool = False, progress: bool = True, start: int = 0,
           stop: int | None = None) -> Path:
    """Enroll a photo (warp-tier profile) or a clip (atlas-tier profile), by file extension."""
    suffix = Path(path).suffix.lower()
    if suffix in VIDEO_EXTS:
        return enroll_video(path, name, root=root, crop_size=crop_size, force=force,
                            progress=progress, start=start, stop=stop)
    if suffix in IMAGE_EXTS:
        return enroll_image(path, name, root=root, crop_size=crop_size, force=force)
    raise EnrollError(f"{Path(path).name}: unknown file type {suffix or '(none)'!r}; enroll a photo "
                      f"({', '.join(sorted(IMAGE_EXTS))}) or a video ({', '.join(sorted(VIDEO_EXTS))})")
