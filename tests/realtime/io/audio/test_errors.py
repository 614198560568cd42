"""What the user is told when PortAudio or sounddevice is missing."""
from __future__ import annotations

import sys

import pytest

from realtime.core.errors import PuppeteerError
from realtime.io.audio import AudioError, import_sounddevice, portaudio_install_hint


def test_without_portaudio_says_what_to_install(tmp_path, monkeypatch):
    # A stand-in sounddevice that fails like the real one does without libportaudio2.
    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    with pytest.raises(AudioError) as err:
        import_sounddevice()
    assert "PortAudio library not found" in str(err.value)
    assert portaudio_install_hint() in str(err.value)
    assert isinstance(err.value, PuppeteerError)


def test_without_sounddevice_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(AudioError, match="pip install sounddevice"):
        import_sounddevice()


def test_portaudio_hints_per_os():
    assert "install PortAudio: sudo apt install libportaudio2 (Linux" in \
        portaudio_install_hint("Linux")
    assert "brew install portaudio" in portaudio_install_hint("Darwin")
    assert "sounddevice" in portaudio_install_hint("Windows")
