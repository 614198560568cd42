"""The null sink, and the output check every sink applies (realtime.io.sinks.base)."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.io.sinks.base import SinkError
from realtime.io.sinks.null import NullSink
from tests.realtime.io.sinks import frame


def test_null_sink_counts_and_keeps_last():
    s = NullSink()
    s.open(32, 24, 30)
    for i in range(5):
        s.write(frame(i))
    s.close()
    assert s.frames_written == 5 and s.last.index == 4 and s.poll_events() == []
    with pytest.raises(SinkError, match="40x24.*32x24"):
        s.write(frame(5, w=40))
    bad = frame(6)
    bad.output = bad.output.astype(np.float32)
    with pytest.raises(SinkError, match="uint8"):
        s.write(bad)
