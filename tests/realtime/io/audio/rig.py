"""A real audio rig for the end-to-end A/V test: a private PulseAudio server, tagged bursts, and
the measurement of the offset between the sound and the video frames.

The server (user mode, its own runtime directory, so it touches no desktop session) gets

    rig_bus      a 2-channel null sink: the rig's one clock
    mic_feed     a sink remapped onto rig_bus's left channel  (what the "microphone" hears)
    engine_out   a sink remapped onto rig_bus's right channel (where the engine plays)
    vmic         a source remapped from mic_feed.monitor      (the engine's microphone)

so that `live --audio vmic:engine_out` works by name, exactly as on a desktop with a virtual
cable. Bursts (20 ms chirps in 8 separate bands in turn, so each is recognised 2 s either side)
are played into mic_feed every 250 ms, and rig_bus.monitor is recorded in one stereo stream.

How audio time and video time are compared, honestly:

- Audio delay, sample-exact: a burst reaches vmic (left channel) and, after the engine's audio
  path, engine_out (right channel) of the same bus, recorded by one stream on the bus's own
  clock; the sample distance between its two copies is the time from "the microphone heard
  it" to "the call hears it". Nothing here depends on any latency a driver reports.
- Video latency: the engine's own per-frame timestamps (perf_counter at capture and after the
  sink accepted the frame; `live --audio-report`), the same numbers as its capture->sink summary.
- Joining the two: a burst's left-channel time is put on the perf_counter clock through the
  recording stream's capture times (PortAudio's inputBufferAdcTime; good to a few ms). That only
  selects WHICH frames were being captured when the burst was heard; the offset is
  audio delay - video latency interpolated between those frames' capture times (the picture
  showing an instant is shown at that instant + the latency; between frames, linear).

Positive offset = the sound is heard after the picture. Needs pulseaudio, pactl, pacat and
PortAudio; `start_server()` raises RigUnavailable when they are missing.
"""
from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 48000
PERIOD_S = 0.25
BURST_S = 0.02
TONE = 0.05        # amplitude of the tone under the bursts
# 8 chirps in 8 separate 600 Hz bands (up, down in turn): any two correlate below 0.2
VARIANTS = [(600 + 600 * i, 1200 + 600 * i)[::1 if i % 2 == 0 else -1] for i in range(8)]
MODULES = [
    "module-null-sink sink_name=rig_bus rate=48000 channels=2 channel_map=front-left,front-right",
    "module-remap-sink sink_name=mic_feed master=rig_bus channels=1 channel_map=mono "
    "master_channel_map=front-left remix=no rate=48000",
    "module-remap-sink sink_name=engine_out master=rig_bus channels=1 channel_map=mono "
    "master_channel_map=front-right remix=no rate=48000",
    "module-remap-source source_name=vmic master=mic_feed.monitor channels=1 channel_map=mono "
    "rate=48000",
]


class RigUnavailable(Exception):
    """The rig cannot run here (what is missing is in the message)."""


def burst(k: int) -> np.ndarray:
    """Burst number k: a Hann-windowed linear chirp, variant k % 8."""
    f0, f1 = VARIANTS[k % len(VARIANTS)]
    t = np.arange(int(BURST_S * RATE)) / RATE
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * BURST_S))
    return (0.5 * np.hanning(len(t)) * np.sin(phase)).astype(np.float32)


def burst_track(seconds: float) -> np.ndarray:
    """`seconds` of mono audio with burst k starting at k * PERIOD_S, over a quiet 150 Hz tone
    (never silent, so a gap in the engine's output shows as a run of zero samples)."""
    x = (TONE * np.sin(2 * np.pi * 150.0 * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)
    for k in range(int(seconds / PERIOD_S)):
        b, s = burst(k), int(k * PERIOD_S * RATE)
        x[s:s + len(b)] += b[:len(x) - s]
    return x


@contextlib.contextmanager
def start_server(workdir: Path):
    """A private PulseAudio server with the rig's sinks and sources; yields the environment
    (XDG_RUNTIME_DIR, HOME, PULSE_SERVER) that clients need. Stops it afterwards."""
    for tool in ("pulseaudio", "pactl", "pacat"):
        if shutil.which(tool) is None:
            raise RigUnavailable(f"{tool} not found (apt install pulseaudio pulseaudio-utils)")
    runtime = workdir / "pulse-runtime"
    (runtime / "home").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime / "home"),
           "PULSE_SERVER": f"unix:{runtime}/pulse/native"}
    for var in ("PULSE_SINK", "PULSE_SOURCE", "DBUS_SESSION_BUS_ADDRESS"):
        env.pop(var, None)
    proc = subprocess.Popen(["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1",
                             "--use-pid-file=no",
                             "--load=module-native-protocol-unix auth-anonymous=1",
                             f"--log-target=file:{workdir}/pulse.log"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
                break
            if proc.poll() is not None:
                raise RigUnavailable(f"pulseaudio exited ({proc.returncode}): "
                                     f"{_tail(workdir / 'pulse.log')}")
            time.sleep(0.05)
        else:
            raise RigUnavailable("pulseaudio did not answer within 5 s")
        for module in MODULES:
            res = subprocess.run(["pactl", "load-module", *module.split()], env=env,
                                 capture_output=True, text=True)
            if res.returncode != 0:
                raise RigUnavailable(f"pactl load-module {module.split()[0]}: {res.stderr.strip()}")
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def _tail(path: Path) -> str:
    try:
        return " | ".join(path.read_text().splitlines()[-3:])
    except OSError:
        return ""


@dataclass
class Recording:
    """rig_bus.monitor, recorded: samples (n, 2) and, per block, (first sample, adc time,
    perf_counter - stream time)."""

    blocks: list = field(default_factory=list)
    stamps: list = field(default_factory=list)
    proc: subprocess.Popen | None = None

    def wait_for_output(self, timeout: float) -> bool:
        """Wait until the recorder hears sound on engine_out (the engine passes audio)."""
        assert self.proc is not None and self.proc.stdout is not None
        ready = select.select([self.proc.stdout], [], [], timeout)[0]
        return bool(ready) and self.proc.stdout.readline().startswith("output")

    def samples(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros((0, 2), np.float32)

    def perf_time(self, index: np.ndarray) -> np.ndarray:
        """perf_counter time at which samples `index` were on the bus."""
        st = np.asarray(self.stamps, np.float64)
        t0 = st[:, 1] - st[:, 0] / RATE                    # per block: time of sample 0
        k = np.clip(np.searchsorted(st[:, 0], index, side="right") - 1, 0, len(st) - 1)
        lo, hi = np.maximum(k - 25, 0), np.minimum(k + 26, len(st))
        smooth = np.array([np.median(t0[a:b]) for a, b in zip(lo, hi)])
        return smooth + np.asarray(index) / RATE + st[:, 2].min()


@contextlib.contextmanager
def play_and_record(env: dict, seconds: float, workdir: Path):
    """Play `seconds` of bursts into mic_feed while recording rig_bus.monitor, in a separate
    process (its own PortAudio, initialised with the rig's server); yields a Recording that is
    filled when the block exits."""
    out = workdir / "recording.npz"
    proc = subprocess.Popen([sys.executable, __file__, str(out), str(seconds), str(workdir)],
                            env={**env, "PULSE_SOURCE": "rig_bus.monitor"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rec = Recording(proc=proc)
    try:
        line = proc.stdout.readline()            # "recording" once the stream runs
        if not line.startswith("recording"):
            raise RigUnavailable(f"the recorder did not start: {line}{proc.stdout.read()}")
        yield rec
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=15)
    if proc.returncode != 0 or not out.exists():
        raise RigUnavailable(f"the recorder failed ({proc.returncode}): {rest}")
    data = np.load(out, allow_pickle=False)
    rec.blocks, rec.stamps = [data["samples"]], data["stamps"].tolist()


def _record_main(out: str, seconds: float, workdir: str) -> None:
    """The recorder process (see play_and_record)."""
    import sounddevice as sd

    track = Path(workdir) / "bursts.f32"
    burst_track(seconds).tofile(track)
    blocks, stamps, count, stop, heard = [], [], [0], [False], [False]

    def callback(indata, frames, ti, status):
        stamps.append((count[0], ti.inputBufferAdcTime, time.perf_counter() - ti.currentTime))
        blocks.append(indata.copy())
        count[0] += frames
        heard[0] = heard[0] or bool(np.abs(indata[:, 1]).max() > 0.2)   # a burst came out

    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    stream = sd.InputStream(device="pulse", samplerate=RATE, channels=2, dtype="float32",
                            blocksize=480, latency=0.05, callback=callback)
    with stream, open(track, "rb") as f:
        player = subprocess.Popen(["pacat", "--playback", "--raw", "--device=mic_feed",
                                   "--format=float32le", f"--rate={RATE}", "--channels=1",
                                   "--latency-msec=50"], stdin=f,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print("recording", flush=True)
        t_end = time.perf_counter() + seconds
        told = False
        while not stop[0] and time.perf_counter() < t_end:
            time.sleep(0.02)
            if heard[0] and not told:
                print("output", flush=True)
                told = True
        player.terminate()
        player.wait(5)
    np.savez(out, samples=np.concatenate(blocks) if blocks else np.zeros((0, 2), np.float32),
             stamps=np.asarray(stamps, np.float64).reshape(-1, 3))


@dataclass
class Burst:
    index: int          # sample of the left (microphone) copy on the bus
    t_mic: float        # its perf_counter time
    delay_ms: float | None   # right copy - left copy; None: not found (silence or garbled)
    score: float        # normalised correlation of the right copy
    latency_ms: float | None = None   # video latency at t_mic (interpolated)
    offset_ms: float | None = None    # delay - latency: + = the sound after the picture


def find_bursts(rec: Recording, max_delay_s: float = 1.5, min_score: float = 0.6) -> list[Burst]:
    """Each burst on the left channel, and its copy on the right within `max_delay_s`."""
    x = rec.samples()
    if not len(x):
        return []
    left, right = x[:, 0].astype(np.float64), x[:, 1].astype(np.float64)
    env = np.convolve(np.abs(left), np.ones(96) / 96, mode="same")
    above = np.flatnonzero(env > 0.12)
    onsets = above[np.insert(np.diff(above) > int(0.1 * RATE), 0, True)] if len(above) else above
    out = []
    n = int(BURST_S * RATE) + 96
    for on in onsets:
        a = max(int(on) - 96, 0)
        tpl = left[a:a + n]
        seg = right[a:a + n + int(max_delay_s * RATE)]
        if len(tpl) < n or len(seg) < n + 1:
            continue
        corr = np.correlate(seg, tpl, mode="valid")
        energy = np.sqrt(np.convolve(seg ** 2, np.ones(n), mode="valid") * (tpl ** 2).sum())
        score = corr / np.maximum(energy, 1e-9)
        lag = int(np.argmax(score))
        t_mic = float(rec.perf_time(np.array([a]))[0])
        ok = score[lag] >= min_score
        out.append(Burst(a, t_mic, 1000.0 * lag / RATE if ok else None, float(score[lag])))
    return out


def dropouts(rec: Recording, start: int, stop: int, run: int = 3, merge_s: float = 0.05) -> np.ndarray:
    """Sample indices (on the bus) where the engine's output (right channel) goes silent
    between samples `start` and `stop`: runs of at least `run` exact zeros (the tone under the
    bursts never gives two zeros in a row). Runs that begin within `merge_s` of a gap's first
    run are that gap (`grouped`: anchored, so silence in every block still counts many)."""
    right = rec.samples()[start:stop, 1]
    zero = np.concatenate(([0], (right == 0.0).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(zero))
    begins, ends = edges[::2], edges[1::2]
    begins = begins[(ends - begins) >= run]
    return start + grouped(begins, merge_s * RATE)


def grouped(indices, window) -> np.ndarray:
    """The first of each group of sorted `indices`: a group is every index less than `window`
    after its first. Anchored at the first, not chained from one to the next, so indices spread
    evenly at less than `window` apart still make one group per `window`."""
    firsts: list[int] = []
    for i in np.asarray(indices, np.int64):
        if not firsts or i - firsts[-1] >= window:
            firsts.append(int(i))
    return np.asarray(firsts, np.int64)


def join_video(bursts: list[Burst], frames: np.ndarray) -> list[Burst]:
    """Fill latency_ms/offset_ms from the frames' (t_capture, t_sink) (perf_counter times)."""
    fr = np.asarray(frames, np.float64).reshape(-1, 2)
    fr = fr[np.argsort(fr[:, 0])]
    for b in bursts:
        if len(fr) and fr[0, 0] <= b.t_mic <= fr[-1, 0]:
            b.latency_ms = 1000.0 * float(np.interp(b.t_mic, fr[:, 0], fr[:, 1] - fr[:, 0]))
            if b.delay_ms is not None:
                b.offset_ms = b.delay_ms - b.latency_ms
    return bursts


def audio_process(engine_pid: int) -> int | None:
    """The engine's audio process (the multiprocessing 'spawn' child), or None (yet)."""
    for task in Path(f"/proc/{engine_pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            try:
                if b"spawn_main" in Path(f"/proc/{kid}/cmdline").read_bytes():
                    return int(kid)
            except OSError:
                pass
    return None


def stall(pid: int, seconds: float) -> tuple[float, float]:
    """Freeze process `pid` (SIGSTOP) for `seconds`; (start, end) on perf_counter."""
    os.kill(pid, signal.SIGSTOP)
    t0 = time.perf_counter()
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    return t0, time.perf_counter()


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="puppeteer-audio-rig-"))


if __name__ == "__main__":
    _record_main(sys.argv[1], float(sys.argv[2]), sys.argv[3])
