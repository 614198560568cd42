"""Audio: microphone -> output device, delayed so that the sound stays with the avatar's video.

The avatar's picture reaches the call some tens of milliseconds after the camera saw the face,
so the microphone is delayed by the measured video latency (DESIGN §7). The audio runs in its
own process, which the engine's Python work cannot starve, on PortAudio's stream times:

    errors   AudioError, what to install when PortAudio or sounddevice is missing
    names    device names as users know them (PulseAudio/PipeWire sources and sinks, PortAudio
             names elsewhere); `--audio IN:OUT` resolved to PortAudio devices
    clock    StreamClock (sample index <-> stream time), MinOffset (stream time -> perf_counter)
    core     SyncCore: the ring buffer between the two streams' callbacks, read at
             `target` seconds after capture, corrected by crossfades (no clicks, no backlog)
    worker   the audio process: streams, SyncCore, messages to and from the engine
    bridge   AudioBridge: the engine's side (spawn, targets from the frames' latency, stop)
    report   DelayPolicy (target from the video latency), AudioReport (the run's audio summary)
"""
from realtime.io.audio.bridge import AudioBridge
from realtime.io.audio.errors import AudioError, import_sounddevice, portaudio_install_hint
from realtime.io.audio.report import AudioReport, DelayPolicy

__all__ = ["AudioBridge", "AudioError", "AudioReport", "DelayPolicy", "import_sounddevice",
           "portaudio_install_hint"]
