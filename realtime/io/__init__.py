"""The engine's edges: where frames come from and where they go.

    source       the Source protocol, CaptureError, CaptureTimeout
    capture      sources: camera, clip, folder of images; open_source(spec); quiet_opencv
    tracked      tracked clips (*.track.npz): track_clip writes one, TrackedClipSource plays it
                 without MediaPipe (landmarks with every frame, the clip's images when beside it)
    media        photos and videos read with their size checked from the header first (caps)
    grabber      Grabber: the capture thread (realtime: newest frame wins; offline: every frame)
    mailbox      Mailbox: the one-slot / bounded hand-over between two threads (Grabber, ThreadedSink)
    sinks/       null, file (mp4), vcam, window (+ overlay), threaded (ThreadedSink); make_sink(spec)
    audio/       microphone -> output in its own process, delayed by the measured video latency
                 on the sound devices' stream times (AudioBridge, AudioReport; see its __init__)
    inventory    device listing for `run.py devices` (cameras, virtual camera, audio, GPU)
    performance  blendshapes and the scripted performance source (the demo)
"""
