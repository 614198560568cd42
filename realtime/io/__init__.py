"""The engine's edges: where frames come from and where they go.

    source       the Source protocol, CaptureError, CaptureTimeout
    capture      sources: camera, clip, folder of images; open_source(spec); quiet_opencv
    tracked      tracked clips (*.track.npz): track_clip writes one, TrackedClipSource plays it
                 without MediaPipe (landmarks with every frame, the clip's images when beside it)
    media        photos and videos read with their size checked from the header first (caps)
    grabber      Grabber: the capture thread (realtime: newest frame wins; offline: every frame)
    mailbox      Mailbox: the one-slot / bounded hand-over between two threads (Grabber, ThreadedSink)
    sinks/       null, file (mp4), vcam, window (+ overlay), threaded (ThreadedSink); make_sink(spec)
    audio        microphone -> output through a delay line that follows the video latency
    inventory    device listing for `run.py devices` (cameras, virtual camera, audio, GPU)
    performance  blendshapes and the scripted performance source (the demo)
"""
