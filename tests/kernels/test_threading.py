"""kernels._threading: numba runs on the `tbb` wheel's TBB layer where it is installed (checked in
a fresh interpreter: the layer is chosen once, when numba starts its threads)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kernels import _threading

HAS_TBB_WHEEL = _threading._wheel_library() is not None


def _layer(layer: str | None) -> str:
    """numba's threading layer in a fresh interpreter that imports kernels (NUMBA_THREADING_LAYER
    = `layer`, or unset)."""
    code = "import kernels, numba; kernels.work_stealing(); print(numba.threading_layer())"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    if layer is not None:
        env["NUMBA_THREADING_LAYER"] = layer
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=env, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(not HAS_TBB_WHEEL, reason="the tbb wheel is not installed (an ARM machine)")
def test_importing_kernels_puts_numba_on_tbb():
    assert _layer(None) == "tbb"


def test_a_layer_the_user_chose_is_kept():
    assert _layer("workqueue") == "workqueue"
