"""The mailbox's contract: newest wins (drops counted), offline back-pressure (never drops),
close and cancel from either end, blocking get with a timeout."""
from __future__ import annotations

import threading
import time

import pytest

from realtime.io.mailbox import Mailbox, MailboxClosed, MailboxTimeout


def in_thread(fn):
    """Run fn in a daemon thread; returns (thread, box) where box gets "result" or "error"."""
    box = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def test_realtime_newest_wins_and_drops_are_counted():
    mb = Mailbox(realtime=True)
    assert mb.capacity == 1
    for i in range(3):
        assert mb.put(i) is True  # never waits
    assert len(mb) == 1 and mb.dropped == 2
    assert mb.get(0) == 2
    assert mb.delivered == 1 and len(mb) == 0
    mb.put(3)
    assert mb.get(0) == 3 and mb.dropped == 2  # taken in time: not a drop


def test_realtime_put_never_blocks_with_a_slow_consumer():
    mb = Mailbox(realtime=True)
    worst = 0.0
    for i in range(200):
        t0 = time.perf_counter()
        mb.put(i)
        worst = max(worst, time.perf_counter() - t0)
    assert worst < 0.05 and mb.dropped == 199 and mb.get(0) == 199


def test_offline_blocks_instead_of_dropping():
    mb = Mailbox(realtime=False, capacity=2)
    assert mb.put("a") and mb.put("b")
    thread, box = in_thread(lambda: mb.put("c"))
    thread.join(0.15)
    assert thread.is_alive() and len(mb) == 2  # waiting for room, "c" not stored yet
    assert mb.get(1.0) == "a"
    thread.join(1.0)
    assert not thread.is_alive() and box["result"] is True
    assert [mb.get(0), mb.get(0)] == ["b", "c"]
    assert mb.dropped == 0 and mb.delivered == 3


def test_offline_delivers_every_item_in_order_across_threads():
    mb = Mailbox(realtime=False, capacity=3)

    def produce():
        for i in range(500):
            assert mb.put(i)
        mb.close()

    thread, box = in_thread(produce)
    got = []
    while True:
        try:
            got.append(mb.get(5.0))
        except MailboxClosed:
            break
    thread.join(1.0)
    assert "error" not in box
    assert got == list(range(500)) and mb.dropped == 0 and mb.delivered == 500


def test_realtime_across_threads_accounts_for_every_item():
    mb = Mailbox(realtime=True)
    n = 2000

    def produce():
        for i in range(n):
            mb.put(i)
        mb.close()

    thread, _ = in_thread(produce)
    got = []
    while True:
        try:
            got.append(mb.get(5.0))
        except MailboxClosed:
            break
    thread.join(1.0)
    assert all(b > a for a, b in zip(got, got[1:]))  # never older than one already taken
    assert got[-1] == n - 1  # the newest item is the one left at the end
    assert mb.delivered + mb.dropped == n


def test_get_timeout_raises_mailbox_timeout():
    mb = Mailbox(realtime=True)
    t0 = time.perf_counter()
    with pytest.raises(MailboxTimeout) as err:
        mb.get(0.05)
    elapsed = time.perf_counter() - t0
    assert 0.04 <= elapsed < 0.5, elapsed
    assert isinstance(err.value, TimeoutError)
    with pytest.raises(MailboxTimeout):
        mb.get(0)  # a zero timeout does not wait


def test_blocking_get_waits_for_a_put():
    mb = Mailbox(realtime=False)
    thread, box = in_thread(lambda: mb.get())  # no timeout: waits indefinitely
    thread.join(0.1)
    assert thread.is_alive()
    mb.put("x")
    thread.join(1.0)
    assert box == {"result": "x"}


def test_close_wakes_a_waiting_get():
    mb = Mailbox(realtime=False)
    thread, box = in_thread(lambda: mb.get())
    thread.join(0.05)
    assert thread.is_alive()
    t0 = time.perf_counter()
    mb.close()
    thread.join(1.0)
    assert not thread.is_alive() and time.perf_counter() - t0 < 0.5
    assert isinstance(box["error"], MailboxClosed)


def test_close_delivers_pending_items_first_then_the_error_every_time():
    mb = Mailbox(realtime=False, capacity=4)
    mb.put(1)
    mb.put(2)
    boom = ValueError("boom")
    mb.close(boom)
    assert not mb.drained
    assert mb.get(0) == 1 and mb.get(0) == 2
    assert mb.drained
    for _ in range(2):
        with pytest.raises(ValueError) as err:
            mb.get(0)
        assert err.value is boom  # the same object, every call
    mb.close(OSError("later"))  # a later close does not replace the first error
    with pytest.raises(ValueError):
        mb.get(0)


def test_close_without_error_then_a_late_error_is_recorded():
    mb = Mailbox(realtime=True)
    mb.close()
    with pytest.raises(MailboxClosed):
        mb.get(0)
    late = OSError("cleanup failed")
    mb.close(late)  # e.g. closing the source failed after the end
    with pytest.raises(OSError) as err:
        mb.get(0)
    assert err.value is late


def test_put_after_close_is_refused():
    for realtime in (True, False):
        mb = Mailbox(realtime=realtime)
        mb.put("kept")
        mb.close()
        assert mb.put("late") is False
        assert mb.get(0) == "kept" and mb.dropped == 0
        with pytest.raises(MailboxClosed):
            mb.get(0)


def test_cancel_wakes_a_blocked_put_and_refuses_later_ones():
    mb = Mailbox(realtime=False, capacity=1)
    mb.put("a")
    thread, box = in_thread(lambda: mb.put("b"))
    thread.join(0.05)
    assert thread.is_alive()
    t0 = time.perf_counter()
    mb.cancel()
    thread.join(1.0)
    assert box == {"result": False} and time.perf_counter() - t0 < 0.5
    assert mb.put("c") is False
    assert len(mb) == 1  # pending items stay until clear()
    assert mb.clear() == 1 and len(mb) == 0 and mb.dropped == 0


def test_cancelled_realtime_put_still_replaces_the_pending_item():
    # The Grabber's counting: a frame captured while stopping replaces (and drops) the one
    # still waiting in the slot, and is not stored itself.
    mb = Mailbox(realtime=True)
    mb.put("old")
    mb.cancel()
    assert mb.put("new") is False
    assert len(mb) == 0 and mb.dropped == 1


def test_clear_discards_without_counting_drops():
    mb = Mailbox(realtime=False, capacity=3)
    for i in range(3):
        mb.put(i)
    assert mb.clear() == 3 and mb.dropped == 0 and len(mb) == 0
    assert mb.put(9) and mb.get(0) == 9


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity must be >= 1, got 0"):
        Mailbox(realtime=False, capacity=0)
    assert Mailbox(realtime=True, capacity=5).capacity == 1
