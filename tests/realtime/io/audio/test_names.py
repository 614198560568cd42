"""`--audio IN:OUT` by the names users know; errors that say what exists and what to run."""
from __future__ import annotations

import os
import stat
import sys

import pytest

from realtime.io.audio.errors import AudioError
from realtime.io.audio.names import pulse_server, resolve, resolve_spec, split_spec


def dev(name, inputs=2, outputs=2):
    return {"name": name, "max_input_channels": inputs, "max_output_channels": outputs}


PA_LINUX = [dev("pulse", 32, 32), dev("default", 32, 32),
            dev("HDA Intel PCH: ALC3246 Analog (hw:0,0)", 2, 2), dev("USB Mic: Audio (hw:1,0)", 1, 0)]
PULSE = {"running": True, "server": "PulseAudio 16.1",
         "sources": ["mic_feed.monitor", "engine_out.monitor", "vmic"],
         "sinks": ["mic_feed", "engine_out"], "default_source": "vmic", "default_sink": "mic_feed"}
NO_PULSE = {"running": False, "reason": "no PulseAudio/PipeWire server answered (Connection refused)"}


def test_pulse_names_go_through_the_pulse_device_with_routing_variables():
    inp, out = resolve_spec("vmic:engine_out", PA_LINUX, (1, 1), PULSE)
    assert (inp.device, inp.env, inp.label) == (0, {"PULSE_SOURCE": "vmic"}, "vmic")
    assert (out.device, out.env, out.label) == (0, {"PULSE_SINK": "engine_out"}, "engine_out")
    inp, _ = resolve_spec("mic_feed.monitor:engine_out", PA_LINUX, (1, 1), PULSE)
    assert inp.env == {"PULSE_SOURCE": "mic_feed.monitor"}


def test_an_output_fed_its_own_sound_is_refused():
    """Before (stop 63's audit): `--audio vmic:engine_out`, vmic re-mapping engine_out.monitor,
    ran with only a 'silence' warning: the engine's output looped back in as its microphone."""
    pulse = {**PULSE, "remaps": {"vmic": "engine_out.monitor"}}
    for spec, via in (("engine_out.monitor:engine_out", ""), ("vmic:engine_out", ", which re-maps engine_out.monitor")):
        with pytest.raises(AudioError, match=r"feeds engine_out its own sound \(" + spec.split(":")[0] + via):
            resolve_spec(spec, PA_LINUX, (1, 1), pulse)
    inp, out = resolve_spec("vmic:mic_feed", PA_LINUX, (1, 1), pulse)        # another sink: fine
    assert (inp.label, out.label) == ("vmic", "mic_feed")
    # "default" is what the server's default is now (review: vmic as the default microphone passed)
    as_default = {**pulse, "default_source": "vmic", "default_sink": "engine_out"}
    for spec in ("default:engine_out", "vmic:default", "engine_out.monitor:default", "default:default"):
        with pytest.raises(AudioError, match="feeds engine_out its own sound"):
            resolve_spec(spec, PA_LINUX, (1, 1), as_default)
    assert resolve_spec("default:mic_feed", PA_LINUX, (1, 1), as_default)[1].label == "mic_feed"


def test_a_virtual_source_on_the_output_monitor_is_refused():
    """Before (audio audit, item 1a): only module-remap-source was traced to its master, so
    `--audio mic:micsink` with mic a module-virtual-source on micsink.monitor was accepted."""
    pulse = {**PULSE, "sources": [*PULSE["sources"], "mic"], "sinks": [*PULSE["sinks"], "micsink"],
             "remaps": {"mic": "micsink.monitor"}}
    with pytest.raises(AudioError, match=r"feeds micsink its own sound \(mic, which re-maps micsink.monitor\)"):
        resolve_spec("mic:micsink", PA_LINUX, (1, 1), pulse)
    assert resolve_spec("mic:engine_out", PA_LINUX, (1, 1), pulse)[0].label == "mic"
    # through other sinks: a loopback of engine_out.monitor into mic_feed, whose monitor is IN
    looped = {**PULSE, "routes": {"engine_out.monitor": ["mic_feed"]}}
    with pytest.raises(AudioError, match="feeds engine_out its own sound \\(mic_feed.monitor, which gets its "
                                         "sound through engine_out → engine_out.monitor → mic_feed → mic_feed.monitor"):
        resolve_spec("mic_feed.monitor:engine_out", PA_LINUX, (1, 1), looped)
    assert resolve_spec("mic_feed.monitor:engine_out", PA_LINUX, (1, 1), PULSE)[1].label == "engine_out"


def test_the_pulse_device_is_the_servers_default_for_the_loop_check(monkeypatch):
    """Before (audio audit, item 1b): with default source engine_out.monitor and default sink
    engine_out, `default:default` and `1:1` were refused but `pulse:pulse` and `0:engine_out`
    (PortAudio's `pulse` device, which opens the server's default) were accepted."""
    for var in ("PULSE_SOURCE", "PULSE_SINK"):
        monkeypatch.delenv(var, raising=False)
    pulse = {**PULSE, "default_source": "engine_out.monitor", "default_sink": "engine_out"}
    for spec in ("default:default", "1:1", "pulse:pulse", "0:0", "0:engine_out", "pulse:1",
                 "engine_out.monitor:pulse"):
        with pytest.raises(AudioError, match="feeds engine_out its own sound"):
            resolve_spec(spec, PA_LINUX, (1, 1), pulse)
    inp, out = resolve_spec("pulse:mic_feed", PA_LINUX, (1, 1), pulse)   # another sink: fine
    assert (inp.label, inp.device, out.label) == ("pulse", 0, "mic_feed")
    # the ALSA plugin follows PULSE_SINK where it is set (as the routing variables do)
    monkeypatch.setenv("PULSE_SINK", "mic_feed")
    assert resolve_spec("pulse:pulse", PA_LINUX, (1, 1), pulse)[1].label == "pulse"
    monkeypatch.setenv("PULSE_SOURCE", "mic_feed.monitor")
    with pytest.raises(AudioError, match=r"--audio pulse:pulse \(that is mic_feed.monitor:mic_feed\) feeds"):
        resolve_spec("pulse:pulse", PA_LINUX, (1, 1), pulse)


def test_portaudio_names_indices_and_defaults():
    inp, out = resolve_spec("USB Mic:2", PA_LINUX, (1, 1), NO_PULSE)
    assert (inp.device, inp.label, inp.env) == (3, "USB Mic: Audio (hw:1,0)", {})
    assert out.device == 2
    inp, out = resolve_spec("default:default", PA_LINUX, (1, 1), PULSE)
    assert inp.device is None and out.device is None and inp.label == "default"
    # a name with colons of its own: the split that resolves on both sides wins
    inp, out = resolve_spec("HDA Intel PCH: ALC3246 Analog (hw:0,0):engine_out", PA_LINUX,
                            (1, 1), PULSE)
    assert inp.device == 2 and out.env == {"PULSE_SINK": "engine_out"}


def test_unknown_name_lists_what_exists():
    with pytest.raises(AudioError) as err:
        resolve_spec("nosuch:engine_out", PA_LINUX, (1, 1), PULSE)
    msg = str(err.value)
    assert "no audio input named 'nosuch'" in msg and "vmic" in msg and "python run.py devices" in msg
    assert "\n" not in msg


def test_sink_given_as_input_points_at_its_monitor():
    with pytest.raises(AudioError, match=r"'engine_out' is a PulseAudio 16.1 sink, not a source "
                                         r".*its monitor engine_out.monitor is a source"):
        resolve("engine_out", "input", PA_LINUX, 1, PULSE)
    with pytest.raises(AudioError, match="'vmic' is a PulseAudio 16.1 source, not a sink"):
        resolve("vmic", "output", PA_LINUX, 1, PULSE)


def test_pulse_name_without_the_alsa_plugin_says_what_to_install():
    with pytest.raises(AudioError, match="sudo apt install libasound2-plugins"):
        resolve("vmic", "input", [dev("hw:0", 2, 2)], 0, PULSE)


def test_no_sound_server_and_no_device():
    with pytest.raises(AudioError) as err:
        resolve("default", "input", [], -1, NO_PULSE)
    msg = str(err.value)
    assert "no default audio input" in msg and "Connection refused" in msg
    with pytest.raises(AudioError, match="no audio output named 'engine_out'.*no PulseAudio"):
        resolve("engine_out", "output", [], None, NO_PULSE)
    with pytest.raises(AudioError, match="PortAudio device 3 is not an audio output"):
        resolve("3", "output", PA_LINUX, 1, NO_PULSE)


def test_ambiguous_and_malformed():
    with pytest.raises(AudioError, match="matches several devices"):
        resolve("hw", "input", PA_LINUX, 1, NO_PULSE)
    with pytest.raises(AudioError, match="--audio wants IN:OUT"):
        split_spec("vmic")
    assert split_spec("a:b:c") == [("a", "b:c"), ("a:b", "c")]
    assert split_spec("a::b") == [("a", ":b"), ("a:", "b")]
    for spec in (":", " : ", "a:", ":b"):      # before (stop 61's review): ':' played default:default
        with pytest.raises(AudioError, match="with both devices named"):
            split_spec(spec)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fake pactl is a sh script")
def test_pulse_server_reads_pactl(tmp_path, monkeypatch):
    pactl = tmp_path / "pactl"
    pactl.write_text("""#!/bin/sh
case "$*" in
  info) printf 'Server Name: PulseAudio (on PipeWire 1.0.5)\\nServer Version: 15.0.0\\n'
        printf 'Default Sink: engine_out\\nDefault Source: (null)\\n' ;;
  "list short sources") printf '0\\tvmic\\tmodule-remap-source.c\\ts16le 1ch 48000Hz\\tIDLE\\n' ;;
  "list short sinks") printf '1\\tengine_out\\tmodule-null-sink.c\\ts16le 1ch 48000Hz\\tIDLE\\n' ;;
  "list short modules") printf '7\\tmodule-remap-source\\tmaster=engine_out.monitor source_name=vmic\\t\\n'
        printf '8\\tmodule-virtual-source\\tsource_name=mic master=micsink.monitor\\t\\n'
        printf '9\\tmodule-loopback\\tsource=engine_out.monitor sink=micsink\\t\\n'
        printf '10\\tmodule-remap-sink\\tmaster=engine_out\\t\\n' ;;
  "list sources") printf 'Source #3\\n\\tName: vsource\\n\\tProperties:\\n'
        printf '\\t\\tdevice.master_device = "micsink.monitor"\\n' ;;
esac
""")
    pactl.chmod(pactl.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    p = pulse_server()
    assert p == {"running": True, "server": "PulseAudio (on PipeWire 1.0.5) 15.0.0",
                 "sources": ["vmic"], "sinks": ["engine_out"], "default_source": None,
                 "default_sink": "engine_out",
                 "remaps": {"vmic": "engine_out.monitor", "mic": "micsink.monitor",
                            "vsource": "micsink.monitor"},      # the last one: its property
                 "routes": {"engine_out.monitor": ["micsink"], "engine_out.remapped": ["engine_out"]}}
    pactl.write_text("#!/bin/sh\necho 'Connection failure: Connection refused' >&2\nexit 1\n")
    p = pulse_server()
    assert not p["running"] and "Connection refused" in p["reason"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert "pulseaudio-utils" in pulse_server()["reason"]
