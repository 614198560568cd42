"""The capture thread: `Grabber(source, realtime)` reads any `Source` and hands out `Frame`s.

It runs `source.read()` in its own thread and hands out `realtime.core.frame.Frame` records
(index = capture order counting dropped frames, t_capture = time.perf_counter() as it is
handed on: after the read, or after its pacing hold) through a `realtime.io.mailbox.Mailbox`.
In realtime mode it keeps only the newest frame (latest frame wins, drops are counted);
otherwise every frame is delivered in order with back-pressure.
"""
from __future__ import annotations

import threading
import time

from realtime.core.frame import Frame
from realtime.io.mailbox import Mailbox, MailboxClosed, MailboxTimeout
from realtime.io.source import CaptureTimeout, Source

#: the longest interval (s) between two frames of a file that pacing follows; a longer one (a
#: gap in the file's times, a seek) is played as one nominal period
MAX_MEDIA_STEP = 2.0


class Grabber:
    """Reads a source in a background thread and hands out `Frame` records.

    Args:
        source: anything implementing the Source protocol; its dicts become Frame fields, so
            {"image": ...} and {"state": ...} both work.
        realtime: True -> behave like a live camera: a live source is read as fast as it
            delivers; a file source (is_live False) is paced at `source.fps` against an absolute
            schedule (no drift; if reading falls more than a frame behind, the schedule restarts
            from now instead of bursting), or by the file's own frame times where the source
            gives them (`media_time`, seconds, of the frame just read: a variable-frame-rate
            clip: each frame is read, then held till its own time). Only the newest frame is
            kept (a 1-frame slot): if the previous frame was not taken by `get()` before a new
            one arrives it is dropped and counted in `dropped`.
            False -> every frame is delivered in order, none dropped: a bounded queue of
            `queue_size` frames; the reader thread waits while it is full. No pacing.
        queue_size: capacity of the non-realtime queue.
        close_source: close the source when the thread ends (default True).

    Frame fields: index = capture order (0-based, dropped frames included, so gaps in the
    indices seen by the loop show the drops), t_capture = time.perf_counter() when the frame
    was handed on (just after `source.read()` returned; paced, after it was held till its
    time), plus the source's dict.

    Errors raised by the source in the thread are not lost: frames read before the error are
    still delivered, then `get()` raises the source's exception (the same object, every call).

    Usable as a context manager (start on enter, stop on exit).
    """

    def __init__(self, source: Source, realtime: bool, queue_size: int = 8,
                 close_source: bool = True):
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.source = source
        self.realtime = bool(realtime)
        self._close_source = close_source
        # The mailbox ends (close) when the reader thread finishes: end, error or stop.
        self._mailbox: Mailbox[Frame] = Mailbox(self.realtime, queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards the two counters below
        self._captured = 0
        self._next_index = 0         # capture indices; held frames (see `held_frame`) take one too

    # -- counters ---------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Frames replaced in the realtime slot before `get()` took them."""
        return self._mailbox.dropped

    @property
    def delivered(self) -> int:
        """Frames returned by `get()`."""
        return self._mailbox.delivered

    @property
    def captured(self) -> int:
        """Frames read from the source so far (= delivered + dropped + pending)."""
        return self._captured

    @property
    def finished(self) -> bool:
        """True once the source is exhausted (or failed, or stop() was called) and no frame is
        pending: `get()` would return None (or raise the source's error) at once."""
        return self._mailbox.drained

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> Grabber:
        """Start the capture thread (once). Returns self."""
        if self._thread is not None:
            raise RuntimeError("Grabber.start() called twice")
        self._thread = threading.Thread(target=self._run, name=f"grabber:{self.source!r}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and join it (at most `timeout` seconds).

        Wakes the thread from back-pressure waits and pacing sleeps at once. A thread blocked
        inside `source.read()` (a stuck camera) is left to finish that read on its own (it is a
        daemon thread and closes the source itself when the read returns); stop() does not
        wait longer than `timeout` for it. Pending frames are discarded. Idempotent.
        """
        self._stop.set()
        self._mailbox.cancel()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._mailbox.clear()

    def __enter__(self) -> Grabber:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- consumer ---------------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> Frame | None:
        """The next frame (realtime: the newest one), waiting for it.

        Returns None when the source has finished and nothing is pending. Raises the source's
        exception if the thread failed (after the frames read before the failure). Raises
        CaptureTimeout (a CaptureError and a TimeoutError) when `timeout` seconds pass with no
        frame while the source is still running; timeout None waits indefinitely.
        """
        if self._thread is None:
            raise RuntimeError("Grabber.get() before start()")
        try:
            return self._mailbox.get(timeout)
        except MailboxClosed:
            return None
        except MailboxTimeout:
            raise CaptureTimeout(f"no frame from {self.source!r} within {timeout} s "
                                 f"({self.delivered} delivered so far)") from None

    def held_frame(self) -> Frame:
        """An empty Frame for the loop to emit while the source delivers nothing (a stalled
        camera). It takes the next capture index, so indices stay unique and increasing."""
        with self._lock:
            index = self._next_index
            self._next_index += 1
        return Frame(index=index, t_capture=time.perf_counter())

    # -- producer (thread) ------------------------------------------------------------------
    def _run(self) -> None:
        paced = self.realtime and not getattr(self.source, "is_live", False)
        period = 1.0 / float(self.source.fps) if paced and self.source.fps > 0 else 0.0
        next_due: float | None = None
        media: float | None = None   # the file's time of the frame read last (`media_time`)
        error: BaseException | None = None
        try:
            while not self._stop.is_set():
                fields = self.source.read()
                if fields is None:
                    break
                if period:
                    # the frame is in hand: hold it till its own time (its interval from the
                    # frame before, where the file says; else the period)
                    before, media = media, getattr(self.source, "media_time", None)
                    gap = media - before if media is not None and before is not None else 0.0
                    step = gap if 0.0 < gap <= MAX_MEDIA_STEP else period
                    now = time.perf_counter()
                    if next_due is None:
                        next_due = now                     # the first frame goes at once
                    else:
                        next_due += step
                        if now - next_due > max(step, period):
                            next_due = now                 # more than a frame late: re-anchor
                        elif next_due > now and self._stop.wait(next_due - now):
                            break
                t_capture = time.perf_counter()
                with self._lock:
                    index = self._next_index
                    self._next_index += 1
                    self._captured += 1
                frame = Frame(index=index, t_capture=t_capture, **fields)
                if not self._mailbox.put(frame):  # False: stopped while waiting for room
                    break
        except BaseException as exc:  # noqa: BLE001 - re-raised from get()
            error = exc
        finally:
            self._mailbox.close(error)
            if self._close_source:
                try:
                    self.source.close()
                except Exception as exc:  # noqa: BLE001 - recorded unless an error came first
                    self._mailbox.close(exc)
