"""realtime.io.sinks itself: the registry, make_sink and what the package exports."""
from __future__ import annotations

import pytest

import realtime.io.sinks as sinks
from realtime.io.sinks import SINKS, FileSink, NullSink, Sink, SinkError, WindowSink, make_sink
from realtime.io.sinks.null import NullSink as null_sink
from realtime.io.sinks.threaded import ThreadedSink
from realtime.io.sinks.vcam import VirtualCameraSink, vcam_install_hint


def test_make_sink_registry(tmp_path):
    assert isinstance(SINKS, dict) and set(SINKS) == {"null", "file", "vcam", "window"}
    assert isinstance(make_sink("null", 30), NullSink)
    s = make_sink(f"file:{tmp_path / 'a.mp4'}", 25)
    assert isinstance(s, FileSink) and s.fps == 25 and s.path.name == "a.mp4"
    w = make_sink("window:Preview", 30)
    assert isinstance(w, WindowSink) and w.title == "Preview"
    with pytest.raises(SinkError) as err:
        make_sink("hdmi", 30)
    for choice in ("null", "file:OUT.mp4", "vcam", "window"):
        assert choice in str(err.value)
    with pytest.raises(SinkError, match="file:OUT.mp4"):
        make_sink("file", 30)


def test_every_sink_follows_the_protocol(tmp_path):
    for sink in (NullSink(), FileSink(tmp_path / "a.mp4"), WindowSink()):
        assert isinstance(sink, Sink)


def test_names_callers_import_from_the_package():
    # run.py, bench and realtime.engine import these from realtime.io.sinks
    assert sinks.NullSink is null_sink and sinks.ThreadedSink is ThreadedSink
    assert sinks.VirtualCameraSink is VirtualCameraSink
    assert sinks.vcam_install_hint is vcam_install_hint
    assert sinks.EVENTS == ("recalibrate", "toggle", "quit", "gain+", "gain-", "gain0", "glasses")
    for name in sinks.__all__:
        assert hasattr(sinks, name), name
