"""One person per profile: video enrollment's check that every shot of a clip shows the same
person (consent is given per person; an atlas keyframe of someone else would be drawn in live
use at its head pose).

1. **Shots**: the clip's track is cut where the face jumps in the image further than a head
   moves in a frame, or comes back after a while without a face — the live estimator's own cut
   test (`realtime.face.estimate.EstimatorConfig`: `cut_move`, `cut_scale`, `cut_absence_s`).
   A clip of one shot is done: nothing more is read or computed.
2. **Who is in each shot**: a few frames spread over each shot (up to `person_samples`, the
   sharpest of each part, among its less turned frames) get dlib's ResNet face descriptor
   (`realtime.face.identity`, on the box the tracker found: no detector), and a shot is the
   mean of its descriptors. Shots are grouped by average linkage while the distance between
   groups is under `person_distance`. Measured (every 5th frame of s18, s32 and the six eval
   drivers, in thirds of each clip): the means of three frames of one person are at most 0.31
   apart (0.36 over random frames of any view), two people's at least 0.41 (d0 and d13; s18
   and s32 0.58). dlib's usual threshold, 0.6, is for single descriptors of any two photos:
   far too lax here.
3. **Without dlib** (the `quality` extra is not installed) the shots are grouped by the shape
   of the skull points instead (`topology.RIGID`, the median of each shot after a similarity
   fit, `rigid_distance`), at `person_shape_distance` (0.03 interoculars): one person's parts
   of a clip are at most 0.024 apart, but two people may be as close as 0.014, so this catches
   only about 60 % of the pairs of eval clips; shots shorter than `person_shape_frames` tracked
   frames are not judged (their median is too noisy). The enrollment says so, and how to
   install the real check.
   A shot of fewer than 3 tracked frames is not judged either way (a tracker's mis-fit for a
   frame after a cut, described on half a face): next to someone else's shot it is theirs (it
   shows the next shot), else it stays.
4. **The person**: the group with the most tracked frames (the earliest on a tie). The other
   groups' frames, and the tracked frame either side of them, are rejected as
   ``another_person``; a note names their frame spans and says how to enroll one of them
   instead (``--frames``), and says plainly when the person kept is not the one the clip starts
   with. The spans are recorded (settings.atlas.other_people) and `train` skips them.

Cost (2-core laptop-class CPU): nothing for a clip of one shot; with cuts about 1 s to load
dlib's models, 0.1 s a descriptor and the decoding up to the last frame described (two shots of
a 640×360 clip: 1.2–1.9 s).
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from profiles.clip import ClipTrack, progress_bar, read_frames
from realtime.face import geometry, topology
from realtime.face.estimate import EstimatorConfig, face_place, is_cut, rigid_distance
from realtime.face.identity import INSTALL_HINT, IdentityEncoder

_RIGID = list(topology.RIGID)
#: Descriptors spread over a clip's shots (about 0.12 s each on a laptop core): a clip of many
#: shots gets fewer per shot, down to one, so past this many judged shots there is one a shot
#: (a long webcam clip whose every look-away of 0.5 s is a cut: 0.12 s a shot).
MAX_DESCRIPTORS = 36


@dataclass
class PersonCheck:
    """What `check_people` found: `others` (F,) bool marks the frames of shots that show
    someone else than the profile's person; `notes` are for the user."""

    others: np.ndarray
    shots: int = 1
    method: str = "none"          # "none" (one shot), "descriptor" or "shape"
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------- shots

def split_shots(landmarks: np.ndarray, frames: np.ndarray, fps: float,
                config: EstimatorConfig | None = None) -> np.ndarray:
    """(F,) shot number (0, 1, ...) of each frame of a track, −1 where no face was tracked.
    A tracked frame starts a new shot where, from the last tracked frame, the face moved more
    than `cut_move` interoculars or changed size by more than `cut_scale` (log), or where at
    least `cut_absence_s` passed since (the live estimator's cut)."""
    c = config or EstimatorConfig()
    lm = np.asarray(landmarks)
    shot = np.full(len(lm), -1, np.int64)
    current, last = -1, None
    for i in np.nonzero(np.isfinite(lm[:, 0, 0]))[0]:
        now = face_place(lm[i], float(frames[i]) / max(fps, 1e-9))
        current = 0 if last is None else current + is_cut(last, now, c)
        last = now
        shot[i] = current
    return shot


def sample_rows(rows: np.ndarray, sharpness: np.ndarray, yaw: np.ndarray, k: int) -> list[int]:
    """Up to `k` of a shot's tracked rows, one from each of `k` equal parts of it: the sharpest
    of the part among its frames turned no more than the shot's median |yaw| (a descriptor of
    a turned face is further from the same person's frontal one)."""
    rows = np.asarray(rows, np.int64)
    if len(rows) == 0 or k <= 0:
        return []
    turn = np.abs(np.nan_to_num(np.asarray(yaw, np.float64)[rows], nan=np.inf))
    limit = np.median(turn)
    out = []
    for part in np.array_split(np.arange(len(rows)), min(k, len(rows))):
        frontal = part[turn[part] <= limit]
        pick = frontal if len(frontal) else part
        sharp = np.nan_to_num(np.asarray(sharpness, np.float64)[rows[pick]], nan=-np.inf)
        out.append(int(rows[pick[int(np.argmax(sharp))]]))
    return out


def group_shots(distance: np.ndarray, threshold: float) -> np.ndarray:
    """(S,) group number of each of S shots, from their (S, S) distances: average linkage,
    merging the two nearest groups while they are nearer than `threshold`. A NaN distance
    (a shot not judged) never merges. Groups are numbered by their first shot. The groups'
    mean distances are kept in one matrix and updated on each merge (Lance-Williams: the
    merged group's mean to any other is its parts' means weighted by their sizes), so a clip of
    many shots (every look-away of 0.5 s is a cut) costs milliseconds: the pairwise means
    recomputed per merge took 8.6 s at 150 shots."""
    d = np.array(distance, np.float64)
    n = len(d)
    link = np.where(np.isfinite(d), d, np.inf)       # NaN never merges: it stays inf below
    np.fill_diagonal(link, np.inf)
    size = np.ones(n)
    alive = np.ones(n, bool)
    members = [[i] for i in range(n)]
    for _ in range(n - 1):
        flat = int(np.argmin(link))
        a, b = divmod(flat, n)
        if not link[a, b] < threshold:
            break
        a, b = min(a, b), max(a, b)
        merged = (size[a] * link[a] + size[b] * link[b]) / (size[a] + size[b])   # inf stays inf
        link[a], link[:, a] = merged, merged
        link[a, a] = np.inf
        link[b], link[:, b] = np.inf, np.inf
        size[a] += size[b]
        alive[b] = False
        members[a] += members[b]
    label = np.zeros(n, np.int64)
    for g, group in enumerate(sorted((members[i] for i in np.flatnonzero(alive)), key=min)):
        label[group] = g
    return label


def descriptor_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """The box dlib's face detector would draw round a face (brows to chin, cheek to cheek)
    from its Face Mesh landmarks: the mesh's box less its top fifth (the forehead). On the eval
    clips a descriptor from it is 0.03–0.08 from one from the detector's own box."""
    xy = np.asarray(landmarks, np.float64)[: topology.N_MESH, :2]
    (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
    return float(x0), float(y0 + 0.2 * (y1 - y0)), float(x1), float(y1)


def shape_distances(landmarks: np.ndarray, shot: np.ndarray, n: int, min_frames: int) -> np.ndarray:
    """(n, n) rigid-shape distances between the shots' median skull shapes (NaN for a shot
    with fewer than `min_frames` tracked frames)."""
    medians = []
    for s in range(n):
        rows = np.nonzero(shot == s)[0]
        if len(rows) < min_frames:
            medians.append(None)
            continue
        pts = np.asarray(landmarks, np.float64)[rows][:, _RIGID]
        ref = pts[len(pts) // 2]
        for _ in range(3):
            ref = np.median([geometry.umeyama(p, ref).apply(p) for p in pts], axis=0)
        medians.append(ref)
    d = np.full((n, n), np.nan)
    for a in range(n):
        for b in range(n):
            if medians[a] is not None and medians[b] is not None:
                d[a, b] = 0.0 if a == b else rigid_distance(medians[a], medians[b])
    return 0.5 * (d + d.T)      # (the fit's residual is in the reference's interoculars)


def descriptor_distances(path: Path, track: ClipTrack, shot: np.ndarray, n: int, encoder,
                         samples: int, min_frames: int = 1, progress: bool = False) -> np.ndarray:
    """(n, n) distances between the shots' mean face descriptors (a few frames of each,
    `sample_rows`, read again from the clip; NaN for a shot of fewer than `min_frames` tracked
    frames, or none of whose frames gave one)."""
    judged = [s for s in range(n) if (shot == s).sum() >= min_frames]
    k = max(1, min(samples, MAX_DESCRIPTORS // max(len(judged), 1)))
    wanted: dict[int, int] = {}               # source frame → shot
    for s in judged:
        for r in sample_rows(np.nonzero(shot == s)[0], track.sharpness, track.query[:, 0], k):
            wanted[int(track.frames[r])] = s
    row_of = {int(f): i for i, f in enumerate(track.frames)}
    found: list[list[np.ndarray]] = [[] for _ in range(n)]
    with progress_bar(len(wanted), "telling people apart", progress) as bar:
        for i, rgb in read_frames(path, int(track.frames[0]), max(wanted, default=-1) + 1):
            s = wanted.get(i)
            if s is None:
                continue
            desc = encoder.descriptor_in(rgb, descriptor_box(track.landmarks[row_of[i]]))
            if desc is not None and np.isfinite(desc).all():
                found[s].append(np.asarray(desc, np.float64))
            bar.update(1)
    means = [np.mean(f, axis=0) if f else None for f in found]
    d = np.full((n, n), np.nan)
    for a in range(n):
        for b in range(n):
            if means[a] is not None and means[b] is not None:
                d[a, b] = float(np.linalg.norm(means[a] - means[b]))
    return d


# ------------------------------------------------------------------------------- the check

def _spans(track: ClipTrack, shot: np.ndarray, shots: list[int]) -> list[tuple[int, int]]:
    """[(first, last)] source frames of the runs of consecutive `shots` (first to last tracked
    frame of each run)."""
    spans: list[tuple[int, int]] = []
    prev = None
    for s in sorted(shots):
        rows = np.nonzero(shot == s)[0]
        first, last = int(track.frames[rows[0]]), int(track.frames[rows[-1]])
        if prev is not None and s == prev + 1:
            spans[-1] = (spans[-1][0], last)
        else:
            spans.append((first, last))
        prev = s
    return spans


def _say(spans: list[tuple[int, int]], fps: float) -> str:
    parts = [f"{a}-{b} ({a / fps:.1f}-{(b + 1) / fps:.1f} s)" for a, b in spans]
    return "frames " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])


def _frames_option(spans: list[tuple[int, int]]) -> str:
    a, b = max(spans, key=lambda s: s[1] - s[0])
    return f"--frames {a}:{b + 1}"


def _notes(name: str, track: ClipTrack, shot: np.ndarray, group: np.ndarray, person: int) -> list[str]:
    fps = float(track.fps) or 30.0
    kept = _spans(track, shot, [s for s in range(len(group)) if group[s] == person])
    others = [_spans(track, shot, [s for s in range(len(group)) if group[s] == g])
              for g in sorted(set(group.tolist()) - {person})]
    who = "another person" if len(others) == 1 else f"{len(others)} other people"
    shown = "; ".join(_say(s, fps) for s in others)
    enroll_other = ("to enroll that person instead, use " + _frames_option(others[0]) if len(others) == 1
                    else "to enroll one of them instead, pick their frames with --frames START:STOP")
    if person == group[0]:
        return [f"note: {name} shows {who} besides the one enrolled, in {shown}: those frames are "
                f"left out (a profile is one person); {enroll_other}"]
    return [f"note: {name} shows more than one person, and the profile is NOT of the one it starts "
            f"with: it is of the one seen longest, in {_say(kept, fps)}; {who} in {shown} "
            f"{'is' if len(others) == 1 else 'are'} left out (a profile is one person); "
            f"{enroll_other}"]


def check_people(path: Path, track: ClipTrack, *, distance: float = 0.38,
                 shape_distance: float = 0.03, shape_frames: int = 10, samples: int = 3,
                 shot_frames: int = 3,
                 encoder_factory: Callable[[], object] | None = None,
                 progress: bool = False) -> PersonCheck:
    """Which frames of `track` (pass 1 of the clip at `path`) show another person than the
    profile's (see the module doc). `encoder_factory` makes the descriptor encoder (default:
    dlib's, where it is installed; None from it: the shape check). A shot of fewer than
    `shot_frames` tracked frames is not judged (the frame or two a tracker mis-fits at a cut
    before it snaps onto the new face): next to someone else's shot it is theirs, else it stays
    (and the jump rule rejects a mis-fit)."""
    shot = split_shots(track.landmarks, track.frames, track.fps)
    n = int(shot.max()) + 1 if (shot >= 0).any() else 0
    result = PersonCheck(others=np.zeros(len(track.frames), bool), shots=max(n, 1))
    if n <= 1:
        return result
    if encoder_factory is None:
        encoder_factory = _dlib_encoder
    encoder = encoder_factory()
    if encoder is not None:
        result.method = "descriptor"
        d = descriptor_distances(path, track, shot, n, encoder, samples, shot_frames, progress)
        group = group_shots(d, distance)
    else:
        result.method = "shape"
        d = shape_distances(track.landmarks, shot, n, shape_frames)
        group = group_shots(d, shape_distance)
        result.notes.append(
            f"note: {path.name} has {n} shots (cuts where the face jumps or comes back), and "
            f"whether they show one person was judged by the shape of the face alone, which "
            f"tells apart only people of clearly different build (the identity check needs "
            f"dlib: {IdentityEncoder.unavailable_reason() or INSTALL_HINT}); look at the "
            f"profile's keyframes, or install it and enroll again")
    judged = np.isfinite(np.diag(d))
    frames = np.array([int((shot == s).sum()) for s in range(n)])
    counts = np.bincount(group[judged], weights=frames[judged], minlength=int(group.max()) + 1)
    person = int(np.argmax(counts)) if judged.any() else int(group[0])
    # A shot not judged (too short, or no descriptor) goes with a neighbour of someone else's
    # (the frame a tracker mis-fits after a cut shows the next shot), else stays.
    new = group.copy()
    for s in np.nonzero(~judged)[0]:
        near = [int(group[j]) for j in (s + 1, s - 1) if 0 <= j < n and judged[j] and group[j] != person]
        new[s] = near[0] if near else person
    group = new
    other_shots = [s for s in range(n) if group[s] != person]
    if other_shots:
        # and the tracked frame on either side of theirs: at a cut the tracker may fit the old
        # face's place for a frame while the picture already shows the new one
        others = np.isin(shot, other_shots)
        near = others.copy()
        near[1:] |= others[:-1]
        near[:-1] |= others[1:]
        result.others = near & (shot >= 0)
        result.notes[:0] = _notes(path.name, track, shot, group, person)
    return result


def spans_of(frames: np.ndarray, mask: np.ndarray, tracked: np.ndarray) -> list[list[int]]:
    """[[first, last], ...] source frames of the runs of `mask` over the tracked frames (a run
    goes on across frames without a face)."""
    spans: list[list[int]] = []
    open_run = False
    for f, m, t in zip(np.asarray(frames).tolist(), np.asarray(mask).tolist(), np.asarray(tracked).tolist()):
        if not t:
            continue
        if m and open_run:
            spans[-1][1] = int(f)
        elif m:
            spans.append([int(f), int(f)])
        open_run = bool(m)
    return spans


def _dlib_encoder():
    """dlib's face descriptor encoder, or None where it is not installed (or its model files
    do not load: the shape check then, which says so)."""
    if not IdentityEncoder.available():
        return None
    try:
        return IdentityEncoder(upsample=0)
    except (RuntimeError, OSError, ImportError):
        return None


def print_notes(check: PersonCheck) -> None:
    for note in check.notes:
        print(note, file=sys.stderr)
