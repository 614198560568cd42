"""Inventory: what this machine offers the engine (cameras, virtual camera, audio, GPU).

Formerly realtime/devices.py. It imports neither torch nor the engine, so `run.py devices` stays
light: the GPU is probed with nvidia-smi and, when installed, cupy; pyvirtualcam, sounddevice
and cupy are imported inside their probes only.

`list_devices()` returns a plain dict (JSON-serialisable) and never hangs: every probe is
bounded in time, and a missing library or device is reported with the reason instead of raised.
`format_devices(d)` turns it into a readable printout (what `python run.py devices` prints).

Shape of the dict:

    {"cameras": [{"index": 0, "usable": True, "size": [640, 480], "backend": "V4L2"},
                 {"index": 1, "usable": False, "size": None, "reason": "..."}, ...],
     "virtual_camera": {"installed": bool, "usable": bool, "reason": str | None,
                        "backends": [{"name", "usable", "device", "reason"}], "hint": str},
     "audio": {"usable": True, "devices": [{"index", "name", "inputs", "outputs",
                                           "default_samplerate"}],
               "default_input": int | None, "default_output": int | None, "pulse": {...}}
              or {"usable": False, "reason": "... install libportaudio2 ...", "pulse": {...}},
              ("pulse": realtime.io.audio.names.pulse_server(): the PulseAudio/PipeWire source
               and sink names `--audio` takes, or {"running": False, "reason": ...})
     "gpu": {"found": bool, "nvidia_smi": [{"name", "memory_mib", "driver"}] | None,
             "cupy": {"devices": int, "name": str} | None, "reason": str | None}}
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import cv2

from realtime.io.audio.errors import portaudio_install_hint
from realtime.io.audio.names import loop_path, pulse_origin, pulse_server
from realtime.io.capture import quiet_opencv
from realtime.io.sinks.vcam import vcam_install_hint

CAMERA_INDICES = range(5)


def with_timeout(fn: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
    """Run fn in a daemon thread; (True, result) or (False, exception/"timeout")."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return False, f"no answer within {timeout:g} s"
    if "error" in box:
        return False, box["error"]
    return True, box["result"]


def _probe_camera(index: int, timeout: float) -> dict[str, Any]:
    entry: dict[str, Any] = {"index": index, "usable": False, "size": None}
    if sys.platform.startswith("linux") and not os.path.exists(f"/dev/video{index}"):
        entry["reason"] = f"/dev/video{index} does not exist"
        return entry

    def probe() -> dict[str, Any]:
        with quiet_opencv():
            cap = cv2.VideoCapture(index)
            try:
                if not cap.isOpened():
                    return {"reason": "cannot be opened (absent, busy or no permission)"}
                ok, img = cap.read()
                backend = cap.getBackendName()
                if not ok or img is None:
                    return {"reason": "opened but delivered no frame", "backend": backend}
                return {"usable": True, "size": [int(img.shape[1]), int(img.shape[0])],
                        "backend": backend}
            finally:
                cap.release()

    ok, result = with_timeout(probe, timeout)
    if ok:
        entry.update(result)
    else:
        entry["reason"] = (result if isinstance(result, str)
                           else f"{type(result).__name__}: {result}")
    return entry


def _virtual_camera(timeout: float) -> dict[str, Any]:
    info: dict[str, Any] = {"installed": False, "usable": False, "reason": None,
                            "backends": [], "hint": vcam_install_hint()}
    try:
        import pyvirtualcam  # noqa: PLC0415 - optional: probed only here
    except ImportError as exc:
        info["reason"] = f"pyvirtualcam is not installed (pip install pyvirtualcam): {exc}"
        return info
    info["installed"] = True
    for name in sorted(pyvirtualcam.camera.BACKENDS):
        def probe(name: str = name) -> str:
            with pyvirtualcam.Camera(640, 480, 30, backend=name) as cam:
                return cam.device

        ok, result = with_timeout(probe, timeout)
        reason = None if ok else str(result).strip().removeprefix(f"'{name}' backend: ")
        info["backends"].append({"name": name, "usable": ok, "device": result if ok else None,
                                 "reason": reason})
    info["usable"] = any(b["usable"] for b in info["backends"])
    if not info["backends"]:
        info["reason"] = "pyvirtualcam has no backend for this operating system"
    elif not info["usable"]:
        info["reason"] = "; ".join(f"{b['name']}: {b['reason']}" for b in info["backends"])
    return info


def _audio() -> dict[str, Any]:
    pulse = pulse_server() if sys.platform.startswith("linux") else {"running": False}
    try:
        import sounddevice as sd  # noqa: PLC0415 - optional (the audio extra), needs PortAudio
    except OSError as exc:
        return {"usable": False, "pulse": pulse,
                "reason": f"sounddevice cannot load PortAudio ({exc}); "
                          f"{portaudio_install_hint()}"}
    except ImportError as exc:
        return {"usable": False, "pulse": pulse,
                "reason": f"sounddevice is not installed (pip install sounddevice): {exc}"}
    try:
        devices = [{"index": i, "name": d["name"], "inputs": int(d["max_input_channels"]),
                    "outputs": int(d["max_output_channels"]),
                    "default_samplerate": float(d["default_samplerate"])}
                   for i, d in enumerate(sd.query_devices())]
        default_in, default_out = (int(x) if x is not None and int(x) >= 0 else None
                                   for x in sd.default.device)
    except Exception as exc:  # noqa: BLE001 - PortAudio errors
        return {"usable": False, "pulse": pulse, "reason": f"cannot list audio devices: {exc}"}
    return {"usable": bool(devices), "devices": devices, "default_input": default_in,
            "default_output": default_out, "pulse": pulse,
            **({} if devices else {"reason": "PortAudio found no audio device (no sound server "
                                             "or sound card)"})}


def _format_pulse(pulse: dict[str, Any]) -> list[str]:
    """The PulseAudio/PipeWire names, the ones `--audio IN:OUT` takes."""
    if not pulse.get("running"):
        return [f"  [--] PulseAudio/PipeWire: {pulse['reason']}"] if pulse.get("reason") else []
    sources, sinks = pulse.get("sources", []), pulse.get("sinks", [])
    remaps = pulse.get("remaps") or {}

    def origin(source: str) -> str:     # a re-mapped source (a virtual microphone): what it re-maps
        return pulse_origin(source, remaps)

    default = [pulse["default_source"]] if pulse.get("default_source") else []
    mics = list(dict.fromkeys([*(s for s in default + sources if not origin(s).endswith(".monitor")),
                               *default, *sources]))      # a microphone before a monitor
    # the README's recipe names the engine's output `engine_out`: where it exists it is OUT, so
    # the example never offers its monitor as the microphone
    outs = list(dict.fromkeys([*(["engine_out"] if "engine_out" in sinks else []),
                               *filter(None, [pulse.get("default_sink")]), *sinks])) or ["OUT"]
    # never a sink's own monitor (or a source re-mapping it, or reading it through other sinks)
    # into that sink: the output fed back
    mic, out = next(((m, o) for o in outs for m in mics if loop_path(m, o, pulse) is None), ("IN", outs[0]))
    loop = "" if mic != "IN" or not sources else (
        f"; IN: your microphone, not {outs[0]}.monitor, which is {outs[0]}'s own sound")
    lines = [f"  {pulse['server']}: name these with --audio IN:OUT (e.g. --audio {mic}:{out}{loop})"]
    for label, names, default in (("inputs ", sources, pulse.get("default_source")),
                                  ("outputs", sinks, pulse.get("default_sink"))):
        shown = [f"{n} (default)" if n == default else n for n in names]
        lines.append(f"    {label}: {', '.join(shown) or 'none'}")
    return lines


def _gpu(timeout: float) -> dict[str, Any]:
    info: dict[str, Any] = {"found": False, "nvidia_smi": None, "cupy": None, "reason": None}
    reasons = []
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            res = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version",
                                  "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=timeout)
            if res.returncode == 0:
                gpus = []
                for line in res.stdout.strip().splitlines():
                    name, mem, driver = (part.strip() for part in line.rsplit(",", 2))
                    try:
                        memory = int(float(mem))
                    except ValueError:
                        memory = None  # "[N/A]" on some boards
                    gpus.append({"name": name, "memory_mib": memory, "driver": driver})
                info["nvidia_smi"] = gpus
            else:
                reasons.append(f"nvidia-smi failed: {(res.stderr or res.stdout).strip()}")
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            reasons.append(f"nvidia-smi failed: {exc}")
    else:
        reasons.append("nvidia-smi not found")
    if importlib.util.find_spec("cupy") is not None:
        def probe() -> dict[str, Any]:
            import cupy  # noqa: PLC0415 - optional GPU extra, heavy; in the bounded probe thread

            n = cupy.cuda.runtime.getDeviceCount()
            name = cupy.cuda.runtime.getDeviceProperties(0)["name"] if n else b""
            return {"devices": int(n),
                    "name": name.decode() if isinstance(name, bytes) else str(name)}

        ok, result = with_timeout(probe, timeout)
        if ok:
            info["cupy"] = result
        else:
            reasons.append(f"cupy: {result}" if isinstance(result, str)
                           else f"cupy: {type(result).__name__}: {result}")
    else:
        reasons.append("cupy not installed")
    info["found"] = bool(info["nvidia_smi"]) or bool(info["cupy"] and info["cupy"]["devices"])
    info["reason"] = None if info["found"] else "; ".join(reasons)
    return info


def list_devices(camera_indices=CAMERA_INDICES, timeout: float = 5.0) -> dict[str, Any]:
    """Probe cameras (indices 0..4), virtual camera backends, audio and GPU.

    Each probe is bounded by `timeout` seconds; OpenCV's warnings are silenced. On Linux a
    camera index whose /dev/videoN does not exist is reported without touching OpenCV.
    """
    return {"cameras": [_probe_camera(i, timeout) for i in camera_indices],
            "virtual_camera": _virtual_camera(timeout),
            "audio": _audio(),
            "gpu": _gpu(timeout)}


def format_devices(d: dict[str, Any]) -> str:
    """A readable multi-line report of `list_devices()`'s dict."""
    yes = {True: "ok", False: "--"}
    lines = ["Cameras:"]
    cams = d.get("cameras", [])
    for cam in cams:
        if cam.get("usable"):
            w, h = cam["size"]
            lines.append(f"  [{yes[True]}] {cam['index']}: {w}x{h}"
                         + (f" ({cam['backend']})" if cam.get("backend") else ""))
        else:
            lines.append(f"  [{yes[False]}] {cam['index']}: {cam.get('reason', 'not usable')}")
    if not any(c.get("usable") for c in cams):
        lines.append("  no usable camera: use a video file or a folder of images as input")

    vc = d.get("virtual_camera", {})
    lines.append("Virtual camera:")
    for b in vc.get("backends", []):
        lines.append(f"  [{yes[bool(b['usable'])]}] {b['name']}: "
                     + (b["device"] if b["usable"] else b["reason"]))
    if not vc.get("usable"):
        if vc.get("reason") and not vc.get("backends"):
            lines.append(f"  [--] {vc['reason']}")
        lines.append(f"  to fix: {vc.get('hint', '')}")

    au = d.get("audio", {})
    lines.append("Audio:")
    lines.extend(_format_pulse(au.get("pulse", {})))
    if au.get("usable"):
        if au.get("pulse", {}).get("running"):
            lines.append("  PortAudio devices (names or indices also work with --audio):")
        for dev in au.get("devices", []):
            marks = "".join(["I" if dev["index"] == au.get("default_input") else " ",
                             "O" if dev["index"] == au.get("default_output") else " "])
            lines.append(f"  {marks} {dev['index']:>2}: {dev['name']} "
                         f"(in {dev['inputs']}, out {dev['outputs']}, "
                         f"{dev['default_samplerate']:g} Hz)")
    else:
        lines.append(f"  [--] {au.get('reason', 'not usable')}")

    gpu = d.get("gpu", {})
    lines.append("GPU:")
    for g in gpu.get("nvidia_smi") or []:
        mem = f", {g['memory_mib']} MiB" if g.get("memory_mib") else ""
        lines.append(f"  [ok] {g['name']}{mem}, driver {g['driver']}")
    if gpu.get("cupy"):
        lines.append(f"  [{yes[gpu['cupy']['devices'] > 0]}] cupy: {gpu['cupy']['devices']} "
                     f"device(s) {gpu['cupy']['name']}")
    if not gpu.get("found"):
        lines.append(f"  [--] not found ({gpu.get('reason')})")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_devices(list_devices()))
