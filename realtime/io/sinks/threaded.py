"""`ThreadedSink`: runs any sink in a worker thread so that the loop never waits for it
(DESIGN §7: a sink never blocks the loop)."""
from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable

from realtime.core.frame import Frame
from realtime.io.mailbox import Mailbox, MailboxClosed, MailboxTimeout
from realtime.io.sinks.base import Sink, SinkError


class ThreadedSink:
    """Runs a sink in a worker thread so that `write()` never stalls the loop.

    Args:
        sink: the inner sink; all its methods (open, write, poll_events, close) are called from
            the worker thread only, which keeps cv2 GUI calls in one thread.
        realtime: True -> a 1-slot mailbox: the newest frame wins, a frame replaced before the
            worker took it is counted in `sink_dropped`; write() returns at once.
            False -> a bounded queue of `queue_size`: write() waits for room (back-pressure),
            so a file gets every frame.
        on_written: optional callback(frame), called in the worker thread after the inner sink
            accepted the frame and `frame.t_sink` was set.
        poll_interval: how often (s) the idle worker polls the inner sink's events.

    After write() the frame belongs to the sink: do not modify frame.output afterwards.
    `frame.t_sink = time.perf_counter()` is set right after the inner write() returned.
    An exception in the worker (from the inner sink or on_written) is raised by the next
    write() (and every later one) or, if no write() raised it, by close(); the worker stops.
    `poll_events()` returns the events the worker collected from the inner sink (it polls after
    every write and every `poll_interval` while idle).
    """

    def __init__(self, sink: Sink, realtime: bool, queue_size: int = 8,
                 on_written: Callable[[Frame], None] | None = None,
                 poll_interval: float = 0.03, close_timeout: float = 30.0):
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.sink = sink
        self.realtime = bool(realtime)
        self.on_written = on_written
        self._poll_interval = poll_interval
        self._close_timeout = close_timeout
        # Closed by close() (the worker writes what is pending, then stops); cancelled by the
        # worker when it fails (a write() waiting for room wakes and raises the error).
        self._mailbox: Mailbox[Frame] = Mailbox(self.realtime, queue_size)
        self._events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()
        # Set as the worker's last act. close() waits on it rather than on Thread.join(): a join
        # cut short by a Ctrl-C marks the thread as finished on CPython 3.11, so a second close()
        # (the one that should finish what the interrupt cut short) returned at once while the
        # worker was still finishing the file, and the process exited with it half-renamed.
        self._done = threading.Event()
        self._open_error: BaseException | None = None
        self._error: BaseException | None = None
        self._error_raised = False
        self._closing = False
        self._written = 0

    @property
    def name(self) -> str:
        return self.sink.name

    @property
    def sink_dropped(self) -> int:
        """Frames replaced in the realtime mailbox before the worker wrote them."""
        return self._mailbox.dropped

    @property
    def written(self) -> int:
        """Frames the inner sink accepted."""
        return self._written

    def open(self, width: int, height: int, fps: float | None = None) -> None:
        """Start the worker and open the inner sink in it; raises the inner open()'s error.

        The inner sink's `open_env()` (if it has one: variables its open needs, e.g. the window's
        Qt logging rules) is set here, in the calling thread, for the time the worker opens it,
        and taken out after: the process's environment is changed only from this thread, and
        no child process started later inherits it. A variable already set is left alone."""
        if self._thread is not None:
            raise SinkError(f"{self.name} sink: open() called twice")
        env = getattr(self.sink, "open_env", dict)()
        added = [k for k in env if k not in os.environ]
        for key in added:
            os.environ[key] = env[key]
        try:
            self._thread = threading.Thread(target=self._run, args=(width, height, fps),
                                            name=f"sink:{self.name}", daemon=True)
            self._thread.start()
            self._opened.wait()
        finally:
            for key in added:
                os.environ.pop(key, None)
        if self._open_error is not None:
            self._thread.join()
            raise self._open_error

    def _raise_error(self) -> None:
        if self._error is not None:
            self._error_raised = True
            raise self._error

    def write(self, frame: Frame) -> None:
        """Hand `frame` to the worker (realtime: never waits; else waits while the queue is full)."""
        if self._thread is None:
            raise SinkError(f"{self.name} sink: write() before open()")
        self._raise_error()
        if self._closing:
            raise SinkError(f"{self.name} sink: write() after close()")
        if not self._mailbox.put(frame):  # the worker failed, or close() came meanwhile
            self._raise_error()
            raise SinkError(f"{self.name} sink: write() after close()")

    def poll_events(self) -> list[str]:
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def close(self) -> None:
        """Write what is pending, close the inner sink and join the worker.

        Raises the worker's error if no write() raised it yet, and SinkError if the worker does
        not finish within `close_timeout` seconds. Idempotent, also after a Ctrl-C cut a close
        short: calling it again waits for the worker to finish.
        """
        thread = self._thread
        if thread is None:
            return
        self._closing = True
        self._mailbox.close()  # idempotent
        if thread is not threading.current_thread():
            if not self._done.wait(self._close_timeout):
                raise SinkError(f"{self.name} sink did not finish closing within "
                                f"{self._close_timeout} s")
        if self._error is not None and not self._error_raised:
            self._raise_error()

    def __enter__(self) -> ThreadedSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- worker ------------------------------------------------------------------------------
    def _poll_inner(self) -> None:
        for event in self.sink.poll_events():
            self._events.put(event)

    def _run(self, width: int, height: int, fps: float | None) -> None:
        try:
            self._serve(width, height, fps)
        finally:
            self._done.set()

    def _serve(self, width: int, height: int, fps: float | None) -> None:
        try:
            self.sink.open(width, height, fps)
        except BaseException as exc:  # noqa: BLE001 - raised by open()
            self._open_error = exc
            self._opened.set()
            return
        self._opened.set()
        try:
            while True:
                try:
                    item = self._mailbox.get(self._poll_interval)
                except MailboxTimeout:
                    self._poll_inner()
                    continue
                except MailboxClosed:
                    break
                self.sink.write(item)
                item.t_sink = time.perf_counter()
                self._written += 1
                if self.on_written is not None:
                    self.on_written(item)
                self._poll_inner()
        except BaseException as exc:  # noqa: BLE001 - surfaced by write()/close()
            self._error = exc
            self._mailbox.cancel()
            self._mailbox.clear()
        finally:
            try:
                self.sink.close()
            except BaseException as exc:  # noqa: BLE001
                if self._error is None:
                    self._error = exc
