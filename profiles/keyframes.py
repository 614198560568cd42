"""Passes 2–6 of video enrollment: reject unusable frames, choose the reference and the
keyframes, add mirrored views, even out exposure. Plain functions on arrays (no I/O but the
zoomed face search of `_refuse_small_or_absent`); see `profiles.enroll_video` for the rules."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial import cKDTree

from profiles.clip import ClipTrack, read_frames
from profiles.enroll import (
    MIN_INTEROCULAR_PX,
    EnrollError,
)
from realtime.face import geometry, topology
from realtime.face.track import find_face_boxes

MIN_GOOD_FRAMES = 5


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
    # One person per profile (profiles.persons): a clip's shots are grouped by dlib's face
    # descriptor distance (mean of `person_samples` frames per shot), or, without dlib, by the
    # skull's shape (interoculars; shots of fewer tracked frames than `person_shape_frames`
    # are not judged so).
    person_distance: float = 0.38
    person_samples: int = 3
    person_shape_distance: float = 0.03
    person_shape_frames: int = 10



# ------------------------------------------------------------------------------- rejection

def _robust_z(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    med = np.median(x[valid])
    mad = 1.4826 * np.median(np.abs(x[valid] - med)) + 1e-12
    return (x - med) / mad


#: The reasons a frame is left out, in the order they are checked (settings.atlas.rejected).
REASONS = ("no_face", "another_person", "multi_face", "blurred", "unsteady", "occluded")


def _reject(track: ClipTrack, cfg: VideoEnrollConfig, others: np.ndarray | None = None
            ) -> tuple[np.ndarray, dict[str, int]]:
    """(good (F,) bool, {reason: frames rejected for it}); reasons are checked in order and a
    frame is counted under the first that applies. `others` (F,) bool marks the frames of
    another person than the profile's (profiles.persons): rejected, and left out of the
    clip's medians the other rules compare with."""
    f = len(track.frames)
    tracked = np.isfinite(track.landmarks[:, 0, 0])
    others = np.zeros(f, bool) if others is None else np.asarray(others, bool)
    reasons = np.full(f, "", object)

    def mark(mask, why):
        reasons[(reasons == "") & mask] = why

    near_loss = ~tracked.copy()
    near_loss[1:] |= ~tracked[:-1]
    near_loss[:-1] |= ~tracked[1:]
    mark(near_loss, "no_face")
    mark(tracked & others, "another_person")

    multi = np.zeros(f, bool)
    half = max(1, cfg.multi_face_every)
    for k in np.nonzero(track.faces >= 2)[0]:
        multi[max(0, k - half):k + half + 1] = True
    mark(multi, "multi_face")

    ok = tracked & ~others
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
    counts = {k: int((reasons == k).sum()) for k in REASONS}
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
