"""realtime.core.stop: the remembered stop, and the steps that finish what a stop leaves."""
from __future__ import annotations

from realtime.core import stop


def test_a_step_cut_short_by_a_second_stop_is_done_again_until_it_ends():
    """A Ctrl-C (or SIGTERM) during the close that a first one started: the close is called again
    until it returns, so a file sink finishes and renames its file before the process exits;
    the first interrupt swallowed is returned (the run still stops)."""
    calls, after = [], []

    def close():
        calls.append(len(calls))
        if len(calls) < 3:
            raise KeyboardInterrupt(f"stop {len(calls)}")

    late = stop.through_stops(close, lambda: after.append(True))
    assert calls == [0, 1, 2] and after == [True]
    assert isinstance(late, KeyboardInterrupt) and str(late) == "stop 1"
    assert stop.through_stops(lambda: None) is None


def test_a_close_that_hangs_can_still_be_abandoned(monkeypatch):
    """Review of stop 64: each further Ctrl-C restarted the close, so a hung one could not be
    left but by SIGKILL. After `patience` stops the last is raised; the first is said."""
    told = []
    monkeypatch.setattr(stop, "on_waiting", told.append)

    def hangs():
        raise KeyboardInterrupt

    try:
        stop.through_stops(hangs, patience=3)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the third stop must be raised")
    assert told == [2]


def test_note_check_clear():
    stop.clear()
    stop.check()
    stop.note()
    assert stop.requested()
    try:
        stop.check()
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("check() must raise once a stop was noted")
    finally:
        stop.clear()
    assert not stop.requested()
