"""Silence what native libraries print on the process's stderr, so a user error stays one line.

MediaPipe / TensorFlow Lite ("Created TensorFlow Lite XNNPACK delegate"), libpng ("iCCP: known
incorrect sRGB profile"), FFmpeg inside OpenCV ("moov atom not found") write straight to file
descriptor 2, past Python's `sys.stderr`. `quiet_native_stderr()` points descriptor 2 at the
null device for the duration of a block (the decoders' and trackers' set-up and first calls)
and puts it back after. Python's own `sys.stderr` writes inside the block are silenced too, so
keep the blocks short and never wrap code that reports to the user.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet_native_stderr"]

_lock = threading.RLock()   # nested or concurrent blocks restore descriptor 2 in order
_depth = 0


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Native writes to descriptor 2 go to the null device inside the block."""
    global _depth
    fd = 2      # native code writes to descriptor 2, whatever sys.stderr is (pytest replaces it)
    try:
        os.fstat(fd)
    except OSError:                 # no descriptor 2 at all (a daemon): nothing to silence
        yield
        return
    with _lock:
        _depth += 1
        if _depth > 1:          # already silenced by an enclosing block of this thread
            try:
                yield
            finally:
                _depth -= 1
            return
        with contextlib.suppress(AttributeError, OSError, ValueError):
            sys.stderr.flush()
        saved = os.dup(fd)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            os.close(devnull)
            _depth -= 1
