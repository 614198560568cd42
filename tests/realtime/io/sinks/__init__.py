"""Sink tests; `frame()` makes the small RGB frames they write."""
from __future__ import annotations

import time

import numpy as np

from realtime.core.frame import Frame


def frame(i, w=32, h=24, value=None):
    img = np.full((h, w, 3), (i * 10) % 256 if value is None else value, np.uint8)
    return Frame(index=i, t_capture=time.perf_counter(), output=img)
