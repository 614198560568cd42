"""Mailbox: the hand-over between one producer thread and one consumer thread.

Both ends of the loop use it: the `Grabber` (capture thread -> loop) and the `ThreadedSink`
(loop -> sink worker). It has two modes, chosen once:

- realtime (a one-slot "newest wins" box): `put()` never waits. An item still pending when the
  next one arrives is replaced and counted in `dropped`, so the consumer always gets the newest
  item and never one older than an item it already got.
- offline (a bounded FIFO of `capacity` items): `put()` waits while the box is full
  (back-pressure) and nothing is ever dropped: the consumer gets every item, in order.

Ending, from either side:

- `close(error=None)` (producer: no more items; a later `put()` returns False). Items already
  pending are still delivered; after them `get()` raises `error` (the same object, every call)
  or `MailboxClosed`. Calling it again only records an error if none was recorded yet (e.g. a
  failure while cleaning up).
- `cancel()` (consumer: stop delivering). Every waiting and later `put()` returns False without
  storing its item. Pending items stay until `clear()`.

`get(timeout)` waits for the next item; it raises `MailboxTimeout` when `timeout` seconds pass
with nothing pending and the box still open (timeout None waits indefinitely). All methods are
thread-safe; the counters are exact (updated under the lock).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

_WAIT = 0.1  # a waiting put() re-checks at least this often (s), besides being notified


class MailboxClosed(Exception):
    """`get()` on a closed mailbox with nothing pending (the producer has finished)."""


class MailboxTimeout(TimeoutError):
    """`get(timeout)` found nothing within `timeout` seconds although the mailbox is open."""


class Mailbox(Generic[T]):
    """A thread-safe hand-over box: realtime (one slot, newest wins) or offline (bounded FIFO).

    Args:
        realtime: True -> one slot, newest wins, replaced items counted in `dropped`;
            False -> a FIFO of `capacity` items with back-pressure, never drops.
        capacity: size of the offline FIFO (ignored in realtime mode, whose capacity is 1).

    Raises ValueError for a capacity below 1 (a programming error, not a user one).
    """

    def __init__(self, realtime: bool, capacity: int = 8):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.realtime = bool(realtime)
        self.capacity = 1 if self.realtime else int(capacity)
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._cancelled = False
        self._error: BaseException | None = None
        self._dropped = 0
        self._delivered = 0

    # -- counters and state -----------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Items replaced in the realtime slot before `get()` took them (always 0 offline)."""
        return self._dropped

    @property
    def delivered(self) -> int:
        """Items returned by `get()`."""
        return self._delivered

    @property
    def drained(self) -> bool:
        """True once the mailbox is closed and nothing is pending: `get()` ends at once."""
        with self._cond:
            return self._closed and not self._items

    def __len__(self) -> int:
        """Items pending."""
        with self._cond:
            return len(self._items)

    # -- producer ---------------------------------------------------------------------------
    def put(self, item: T) -> bool:
        """Hand `item` over; False (item not stored) once the mailbox is cancelled or closed.

        Realtime: never waits; an item still pending is replaced and counted as dropped (also
        when the mailbox was cancelled meanwhile: the older item is gone either way). Offline:
        waits while `capacity` items are pending, until `get()` makes room, `cancel()` or
        `close()`.
        """
        with self._cond:
            if self._closed:
                return False
            if self.realtime:
                if self._items:
                    self._items.clear()
                    self._dropped += 1
            else:
                while len(self._items) >= self.capacity:
                    if self._cancelled or self._closed:
                        return False
                    self._cond.wait(_WAIT)
            if self._cancelled:
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def close(self, error: BaseException | None = None) -> None:
        """No more items: pending ones are still delivered, then `get()` raises `error` or
        `MailboxClosed`. Idempotent; a later call only adds an error when none was recorded."""
        with self._cond:
            self._closed = True
            if self._error is None:
                self._error = error
            self._cond.notify_all()

    # -- consumer ---------------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> T:
        """The next item (realtime: the newest), waiting at most `timeout` seconds for it.

        Raises the error given to `close()` or `MailboxClosed` when the mailbox is closed and
        nothing is pending, and `MailboxTimeout` when `timeout` passes first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._items:
                    item = self._items.popleft()
                    self._delivered += 1
                    self._cond.notify_all()  # room for a waiting put() (offline)
                    return item
                if self._error is not None:
                    raise self._error
                if self._closed:
                    raise MailboxClosed("the mailbox is closed and empty")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise MailboxTimeout(f"nothing within {timeout} s")
                self._cond.wait(remaining)

    def cancel(self) -> None:
        """Stop accepting items: every waiting and later `put()` returns False. Idempotent."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def clear(self) -> int:
        """Discard the pending items (not counted as dropped); returns how many there were."""
        with self._cond:
            n = len(self._items)
            self._items.clear()
            self._cond.notify_all()
            return n
