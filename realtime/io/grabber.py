"""The capture thread: `Grabber(source, realtime)` reads any `Source` and hands out `Frame`s.

It runs `source.read()` in its own thread and hands out `realtime.core.frame.Frame` records
(index = capture order counting dropped frames, t_capture = time.perf_counter() as it is
handed on: after the read, or after its pacing hold) through a `realtime.io.mailbox.Mailbox`.
In realtime mode it keeps only the newest frame (latest frame wins, drops are counted) and plays
a file as a camera would deliver it (`Pacer`: frames due at their times on a wall clock that
does not wait, those whose time passed while the reader was behind skipped and counted);
otherwise every frame is delivered in order with back-pressure.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from realtime.core.frame import Frame
from realtime.io.mailbox import Mailbox, MailboxClosed, MailboxTimeout
from realtime.io.source import CaptureTimeout, Source

#: the longest interval (s) between two frames of a file that pacing follows; a longer one (a
#: gap in the file's times, a seek) is played as one nominal period
MAX_MEDIA_STEP = 2.0
#: weight of the newest read in the smoothed read time (`Pacer.read_s`): a single read slowed by
#: the machine (a preemption, a GC pause) moves it by a tenth, so it does not count as a reader
#: that cannot keep up
READ_SMOOTHING = 0.1
#: ... and one read counts in it as at most this many periods: a tenth of a stall of any length
#: would be more than a period (a 0.35 s stall at 30 fps: 0.035 s), and the one frame it delayed
#: would restart the schedule as if the reader were too slow for the clip, instead of being
#: skipped; capped, one stall moves it by at most a fifth of a period, while a reader slower
#: than the frames come still reads slower than a period (its reads capped at two of them)
READ_CAP = 2.0


class Pacer:
    """When each frame of a file played like a camera is due, on a wall clock that does not wait.

    Frame k is due at `anchor + t_k`: `anchor` is the wall time its first frame was read, `t_k`
    the frame's time from the first, by the file's own frame times where it gives them
    (`media_time`: a variable-frame-rate clip) and else k periods. `place(now, media_time,
    read_s)`, called once per frame right after it was read, says what to do with it:

    - its time has not come, or came less than a frame ago: hand it on at its due time (at once
      when that has passed);
    - the next frame is already due (it is more than a frame late: the reader fell behind, the
      machine was busy): skip it, as a camera's frame the capture missed (`skipped`) — the
      schedule stays, so the clip keeps its pace and the frames lost are counted;
    - unless reading itself is slower than the frames come (the smoothed read time, `read_s`, is
      at least a frame's interval: a decoder that cannot play the clip in real time), where
      skipping would never catch up: the frame is handed on late and the schedule restarts from
      it (`restarts`; `behind_s` adds up the time lost, by which the clip played slower). One
      read counts in that smoothed time as at most `READ_CAP` periods, so a single stall is
      skipped over, however long.

    "A frame" ahead is the interval before this frame (the file's own, else the period): the
    next frame's time is not known until it is read. A reader is too slow for the clip when its
    smoothed read time is at least the frames' smoothed interval (`step_s`, smoothed as the reads
    are) as well as this one: a short burst of a variable-rate clip (a few frames at 100 fps in a
    30 fps clip) is skipped through and the clip keeps its clock, while a reader slower than a
    lasting faster part plays it late. An interval counts in `step_s` as at most a period: after
    a still part (a screen recording holding a picture for seconds) a reader too slow for the
    moving part that follows is not taken for one skipping through a burst. Pure: no clock, no
    sleep; `Grabber` calls it.
    """

    def __init__(self, period: float):
        if not period > 0:
            raise ValueError(f"period must be positive, got {period!r}")
        self.period = float(period)
        self.anchor: float | None = None   # wall time of the first frame (moved by a restart)
        self._t = 0.0                      # the last frame's time from the first (s)
        self._media: float | None = None   # its `media_time`
        self.read_s: float | None = None   # smoothed seconds one read takes
        self.step_s = self.period          # smoothed seconds between the file's frames (each <= a period)
        self.skipped = 0
        self.restarts = 0
        self.behind_s = 0.0

    def place(self, now: float, media_time: float | None, read_s: float) -> float | None:
        """The wall time to hand on the frame just read (`now` or earlier: at once), or None to
        skip it. `media_time`: its time in the file (None: not known); `read_s`: how long its
        read took."""
        read_s = min(read_s, READ_CAP * self.period)
        self.read_s = read_s if self.read_s is None else self.read_s + READ_SMOOTHING * (read_s - self.read_s)
        before, self._media = self._media, media_time
        if self.anchor is None:
            self.anchor = now                  # the first frame goes at once
            return now
        gap = media_time - before if media_time is not None and before is not None else 0.0
        step = gap if 0.0 < gap <= MAX_MEDIA_STEP else self.period
        self._t += step
        self.step_s += READ_SMOOTHING * (min(step, self.period) - self.step_s)
        due = self.anchor + self._t
        late = now - due
        if late < step:
            return due
        if self.read_s < max(step, self.step_s):
            self.skipped += 1
            return None
        self.anchor += late
        self.restarts += 1
        self.behind_s += late
        return now


class Grabber:
    """Reads a source in a background thread and hands out `Frame` records.

    Args:
        source: anything implementing the Source protocol; its dicts become Frame fields, so
            {"image": ...} and {"state": ...} both work.
        realtime: True -> behave like a live camera: a live source is read as fast as it
            delivers; a file source (is_live False) is played as a camera would deliver it
            (`Pacer`): each frame is read, then held till it is due, at `source.fps` or by the
            file's own frame times where the source gives them (`media_time`, seconds, of the
            frame just read: a variable-frame-rate clip), against an absolute schedule that does
            not wait for the reader: a frame read when the next one is already due (the machine
            was busy) is skipped and counted in `skipped` and `dropped`, as the frames a camera
            sends while nobody reads it are lost. Only the newest frame is kept (a 1-frame
            slot): if the previous frame was not taken by `get()` before a new one arrives it
            is dropped and counted in `dropped`.
            False -> every frame is delivered in order, none dropped: a bounded queue of
            `queue_size` frames; the reader thread waits while it is full. No pacing.
        queue_size: capacity of the non-realtime queue.
        close_source: close the source when the thread ends (default True).
        clock, wait: the time (s) and the pacing hold (`wait(seconds)` -> True to stop now),
            for tests; by default time.perf_counter (which the sinks' latency is measured
            against) and a wait that `stop()` cuts short.

    Frame fields: index = capture order (0-based, dropped frames included, so gaps in the
    indices seen by the loop show the drops, skipped ones too), t_capture = `clock()` when the frame
    was handed on (just after `source.read()` returned; paced, after it was held till its
    time), plus the source's dict.

    Errors raised by the source in the thread are not lost: frames read before the error are
    still delivered, then `get()` raises the source's exception (the same object, every call).

    Usable as a context manager (start on enter, stop on exit).
    """

    def __init__(self, source: Source, realtime: bool, queue_size: int = 8,
                 close_source: bool = True, clock: Callable[[], float] = time.perf_counter,
                 wait: Callable[[float], bool] | None = None):
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.source = source
        self.realtime = bool(realtime)
        self._close_source = close_source
        # The mailbox ends (close) when the reader thread finishes: end, error or stop.
        self._mailbox: Mailbox[Frame] = Mailbox(self.realtime, queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clock = clock
        self._wait = self._stop.wait if wait is None else wait
        paced = self.realtime and not getattr(source, "is_live", False) and (source.fps or 0) > 0
        #: the paced file's schedule (None: not paced); its counters are the reader's
        self.pacer = Pacer(1.0 / float(source.fps)) if paced else None
        self._lock = threading.Lock()  # guards the two counters below
        self._captured = 0
        self._next_index = 0         # capture indices; held frames (see `held_frame`) take one too

    # -- counters ---------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Frames lost at the capture side: replaced in the realtime slot before `get()` took
        them, and `skipped`."""
        return self._mailbox.dropped + self.skipped

    @property
    def skipped(self) -> int:
        """Frames of a paced file read when the next was already due, never handed on (the
        reader was behind: a camera's frames nobody read in time)."""
        return 0 if self.pacer is None else self.pacer.skipped

    @property
    def behind_s(self) -> float:
        """Seconds a paced file played slower than its clock because reading it was slower than
        its frames come (`Pacer`); 0.0 when it kept its pace."""
        return 0.0 if self.pacer is None else self.pacer.behind_s

    @property
    def delivered(self) -> int:
        """Frames returned by `get()`."""
        return self._mailbox.delivered

    @property
    def captured(self) -> int:
        """Frames read from the source so far (= delivered + dropped + pending; dropped
        includes the skipped ones)."""
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
        return Frame(index=self._take_index(), t_capture=self._clock())

    def _take_index(self) -> int:
        """The next capture index. Taken as a frame is handed on (after its pacing hold) or
        skipped, so the indices the loop sees, held frames' among them, increase in its order."""
        with self._lock:
            index = self._next_index
            self._next_index += 1
        return index

    # -- producer (thread) ------------------------------------------------------------------
    def _run(self) -> None:
        clock, pacer = self._clock, self.pacer
        error: BaseException | None = None
        try:
            while not self._stop.is_set():
                t_read = clock()
                fields = self.source.read()
                if fields is None:
                    break
                with self._lock:
                    self._captured += 1
                if pacer is not None:
                    now = clock()
                    due = pacer.place(now, getattr(self.source, "media_time", None), now - t_read)
                    if due is None:
                        self._take_index()       # a skipped frame keeps its place: a gap shows it
                        continue
                    if due > now and self._wait(due - now):
                        break
                frame = Frame(index=self._take_index(), t_capture=clock(), **fields)
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
