"""The audio process: PortAudio's two streams and the `SyncCore`, away from the engine.

`serve(conn, config)` is the target of a process started with multiprocessing's 'spawn'
context (`AudioBridge`): its Python callbacks hold this process's GIL only, so the engine's
Python work cannot starve them, and it asks for real-time (else raised) scheduling when the
system allows it. It resolves the device names (`names.resolve_spec`), sets the PulseAudio
routing variables, opens and starts the streams and answers ("ready", info) or ("error",
message). The streams play silence until the first target: they start before the engine's
warm-up because a PortAudio output on PulseAudio's ALSA plugin goes quiet for 1.4-1.8 s after
its first few callbacks (measured here), which must be over before the first frame. Then it
serves the parent's messages (its stats say when the streams' clocks have settled: no sound
passes before):

    ("target", s | None)    the wanted capture -> heard delay (s); None: silence
    ("stop",)               stop, answer ("final", snapshot, rows, stderr lines), exit

and every `report_s` sends ("stats", snapshot, rows) (rows: `SyncCore.history` since the last
message). What PortAudio/ALSA print on stderr (xrun notices) is captured and returned in
"final" instead of interleaving with the engine's output. The process also ends when the parent
goes away (its pipe closes). Where the names come from a PulseAudio/PipeWire server, a
`watch.Watcher` checks the devices during the run: when IN or OUT goes away (or the streams are
moved into a loop) the sound stops for good, and the snapshot says why ("stopped").
"""
from __future__ import annotations

import contextlib
import importlib
import os
import signal
import tempfile
import time
from typing import Any

from realtime.io.audio.core import SyncCore
from realtime.io.audio.errors import AudioError, import_sounddevice
from realtime.io.audio.names import pulse_server, resolve_spec
from realtime.io.audio.watch import DeviceWatch, Watcher


def raise_priority() -> str:
    """Real-time round-robin scheduling for this process's threads if allowed, else a lower
    nice value; says which (PortAudio's callback threads, started later, inherit it)."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))  # Linux only: else AttributeError
        return "real-time (SCHED_RR 10)"
    except (AttributeError, OSError):
        pass
    try:
        os.nice(-10)
        return "nice -10"
    except OSError:
        return "normal"


@contextlib.contextmanager
def captured_stderr():
    """Send this process's fd 2 to a temporary file; yields a function returning its lines."""
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)

        def lines() -> list[str]:
            tmp.seek(0)
            return tmp.read().decode(errors="replace").splitlines()
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def open_streams(sd: Any, config: dict[str, Any], core: SyncCore) -> tuple[Any, Any, dict, Any]:
    """Resolve `config["spec"]`, set the routing variables, open and start both streams; the
    streams, the info for the parent, and a started `Watcher` of the devices (None: none)."""
    pulse = config.get("pulse") or pulse_server()
    devices = [dict(d) for d in sd.query_devices()]
    defaults = tuple(None if d is None else int(d) for d in sd.default.device)
    inp, outp = resolve_spec(config["spec"], devices, defaults, pulse)  # type: ignore[arg-type]
    os.environ.update(inp.env)
    os.environ.update(outp.env)
    perf = time.perf_counter

    def on_input(indata, frames, ti, status) -> None:
        core.on_input(indata, ti.inputBufferAdcTime, perf(), ti.currentTime, bool(status))

    def on_output(outdata, frames, ti, status) -> None:
        core.on_output(outdata, ti.outputBufferDacTime, perf(), ti.currentTime, bool(status))

    common = {"samplerate": core.rate, "blocksize": config["blocksize"],
              "channels": core.channels, "dtype": "float32", "latency": config["latency"]}
    streams: list[Any] = []
    for endpoint, cls, cb in ((inp, sd.InputStream, on_input), (outp, sd.OutputStream, on_output)):
        try:
            streams.append(cls(device=endpoint.device, callback=cb, **common))
            streams[-1].start()
        except Exception as exc:  # noqa: BLE001 - PortAudioError, ValueError for bad settings
            for s in streams:
                with contextlib.suppress(Exception):
                    s.close()
            raise AudioError(f"cannot open audio {endpoint.kind} {endpoint.label!r} at "
                             f"{core.rate} Hz, {core.channels} channel(s): {exc}") from exc
    info = {"input": inp.label, "output": outp.label,
            "server": pulse.get("server") if pulse.get("running") else None,
            "stream_latency_ms": [1000.0 * float(s.latency) for s in streams]}
    watcher = None
    # the devices are watched where the server's names came from pactl (`pulse`: a test's stand-in)
    if config.get("watch_s") and config.get("pulse") is None and pulse.get("running"):
        def stop(why: str) -> None:
            core.stop_sound(why, perf())

        watcher = Watcher(DeviceWatch(inp, outp, os.getpid()), stop, config["watch_s"]).start()
    info["watched"] = watcher is not None
    return streams[0], streams[1], info, watcher


def serve(conn, config: dict[str, Any]) -> None:
    """The audio process's main (see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C stops the parent, which stops us
    with captured_stderr() as stderr_lines:
        priority = raise_priority()
        core = SyncCore(config["sample_rate"], config["channels"], config["max_delay_s"],
                        tolerance_s=config["tolerance_s"], fade_s=config["fade_s"],
                        history_every=max(1, 1024 // config["blocksize"]),
                        blocksize=config["blocksize"])
        streams: list[Any] = []
        watcher = None
        try:
            module = config.get("sounddevice_module")
            sd = importlib.import_module(module) if module else import_sounddevice()
            *streams, info, watcher = open_streams(sd, config, core)
        except AudioError as exc:
            conn.send(("error", str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - shown to the user as one line
            conn.send(("error", f"audio process failed: {type(exc).__name__}: {exc}"))
            return
        conn.send(("ready", {**info, "priority": priority, "pid": os.getpid()}))
        try:
            _loop(conn, config, core)
        finally:
            if watcher is not None:
                watcher.stop()
            for stream in streams:
                with contextlib.suppress(Exception):
                    stream.stop()
                    stream.close()
        with contextlib.suppress(OSError):
            conn.send(("final", _snapshot(core), _rows(core), stderr_lines()))


def _loop(conn, config: dict[str, Any], core: SyncCore) -> None:
    """Serve messages until "stop" or the parent's exit; stats every `report_s`, and at once
    when the streams' clocks have settled (the parent waits for that before its first frame)."""
    next_report = time.perf_counter()
    told_settled = told_stopped = False
    while True:
        try:
            msg = conn.recv() if conn.poll(0.02) else None
        except (EOFError, OSError):
            return                                  # the parent is gone
        if msg is not None:
            if msg[0] == "stop":
                return
            if msg[0] == "target":
                core.set_target(msg[1])
        now = time.perf_counter()
        if (now >= next_report or (core.settled_at is not None and not told_settled)
                or (core.stopped is not None and not told_stopped)):
            told_settled, told_stopped = core.settled_at is not None, core.stopped is not None
            next_report = now + config["report_s"]
            try:
                conn.send(("stats", _snapshot(core), _rows(core)))
            except OSError:
                return


def _snapshot(core: SyncCore) -> dict[str, Any]:
    """`core.snapshot()` plus the time and how long the output has gone without a callback
    (at the end of a run: a stream that died)."""
    now = time.perf_counter()
    return {**core.snapshot(), "time": now, "silent_s": core.silent_for(now)}


def _rows(core: SyncCore) -> list[tuple[float, float, float]]:
    rows = []
    while core.history:
        rows.append(core.history.popleft())
    return rows
