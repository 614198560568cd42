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
   - ``another_person`` — a shot (the clip cut where the face jumps or comes back) of someone
     else than the person seen longest (profiles.persons: dlib face descriptors of a few frames
     per shot, or the skull's shape without dlib; a note names the frames and how to enroll
     the other person with --frames). A clip of one shot costs nothing more; these frames are
     also left out of the medians the rules below compare with;
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

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from profiles.clip import (
    VIDEO_EXTS,
    ClipTrack,
    face_box,
    frame_count,
    progress_bar,
    read_frames,
    square_crop,
    track_clip,
)
from profiles.enroll import (
    EnrollError,
    build_profile,
    claim,
    consent_text,
    enroll_image,
    save_enrolled,
)
from profiles.format import Profile, ProfileError
from profiles.keyframes import (
    MIN_GOOD_FRAMES,
    VideoEnrollConfig,
    _refuse_small_or_absent,
    _reject,
    choose_reference,
    expected_colour,
    exposure_model,
    flips_needed,
    select_keyframes,
    shift_colour,
)
from profiles.persons import check_people, print_notes, spans_of
from profiles.schema import printable
from realtime.core.paths import IMAGE_SUFFIXES, sha256_file
from realtime.face import geometry
from realtime.tiers.atlas.query import (
    DIM_NAMES,
    AtlasMap,
    mirror_landmarks,
    query_from_landmarks,
)

__all__ = ["VideoEnrollConfig", "build_video_profile", "enroll_video", "enroll", "is_video", "check_source_clip",
           "read_frames", "track_clip", "ClipTrack", "VIDEO_EXTS", "MIN_GOOD_FRAMES"]


def keyframe_crop(rgb: np.ndarray, lm: np.ndarray, size: int, margin: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(size×size RGB face crop, (478, 3) landmarks in its pixels)."""
    cx, cy, side = face_box(lm)
    crop, s, origin = square_crop(rgb, cx, cy, side * margin, size)
    out = np.asarray(lm, np.float64).copy()
    out[:, :2] = (out[:, :2] - origin + 0.5) * s - 0.5
    out[:, 2] *= s
    return crop, out.astype(np.float32)


# ------------------------------------------------------------------------------- building

def _refuse_too_few(path: Path, good: np.ndarray, rejected: dict[str, int]) -> None:
    """EnrollError when fewer than MIN_GOOD_FRAMES of the frames are usable: how many are, the
    minimum, the rejection counts (only those that rejected something) and what to do (fewer
    frames than the minimum, or none rejected: more frames; else a better clip)."""
    usable = int(good.sum())
    if usable >= MIN_GOOD_FRAMES:
        return
    why = ", ".join(f"{k} {v}" for k, v in rejected.items() if v)
    fix = ("use a steadier, sharper clip of one face" if why and len(good) >= MIN_GOOD_FRAMES
           else "enroll more frames (a 20-60 s clip)")
    raise EnrollError(f"{path.name}: only {usable} usable frame{'s' if usable != 1 else ''} of {len(good)}"
                      f"{f' (rejected: {why})' if why else ''}, need at least {MIN_GOOD_FRAMES}; "
                      f"{fix}")


def build_video_profile(path: str | Path, name: str, crop_size: int = 256,
                        start: int = 0, stop: int | None = None,
                        config: VideoEnrollConfig | None = None,
                        progress: bool = True) -> Profile:
    """The atlas-tier profile of frames [start, stop) of the clip at `path` (no saving)."""
    path = Path(path)
    cfg = config or VideoEnrollConfig()
    track = track_clip(path, start, stop, progress, cfg.multi_face_every)
    _refuse_small_or_absent(track, path, cfg, start, stop)
    people = check_people(path, track, distance=cfg.person_distance, samples=cfg.person_samples,
                          shape_distance=cfg.person_shape_distance,
                          shape_frames=cfg.person_shape_frames, progress=progress)
    print_notes(people)
    good, rejected = _reject(track, cfg, people.others)
    _refuse_too_few(path, good, rejected)
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
    with progress_bar(len(wanted), "keyframes", progress) as bar:
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
            # the clip itself, so that `train` can tell it from another (--other-video)
            "source_sha256": sha256_file(path),
            "source_bytes": int(path.stat().st_size),
            **({"source_frames": int(n)} if (n := frame_count(path)) else {}),
            "keyframes": int(len(keys)),
            "flipped": int(sum(flipped)),
            "simplices": int(len(amap.simplices)),
            "dims": [DIM_NAMES[d] for d in amap.dims],
            "query_range": {DIM_NAMES[d]: [round(float(lo[d]), 3), round(float(hi[d]), 3)]
                            for d in range(4)},
            "crop_size": atlas_size,
            "colour_shift_max": round(float(np.abs(shifts).max()), 2),
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
            # the frames of someone else (profiles.persons), which `train` leaves out too
            **({"other_people": spans_of(track.frames, people.others, np.isfinite(track.landmarks[:, 0, 0]))}
               if people.others.any() else {}),
        },
    }
    return Profile(name=name, kind="video", source=path.name, arrays=arrays, tier="atlas",
                   crop_size=crop_size, settings=settings)


def enroll_video(path: str | Path, name: str, root: Path | None = None, crop_size: int = 256,
                 force: bool = False, config: VideoEnrollConfig | None = None,
                 progress: bool = True, start: int = 0, stop: int | None = None,
                 consent: str | None = None) -> Path:
    """Enroll a clip of the target as profile `name` (tier atlas), with a consent record when
    `consent` (who agreed and how) is given; returns the folder."""
    path = Path(path)
    consent = consent_text(consent)
    with claim(name, root, force) as folder:
        profile = build_video_profile(path, name, crop_size=crop_size, start=start, stop=stop,
                                      config=config, progress=progress)
        return save_enrolled(profile, folder, force, consent)


def check_source_clip(profile: Profile, path: Path, other: bool = False) -> bool:
    """Whether the clip at `path` is the one `profile` was enrolled from: its sha256 as recorded
    at enrollment (settings.atlas.source_sha256; the file name for profiles enrolled before it
    was recorded). ProfileError where it is not, unless `other` (train --other-video), which
    accepts any video (and is False for it unless it is that clip, by the same test)."""
    name = printable(path.name)
    if path.suffix.lower() not in VIDEO_EXTS:
        raise ProfileError(f"{name} is not a video ({', '.join(sorted(VIDEO_EXTS))}); train on the "
                           f"clip profile {profile.name!r} was enrolled from ({profile.source})")
    recorded = (profile.settings.get("atlas") or {}).get("source_sha256")
    same = sha256_file(path) == recorded if recorded is not None else path.name == profile.source
    if other:
        return same
    if not same:
        raise ProfileError(f"{name} is not the clip profile {profile.name!r} was enrolled from "
                           f"({profile.source}{', sha256 differs' if recorded else ''}); train on "
                           f"that clip, or pass --other-video to train on this one anyway")
    return True


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def enroll(path: str | Path, name: str, root: Path | None = None, crop_size: int = 256,
           force: bool = False, progress: bool = True, start: int = 0,
           stop: int | None = None, consent: str | None = None) -> Path:
    """Enroll a photo (warp-tier profile) or a clip (atlas-tier profile), by file extension; a
    `consent` text is checked before anything is read and saved with the profile."""
    if os.path.isdir(path):          # (never raises, unlike Path.is_dir on an overlong name)
        raise EnrollError(f"{str(path)!r} is a folder; name a photo or video file inside it")
    suffix = Path(path).suffix.lower()
    if suffix in VIDEO_EXTS:
        return enroll_video(path, name, root=root, crop_size=crop_size, force=force,
                            progress=progress, start=start, stop=stop, consent=consent)
    if suffix in IMAGE_SUFFIXES:
        return enroll_image(path, name, root=root, crop_size=crop_size, force=force, consent=consent)
    raise EnrollError(f"{Path(path).name}: unknown file type {suffix or '(none)'!r}; enroll a photo "
                      f"({', '.join(sorted(IMAGE_SUFFIXES))}) or a video ({', '.join(sorted(VIDEO_EXTS))})")
