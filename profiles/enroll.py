"""Enrollment: a portrait photo → an avatar profile (warp tier).

The checks a user can fail (no face, several faces, a face too small to animate, an unreadable
file) raise EnrollError with a one-line message; nothing is written unless everything
succeeded (the profile is saved atomically).
"""
from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from kernels import mirrored_sigmoid_mask, rasterize
from profiles import store
from profiles.consent import check_text, make_record
from profiles.format import Profile, profiles_root, save
from profiles.schema import printable
from realtime.core import paths
from realtime.core.errors import PuppeteerError
from realtime.core.paths import IMAGE_SUFFIXES
from realtime.core.profile import YAML_FILE
from realtime.face import geometry, topology
from realtime.face.track import FaceBoxes, Tracker, find_face_boxes
from realtime.io.media import read_image
from realtime.mesh import head_layer
from realtime.tiers.atlas.query import query_from_landmarks

MAX_SIDE = 1280
MAX_NAME = 64
#: names Windows keeps for its devices, whatever the case (a profile folder is copied between machines)
WINDOWS_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10))})
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*", re.ASCII)
MIN_INTEROCULAR_PX = 24.0
#: a face with fewer pixels between its eye corners in a photo shrunk to MAX_SIDE is enrolled
#: from the full photo's MAX_SIDE square around it instead (`photo_face`)
SMALL_FACE_PX = 64.0
#: ... when the full photo has at least this many times the shrunk one's pixels across
WINDOW_GAIN = 1.25
# A photo's face is the avatar's rest (`photo_notes`), in the units of the atlas query
# (realtime.tiers.atlas.query): eyes about 1 when open (0.9-1.2 on the evaluation portraits, 0.78
# behind sunglasses, 0.10 in a blink), mouth 0 when closed (s1's parted lips 0.15, a toothy grin
# 0.63, a wide-open mouth 1.25).
SHUT_EYES = 0.4
OPEN_MOUTH = 0.5
SIDEWAYS_DEG = 45.0


class EnrollError(PuppeteerError):
    """A user-facing enrollment failure; str() is the one line to print."""


class SeveralFaces(EnrollError):
    """The picture holds more than one face: refused, never cropped to one of them."""


def _several(n: int, what: str) -> SeveralFaces:
    return SeveralFaces(f"found {n} faces in {what}; use a picture of one person (or crop it to one face)")


def read_full_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8, at its own size (within `realtime.io.media`'s caps)."""
    if (problem := paths.not_a_file(path)) is not None:
        raise EnrollError(f"{path} {problem}")
    # the header's size is checked before decoding (a PNG may declare 30,000² pixels)
    bgr = read_image(path, EnrollError,
                     f"cannot read {path} as an image (supported: {', '.join(sorted(IMAGE_SUFFIXES))})",
                     whole=True)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def capped(rgb: np.ndarray) -> np.ndarray:
    """`rgb` with its longest side capped at MAX_SIDE (`rgb` itself when it fits)."""
    scale = MAX_SIDE / max(rgb.shape[:2])
    if scale >= 1.0:
        return rgb
    return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8, longest side capped at MAX_SIDE."""
    return capped(read_full_rgb(path))


def _tile_faces(rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Face boxes (x, y, w, h, pixels of `rgb`) found by the full-range detector in MAX_SIDE
    tiles overlapping by a quarter: it sees a picture at 192² px, where a face under ~80 px
    across in a 4000 px photo is a few pixels and goes unseen. Overlapping finds are merged."""
    h, w = rgb.shape[:2]
    step = MAX_SIDE * 3 // 4
    boxes: list[tuple[float, float, float, float]] = []
    detector = FaceBoxes(full_range=True)
    try:
        for y0 in range(0, max(h - MAX_SIDE, 0) + step, step):
            for x0 in range(0, max(w - MAX_SIDE, 0) + step, step):
                ys, xs = min(y0, max(h - MAX_SIDE, 0)), min(x0, max(w - MAX_SIDE, 0))
                for x, y, bw, bh in detector(np.ascontiguousarray(rgb[ys:ys + MAX_SIDE, xs:xs + MAX_SIDE])):
                    box = (x + xs, y + ys, bw, bh)
                    if not any(abs((b[0] + b[2] / 2) - (box[0] + bw / 2)) < max(b[2], bw) / 2
                               and abs((b[1] + b[3] / 2) - (box[1] + bh / 2)) < max(b[3], bh) / 2
                               for b in boxes):
                        boxes.append(box)
    finally:
        detector.close()
    return boxes


def _window(rgb: np.ndarray, cx: float, cy: float) -> tuple[int, int]:
    """Top-left (x0, y0) of the MAX_SIDE square of `rgb` centred on (cx, cy), inside it."""
    h, w = rgb.shape[:2]
    x0 = int(round(min(max(cx - MAX_SIDE / 2, 0), max(w - MAX_SIDE, 0))))
    y0 = int(round(min(max(cy - MAX_SIDE / 2, 0), max(h - MAX_SIDE, 0))))
    return x0, y0


def photo_face(full: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(the picture to enroll, the landmarks of its one face, a note or None) from the photo
    `full` at its own size. The picture is the photo with its longest side capped at MAX_SIDE,
    except where that would leave the face small (under SMALL_FACE_PX between the eye corners)
    or lose it: then the MAX_SIDE square of the full photo around the face, at its own
    resolution (a phone's 4032 × 3024 photo of a person at arm's length: the face was read at a
    third of its pixels, and one 70 px across the eyes was refused as no face at all)."""
    rgb = capped(full)
    if rgb is full:
        return rgb, detect_single_face(rgb, what), None
    try:
        lm: np.ndarray | None = detect_single_face(rgb, what)
        failed: EnrollError | None = None
    except SeveralFaces:
        raise                        # a group photo is refused, not cropped to one of its faces
    except EnrollError as e:
        lm, failed = None, e
    if lm is not None and geometry.interocular(lm) >= SMALL_FACE_PX:
        return rgb, lm, None
    if lm is not None and full.shape[1] < WINDOW_GAIN * rgb.shape[1]:
        return rgb, lm, None         # a photo just over MAX_SIDE: its square would gain nothing
    if lm is not None:
        scale = full.shape[1] / rgb.shape[1]
        cx, cy = (np.asarray(lm[:, :2], np.float64).mean(0) * scale).tolist()
    else:
        boxes = _tile_faces(full)
        if len(boxes) != 1:
            if len(boxes) > 1:
                raise _several(len(boxes), what)
            assert failed is not None
            raise failed
        x, y, bw, bh = boxes[0]
        cx, cy = x + bw / 2, y + bh / 2
    x0, y0 = _window(full, cx, cy)
    window = np.ascontiguousarray(full[y0:y0 + MAX_SIDE, x0:x0 + MAX_SIDE])
    lm = detect_single_face(window, what)
    h, w = window.shape[:2]
    return window, lm, (f"the face is small in {what} ({full.shape[1]}×{full.shape[0]}): the profile is the "
                        f"{w}×{h} px around it at the photo's own resolution "
                        f"({geometry.interocular(lm):.0f} px between the eye corners)")


def detect_single_face(rgb: np.ndarray, what: str) -> np.ndarray:
    """(478, 3) landmarks of the one face in `rgb`, or EnrollError naming `what`: no face (which
    says the minimum size too: a face below it in a larger picture is not detected at all),
    several faces, or a face found but smaller than MIN_INTEROCULAR_PX."""
    with Tracker(static=True, max_faces=2) as tracker:
        faces = tracker.detect_all(rgb)
        if len(faces) == 1:
            # Face Mesh's short-range detector finds one face, and misses a smaller second one
            # (s1 beside a smaller s5 enrolled s1 and said nothing: bad-input review)
            others = _other_faces(find_face_boxes(rgb), faces[0])
            if others:
                raise _several(1 + others, what)
        if not faces:
            # Face Mesh's detector is short-range; look for a small face, then zoom in on it.
            boxes = find_face_boxes(rgb)
            if len(boxes) > 1:
                raise _several(len(boxes), what)
            if boxes:
                faces = _zoomed(tracker, rgb, boxes[0])
    if not faces:   # the detectors miss a face of about the minimum size in a larger picture
        raise EnrollError(f"no human face found in {what}, or the face is too small (at least "
                          f"{MIN_INTEROCULAR_PX:.0f} px between the eye corners); use a photo where "
                          f"one face is clearly visible and large enough")
    if len(faces) > 1:       # the tracker stops at two: the detector counts a third
        n = max(len(faces), len(find_face_boxes(rgb)))
        raise _several(n, what)
    lm = faces[0]
    iod = geometry.interocular(lm)
    if iod < MIN_INTEROCULAR_PX:
        raise EnrollError(f"the face in {what} is too small: {iod:.0f} px between the eye corners, "
                          f"need at least {MIN_INTEROCULAR_PX:.0f}; use a larger or closer picture")
    return lm


def photo_notes(landmarks: np.ndarray, what: str) -> list[str]:
    """What in the face of `landmarks` the avatar will keep for good, one line each: a face on
    its side (the avatar is drawn on its side), shut eyes (a photo has no eye behind its lids:
    the avatar's stay shut however wide yours open), an open mouth (the avatar's rest: it does
    not close when yours does). A photo is enrolled all the same."""
    lm = np.asarray(landmarks, np.float64)
    q = query_from_landmarks(lm)
    roll = geometry.euler_from_rotation(geometry.face_frame(lm).rotation)[2]
    notes = []
    if abs(roll) > SIDEWAYS_DEG:
        notes.append(f"the face in {what} lies on its side ({roll:+.0f}°), and so will the avatar; "
                     f"turn the picture upright and enroll it again")
    if q[3] < SHUT_EYES:
        notes.append(f"the eyes in {what} look closed: the avatar's eyes will stay shut however "
                     f"wide yours open; use a photo with open eyes")
    if q[2] > OPEN_MOUTH:
        notes.append(f"the mouth in {what} is open: the avatar's mouth stays open when yours "
                     f"closes; use a photo with the lips closed or just parted")
    return notes


def _other_faces(boxes, landmarks: np.ndarray) -> int:
    """How many of the detector's face `boxes` (x, y, w, h) lie off the face of `landmarks` (their
    centre outside its landmarks' box grown by a fifth) and are large enough to enrol (a side of
    at least 2 × MIN_INTEROCULAR_PX: a face box is ~2.5 interoculars wide; a face in a poster
    far behind does not count)."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    lo, hi = lm.min(0), lm.max(0)
    pad = 0.2 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    n = 0
    for x, y, w, h in boxes:
        centre = np.array([x + w / 2, y + h / 2])
        if min(w, h) >= 2 * MIN_INTEROCULAR_PX and not ((centre >= lo) & (centre <= hi)).all():
            n += 1
    return n


def _zoomed(tracker, rgb: np.ndarray, box) -> list[np.ndarray]:
    x, y, w, h = box
    cx, cy, side = x + w / 2, y + h / 2, 2.2 * max(w, h)
    zoom = 512.0 / side
    m = np.array([[zoom, 0, 256 - zoom * cx], [0, zoom, 256 - zoom * cy]], np.float64)
    crop = cv2.warpAffine(rgb, m, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    faces = tracker.detect_all(crop)
    out = []
    for lm in faces:
        back = lm.astype(np.float64).copy()
        back[:, :2] = (back[:, :2] - m[:, 2]) / zoom
        back[:, 2] /= zoom
        out.append(back.astype(np.float32))
    return out


def photo_framing(landmarks: np.ndarray, crop_size: int = 256):
    """How enrollment frames a face: (its anatomical frame (`geometry.face_frame`), its
    canonical shape, the (2, 3) affine image px → crop px of its crop box, `crop_size`² px).
    `landmarks` (478, 3) image px. The bench frames a driver's own video the same way
    (`bench.quality.DriverReference`)."""
    lm = np.asarray(landmarks, np.float64)
    frame = geometry.face_frame(lm)
    neutral = frame.invert_points(lm)
    centre, side = head_layer.crop_box(neutral, frame)
    return frame, neutral, head_layer.crop_affine(centre, side, crop_size)


def build_profile(rgb: np.ndarray, landmarks: np.ndarray, name: str, source: str,
                  crop_size: int = 256, kind: str = "image") -> Profile:
    """The warp-tier profile of one image and its landmarks (no I/O)."""
    lm = np.asarray(landmarks, np.float64)
    frame, neutral, crop_from_image = photo_framing(lm, crop_size)
    layer = head_layer.build(neutral, frame, crop_from_image, crop_size)

    verts = lm.copy()
    verts[:, :2] = verts[:, :2] @ crop_from_image[:, :2].T + crop_from_image[:, 2]
    gbuf = rasterize(verts.astype(np.float32), topology.face_triangles(), crop_size, crop_size)
    arrays = {
        "image": np.ascontiguousarray(rgb, dtype=np.uint8),
        "landmarks": lm.astype(np.float32),
        "neutral": neutral.astype(np.float32),
        "frame_rotation": frame.rotation.astype(np.float32),
        "frame_scale": np.float32(frame.scale),
        "frame_translation": frame.translation.astype(np.float32),
        "crop_from_image": crop_from_image.astype(np.float32),
        "head_points": layer.points.astype(np.float32),
        "head_gains": layer.gains.astype(np.float32),
        "head_border": layer.border.astype(np.float32),
        "head_triangles": layer.triangles.astype(np.int32),
        "paste_mask": mirrored_sigmoid_mask(crop_size).astype(np.float32),
        "face_mask": (gbuf.tri_id >= 0).astype(np.uint8),
    }
    return Profile(name=name, kind=kind, source=source, arrays=arrays, crop_size=crop_size)


def check_name(name: str) -> str:
    """`name` when it is a usable profile name: 1 to MAX_NAME ASCII letters, digits, '-' or '_',
    not starting with '-' (so no dots: never a source file's name such as ``store.py``, never
    hidden; nothing a shell or the CLI would read differently); else EnrollError."""
    if len(name) > MAX_NAME or not NAME_RE.fullmatch(name):
        raise EnrollError(f"profile name {printable(name, 40)!r} is not usable: use up to {MAX_NAME} "
                          f"letters (A-Z, a-z), digits, '-' or '_', not starting with '-' "
                          f"(e.g. jane_doe-2)")
    if name.upper() in WINDOWS_DEVICES:
        raise EnrollError(f"profile name {name!r} is a device name on Windows, where such a folder cannot "
                          f"be made or copied: choose another (e.g. {name}_1)")
    return name


@contextmanager
def claim(name: str, root: Path | None = None, force: bool = False) -> Iterator[Path]:
    """The folder profile `name` will be saved to, held for the whole enrollment: the name's
    lock is taken (a second enroll of the name is refused), what a killed enroll left is
    recovered (profiles.store.recover), and an existing profile is refused without `force`.
    Whatever else has the name (a file, a folder without a profile.yaml such as the package's
    ``__pycache__``) is refused even with `force`: only a profile is ever replaced."""
    check_name(name)
    root = Path(root or profiles_root())
    with store.name_lock(root, name):
        note = store.recover(root, name)
        if note:
            print(f"note: {note}", file=sys.stderr)
        folder = root / name
        if store.occupied(folder) and not store.is_profile(folder):
            raise EnrollError(f"{folder} exists and is not a profile (it has no {YAML_FILE}); "
                              f"choose another name (--force replaces only a profile)")
        if folder.exists() and not force:
            raise EnrollError(f"profile {name!r} exists already at {folder} (add --force to replace it)")
        yield folder


def consent_text(text: str | None) -> str | None:
    """Enroll's --consent text checked (ConsentError naming --consent), or None: called before
    anything is claimed or read, so a refused text costs nothing."""
    return None if text is None else check_text(text, flag="--consent")


def save_enrolled(profile: Profile, folder: Path, force: bool, consent: str | None = None) -> Path:
    """`save` inside `claim`, a full disk or a read-only folder as one EnrollError line. A
    `consent` text (checked by `consent_text`) is written with the profile, in the same atomic
    save, as a record made "via enroll"."""
    if consent is not None:    # Profile.to_yaml binds the record to the arrays' digest
        profile.consent = make_record(consent, arrays_sha256="", via="enroll")
    try:
        return save(profile, folder, overwrite=force)
    except OSError as e:
        raise EnrollError(str(store.write_error(folder.parent, e))) from None


def enroll_image(path: str | Path, name: str, root: Path | None = None, crop_size: int = 256,
                 force: bool = False, consent: str | None = None) -> Path:
    """Enroll a portrait photo as profile `name`, with a consent record when `consent` (who
    agreed and how) is given; returns the profile folder."""
    path = Path(path)
    consent = consent_text(consent)
    with claim(name, root, force) as folder:
        rgb, lm, framed = photo_face(read_full_rgb(path), path.name)
        if framed is not None:
            print(f"note: {framed}", file=sys.stderr)
        for note in photo_notes(lm, path.name):
            print(f"note: {note}", file=sys.stderr)
        profile = build_profile(rgb, lm, name=name, source=path.name, crop_size=crop_size)
        return save_enrolled(profile, folder, force, consent)
