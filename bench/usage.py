"""What the user gives `run.py bench`, light to import (the CLI builds its `--help` from it
without loading the engine): the option defaults, the device names and `UsageError`."""
from __future__ import annotations

from realtime.core.errors import PuppeteerError

__all__ = ["UsageError", "DEVICE_NAMES", "DEFAULT_WARMUP", "DEFAULT_CAMERA_FRAMES",
           "DEFAULT_BLOCK"]

DEFAULT_WARMUP = 30
DEFAULT_CAMERA_FRAMES = 300
DEFAULT_BLOCK = 60
#: The devices `--device` accepts: the contexts of `realtime.core.context.DEVICES` (which
#: imports the kernels, hence numba; tests/bench/test_devices.py keeps the two equal).
DEVICE_NAMES = ("cpu", "cuda")


class UsageError(PuppeteerError):
    """A mistake of the user's: the CLI prints `error: <message>` and returns 2."""
