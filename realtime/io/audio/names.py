"""Audio device names as users know them, and `--audio IN:OUT` resolved to PortAudio devices.

Where a PulseAudio server runs (PipeWire's pipewire-pulse included), the names users pick in
their desktop and in the README are the server's source and sink names (`vmic`,
`alsa_output.pci-0000_00_1f.3.analog-stereo`, `engine_out.monitor`). PortAudio on Linux sees
only ALSA devices, among them `pulse` (the ALSA PulseAudio plugin); a stream opened on `pulse`
goes to the source/sink that the PULSE_SOURCE/PULSE_SINK environment variables name (libpulse
reads them when the stream connects). So a server name resolves to (device "pulse", that
variable); elsewhere (Windows, macOS, bare ALSA) names are PortAudio's own device names.

The server is asked with `pactl` (pulseaudio-utils), bounded in time. Nothing here imports
sounddevice: the caller passes PortAudio's device list (plain dicts).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from realtime.io.audio.errors import AudioError

KINDS = {"input": ("source", "inputs", "PULSE_SOURCE"), "output": ("sink", "outputs", "PULSE_SINK")}


@dataclass
class Endpoint:
    """One side of `--audio`: the PortAudio device to open and the environment it needs."""

    kind: str                          # "input" or "output"
    label: str                         # the name as the user knows it
    device: int | str | None = None    # PortAudio index / name; None: PortAudio's default
    env: dict[str, str] = field(default_factory=dict)


def _pactl(args: list[str], timeout: float) -> str:
    # in the C locale: pactl translates its listings ("Sink Input #" is "Ziel-Eingabe #" in German)
    res = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "LC_ALL": "C"})
    if res.returncode != 0:
        lines = [ln.strip() for ln in (res.stderr or res.stdout).splitlines() if ln.strip()]
        raise OSError("; ".join(lines) or f"pactl {' '.join(args)} failed")
    return res.stdout


def pulse_server(timeout: float = 3.0) -> dict[str, Any]:
    """The PulseAudio (or PipeWire-pulse) server's sources and sinks, by name.

    {"running": True, "server": "PulseAudio 16.1", "sources": [...], "sinks": [...],
     "default_source": str | None, "default_sink": str | None}, or
    {"running": False, "reason": "..."} (no pactl, no server, no answer in time).
    """
    if shutil.which("pactl") is None:
        return {"running": False, "reason": "pactl not found (PulseAudio/PipeWire names need "
                                            "it: sudo apt install pulseaudio-utils)"}
    try:
        info = _pactl(["info"], timeout)
        names = {kind: [line.split("\t")[1] for line in _pactl(["list", "short", kind], timeout)
                        .splitlines() if line.count("\t") >= 1]
                 for kind in ("sources", "sinks")}
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"running": False, "reason": f"no PulseAudio/PipeWire server answered ({exc})"}
    fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line)
    name = fields.get("Server Name", "PulseAudio").replace("pulseaudio", "PulseAudio")
    server = f"{name} {fields.get('Server Version', '')}".strip()
    default = {k: (v if v and v != "(null)" else None) for k, v in
               (("source", fields.get("Default Source")), ("sink", fields.get("Default Sink")))}
    remaps, routes = _filters(timeout)
    return {"running": True, "server": server, **names, "remaps": remaps, "routes": routes,
            "default_source": default["source"], "default_sink": default["sink"]}


#: modules that make a source reading another source (a virtual microphone): (master's argument,
#: the new source's argument, its name when that argument is left out; "{m}": the master)
SOURCE_FILTERS = {"module-remap-source": ("master", "source_name", "{m}.remapped"),
                  "module-virtual-source": ("master", "source_name", "vsource"),
                  "module-echo-cancel": ("source_master", "source_name", "{m}.echo-cancel")}
#: modules that make a sink playing into other sinks: (the new sink's argument, its default name,
#: the arguments naming where it plays)
SINK_FILTERS = {"module-remap-sink": ("sink_name", "{m}.remapped", ("master",)),
                "module-virtual-sink": ("sink_name", "vsink", ("master",)),
                "module-echo-cancel": ("sink_name", "{m}.echo-cancel", ("sink_master",)),
                "module-combine-sink": ("sink_name", "combined", ("slaves",))}


def _filters(timeout: float) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Where sound flows between the server's sources and sinks, besides a sink into its monitor:
    ({source: the source it reads}, {sink or source: the sinks it plays into}), from the loaded
    modules' arguments and the sources' and sinks' `device.master_device` (which every filter
    module sets, whatever its arguments). A part pactl does not answer is left out."""
    remaps: dict[str, str] = {}
    routes: dict[str, list[str]] = {}

    def route(a: str, b: str) -> None:
        if a and b and b not in routes.setdefault(a, []):
            routes[a].append(b)

    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        for line in _pactl(["list", "short", "modules"], timeout).splitlines():
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            module, args = parts[1], dict(a.split("=", 1) for a in parts[2].split() if "=" in a)
            if module in SOURCE_FILTERS:
                master_arg, name_arg, default = SOURCE_FILTERS[module]
                if args.get(master_arg):
                    m = args[master_arg]
                    remaps[args.get(name_arg) or default.format(m=m)] = m
            if module in SINK_FILTERS:
                name_arg, default, targets = SINK_FILTERS[module]
                into = [t for arg in targets for t in args.get(arg, "").split(",") if t]
                name = args.get(name_arg) or default.format(m=into[0] if into else "")
                for target in into:
                    route(name, target)
            if module == "module-loopback" and args.get("source") and args.get("sink"):
                route(args["source"], args["sink"])       # the source's sound played into the sink
    for kind in ("sources", "sinks"):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            for name, props in _long_list(_pactl(["list", kind], timeout), kind[:-1].title()):
                master = props.get("device.master_device")
                if master and kind == "sources":
                    remaps[name] = master
                elif master:
                    route(name, master)
    return remaps, routes


def _long_list(text: str, kind: str) -> list[tuple[str, dict[str, str]]]:
    """`pactl list sources|sinks` as (name, {property: value}) per entry."""
    out: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        if line.startswith(f"{kind} #"):
            out.append(("", {}))
        elif out and line.strip().startswith("Name: ") and not out[-1][0]:
            out[-1] = (line.split(": ", 1)[1].strip(), out[-1][1])
        elif out and " = " in line:
            key, value = line.strip().split(" = ", 1)
            out[-1][1][key] = value.strip().strip('"')
    return [(n, p) for n, p in out if n]


def split_spec(spec: str) -> list[tuple[str, str]]:
    """Every way to read `spec` as IN:OUT (PortAudio names may contain colons themselves),
    the split at the first colon first."""
    if ":" not in spec:
        raise AudioError(f"--audio wants IN:OUT (an input and an output device), got {spec!r}; "
                         f"e.g. --audio default:default (python run.py devices lists the names)")
    cuts = [i for i, c in enumerate(spec) if c == ":"]
    ways = [(spec[:i].strip(), spec[i + 1:].strip()) for i in cuts]
    ways = [(a, b) for a, b in ways if a and b]
    if not ways:          # ':' was read as default:default
        raise AudioError(f"--audio wants IN:OUT with both devices named, got {spec!r}; e.g. --audio "
                         f"default:default (python run.py devices lists the names)")
    return ways


def _channels(dev: dict[str, Any], kind: str) -> int:
    return int(dev.get("max_input_channels" if kind == "input" else "max_output_channels", 0))


def resolve(name: str, kind: str, devices: list[dict[str, Any]], default_index: int | None,
            pulse: dict[str, Any]) -> Endpoint:
    """The endpoint for `name` (an input or output, per `kind`).

    `devices`: PortAudio's device list (sounddevice.query_devices() dicts, in index order);
    `default_index`: PortAudio's default device of this kind (None or < 0: none);
    `pulse`: `pulse_server()`. Raises AudioError saying what exists and what to run.
    """
    pulse_kind, plural, env_var = KINDS[kind]
    other = "sink" if pulse_kind == "source" else "source"
    usable = [(i, d) for i, d in enumerate(devices) if _channels(d, kind) > 0]
    known = pulse.get(f"{pulse_kind}s", []) if pulse.get("running") else []
    choices = ", ".join(known + [d["name"] for _, d in usable]) or "none"
    server = "" if pulse.get("running") else (
        f"; {pulse.get('reason') or 'no PulseAudio/PipeWire server'}: start one (pulseaudio "
        f"--start, or systemctl --user start pipewire-pulse) or plug in a sound card")
    if name in ("", "default"):
        if default_index is None or default_index < 0:
            raise AudioError(f"no default audio {kind}: PortAudio found none ({plural} here: "
                             f"{choices}; python run.py devices){server}")
        return Endpoint(kind, "default")
    if name.isdigit():
        index = int(name)
        if index >= len(devices) or _channels(devices[index], kind) == 0:
            raise AudioError(f"PortAudio device {index} is not an audio {kind} ({plural}: "
                             f"{choices}; python run.py devices)")
        return Endpoint(kind, devices[index]["name"], index)
    if name in known:
        pulse_dev = [i for i, d in usable if d["name"] == "pulse"]
        if not pulse_dev:
            raise AudioError(f"{name!r} is a {pulse['server']} {pulse_kind}, but PortAudio has no "
                             f"'pulse' device to reach it: install the ALSA PulseAudio plugin "
                             f"(sudo apt install libasound2-plugins)")
        return Endpoint(kind, name, pulse_dev[0], {env_var: name})
    if pulse.get("running") and name in pulse.get(f"{other}s", []):
        hint = f"; its monitor {name}.monitor is a source" if other == "sink" else ""
        raise AudioError(f"{name!r} is a {pulse['server']} {other}, not a {pulse_kind} ({kind} "
                         f"{pulse_kind}s: {', '.join(known) or 'none'}{hint})")
    exact = [i for i, d in usable if d["name"] == name]
    loose = [i for i, d in usable if name.lower() in d["name"].lower()]
    if exact or len(loose) == 1:
        index = (exact or loose)[0]
        return Endpoint(kind, devices[index]["name"], index)
    if len(loose) > 1:
        raise AudioError(f"audio {kind} {name!r} matches several devices: "
                         f"{', '.join(devices[i]['name'] for i in loose)}; give the full name")
    raise AudioError(f"no audio {kind} named {name!r} ({plural} here: {choices}; python run.py "
                     f"devices lists them){server}")


def resolve_spec(spec: str, devices: list[dict[str, Any]], defaults: tuple[int | None, int | None],
                 pulse: dict[str, Any]) -> tuple[Endpoint, Endpoint]:
    """`--audio IN:OUT` as two endpoints; with several colons, the first split whose both sides
    resolve (the error names the first split's problem)."""
    first_error: AudioError | None = None
    for inp, outp in split_spec(spec):
        try:
            pair = (resolve(inp, "input", devices, defaults[0], pulse),
                    resolve(outp, "output", devices, defaults[1], pulse))
        except AudioError as exc:
            first_error = first_error or exc
            continue
        _refuse_a_loop(*pair, pulse)
        return pair
    assert first_error is not None
    raise first_error


def pulse_origin(source: str, remaps: dict[str, str]) -> str:
    """The source a (chain of) re-mapped source(s) `source` reads in the end (`pulse_server`'s
    "remaps": module-remap-source, module-virtual-source, ...: a virtual microphone); `source`
    itself when it re-maps none."""
    seen = {source}
    while source in remaps and remaps[source] not in seen:
        source = remaps[source]
        seen.add(source)
    return source


#: PortAudio (ALSA) devices that open the server's default source/sink (or the one that
#: PULSE_SOURCE/PULSE_SINK names): `--audio default`, `pulse` or their indices
PULSE_DEFAULTS = ("default", "pulse")


def pulse_name(ep: Endpoint, pulse: dict[str, Any], env: Any = None) -> str | None:
    """The server's source/sink that endpoint `ep` reaches: the name it was given, or for
    PortAudio's default and the ALSA `pulse` device the one the routing variable names, else the
    server's default (`pulse` as `pulse_server()` gave it); None for another PortAudio device."""
    pulse_kind, _, var = KINDS[ep.kind]
    if var in ep.env:
        return ep.env[var]
    if ep.device is None or ep.label in PULSE_DEFAULTS:
        return (os.environ if env is None else env).get(var) or pulse.get(f"default_{pulse_kind}")
    return None


def loop_path(source: str, sink: str, pulse: dict[str, Any]) -> list[str] | None:
    """How the sound played into `sink` comes back in at `source`: [sink, ..., source] (through
    the sinks' monitors, re-mapped and virtual sources, sinks playing into others, loopbacks;
    `pulse_server()`'s "remaps" and "routes"), or None where it does not."""
    remaps, routes = pulse.get("remaps") or {}, pulse.get("routes") or {}
    readers: dict[str, list[str]] = {}
    for reader, master in remaps.items():
        readers.setdefault(master, []).append(reader)
    came: dict[str, str | None] = {sink: None}
    todo = [(sink, True)]                         # (node, is it a sink)
    while todo:
        node, is_sink = todo.pop(0)
        if node == source and not is_sink:
            path = [node]
            while came[path[-1]] is not None:
                path.append(came[path[-1]])       # type: ignore[arg-type]
            return path[::-1]
        nxt = [(f"{node}.monitor", False)] if is_sink else []
        nxt += [(n, True) for n in routes.get(node, [])] + [(n, False) for n in readers.get(node, [])]
        for n, n_sink in nxt:
            if n not in came:
                came[n] = node
                todo.append((n, n_sink))
    return None


def _refuse_a_loop(inp: Endpoint, out: Endpoint, pulse: dict[str, Any]) -> None:
    """AudioError where the output's sound comes back in at the input (the output sink's own
    monitor, directly, re-mapped or through other sinks): the engine's sound would come back in
    as its microphone and go round, louder each time."""
    problem = loop_problem(inp, out, pulse)
    if problem:
        raise AudioError(f"{problem}. IN is your microphone (python run.py devices lists the "
                         f"sources)")


def loop_problem(inp: Endpoint, out: Endpoint, pulse: dict[str, Any],
                 now: tuple[str | None, str | None] | None = None) -> str | None:
    """What is wrong where `--audio IN:OUT` feeds the output back into itself ("--audio a:b
    feeds b its own sound (...): the output would come back in as the microphone, a loop"), else
    None. `now`: the (source, sink) the streams are on, where known (else as named)."""
    if not pulse.get("running"):
        return None
    source, sink = now or (None, None)
    source = source or pulse_name(inp, pulse)
    sink = sink or pulse_name(out, pulse)
    if not source or not sink:
        return None
    path = loop_path(source, sink, pulse)
    if path is None:
        return None
    remaps = pulse.get("remaps") or {}
    via = ("" if len(path) == 2 else f", which re-maps {path[1]}" if all(p in remaps for p in path[2:])
           else f", which gets its sound through {' → '.join(path)}")
    named = "" if (source, sink) == (inp.label, out.label) else f" (that is {source}:{sink})"
    return (f"--audio {inp.label}:{out.label}{named} feeds {sink} its own sound ({source}{via}): "
            f"the output would come back in as the microphone, a loop")
