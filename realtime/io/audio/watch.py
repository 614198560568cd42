"""`DeviceWatch`: the devices of `--audio IN:OUT` checked during the run, off the real-time path.

A device can go away mid-run (a USB headset unplugged, a null sink unloaded): PulseAudio then
moves the engine's stream to another device, possibly into a loop (the output moved to a sink
whose monitor is the engine's input), and the streams play on without a word. The audio process
therefore checks, in a thread of its own, every `WATCH_S` seconds and at once when the server
says that a source, sink or stream changed (`pactl subscribe`), that the named IN and OUT still
exist and that the streams, wherever they are now, do not feed the output back into the input
(`names.loop_problem`). A failed check stops the sound for the rest of the run (the caller
mutes the `SyncCore`) and says why in one line. Where no PulseAudio/PipeWire server answers
(no pactl: Windows, macOS, bare ALSA) there is nothing to check and nothing runs.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from realtime.io.audio.names import KINDS, Endpoint, _pactl, loop_problem, pulse_server

WATCH_S = 2.0          # a check every this many seconds ...
MIN_GAP_S = 0.2        # ... and on the server's events, at most this often
TIMEOUT_S = 2.0        # pactl's answers, each


def stream_devices(pid: int, timeout: float = TIMEOUT_S) -> dict[str, str | None]:
    """The sink and source PulseAudio has process `pid`'s streams on now:
    {"sink": name | None, "source": name | None} (None: no such stream found)."""
    out: dict[str, str | None] = {}
    for kind, listing, head, key in (("sink", "sink-inputs", "Sink Input #", "Sink: "),
                                     ("source", "source-outputs", "Source Output #", "Source: ")):
        ids = dict(line.split("\t")[:2] for line in _pactl(["list", "short", f"{kind}s"], timeout)
                   .splitlines() if line.count("\t") >= 1)
        out[kind] = None
        index = None
        for line in _pactl(["list", listing], timeout).splitlines():
            text = line.strip()
            if line.startswith(head):
                index = None
            elif text.startswith(key):
                index = text[len(key):].strip()
            elif text == f'application.process.id = "{pid}"' and index is not None:
                out[kind] = ids.get(index, index)
    return out


class DeviceWatch:
    """`check()`: None while the run may go on, else the one-line reason the sound must stop.

    Args:
        inp, out: the endpoints `names.resolve_spec` gave (a PulseAudio name, "default", the
            ALSA `pulse` device, or another PortAudio device, which is not checked).
        pid: the process whose streams are looked for (the audio process).
        server, streams: `pulse_server()` and `stream_devices(pid)`, or stand-ins (tests).
    """

    def __init__(self, inp: Endpoint, out: Endpoint, pid: int,
                 server: Callable[[], dict[str, Any]] = lambda: pulse_server(TIMEOUT_S),
                 streams: Callable[[int], dict[str, str | None]] = stream_devices):
        self.inp, self.out, self.pid = inp, out, pid
        self.server, self.streams = server, streams
        self.named = {"source": inp.env.get(KINDS["input"][2]), "sink": out.env.get(KINDS["output"][2])}

    def check(self) -> str | None:
        try:
            pulse = self.server()
        except (OSError, subprocess.SubprocessError):
            return None
        if not pulse.get("running"):
            return None                  # no answer this time (a busy server): the next check
        try:
            where = self.streams(self.pid)
        except (OSError, subprocess.SubprocessError, ValueError):
            where = {}
        for kind, role in (("source", "IN"), ("sink", "OUT")):
            name = self.named[kind]
            if name and name not in pulse.get(f"{kind}s", []):
                moved = where.get(kind)
                to = (f"; PulseAudio moved the {'microphone' if kind == 'source' else 'sound'} to "
                      f"{moved}" if moved and moved != name else "")
                return f"{role} {name} is gone{to}"
        problem = loop_problem(self.inp, self.out, pulse, now=(where.get("source"), where.get("sink")))
        return f"the streams were moved: {problem}" if problem else None


class Watcher:
    """Runs `DeviceWatch.check` in a daemon thread every `every_s` and on the server's events;
    calls `on_stop(reason)` once, at the first failed check, and ends."""

    def __init__(self, watch: DeviceWatch, on_stop: Callable[[str], None], every_s: float = WATCH_S):
        self.watch, self.on_stop, self.every_s = watch, on_stop, float(every_s)
        self._wake = threading.Event()
        self._done = threading.Event()
        self._sub: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, name="audio-watch", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ends the watch without waiting for a check under way (the thread is a daemon: a
        pactl that hangs must not hold the audio process's end, which its parent waits for)."""
        self._done.set()
        self._wake.set()
        sub = self._sub
        if sub is not None:
            with contextlib.suppress(OSError):
                sub.kill()
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                sub.wait(0.5)
        self._thread.join(0.2)

    def _subscribe(self) -> None:
        """`pactl subscribe`, read by a thread of its own (from the watch's thread: the child
        takes its ordinary scheduling, not the audio process's real-time one)."""
        if shutil.which("pactl") is None:
            return
        with contextlib.suppress(OSError):
            self._sub = subprocess.Popen(["pactl", "subscribe"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         stdin=subprocess.DEVNULL, text=True, env={**os.environ, "LC_ALL": "C"})
            threading.Thread(target=self._events, name="audio-watch-events", daemon=True).start()
            if self._done.is_set():          # stopped while it started
                self._sub.kill()

    def _events(self) -> None:
        sub = self._sub
        assert sub is not None and sub.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            for line in sub.stdout:      # "Event 'remove' on sink #5" (not a client's, nor a stream's:
                # "on sink-input #" comes with every stream anywhere, and each check is ~10 pactl runs)
                if " on sink #" in line or " on source #" in line or " on server" in line:
                    self._wake.set()

    def _run(self) -> None:
        # the audio process runs real-time (`worker.raise_priority`); its checks, and the pactl
        # runs they start, need not: this thread takes the ordinary policy (Linux: per thread)
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        self._subscribe()
        while not self._done.is_set():
            self._wake.wait(self.every_s)
            self._wake.clear()
            if self._done.is_set():
                return
            reason = self.watch.check()
            if reason is not None and not self._done.is_set():
                self.on_stop(reason)
                return
            time.sleep(MIN_GAP_S)
