"""Expression fidelity: does the avatar move as much as its driver? (DESIGN §8, issue #13)

Driver and output are each tracked with MediaPipe on their own; per frame, each face gives a few
*signals* measured on its frontalised (canonical) landmarks, in interocular units, so head pose
and face size do not leak into them:

=============  ==============================================================================
mouth_open     inner-lip gap (three lip pairs), / interocular
mouth_width    inner mouth corners' distance (78–308), / interocular
eye_open_r/_l  lid gap of the subject's right / left eye (three lid pairs), / interocular
brow_raise     brow centroid to the eye corners' midpoint, both sides averaged, / interocular
gaze_x/_y      iris centre relative to the eye corners' midpoint, along / across the corner
               axis, / eye width, both eyes averaged (+x = subject's left, +y = down)
yaw/pitch      the face frame's angles, degrees
=============  ==============================================================================

Per signal, over the frames where both faces are tracked: ``gain`` = least-squares slope of the
output on the driver (1.0 = the whole motion arrives; 0.7 = the avatar moves 70% as much),
``r`` = Pearson correlation, ``n`` frames, ``std`` the driver's standard deviation. A signal whose
driver barely moves (standard deviation below `MIN_STD`) gets no gain (it would be noise over
noise); one that moves less than `SMALL_MOTION` × that is marked ``small`` (its r is mostly
how two trackers' errors agree: d0's and d19's brows, std 0.0045 interoculars, read r 0.7–0.8
on self-drive where every other signal reads ≥ 0.9).

Where the motion is lost (`split_follow`): the same signals measured on the engine's own posed
mesh (`Frame.vertices`, before anything is drawn) split the output's gain and r in two —
``mesh``: the mesh against the driver (what the estimate, the filters and the retargeting let
through), ``picture``: the tracked output against the mesh (how much of the drawn motion the
picture shows). A gain lost in ``mesh`` is the engine's state; one lost in ``picture`` is the
drawing (a stretched photo's eye that does not read as wider), or the tracker's reading of it.

`Extremes` keeps, while a clip streams, the driver and output frames at the driver's widest
eyes, closed (else narrowest) eyes, highest brows, widest mouth, strongest smile and furthest gaze, for a contact
sheet (`contact_sheet`): a person sees in one picture what the numbers say.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from realtime.face import geometry, topology
from realtime.face.track import Tracker

__all__ = ["SIGNALS", "MIN_STD", "SMALL_MOTION", "face_signals", "mesh_signals", "follow_stats", "split_follow",
           "blink_check", "signal_std", "CLOSED_EYE", "FLOOR_SCALE",
           "floor_copy", "unmirror", "FloorProbe", "Extremes", "contact_sheet", "face_square", "face_view"]

SIGNALS = ("mouth_open", "mouth_width", "eye_open_r", "eye_open_l", "brow_raise", "gaze_x",
           "gaze_y", "yaw", "pitch")
#: A driver signal that varies less than this (its own units) has no meaningful gain.
MIN_STD = {"yaw": 0.5, "pitch": 0.5}
MIN_STD_DEFAULT = 0.004
#: A driver signal whose standard deviation is below this many × its MIN_STD is marked ``small``.
SMALL_MOTION = 2.0

_RIGHT_CORNERS, _LEFT_CORNERS = topology.EYE_CORNERS   # (outer, inner) corner of each eye
_RIGHT_IRIS, _LEFT_IRIS = 468, 473


def face_signals(landmarks: np.ndarray) -> np.ndarray:
    """(len(SIGNALS),) float64 signals of one face: `landmarks` (478, 3) in any pixel frame."""
    lm = np.asarray(landmarks, np.float64)
    frame = geometry.face_frame(lm)
    c = frame.invert_points(lm[: topology.N_LANDMARKS])
    iod = max(geometry.interocular(c), 1e-9)
    eye_r, eye_l = geometry.eye_opening(c)
    brows, gaze = [], []
    for corners, brow, iris in ((_RIGHT_CORNERS, topology.RIGHT_BROW, _RIGHT_IRIS),
                                (_LEFT_CORNERS, topology.LEFT_BROW, _LEFT_IRIS)):
        a, b = c[corners[0], :2], c[corners[1], :2]
        mid = 0.5 * (a + b)
        brows.append(np.linalg.norm(c[list(brow), :2].mean(0) - mid))
        axis = b - a if corners is _RIGHT_CORNERS else a - b  # both point to the subject's left
        width = max(np.linalg.norm(axis), 1e-9)
        u = axis / width
        v = np.array([-u[1], u[0]])
        if v[1] < 0:
            v = -v                                            # +y = down (the frame's y axis)
        d = c[iris, :2] - mid
        gaze.append((d @ u / width, d @ v / width))
    yaw, pitch, _ = geometry.euler_from_rotation(frame.rotation)
    gx, gy = np.mean(gaze, axis=0)
    return np.array([geometry.mouth_opening(c) / iod,
                     np.linalg.norm(c[78, :2] - c[308, :2]) / iod,
                     eye_r / iod, eye_l / iod, float(np.mean(brows)) / iod, gx, gy, yaw, pitch])


def mesh_signals(vertices: np.ndarray | None) -> np.ndarray:
    """`face_signals` of the engine's posed mesh (`Frame.vertices`: its first 478 rows are the
    face landmarks, in any pixel frame); all NaN when the frame has none."""
    if vertices is None:
        return np.full(len(SIGNALS), np.nan)
    return face_signals(np.asarray(vertices)[: topology.N_LANDMARKS])


def split_follow(driver: np.ndarray, mesh: np.ndarray, output: np.ndarray) -> dict[str, dict]:
    """{"mesh": `follow_stats`(driver, mesh), "picture": `follow_stats`(mesh, output)}: where the
    output's motion is lost (module docstring). All three (N, len(SIGNALS)), NaN rows where
    there is no face. The two gains multiply to about the output's own gain against the driver
    (exactly, when the three are proportional)."""
    return {"mesh": follow_stats(driver, mesh), "picture": follow_stats(mesh, output)}


def follow_stats(driver: np.ndarray, output: np.ndarray) -> dict[str, dict]:
    """{signal: {"gain", "r", "n", "std", "small", "offset"}} of `output` against `driver`, both
    (N, len(SIGNALS)) with NaN rows where a face was not tracked. gain / r are None where they
    are not defined; std is the driver's; small: it moves, but less than SMALL_MOTION × MIN_STD;
    offset: the median of output − driver (None without frames), which gain and r do not see: a
    self-driven avatar whose every look lands 0.1 eye widths aside of its driver's follows at
    gain 1, r 1."""
    driver, output = np.asarray(driver, np.float64), np.asarray(output, np.float64)
    n = min(len(driver), len(output))
    driver, output = driver[:n], output[:n]
    out: dict[str, dict] = {}
    for k, name in enumerate(SIGNALS):
        d, o = driver[:, k], output[:, k]
        ok = np.isfinite(d) & np.isfinite(o)
        d, o = d[ok], o[ok]
        std = float(np.std(d)) if len(d) else 0.0
        floor = MIN_STD.get(name, MIN_STD_DEFAULT)
        stats: dict = {"gain": None, "r": None, "n": int(ok.sum()), "std": std,
                       "small": floor <= std < SMALL_MOTION * floor,
                       "offset": float(np.median(o - d)) if len(d) else None}
        if len(d) >= 3 and std >= floor:
            dc, oc = d - d.mean(), o - o.mean()
            stats["gain"] = float((dc @ oc) / (dc @ dc))
            if np.std(o) > 0:
                stats["r"] = float(np.corrcoef(d, o)[0, 1])
        out[name] = stats
    return out


#: An eye opening (interoculars) below this is a closed eye (`blink_check`; the contact sheet's
#: "closed eyes" tile).
CLOSED_EYE = 0.03


def blink_check(driver: np.ndarray, output: np.ndarray, closed: float = CLOSED_EYE,
                slack: int = 1) -> dict:
    """Closed eyes arrive: at every frame where the driver's eye opening (each eye) is below
    `closed` interoculars, the output's must be below it too within `slack` frames.
    Returns {"closed_frames", "missed", "missed_at": [(frame, eye), ...]}."""
    driver, output = np.asarray(driver, np.float64), np.asarray(output, np.float64)
    n = min(len(driver), len(output))
    missed = []
    total = 0
    for eye in ("eye_open_r", "eye_open_l"):
        k = SIGNALS.index(eye)
        d, o = driver[:n, k], output[:n, k]
        for i in np.nonzero(d < closed)[0]:
            total += 1
            lo, hi = max(0, i - slack), min(n, i + slack + 1)
            if not np.any(o[lo:hi] < closed):
                missed.append((int(i), eye))
    return {"closed_frames": total, "missed": len(missed), "missed_at": missed[:20]}


def signal_std(signals: np.ndarray) -> dict[str, float]:
    """Each signal's standard deviation over the frames it was measured on (`signals`: (N,
    len(SIGNALS)), NaN where untracked); NaN (JSON null) for a signal never measured (no face
    found in any frame, or no frame at all), without numpy's "Degrees of freedom <= 0" warning
    that `np.nanstd` of an all-NaN column prints."""
    sig = np.asarray(signals, np.float64).reshape(-1, len(SIGNALS))
    out = {}
    for i, name in enumerate(SIGNALS):
        v = sig[:, i][np.isfinite(sig[:, i])]
        out[name] = float(v.std()) if v.size else float("nan")
    return out


# ------------------------------------------------------------------------------ the measure's floor

#: The floor copy's scale: a driver frame downscaled to this and back (issue #13's check of the
#: measure: such a copy "reads r ≥ 0.97 on every signal" — on a driver that moves them).
FLOOR_SCALE = 0.4


def floor_copy(image: np.ndarray, scale: float = FLOOR_SCALE) -> np.ndarray:
    """`image` (H, W, 3) downscaled to `scale` (area) and back up (bilinear): the same face and
    motion with the fine detail gone — what an engine that moved *exactly* as the driver but drew
    a slightly softer face would output."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def unmirror(landmarks: np.ndarray, width: int) -> np.ndarray:
    """Landmarks (478, 3) tracked on a frame flipped left to right (`width` pixels wide), back in
    the frame's own pixels and on the subject's own sides: each point is its mirror twin's
    (`topology.MIRROR`: the flipped face's "right eye" is the subject's left) at x → width − x;
    y and the depth z are kept. A tracker that read the flipped picture as it reads the frame
    gives the frame's own landmarks back."""
    lm = np.asarray(landmarks, np.float64)[topology.MIRROR].copy()
    lm[:, 0] = width - lm[:, 0]
    return lm


class FloorProbe:
    """The measure's own floor on one driver: every driver frame is also tracked (its own
    MediaPipe graph) as its `floor_copy`, and `stats()` compares the copy's signals with the
    driver's as `follow_stats` compares an output's: the best r a perfect engine could read on
    this clip. A signal the driver hardly moves (a still brow) reads well below 1 there: its r
    is the tracker's frame-to-frame noise, whatever the engine does.

    The copy is the same picture, softened, followed through the same tracking history: where the
    tracker's reading of a signal depends on the picture as much as on the motion, it still reads
    ~1. So with `mirror` each frame is also tracked flipped left to right (a third graph) and its
    landmarks flipped back (`unmirror`): exactly the same motion in a picture the tracker has not
    seen, as an engine's output is; `mirror_stats()` compares it with the driver. On d10 (yaw std
    1.3°) the copy reads yaw r 0.98, the mirror 0.63 (d14 0.98, d19 0.93): her yaw, read on any
    other picture of the same motion, is as much the tracker's as her head's.

    `offer(image, driver_landmarks)` per frame (landmarks None: the driver was not tracked; image
    None: a tracked clip without pictures, the frame is left out); `close()` releases the trackers.
    The floor is the main driver's, also where a remix takes the pose or expression elsewhere.
    Its tracker follows one face (MediaPipe's first): on a clip with several people, the floor
    may be another face's than the one the swap replaces."""

    def __init__(self, scale: float = FLOOR_SCALE, tracker=None, mirror: bool = True, mirror_tracker=None):
        self.scale = float(scale)
        self.tracker = tracker if tracker is not None else Tracker(static=False)
        self.mirror_tracker = (mirror_tracker if mirror_tracker is not None else Tracker(static=False)) \
            if mirror else None
        self.pictures = 0           # frames that came with a picture
        self._driver: list[np.ndarray] = []
        self._copy: list[np.ndarray] = []
        self._mirror: list[np.ndarray] = []

    def offer(self, image: np.ndarray | None, driver_landmarks: np.ndarray | None) -> None:
        nan = np.full(len(SIGNALS), np.nan)
        lm = self.tracker(floor_copy(image, self.scale)) if image is not None else None
        self.pictures += image is not None
        self._driver.append(nan if driver_landmarks is None else face_signals(driver_landmarks))
        self._copy.append(nan if lm is None else face_signals(lm))
        if self.mirror_tracker is not None:
            flipped = self.mirror_tracker(np.ascontiguousarray(image[:, ::-1])) if image is not None else None
            self._mirror.append(nan if flipped is None else face_signals(unmirror(flipped, image.shape[1])))

    def stats(self) -> dict[str, dict]:
        """`follow_stats` of the copy against the driver ({} before any frame)."""
        return follow_stats(np.stack(self._driver), np.stack(self._copy)) if self._driver else {}

    def mirror_stats(self) -> dict[str, dict]:
        """`follow_stats` of the flipped frames (flipped back) against the driver ({} before any
        frame, or without `mirror`)."""
        return follow_stats(np.stack(self._driver), np.stack(self._mirror)) if self._mirror else {}

    def result(self, notes: list[str]) -> dict[str, dict]:
        """`stats()`, with a line in `notes` when no frame came with a picture."""
        if not self.pictures:
            notes.append("floor omitted: the driver's frames carry no pictures (a tracked clip)")
        return self.stats()

    def close(self) -> None:
        for tracker in (self.tracker, self.mirror_tracker):
            close = getattr(tracker, "close", None)
            if callable(close):
                close()


# ------------------------------------------------------------------------------ contact sheet

#: (label, signal, pick): the frames a contact sheet shows; pick "max" / "min" / "absmax" of the
#: driver's signal (the eyes: the mean of both). The "closed eyes" frame is the driver's
#: narrowest eyes, labelled so (`sheet_label`) when they never close (below `CLOSED_EYE`).
SHEET = (("widest eyes", "eyes", "max"), ("closed eyes", "eyes", "min"),
         ("highest brows", "brow_raise", "max"), ("widest mouth", "mouth_open", "max"),
         ("strongest smile", "mouth_width", "max"), ("furthest gaze", "gaze_x", "absmax"))


def _sheet_value(signals: np.ndarray, which: str, pick: str) -> float:
    if which == "eyes":
        v = 0.5 * (signals[SIGNALS.index("eye_open_r")] + signals[SIGNALS.index("eye_open_l")])
    else:
        v = signals[SIGNALS.index(which)]
    if not np.isfinite(v):
        return -np.inf
    return {"max": v, "min": -v, "absmax": abs(v)}[pick]


#: A sheet's face view: a square this many times the face's landmark extent, about its centre.
FACE_VIEW = 1.7


def face_square(landmarks: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """(centre (2,), side) of the square `scale` × the larger extent of `landmarks` ((N, ≥2)
    pixels), centred on their box."""
    xy = np.asarray(landmarks, np.float64)[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    return (lo + hi) / 2.0, float((hi - lo).max()) * scale


def face_view(img: np.ndarray, landmarks: np.ndarray | None, height: int) -> np.ndarray:
    """`img` at `height` pixels: the square around the face (`FACE_VIEW` × the extent of
    `landmarks`, (478, 3) pixels; black where the square leaves the frame), or
    the whole frame (aspect kept) when there is no face. An avatar whose face is small in its
    frame (a full-length portrait) still shows its eyes and mouth on a contact sheet."""
    h, w = img.shape[:2]
    lm = None if landmarks is None else np.asarray(landmarks, np.float64)[:, :2]
    if lm is None or not np.all(np.isfinite(lm)):
        return cv2.resize(img, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
    (cx, cy), side = face_square(lm, FACE_VIEW)
    scale = height / max(side, 8.0)
    a = np.array([[scale, 0.0, height / 2 - scale * cx], [0.0, scale, height / 2 - scale * cy]])
    if scale < 1:   # shrinking: prefiltered so that it does not alias
        img = cv2.GaussianBlur(img, (0, 0), 0.5 / scale)
    return cv2.warpAffine(img, a, (height, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


@dataclass
class Extremes:
    """The driver / output frame pairs of `SHEET`, kept while a clip streams (`offer` each
    frame). Images are stored at `height` pixels: each face's view (`face_view`) when its
    landmarks are given, else the whole frame. `start`: the clip's frame number of the pass's
    first frame (a self-reenactment is driven from the clip's second half), so that a sheet's
    frame numbers are the clip's own, as its title's range (`Driver.label`)."""

    height: int = 256
    best: dict = field(default_factory=dict)   # label -> (score, clip frame, driver img, output img)
    start: int = 0

    def offer(self, index: int, signals: np.ndarray, driver: np.ndarray, output: np.ndarray,
              faces: tuple = (None, None)) -> None:
        """`index`: the frame's index in the pass (0 = its first); `faces`: the driver's and the
        output's (478, 3) landmarks (pixels), or None each."""
        for label, which, pick in SHEET:
            score = _sheet_value(signals, which, pick)
            if score > self.best.get(label, (-np.inf,))[0]:
                self.best[label] = (score, self.start + index, face_view(driver, faces[0], self.height),
                                    face_view(output, faces[1], self.height))


def sheet_label(label: str, score: float) -> str:
    """What a contact sheet's column says for `SHEET`'s `label` picked at `score`
    (`_sheet_value`): "closed eyes" only where the driver's eyes (the mean of both) are below
    `CLOSED_EYE` there, else "narrowest eyes"; the swap sheet's "lighting change" (its score:
    the driver's face luma against the first face's, 0-255) says by how much, since a clip whose
    light never changes still has a largest change (a blink's)."""
    if label == "closed eyes" and not -score < CLOSED_EYE:
        return "narrowest eyes"
    if label == "lighting change":
        return f"light change {score:.0f}/255"
    return label


_LINE_H = 18          # a column label's line height (px)
_MIN_SCALE = 0.35     # the smallest font a label shrinks to


def _label_lines(text: str, width: int, scale: float = 0.5) -> list[tuple[str, float]]:
    """A column label as lines (text, font scale) for `width` px: one line, else split at the
    space that balances two lines, each shrunk (down to _MIN_SCALE) where it still does not
    fit; a line too long even at _MIN_SCALE (a column of a few dozen px) is drawn at that size
    and cut off. A portrait clip's columns are narrower than a label ("light change 25/255 #123")."""
    def fits(t: str, sc: float) -> bool:
        return cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, sc, 1)[0][0] <= width

    def shrunk(t: str) -> tuple[str, float]:
        sc = scale
        while sc > _MIN_SCALE and not fits(t, sc):
            sc = round(sc - 0.05, 2)
        return t, sc

    if fits(text, scale) or " " not in text:
        return [shrunk(text)]
    cuts = [i for i, ch in enumerate(text) if ch == " "]
    cut = min(cuts, key=lambda i: abs(len(text) - 2 * i))
    return [shrunk(text[:cut]), shrunk(text[cut + 1:])]


def contact_sheet(extremes: Extremes, title: str = "", labels=None) -> np.ndarray:
    """RGB uint8 image: one column per `SHEET` entry (or per label of `labels`; label
    (`sheet_label`) and the clip's frame number on top), the driver's frame above the output's.
    An `extremes` with no frame (no driver face was ever tracked) gives a blank 200×40 image:
    the bench writes no sheet then (`bench.benchmark`), and says why."""
    picked = [(label, *extremes.best[label])
              for label in (labels if labels is not None else [entry[0] for entry in SHEET])
              if label in extremes.best]
    if not picked:
        return np.full((40, 200, 3), 255, np.uint8)
    heads = [_label_lines(f"{sheet_label(label, score)} #{index}", max(drv.shape[1], out.shape[1]) - 8)
             for label, score, index, drv, out in picked]
    head_h = 10 + _LINE_H * max(len(lines) for lines in heads)
    cols = []
    for (_, _, _, drv, out), lines in zip(picked, heads):
        w = max(drv.shape[1], out.shape[1])
        pad = lambda im, w=w: cv2.copyMakeBorder(im, 0, 0, 0, w - im.shape[1], cv2.BORDER_CONSTANT)
        head = np.full((head_h, w, 3), 255, np.uint8)
        for k, (text, scale) in enumerate(lines):
            cv2.putText(head, text, (4, 19 + _LINE_H * k), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                        cv2.LINE_AA)
        cols.append(np.concatenate([head, pad(drv), pad(out)], axis=0))
        cols.append(np.full((cols[-1].shape[0], 4, 3), 255, np.uint8))
    body = np.concatenate(cols[:-1], axis=1)
    side = np.full((body.shape[0], 70, 3), 255, np.uint8)
    h = (body.shape[0] - head_h) // 2
    cv2.putText(side, "driver", (4, head_h + h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(side, "output", (4, head_h + h + h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                cv2.LINE_AA)
    sheet = np.concatenate([side, body], axis=1)
    if title:
        # OpenCV's Hershey fonts are ASCII only
        for a, b in (("←", "<-"), ("→", "->"), ("–", "-"), ("—", "-"), ("·", "|")):
            title = title.replace(a, b)
        title = title.encode("ascii", "replace").decode()
        top = np.full((30, sheet.shape[1], 3), 255, np.uint8)
        cv2.putText(top, title, (4, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        sheet = np.concatenate([top, sheet], axis=0)
    return sheet
