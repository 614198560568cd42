"""`AudioBridge`: the engine's handle on the audio process.

    bridge = AudioBridge("vmic:engine_out")
    bridge.open()             # spawn the audio process, resolve names, start the streams
                              # (silent until the first frame's latency): AudioError
    ... engine build ...
    bridge.wait_settled()     # the streams' clocks are steady (about 2 s after the start)
    ... engine warm-up ...
    bridge.on_frame(frame)    # the loop's on_frame hook: feeds add_frame(t_capture, t_sink)
                              # with every frame the sink accepted (perf_counter times)
    report = bridge.stop()    # AudioReport; report.to_dict() for JSON

The engine's process only sends small messages (a new delay target when the video latency
moved) and reads the audio process's periodic stats; the audio itself never passes through it.
"""
from __future__ import annotations

import multiprocessing
import sys
import time
from collections import deque
from typing import Any

from realtime.io.audio.errors import AudioError
from realtime.io.audio.report import GAP_S, AudioReport, DelayPolicy, stopped_line
from realtime.io.audio.worker import serve


class AudioBridge:
    """Microphone -> output device, delayed by the measured video latency, in its own process.

    Args:
        spec: "IN:OUT" device names (PulseAudio/PipeWire names where that server runs, PortAudio
            names or indices, "default"); see `names.resolve`.
        sample_rate, blocksize, channels, latency: the streams' settings (float32 samples;
            latency as sounddevice takes it: "low", "high" or seconds). 256 samples at
            "low": the audio process takes ~6% of a core and PulseAudio ~2% (measured here);
            512 would halve that but PulseAudio then buffers ~25 ms more, which would make
            the sound trail the picture by more than a frame on a fast machine.
        max_delay_s: the longest delay.
        tolerance_s, fade_s: `SyncCore`'s correction threshold and crossfade length.
        policy: how the target follows the video latency (default `DelayPolicy()`).
        history: video frames kept for the report (a live session runs for hours).
        watch_s: how often the audio process checks that IN and OUT still exist and feed no
            loop (`watch.Watcher`, PulseAudio/PipeWire only; 0: never); when they do not, the
            sound stops for the rest of the run, a line on stderr says why, and so does the report.
        sounddevice_module, pulse: for tests, a module name imported in the audio process
            instead of sounddevice, and a stand-in for `names.pulse_server()`'s answer (which
            also leaves the devices unwatched).
    """

    def __init__(self, spec: str, sample_rate: int = 48000, blocksize: int = 256,
                 channels: int = 1, latency: str | float = "low", max_delay_s: float = 1.0,
                 tolerance_s: float = 0.003, fade_s: float = 0.03,
                 policy: DelayPolicy | None = None, history: int = 18000,
                 open_timeout_s: float = 30.0, report_s: float = 0.25, watch_s: float = 2.0,
                 sounddevice_module: str | None = None, pulse: dict[str, Any] | None = None):
        self.spec = spec
        self.config = {"spec": spec, "sample_rate": int(sample_rate), "blocksize": int(blocksize),
                       "channels": int(channels), "latency": latency,
                       "max_delay_s": float(max_delay_s), "tolerance_s": float(tolerance_s),
                       "fade_s": float(fade_s), "report_s": float(report_s),
                       "watch_s": float(watch_s), "sounddevice_module": sounddevice_module, "pulse": pulse}
        self.policy = policy or DelayPolicy()
        self.open_timeout_s = open_timeout_s
        self.frames: deque[tuple[float, float]] = deque(maxlen=int(history))
        self._inflight: deque[Any] = deque()
        self.rows: deque[tuple[float, float, float]] = deque(maxlen=int(history) * 8)
        self.info: dict[str, Any] = {}
        self.snapshot: dict[str, Any] = {}
        self.stderr_lines: list[str] = []
        self.error: str | None = None
        self.settled_in_time: bool | None = None
        self._proc: Any = None
        self._conn: Any = None
        self._final = False
        self.told_stopped = False
        self._first_frame: float | None = None
        self._last_frame: float | None = None
        # the sound's time over the whole run (`rows` keeps the last part of a long one)
        self._sound_s = 0.0
        self._last_row: float | None = None
        self.report: AudioReport | None = None

    @property
    def pid(self) -> int | None:
        return self.info.get("pid")

    def open(self) -> None:
        """Start the audio process and wait until its streams run (silent until the first
        `add_frame`); AudioError (with the process's one-line reason) when they cannot."""
        if self._proc is not None:
            return
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=serve, args=(child, self.config), name="puppeteer-audio",
                                 daemon=True)
        self._proc.start()
        child.close()
        msg = self._conn.recv() if self._conn.poll(self.open_timeout_s) else None
        if msg is None or msg[0] != "ready":
            self._kill()
            raise AudioError(msg[1] if msg is not None else
                             f"the audio process did not open {self.spec!r} within "
                             f"{self.open_timeout_s:g} s")
        self.info = msg[1]

    def wait_settled(self, timeout_s: float = 5.0) -> bool:
        """Wait (at most `timeout_s`) until the audio streams' clocks have settled, so that the
        sound passes from the first frame on (PortAudio on PulseAudio takes about 2 s after the
        streams start); False (and a warning in the report) when they did not."""
        deadline = time.perf_counter() + timeout_s
        while not self.snapshot.get("settled") and self.error is None and not self._final:
            left = deadline - time.perf_counter()
            if left <= 0 or self._conn is None:
                break
            self._drain(timeout=min(left, 0.1))
        self.settled_in_time = bool(self.snapshot.get("settled"))
        return self.settled_in_time

    def on_frame(self, frame: Any) -> None:
        """The loop's `on_frame` hook (called after the frame was handed to the sink): feeds
        `add_frame` with every frame the sink has accepted since. `t_sink` is set by the sink's
        thread after this hook, so a frame is fed on a later call; frames before an accepted one
        that have no `t_sink` were dropped by the sink."""
        self._inflight.append(frame)
        last = max((i for i, f in enumerate(self._inflight) if f.t_sink is not None), default=-1)
        for _ in range(last + 1):
            done = self._inflight.popleft()
            if done.t_sink is not None:
                self.add_frame(done.t_capture, done.t_sink)
        while len(self._inflight) > 64:
            self._inflight.popleft()

    def add_frame(self, t_capture: float, t_sink: float) -> None:
        """A video frame reached the sink: follow its latency, collect the audio stats."""
        self.frames.append((t_capture, t_sink))
        if self._first_frame is None:
            self._first_frame = t_capture
        self._last_frame = t_capture
        target = self.policy.add(t_sink - t_capture)
        if target is not None:
            self._send(("target", target))
        self._drain()

    def stop(self) -> AudioReport:
        """Stop the audio process (idempotent) and return the report."""
        if self.report is not None:
            return self.report
        if self._proc is not None:
            self._send(("stop",))
            deadline = time.perf_counter() + 5.0
            while not self._final and self.error is None and time.perf_counter() < deadline:
                self._drain(timeout=0.1)
            if not self._final and self.error is None:
                self.error = "the audio process did not answer at the end of the run"
            self._kill()
        run = None if self._first_frame is None else (self._first_frame, self._last_frame, self._sound_s)
        self.report = AudioReport.build(self.info, self.snapshot, list(self.rows),
                                        list(self.frames), self.stderr_lines, error=self.error,
                                        run=run, sample_rate=self.config["sample_rate"],
                                        blocksize=self.config["blocksize"])
        if self.settled_in_time is False:
            self.report.warnings.insert(0, "the audio streams' clocks were still moving when the "
                                           "video started: the first sound came late")
        return self.report

    def timeline(self) -> dict[str, Any]:
        """The report and the raw timing behind it (after `stop()`): the video frames'
        (t_capture, t_sink) and the audio rows (perf time of the played sample's capture,
        applied delay s, target s), all on the perf_counter clock."""
        report = self.stop()
        return {"report": report.to_dict(), "info": self.info,
                "frames": [list(f) for f in self.frames],
                "audio_rows": [list(r) for r in self.rows]}

    # ---------------------------------------------------------------------------- helpers
    def _send(self, msg: tuple) -> bool:
        if self._conn is None or self.error is not None:
            return False
        try:
            self._conn.send(msg)
            return True
        except OSError as exc:
            self._died(exc)
            return False

    def _drain(self, timeout: float = 0.0) -> None:
        if self._conn is None or self._final or self.error is not None:
            return
        try:
            while self._conn.poll(timeout):
                kind, *rest = self._conn.recv()
                if kind in ("stats", "final"):
                    self.snapshot = rest[0]
                    self.rows.extend(rest[1])
                    self._count_sound(rest[1])
                    if self.snapshot.get("stopped") and not self.told_stopped:
                        self._tell_stopped()
                if kind == "final":
                    self.stderr_lines = rest[2]
                    self._final = True
                    return
                timeout = 0.0
        except (EOFError, OSError) as exc:
            self._died(exc)

    def _count_sound(self, rows) -> None:
        """Adds the time the new history rows cover (rows closer than `report.GAP_S`) to the run's."""
        last = self._last_row
        for t, *_ in rows:
            if last is not None and 0.0 < t - last <= GAP_S:
                self._sound_s += t - last
            last = t if last is None else max(last, t)
        self._last_row = last

    def _tell_stopped(self) -> None:
        """Say on stderr, once and at the time, that the audio process stopped the sound."""
        self.told_stopped = True
        line = f"warning: {stopped_line(self.snapshot, self._t0())}"
        try:
            from tqdm import tqdm  # noqa: PLC0415 - the run's progress bar: the line goes above it

            tqdm.write(line, file=sys.stderr)
        except ImportError:
            print(line, file=sys.stderr)

    def _t0(self) -> float | None:
        """The perf time the report's times count from (the first video frame's capture)."""
        return self._first_frame

    def _died(self, exc: BaseException) -> None:
        code = self._proc.exitcode if self._proc is not None else None
        self.error = (f"the audio process ended during the run (exit code {code}; "
                      f"{type(exc).__name__})")

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.join(2.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(2.0)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> AudioBridge:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
