"""Rigid geometry on landmark sets: similarity fits, rotations and the face frame.

Landmarks are (N, 3) float arrays in pixel units: x right, y down, z away from the camera
(MediaPipe's z scaled by the image width), which is a right-handed frame.
Euler angles are in degrees: yaw about y (turning the head), pitch about x (nodding), roll
about z (tilting), composed as R = Rz(roll) @ Ry(yaw) @ Rx(pitch).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.face import topology


@dataclass(frozen=True)
class Similarity:
    """x_camera = scale * rotation @ x_canonical + translation."""

    rotation: np.ndarray   # (3, 3)
    scale: float
    translation: np.ndarray  # (3,)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * points @ self.rotation.T + self.translation

    def invert_points(self, points: np.ndarray) -> np.ndarray:
        """Camera points back into the canonical frame."""
        return (points - self.translation) @ self.rotation / self.scale


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None,
            with_scale: bool = True) -> Similarity:
    """Least-squares similarity (Umeyama 1991) with dst ≈ s·R·src + t, optional weights.

    src, dst: (N, 3). Reflections are excluded (det R = +1).
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        raise ValueError(f"umeyama needs two (N, 3) arrays of one shape, got {src.shape} and {dst.shape}")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s = w @ src
    mu_d = w @ dst
    a = src - mu_s
    b = dst - mu_d
    cov = (b * w[:, None]).T @ a
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1.0
    rot = (u * d) @ vt
    var_s = float(w @ (a * a).sum(1))
    scale = float((sig * d).sum() / var_s) if with_scale else 1.0
    return Similarity(rot, scale, mu_d - scale * rot @ mu_s)


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation matrix from yaw, pitch, roll in degrees (R = Rz @ Ry @ Rx)."""
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def euler_from_rotation(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees; inverse of `rotation_from_euler` for |yaw| < 90°."""
    yaw = np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0))
    pitch = np.arctan2(rot[2, 1], rot[2, 2])
    roll = np.arctan2(rot[1, 0], rot[0, 0])
    return tuple(float(v) for v in np.degrees([yaw, pitch, roll]))


def rotvec_from_matrix(rot: np.ndarray) -> np.ndarray:
    """Axis-angle vector (radians) of a rotation matrix."""
    cos = np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-8:
        return np.zeros(3)
    axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    if np.pi - angle < 1e-6:  # near 180°: take the axis from the symmetric part
        m = (rot + np.eye(3)) / 2.0  # = a·aᵀ for the unit axis a
        k = int(np.argmax(np.diag(m)))
        axis = m[k] / np.sqrt(m[k, k])
        return axis / np.linalg.norm(axis) * angle
    return axis / (2.0 * np.sin(angle)) * angle


def matrix_from_rotvec(vec: np.ndarray) -> np.ndarray:
    """Rotation matrix of an axis-angle vector (Rodrigues)."""
    angle = float(np.linalg.norm(vec))
    if angle < 1e-12:
        return np.eye(3)
    k = np.asarray(vec, np.float64) / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def face_frame(landmarks: np.ndarray) -> Similarity:
    """The anatomical frame of a face: origin at the centroid of the rigid points, x from the
    subject's right to left (mirror pairs), y from forehead to chin, unit = RMS radius of the
    rigid points. Canonical coordinates are `face_frame(L).invert_points(L)`.

    Two faces of different people in the same head pose get (nearly) the same frame rotation,
    so an expression residual measured on one is applied in the same direction on the other.
    """
    lm = np.asarray(landmarks, np.float64)[: topology.N_MESH]
    rigid = lm[list(topology.RIGID)]
    centre = rigid.mean(0)
    pairs = np.arange(topology.N_MESH)
    sided = pairs[topology.MIRROR[: topology.N_MESH] != pairs]
    lr = lm[sided] - lm[topology.MIRROR[sided]]
    ref = lm[topology.EYE_OUTER[1]] - lm[topology.EYE_OUTER[0]]
    lr *= np.sign(lr @ ref)[:, None]
    x = lr.sum(0)
    x /= np.linalg.norm(x)
    down = lm[topology.CHIN] - lm[topology.FOREHEAD]
    y = down - (down @ x) * x
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    rot = np.stack([x, y, z], axis=1)
    scale = float(np.sqrt(((rigid - centre) ** 2).sum(1).mean()))
    return Similarity(rot, scale, centre)


def mouth_opening(canonical_or_pixels: np.ndarray) -> float:
    """Mean inner-lip gap over three lip pairs, in the units of the input."""
    lm = canonical_or_pixels
    return float(np.mean([np.linalg.norm(lm[a, :2] - lm[b, :2]) for a, b in topology.MOUTH_GAP_PAIRS]))


def eye_opening(canonical_or_pixels: np.ndarray) -> tuple[float, float]:
    """Mean lid gaps (right, left) in the units of the input."""
    lm = canonical_or_pixels
    def gap(pairs):
        return float(np.mean([np.linalg.norm(lm[a, :2] - lm[b, :2]) for a, b in pairs]))
    return gap(topology.RIGHT_EYE_GAP_PAIRS), gap(topology.LEFT_EYE_GAP_PAIRS)


def interocular(landmarks: np.ndarray) -> float:
    a, b = topology.EYE_OUTER
    return float(np.linalg.norm(landmarks[a, :2] - landmarks[b, :2]))
