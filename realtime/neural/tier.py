"""Tier 3, "neural": the profile's trained generator on top of the tier-2 render.

The generator sees the atlas render (the warp render for an image profile), the face mask and
the appearance hint at its training resolution R; its output replaces the face region of the
render (a feathered face mask), so hair and background keep the full crop resolution.
Runs on onnxruntime when installed (about 2.5× faster than torch at 128² on a 2-core CPU),
else torch (inference mode, channels-last); torch fp16 on CUDA for --device cuda.
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.frame import Frame
from realtime.neural.train import GENERATOR_FILE, NEURAL_DIR


def _backend(device: str) -> str:
    if device != "cpu":
        return "torch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnxruntime"


class NeuralTierGenerator:
    tier = "neural"

    def __init__(self, profile, rig, device: str = "cpu", threads: int = 1):
        from profiles.format import ProfileError, file_path
        from realtime.generate import WarpGenerator
        from realtime.neural.infer import NeuralRunner

        rel = f"{NEURAL_DIR}/{GENERATOR_FILE}"
        if profile.folder is None or rel not in profile.files:
            raise ProfileError(f"profile {profile.name!r} has no trained generator: run "
                               f"python run.py train --profile {profile.name} first, or use "
                               f"--tier atlas/warp")
        if profile.has_atlas:
            from realtime.atlas import AtlasGenerator

            self.base = AtlasGenerator(profile, rig)
        else:
            self.base = WarpGenerator(profile, rig)
        self.rig = rig
        self.runner = NeuralRunner(str(file_path(profile, rel)), device=device,
                                   threads=threads, backend=_backend(device))
        r = self.res = self.runner.resolution
        s = rig.crop_size
        hint = cv2.warpAffine(profile["image"], rig.crop_from_image.astype(np.float64), (s, s),
                              flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        self.hint = cv2.resize(hint, (r, r), interpolation=cv2.INTER_AREA).astype(np.float32)
        self.face_end = rig.ranges["head"][0]
        self._feather = max(3, s // 32) | 1

    def reset(self) -> None:
        reset = getattr(self.base, "reset", None)
        if callable(reset):
            reset()

    def __call__(self, frame: Frame) -> np.ndarray:
        base = self.base(frame)
        s, r = self.rig.crop_size, self.res
        tri = frame.gbuf.tri_id
        face = ((tri >= 0) & (tri < self.face_end)).astype(np.float32)
        small = cv2.resize(base, (r, r), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(face, (r, r), interpolation=cv2.INTER_AREA)
        y = self.runner(small, mask, self.hint)
        y = cv2.resize(y, (s, s), interpolation=cv2.INTER_LINEAR)
        soft = cv2.GaussianBlur(cv2.erode(face, np.ones((3, 3), np.uint8)),
                                (self._feather, self._feather), 0)[..., None]
        return base + soft * (y - base)

