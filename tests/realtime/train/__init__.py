"""Training tests; `Pairs` is the tiny training set they train on."""
from __future__ import annotations

import numpy as np


class Pairs:
    """Four tiny training pairs (32² px), none with a previous frame."""
    n, r = 4, 32
    rng = np.random.default_rng(0)
    render = rng.uniform(-1, 1, (n, 3, r, r)).astype(np.float32)
    target = rng.uniform(-1, 1, (n, 3, r, r)).astype(np.float32)
    mask = np.ones((n, 1, r, r), np.float32)
    hint = rng.uniform(-1, 1, (1, 3, r, r)).astype(np.float32)
    prev = np.full(n, -1)

    def __len__(self):
        return self.n
