"""The swap's fuse stage, and the `SwapLink` the swap stages share.

Fuse: the profile's neutral shape with the driver's (retargeted) expression, posed by the
driver's *absolute* face frame — `Recombiner` with the driver's calibrated neutral frame as its
frame and follow_scale = follow_translation = 1, which reproduces the driver's similarity fit
exactly (UniFaceGAN eq. 3–4: identity from the profile, expression and camera pose C^p from the
driver). The result is drawn into a crop that follows the driver's face (`CropFollower`), by
the profile's rig without its head layer (`face_rig`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from realtime.core.frame import Frame
from realtime.face import geometry, topology
from realtime.face.estimate import EstimatorConfig
from realtime.face.geometry import Similarity, face_frame
from realtime.face.state import FaceState
from realtime.mesh.fuse import FuseConfig, Recombiner
from realtime.mesh.rig import Rig
from realtime.swap.crop import CropFollower, invert_affine, to_virtual

__all__ = ["SwapLink", "SwapGeometry", "SwapFuseStage", "swap_fuse_config", "fan_contours", "cover_driver_lips",
           "EYE_SHRINK", "JAW_MARGIN", "JAW_STRETCH_MAX"]

#: Frames a face that jumped from the last one believed is held at the last face drawn: as long
#: as the estimator holds a jumped face back before it believes it (`confirm_frames` - 1: 2).
HOLD_FRAMES = EstimatorConfig().confirm_frames - 1
#: The driver's eye openings are sampled this much inside their lid line (its lashes and
#: eyeliner would draw a dark ring inside the identity's lids).
EYE_SHRINK = 0.85
#: The identity's chin stays at least this far (interoculars) below the driver's lower lip:
#: the blend's alpha reaches 1 a fifth of an interocular inside the identity's outline
#: (`realtime.swap.crop.vertex_alpha`), and the lip's shadow lies below its landmarks.
JAW_MARGIN = 0.3
#: ... lengthening its lower face by at most this much (interoculars; a wide-open jaw drops about
#: 0.5): a face much shorter than the driver's, or a remixed pose that leaves the driver's head
#: (`--pose-from`), is not stretched without bound. The eval pairs need at most 0.32.
JAW_STRETCH_MAX = 0.6
_LIPS_OUTER = np.array(topology.OUTER_LIP)
_STOMION = np.array(topology.INNER_LIP_UPPER[1:-1])


@dataclass
class SwapGeometry:
    """What the fuse stage measured on one frame, for the stages after it."""

    crop: np.ndarray             # (2, 3) frame → crop affine
    crop_inv: np.ndarray         # (2, 3) crop → frame
    driver_vertices: np.ndarray  # (V, 3) float32 the rig's vertices derived from the driver's landmarks, crop px
    #                              (the eye contours pulled EYE_SHRINK towards their fans' centres)
    driver_landmarks: np.ndarray  # (478, 3) the driver's landmarks, frame px
    warm: bool = False           # a synthetic warm-up frame


class SwapLink:
    """The swap geometry of the frame being processed (None: no face, the frame passes through),
    and that frame's image on the engine's device (uploaded once, by whichever stage needs it
    first)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.current: SwapGeometry | None = None
        #: True on a frame that shows the last face again (`SwapFuseStage`: a face that jumped):
        #: its image is not where that face was, so nothing is read from it there
        self.held = False
        self._image = None
        self._image_dev = None

    def image_on_device(self, image: np.ndarray):
        if image is not self._image:
            self._image, self._image_dev = image, self.ctx.upload(np.ascontiguousarray(image))
        return self._image_dev


def swap_fuse_config(config: FuseConfig, own_pose: bool = True, own_gaze: bool = True) -> FuseConfig:
    """`config` with the head following the driver fully (position, size and any rotation: the
    swap draws no head layer, so nothing limits the turn): the face must sit on the driver's head
    (`own_pose`, the driver's own head pose: its pose gain 1 too, whatever the profile's gains
    say; a profile's pose gain of 1.2 turned the face off the head); the lips moving as much
    as the driver's (`mouth_retarget` 0): the jaw that opens is the driver's own, on the driver's
    head; and (`own_gaze`: the driver's own eyes show in the openings) the gaze gain 1: the
    driver's iris is drawn where the posed iris is (`realtime.swap.composite.eye_sources`), and
    it looks where the driver looks."""
    own = {**({"pose_gain": 1.0} if own_pose else {}), **({"gaze_gain": 1.0} if own_gaze else {})}
    return dataclasses.replace(config, follow_scale=1.0, follow_translation=1.0, max_head_angle=180.0,
                               mouth_retarget=0.0, **own)


def fan_contours(rig: Rig, key: str) -> list[tuple[int, np.ndarray]]:
    """(centre vertex, contour vertices) of each fan of the triangle range `key` (a fan's
    triangles are (contour, contour, centre), `realtime.face.topology`)."""
    lo, hi = rig.ranges.get(key, (0, 0))
    tris = rig.triangles[lo:hi]
    return [(int(c), np.unique(tris[tris[:, 2] == c][:, :2])) for c in np.unique(tris[:, 2])]


def cover_driver_lips(shape: np.ndarray, driver: np.ndarray, margin: float = JAW_MARGIN,
                      most: float = JAW_STRETCH_MAX) -> float:
    """Lengthen the identity's lower face (in place) so that its chin lies `margin` interoculars
    below the driver's lowest lip point, by at most `most` interoculars; returns how far the
    chin moved (canonical units, 0 when it already lay there).

    `shape`: (478, 3) the identity's canonical shape; `driver`: (≥478, 3) the driver's landmarks
    in the same canonical frame (y down). Why: a shorter face swapped onto a longer one covers
    the driver's lips while the mouth is closed, but when the driver's jaw drops, their lower
    lip comes out below the identity's chin — a second mouth under the swapped one. Only the
    skin below the identity's mouth stretches (from nothing at the upper inner lip to all of it
    at the chin), as a jaw's skin does when it opens; the identity's features above stay.
    """
    iod = max(geometry.interocular(shape), 1e-9)
    need = min(float(driver[_LIPS_OUTER, 1].max()) + margin * iod - float(shape[topology.CHIN, 1]), most * iod)
    if not need > 0.0:       # also NaN landmarks: nothing moves
        return 0.0
    top = float(shape[_STOMION, 1].mean())
    span = max(float(shape[topology.CHIN, 1]) - top, 1e-9)
    shape[:, 1] += need * np.clip((shape[:, 1] - top) / span, 0.0, 1.0)
    return need


class SwapFuseStage:
    """Frame.state + Frame.landmarks → Frame.vertices (the identity's face in the swap crop) and
    `link.current` (the crop and the driver's own vertices), or `link.current = None` when there
    is no face (the stages after it then let the frame pass)."""

    name = "fuse"

    def __init__(self, recombiner: Recombiner, rig: Rig, nominal: np.ndarray, link: SwapLink,
                 neutral_of=lambda: None, warm_landmarks: np.ndarray | None = None,
                 absent_of=lambda: True):
        self.recombiner = recombiner
        self.absent_of = absent_of       # the estimator's `absent`: a face not believed is appearing
        self._last: tuple[np.ndarray, SwapGeometry] | None = None   # the last face drawn
        self._held = 0
        self.rig = rig
        self.link = link
        self.neutral_of = neutral_of
        self.nominal_inv = invert_affine(nominal)
        self.follower = CropFollower(recombiner.target_neutral, rig.crop_size)
        self.warm_landmarks = warm_landmarks   # a face for the warm-up frames (index < 0)
        self._bound = object()
        self._frame = rig.neutral_frame
        self._shrink = [(c, ring, EYE_SHRINK) for c, ring in fan_contours(rig, "eyes")]

    def reset(self) -> None:
        self.follower.reset()
        self._bound = object()
        self._last, self._held = None, 0

    def _bind(self, landmarks: np.ndarray) -> None:
        neutral = self.neutral_of()
        if neutral is self._bound:
            return
        self._bound = neutral
        if neutral is None:      # no calibrated driver (warm-up): the frame of these landmarks
            self.recombiner.target_frame = face_frame(landmarks)
            self.recombiner.bind_driver(None)
            return
        self.recombiner.target_frame = Similarity(neutral.rotation, neutral.scale, neutral.translation)
        # at once (no ease of the lips' rest gap): the swap's estimator does not ease either, and
        # the driver's own mouth shows through the identity's from the first frame
        self.recombiner.bind_driver(neutral.shape)

    def __call__(self, frame: Frame) -> None:
        landmarks = frame.landmarks
        warm = False
        if landmarks is None and frame.index < 0 and self.warm_landmarks is not None:
            landmarks, warm = self.warm_landmarks, True
        if landmarks is None or frame.state is None:
            self._pass()
            return
        lm = np.asarray(landmarks, np.float64)
        state = frame.state
        # A face the estimator does not believe: its state is the eased neutral of the last face
        # believed, which would put the identity where that face was (over a chin and neck).
        if state.present or warm:
            self._bind(lm)
        elif self.absent_of():
            # Appearing (a run's first frame, a face back after an absence, every picture of a
            # folder of portraits): the identity at rest where this face is, until believed.
            self._bound = object()            # bound to the calibrated driver again once believed
            self.recombiner.target_frame = face_frame(lm)
            self.recombiner.bind_driver(None)
            state = FaceState.neutral(present=False)
        elif self._last is not None and self._held < HOLD_FRAMES:
            # Jumped from the face believed last (a tracker's mis-fit, a hand over the face, a
            # cut): the last face drawn is held while the estimator makes sure, then the frame
            # passes as with no face (a face never believed is none: a phantom, a half face).
            self._held += 1
            frame.vertices, self.link.current = self._last
            self.link.held = True
            return
        else:
            self._pass()
            return
        self._held, self.link.held = 0, False
        pose = self.recombiner.pose(state)
        shape = self.recombiner.canonical(state)
        cover_driver_lips(shape, pose.invert_points(lm[:topology.N_LANDMARKS]))
        posed = pose.apply(shape)
        crop = self.follower(pose)
        rig = self.rig
        frame.vertices = rig.pose(to_virtual(posed, crop, self.nominal_inv), self._frame)
        driver = rig.pose(to_virtual(lm[:topology.N_LANDMARKS], crop, self.nominal_inv), self._frame)
        for centre, ring, f in self._shrink:   # the driver's eye seen a little inside its lid line
            driver[ring, :2] = driver[centre, :2] + f * (driver[ring, :2] - driver[centre, :2])
        self.link.current = SwapGeometry(crop=crop, crop_inv=invert_affine(crop), driver_vertices=driver,
                                         driver_landmarks=np.asarray(landmarks), warm=warm)
        self._last = None if warm else (frame.vertices, self.link.current)

    def _pass(self) -> None:
        """No face drawn on this frame: it passes through."""
        self.link.current, self.link.held = None, False
        self.follower.reset()
        self._last, self._held = None, 0
