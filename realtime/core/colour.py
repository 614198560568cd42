"""Colour constants shared by the stages that read a photo's light."""
from __future__ import annotations

import numpy as np

__all__ = ["LUMA"]

#: Rec. 601 luma weights of an RGB triple: ``rgb @ LUMA`` (float32).
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
LUMA.setflags(write=False)
