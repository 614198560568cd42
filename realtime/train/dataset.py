"""Self-reenactment training pairs for the neural tier (UniFaceGAN §III-C/D, DESIGN §5).

For each usable frame t of the target's own video:
    render R_t  — the tier-2 (atlas) render of frame t's geometry built from OTHER frames: the
                  keyframes within `exclude_s` of t are left out, so the network learns to fill
                  in what the atlas cannot, instead of copying a keyframe that is frame t itself;
    mask  M̂_t  — where the face surface (face, eyes, mouth) covers the crop;
    hint  M     — the profile's reference frame in crop space (the appearance hint);
    target Y_t  — the real frame t in the same crop space;
and between consecutive frames the `flow3d` flow and visibility for the 3-D temporal loss.
Everything is computed once, at the training resolution, and kept in memory.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from kernels import flow3d, rasterize
from realtime.core.errors import ProfileError, PuppeteerError
from realtime.core.frame import Frame
from realtime.core.text import printable
from realtime.face import geometry, topology
from realtime.face.track import Tracker
from realtime.mesh import rig as rig_mod
from realtime.tiers.atlas.query import AtlasMap
from realtime.tiers.registry import make_generator

#: A tracked frame is trained on where at least this share of its face mesh lies inside the
#: profile's crop and its size (between the eyes' outer corners) is within FACE_SCALE of the
#: reference frame's; the frames are refused where fewer than MIN_FITTING of them do so.
MIN_INSIDE = 0.5
FACE_SCALE = (0.5, 2.0)
MIN_FITTING = 0.5


class UnusableFrames(PuppeteerError):
    """The frames cannot be trained on for the profile: none was read, no face was tracked in
    them, or they are not framed as the clip the profile was enrolled from (another frame size,
    or the face elsewhere in the frame, or at another size, than the profile's crop expects, so
    the crops hold no face to train on)."""


@dataclass
class PairSet:
    """Arrays at training resolution R (float32, images in [-1, 1], NCHW)."""

    render: np.ndarray    # (N, 3, R, R)
    mask: np.ndarray      # (N, 1, R, R)
    target: np.ndarray    # (N, 3, R, R)
    hint: np.ndarray      # (1, 3, R, R)
    prev: np.ndarray      # (N,) index of the pair holding frame t−1, or −1
    flow: np.ndarray      # (N, R, R, 2) flow t → t−1 in R-pixels (0 where prev = −1)
    visible: np.ndarray   # (N, R, R) float32
    frames: np.ndarray    # (N,) source frame indices
    skipped: int = 0      # frames with a face not where the crop expects it (left out: `_fitting`)

    def __len__(self) -> int:
        return len(self.render)


#: The face L1 (`render_l1`) above which another clip's faces are not the profile's person. Measured
#: on a profile enrolled from d14's first half at 128²: d14's second half (same person, same
#: recording) 0.054 (frames' 10-90% 0.048-0.062); d10, d0, d11 (other people, same 512² framing)
#: 0.29, 0.34, 0.50.
OTHER_PERSON_L1 = 0.15


def render_l1(pairs: PairSet, index: np.ndarray | None = None) -> float:
    """Mean absolute difference of the atlas renders to the real frames over the face mask, in
    [-1, 1] units, over the pairs `index` (default all): how far the clip's faces are from what
    the profile draws (for more of the profile's own recording a few hundredths, for another
    person tenths), and the base `realtime.train.loop.face_l1` compares a generator with. NaN
    where the mask is empty."""
    index = np.arange(len(pairs.render)) if index is None else np.asarray(index)
    total, weight = 0.0, 0.0
    for lo in range(0, len(index), 16):              # a few pairs at a time: no copy of the set
        part = index[lo:lo + 16]
        diff = np.abs(pairs.render[part] - pairs.target[part]).sum(axis=1, keepdims=True)
        total += float((diff * pairs.mask[part]).sum(dtype=np.float64))
        weight += 3.0 * float(pairs.mask[part].sum(dtype=np.float64))
    return total / weight if weight > 0 else float("nan")


#: The frames `held_out` keeps from training to test the generator on: this share of the
#: frames (at least MIN_HELD_OUT pairs), in up to HELD_OUT_BLOCKS contiguous blocks of at least
#: HELD_OUT_BLOCK_S each spread over the clip, with HELD_OUT_GAP_S on either side of a block
#: trained on neither (neighbouring frames are near copies: a generator that trained on frame
#: t+1 has all but seen frame t). A clip with fewer frames holds none out.
HELD_OUT_SHARE = 0.1
HELD_OUT_BLOCKS = 4
HELD_OUT_BLOCK_S = 1.0
HELD_OUT_GAP_S = 0.25
MIN_HELD_OUT = 8


@dataclass(frozen=True)
class HeldOut:
    """Which pairs `train` trains on and which it tests the generator on (indices into the
    PairSet), and the source frame numbers of the latter (recorded with the checkpoint)."""

    train: np.ndarray       # pair indices trained on
    test: np.ndarray        # pair indices held out (empty: the clip is too short to hold any out)
    gap: int                # pairs beside the held-out blocks, neither trained nor tested on
    frames: tuple           # the source frame numbers of `test`


def held_out(pairs, fps: float = 30.0) -> HeldOut:
    """The fixed, deterministic split of `pairs` (in the order of their source frame numbers,
    `PairSet.frames`; by position where a set has none) into frames trained on and frames held
    out to test the trained generator on (see HELD_OUT_SHARE): the same frames on every run of the
    same clip, so a resumed training never trains on what the earlier runs held out."""
    n = len(pairs)
    if n < MIN_HELD_OUT / HELD_OUT_SHARE:
        return HeldOut(np.arange(n), np.arange(0), 0, ())
    frames = getattr(pairs, "frames", None)
    frames = np.arange(n) if frames is None else np.asarray(frames, np.int64)
    order = np.argsort(frames, kind="stable")
    held = max(MIN_HELD_OUT, int(round(HELD_OUT_SHARE * n)))
    blocks = max(1, min(HELD_OUT_BLOCKS, held // max(1, int(round(HELD_OUT_BLOCK_S * fps)))))
    length = held // blocks
    test = np.zeros(n, bool)
    for i in range(blocks):         # each block the pairs of `length` consecutive frames with a face
        start = int(round((i + 0.5) * n / blocks)) - length // 2
        test[order[start:start + length]] = True
    # and the frames within the gap of a held-out one are trained on neither
    tested = np.sort(frames[test])
    at = np.searchsorted(tested, frames)
    nearest = np.minimum(np.abs(frames - tested[np.clip(at - 1, 0, len(tested) - 1)]),
                         np.abs(frames - tested[np.clip(at, 0, len(tested) - 1)]))
    near = (nearest <= int(round(HELD_OUT_GAP_S * fps))) & ~test
    return HeldOut(np.flatnonzero(~test & ~near), np.flatnonzero(test), int(near.sum()),
                   tuple(int(f) for f in frames[test]))


def _nchw(img: np.ndarray, res: int, interp=cv2.INTER_AREA) -> np.ndarray:
    small = cv2.resize(img.astype(np.float32), (res, res), interpolation=interp)
    if small.ndim == 2:
        return small[None]
    return np.moveaxis(small, 2, 0) / 127.5 - 1.0


def leave_out_profile(profile, frame: int, exclude: int):
    """A copy of `profile` whose atlas has no keyframe taken within `exclude` frames of
    `frame` (mirrored copies count as their source frame), re-triangulated. `profile` is a
    dataclass (`profiles.format.Profile`): the copy is made with `dataclasses.replace`, so it is
    validated like any profile, and it is not saved anywhere."""
    src = profile["atlas_frames"]
    keep = np.abs(src.astype(np.int64) - frame) > exclude
    if keep.sum() < 3:  # too short a clip to leave anything out: keep the far half
        keep = np.abs(src - frame) >= np.median(np.abs(src - frame))
    arrays = dict(profile.arrays)
    for k in ("atlas_images", "atlas_landmarks", "atlas_query", "atlas_flipped", "atlas_frames"):
        arrays[k] = profile[k][keep]
    amap = AtlasMap.build(arrays["atlas_query"].astype(np.float64))
    arrays["atlas_dims"] = np.asarray(amap.dims, np.int32)
    arrays["atlas_simplices"] = np.asarray(amap.simplices, np.int32)
    return dataclasses.replace(profile, arrays=arrays, tier="atlas", folder=None, files={})


def _crop_box(a: np.ndarray, s: int) -> str:
    """The part of the frame the crop affine `a` (image → s×s crop) shows, in image pixels."""
    inv = cv2.invertAffineTransform(np.asarray(a, np.float64))
    corners = np.array([[0, 0], [s, 0], [0, s], [s, s]], np.float64) @ inv[:, :2].T + inv[:, 2]
    (x0, y0), (x1, y1) = corners.min(0).round().astype(int), corners.max(0).round().astype(int)
    return f"x {x0}..{x1}, y {y0}..{y1}"


def _fitting(tracked: list, profile, a: np.ndarray, s: int) -> list:
    """The tracked frames whose face is in the profile's crop (see MIN_INSIDE, FACE_SCALE);
    UnusableFrames where fewer than MIN_FITTING of them are."""
    ref = geometry.interocular(np.asarray(profile["landmarks"], np.float64))
    keep, outside, scaled = [], 0, 0
    for item in tracked:
        lm = item[2]
        xy = lm[:topology.N_MESH, :2] @ a[:, :2].T + a[:, 2]
        inside = float(np.mean(((xy >= 0) & (xy < s)).all(1)))
        ratio = geometry.interocular(lm) / max(ref, 1e-6)
        if inside < MIN_INSIDE:
            outside += 1
        elif not FACE_SCALE[0] <= ratio <= FACE_SCALE[1]:
            scaled += 1
        else:
            keep.append(item)
    if len(keep) < MIN_FITTING * len(tracked):
        why = [f"{outside} mostly outside the part of the frame the profile crops "
               f"({_crop_box(a, s)})"] if outside else []
        why += [f"{scaled} at another size (under half or over twice the face in the profile's "
                f"reference frame)"] if scaled else []
        raise UnusableFrames(f"the face is not where the profile's crop expects it in "
                             f"{len(tracked) - len(keep)} of the {len(tracked)} frames with a face "
                             f"({'; '.join(why)}), so their crops hold no face to train on")
    return keep


def build_pairs(profile, frames, resolution: int = 128, fps: float = 30.0,
                exclude_s: float = 0.5, folds: int = 8, progress=None,
                same_clip: bool = True) -> PairSet:
    """Pairs from `frames`, an iterable of (index, RGB uint8) of the video the profile was
    enrolled from (`same_clip`: each frame's render leaves out the keyframes taken near it), or
    of another clip of the target with the same framing (not `same_clip`: the atlas's keyframes
    are none of its frames, and the whole atlas renders each). The profile's crop affine is
    applied to every frame, so the framing must be the profile's: UnusableFrames before anything
    is tracked where the frames are of another size and, for another clip, before anything is
    rendered where its face is mostly outside the crop or at another size (`_fitting`) in more
    than half of its frames with a face; its other such frames are skipped (counted in
    `PairSet.skipped`). Frames without a face are skipped."""
    if not profile.has_atlas:
        raise ProfileError(f"profile {profile.name!r} has no appearance atlas: training needs a "
                           f"profile enrolled from a video (run.py enroll CLIP.mp4 --name NAME)")
    rig = rig_mod.build(profile)
    s = rig.crop_size
    a = rig.crop_from_image
    face_end = rig.ranges["head"][0]
    exclude = int(round(exclude_s * fps))
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise UnusableFrames("no frame was read to train on")
    size = profile["image"].shape[:2]
    if first[1].shape[:2] != size:     # refused before the tracker starts
        h, w = first[1].shape[:2]
        raise UnusableFrames(f"its frames are {w}x{h}, and the profile crops the face from a place "
                             f"in the {size[1]}x{size[0]} frames of {printable(profile.source)}, "
                             f"the clip it was enrolled from")
    tracker = Tracker(static=False)
    tracked = []
    read = 0
    try:
        for index, rgb in itertools.chain([first], frames):
            read += 1
            lm = tracker(rgb)
            if lm is not None:
                tracked.append((index, rgb, lm.astype(np.float64)))
            if progress is not None:
                progress(1)
    finally:
        tracker.close()
    if not tracked:
        raise UnusableFrames(f"no face was tracked in any of the {read} frames read to train on")
    skipped = 0
    if not same_clip:   # (the clip the profile was enrolled from is trained on as it is)
        fitting = _fitting(tracked, profile, a, s)
        skipped = len(tracked) - len(fitting)
        tracked = fitting

    # Left-out atlases per fold of the timeline (one per frame would cost a triangulation each).
    idx = np.array([t[0] for t in tracked])
    edges = np.linspace(idx.min(), idx.max() + 1, folds + 1)
    generators = {}
    out = {k: [] for k in ("render", "mask", "target", "flow", "visible", "prev", "frames")}
    prev_state = None
    for n, (index, rgb, lm) in enumerate(tracked):
        fold = int(np.searchsorted(edges, index, side="right") - 1) if same_clip else 0
        if fold not in generators:
            centre = int(0.5 * (edges[fold] + edges[fold + 1]))
            width = int(0.5 * (edges[fold + 1] - edges[fold])) + exclude
            atlas = leave_out_profile(profile, centre, width) if same_clip else profile
            generators[fold] = make_generator("atlas", atlas, rig)
        gen = generators[fold]
        gen.reset()
        verts = rig.pose(lm, geometry.face_frame(lm))
        gbuf = rasterize(verts, rig.triangles, s, s)
        render = gen(Frame(index=-1, t_capture=0.0, vertices=verts, gbuf=gbuf))
        mask = ((gbuf.tri_id >= 0) & (gbuf.tri_id < face_end)).astype(np.float32)
        target = cv2.warpAffine(rgb, a, (s, s), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        out["render"].append(_nchw(render, resolution))
        out["mask"].append(_nchw(mask, resolution, cv2.INTER_AREA))
        out["target"].append(_nchw(target, resolution))
        out["frames"].append(index)
        flow = np.zeros((resolution, resolution, 2), np.float32)
        vis = np.zeros((resolution, resolution), np.float32)
        prev = -1
        if prev_state is not None and prev_state[0] == index - 1:
            f, v = flow3d(gbuf, rig.triangles, verts, prev_state[1], prev_state[2])
            flow = cv2.resize(f, (resolution, resolution), interpolation=cv2.INTER_AREA) * (resolution / s)
            vis = cv2.resize(v.astype(np.float32), (resolution, resolution), interpolation=cv2.INTER_AREA)
            vis = (vis > 0.99).astype(np.float32)
            prev = n - 1
        out["flow"].append(flow)
        out["visible"].append(vis)
        out["prev"].append(prev)
        prev_state = (index, verts, gbuf.depth.copy())
    if not any(m.any() for m in out["mask"]):      # (the checks above keep a face in the crop)
        raise UnusableFrames("the face mask is empty in every frame: no face lies in the profile's crop")
    hint_img = cv2.warpAffine(profile["image"], a, (s, s), flags=cv2.INTER_AREA,
                              borderMode=cv2.BORDER_REPLICATE)
    return PairSet(render=np.stack(out["render"]).astype(np.float32),
                   mask=np.stack(out["mask"]).astype(np.float32),
                   target=np.stack(out["target"]).astype(np.float32),
                   hint=_nchw(hint_img, resolution)[None].astype(np.float32),
                   prev=np.asarray(out["prev"], np.int64),
                   flow=np.stack(out["flow"]).astype(np.float32),
                   visible=np.stack(out["visible"]).astype(np.float32),
                   frames=np.asarray(out["frames"], np.int64), skipped=skipped)
