"""Who a face is: 128-d face descriptors with dlib's ResNet (an optional dependency, the
`quality` extra). The bench's identity distance (`bench.metrics.IdentityEncoder`, re-exported
from here) and video enrollment's check that every shot of a clip shows one person
(`profiles.persons`) use it.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np

__all__ = ["IdentityEncoder", "INSTALL_HINT"]

INSTALL_HINT = "pip install '.[quality]'  (dlib-bin and face_recognition_models)"


def _models_dir() -> str | None:
    """`face_recognition_models/models` located without importing the package (its
    __init__ imports pkg_resources, which may be missing)."""
    env = os.environ.get("PUPPETEER_DLIB_MODELS")
    if env:
        return env
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    locs = list(spec.submodule_search_locations or [])
    if not locs and spec.origin:
        locs = [os.path.dirname(spec.origin)]
    for loc in locs:
        d = os.path.join(loc, "models")
        if os.path.isdir(d):
            return d
    return None


_MODEL_FILES = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")


class IdentityEncoder:
    """128-d face descriptors with dlib's ResNet (dlib_face_recognition_resnet_model_v1).

    Pipeline: dlib frontal face detector (HOG) on the RGB uint8 image → largest face →
    shape_predictor_5_face_landmarks → `compute_face_descriptor` (aligned 150² chip).
    Distances are Euclidean between descriptors; dlib's usual same-person threshold is 0.6
    (measured here: same face mirrored ≈ 0.19, two people ≈ 0.55).

    dlib is imported lazily; check :meth:`available` first (False, with
    :meth:`unavailable_reason`, when dlib or the model files are missing).
    """

    _reason: str | None = None
    _checked = False

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when usable, else why not and how to fix it."""
        if not cls._checked:
            cls._reason = None
            if importlib.util.find_spec("dlib") is None:
                cls._reason = f"dlib is not installed: {INSTALL_HINT}"
            else:
                d = _models_dir()
                if d is None:
                    cls._reason = f"face_recognition_models is not installed: {INSTALL_HINT}"
                else:
                    missing = [f for f in _MODEL_FILES if not os.path.isfile(os.path.join(d, f))]
                    if missing:
                        cls._reason = f"model files missing in {d}: {missing}; {INSTALL_HINT}"
            cls._checked = True
        return cls._reason

    @classmethod
    def available(cls) -> bool:
        return cls.unavailable_reason() is None

    def __init__(self, upsample: int = 1, num_jitters: int = 1, models_dir: str | None = None):
        if models_dir is None:
            reason = self.unavailable_reason()
            if reason is not None:
                raise RuntimeError(f"IdentityEncoder unavailable: {reason}")
            models_dir = _models_dir()
        import dlib  # noqa: PLC0415 - optional dependency
        self._dlib = dlib
        self.upsample = int(upsample)
        self.num_jitters = int(num_jitters)
        self.detector = dlib.get_frontal_face_detector()
        self.shape_predictor = dlib.shape_predictor(os.path.join(models_dir, _MODEL_FILES[0]))
        self.encoder = dlib.face_recognition_model_v1(os.path.join(models_dir, _MODEL_FILES[1]))

    def descriptor(self, img) -> np.ndarray | None:
        """(128,) float64 descriptor of the largest face in an RGB uint8 image, or None."""
        a = np.asarray(img)
        if a.dtype != np.uint8:
            a = np.clip(np.rint(a.astype(np.float64) * (255.0 if a.max() <= 1.0 else 1.0)),
                        0, 255).astype(np.uint8)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"descriptor: image must be (H, W, 3) RGB, got {a.shape}")
        a = np.ascontiguousarray(a)
        faces = self.detector(a, self.upsample)
        if len(faces) == 0:
            return None
        return self._encode(a, max(faces, key=lambda r: r.width() * r.height()))

    def descriptor_in(self, img: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """(128,) descriptor of the face in `box` (left, top, right, bottom pixels: brows to
        chin, as dlib's detector boxes it) of an RGB uint8 image, without running the detector:
        for a face another tracker has already found (dlib's HOG detector misses turned faces,
        and costs more than the box it would give)."""
        a = np.ascontiguousarray(np.asarray(img, np.uint8))
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"descriptor_in: image must be (H, W, 3) RGB, got {a.shape}")
        left, top, right, bottom = (int(round(v)) for v in box)
        return self._encode(a, self._dlib.rectangle(left, top, right, bottom))

    def _encode(self, a: np.ndarray, face) -> np.ndarray:
        """(128,) float64 descriptor of the face in dlib rectangle `face` of RGB uint8 `a`."""
        shape = self.shape_predictor(a, face)
        return np.asarray(self.encoder.compute_face_descriptor(a, shape, self.num_jitters),
                          dtype=np.float64)

    def distance(self, img_a, img_b) -> float | None:
        """Euclidean distance between the descriptors of two images (each may also be a
        precomputed (128,) descriptor); None when either has no detectable face."""
        da = self._desc_or_pass(img_a)
        db = self._desc_or_pass(img_b)
        if da is None or db is None:
            return None
        return float(np.linalg.norm(da - db))

    def _desc_or_pass(self, x):
        if x is None:
            return None
        a = np.asarray(x)
        if a.shape == (128,):
            return a.astype(np.float64)
        return self.descriptor(a)
