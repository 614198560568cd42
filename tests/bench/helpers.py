"""Helpers of the bench tests: synthetic driver clips (no ../shared, no camera), the `bench`
options parsed, one error line, a disk that fills up."""
from __future__ import annotations

import argparse
import contextlib
import resource
import signal

import cv2
import numpy as np

from bench import cli


def moving_clip(path, image, n, fps=30.0, still_from=None):
    """`n` frames of `image` turning and shifting a little about its centre (the image itself
    from frame `still_from` on), MJPG .avi."""
    h, w = image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for t in range(n):
        if still_from is not None and t >= still_from:
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            continue
        ang = 4.0 * np.sin(2 * np.pi * t / 20)
        m = cv2.getRotationMatrix2D((w / 2, h / 3), ang, 1.0)
        m[0, 2] += 6.0 * np.sin(2 * np.pi * t / 27)
        frame = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def zoom_clip(path, image, n, zoom_from, scale=1.12, fps=30.0):
    """`n` frames: `image`, then from frame `zoom_from` on the camera `scale`× closer."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 3), 0.0, scale)
    zoomed = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for t in range(n):
        writer.write(cv2.cvtColor(image if t < zoom_from else zoomed, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def parse(*argv) -> argparse.Namespace:
    """`run.py bench *argv` parsed."""
    p = argparse.ArgumentParser(prog="run.py bench")
    cli.add_arguments(p)
    return p.parse_args([str(a) for a in argv])


def one_error_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


@contextlib.contextmanager
def disk_full_after(limit: int):
    """Within: a write that takes one of this process's files past `limit` bytes fails (EFBIG,
    as a full disk's fails with ENOSPC), in Python and in C libraries alike: RLIMIT_FSIZE's soft
    limit, with SIGXFSZ ignored so that the write returns the error instead of killing the
    process. Both are restored after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
