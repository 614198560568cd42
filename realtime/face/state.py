"""FaceState: what the estimator hands to recombination (pose + expression, driver-relative)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from realtime.face import geometry, topology


def _zeros_expr() -> np.ndarray:
    return np.zeros((topology.N_LANDMARKS, 3), np.float64)


@dataclass
class FaceState:
    """Pose relative to the driver's calibrated neutral, and expression in canonical units.

    rotation:    (3, 3) rotation relative to the neutral head pose, in camera axes.
    translation: (3,) head displacement relative to neutral, in units of the face scale.
    scale:       head scale relative to neutral (1 = same distance from the camera).
    expression:  (478, 3) per-landmark residual against the neutral shape, canonical units.
    present:     False while no face is tracked (the state is then an eased hold).
    teeth:       share (0..1) of the driver's open mouth that shows teeth (`realtime.face.teeth`):
                 a clenched grin ~0.7, a dropped jaw or closed lips 0.
    tongue:      share (0..1) of it that shows the tongue (`realtime.face.teeth.tongue_share`):
                 a dropped jaw over a tongue in view ~0.45, teeth over a dark throat ~0.05.
    """

    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    scale: float = 1.0
    expression: np.ndarray = field(default_factory=_zeros_expr)
    present: bool = True
    teeth: float = 0.0
    tongue: float = 0.0

    @classmethod
    def neutral(cls, present: bool = True) -> FaceState:
        return cls(present=present)

    @property
    def angles(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees."""
        return geometry.euler_from_rotation(self.rotation)

    def blend(self, other: FaceState, w: float) -> FaceState:
        """(1 - w)·self + w·other, rotations interpolated along the geodesic."""
        delta = geometry.rotvec_from_matrix(other.rotation @ self.rotation.T)
        return FaceState(
            rotation=geometry.matrix_from_rotvec(w * delta) @ self.rotation,
            translation=(1 - w) * self.translation + w * other.translation,
            scale=(1 - w) * self.scale + w * other.scale,
            expression=(1 - w) * self.expression + w * other.expression,
            present=other.present if w >= 0.5 else self.present,
            teeth=(1 - w) * self.teeth + w * other.teeth,
            tongue=(1 - w) * self.tongue + w * other.tongue,
        )
