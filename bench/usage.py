"""What the user gives `run.py bench`, light to import (the CLI builds its `--help` from it
without loading the engine): the option defaults, the device names and `UsageError`."""
from __future__ import annotations

import argparse

from realtime.core.errors import PuppeteerError

__all__ = ["UsageError", "DEVICE_NAMES", "DEFAULT_WARMUP", "DEFAULT_CAMERA_FRAMES",
           "DEFAULT_BLOCK", "FOLLOW_RANGE", "RENDER_SIZE_RANGE", "MAX_SIDE", "given"]

DEFAULT_WARMUP = 30
DEFAULT_CAMERA_FRAMES = 300
DEFAULT_BLOCK = 60
#: The devices `--device` accepts: the contexts of `realtime.core.context.DEVICES` (which
#: imports the kernels, hence numba; tests/bench/test_devices.py keeps the two equal).
DEVICE_NAMES = ("cpu", "cuda")
#: The ranges `run.py live` checks on its options, which `--compare` checks on the same
#: options (bench.variants): --follow-scale/--follow-translation, --render-size (0: automatic),
#: the side of --size.
FOLLOW_RANGE = (0.0, 2.0)
RENDER_SIZE_RANGE = (32, 2048)
MAX_SIDE = 4096


class UsageError(PuppeteerError):
    """A mistake of the user's: the CLI prints `error: <message>` and returns 2."""


def given(text: str) -> str:
    """An argparse type for a file, folder, camera or profile name (`run.py` and `run.py bench`):
    an empty one is refused, where it would be taken for the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must not be empty, got {text!r}")
    return text
