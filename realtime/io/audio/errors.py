"""AudioError and what to install when PortAudio or sounddevice is missing."""
from __future__ import annotations

import platform
from typing import Any

from realtime.core.errors import PuppeteerError


class AudioError(PuppeteerError, RuntimeError):
    """Audio cannot run (no PortAudio, no sounddevice, no such device); the message says why
    and what to do."""


def portaudio_install_hint(system: str | None = None) -> str:
    """How to get the PortAudio library sounddevice needs on `system` (default: this OS)."""
    system = system or platform.system()
    if system == "Linux":
        return ("install PortAudio: sudo apt install libportaudio2 (Linux; Fedora: "
                "sudo dnf install portaudio)")
    if system == "Darwin":
        return ("install PortAudio: brew install portaudio (macOS), or "
                "pip install --force-reinstall sounddevice, whose wheel bundles it")
    if system == "Windows":
        return ("install PortAudio: pip install --force-reinstall sounddevice (Windows; its "
                "wheel bundles PortAudio)")
    return f"install the PortAudio library for {system}"


def import_sounddevice() -> Any:
    """Import sounddevice, turning a missing PortAudio or package into AudioError."""
    try:
        import sounddevice  # noqa: PLC0415 - optional (the audio extra), needs PortAudio
    except OSError as exc:
        raise AudioError(f"audio needs the PortAudio library, which was not found ({exc}); "
                         f"{portaudio_install_hint()}") from exc
    except ImportError as exc:
        raise AudioError(f"audio needs the sounddevice package: pip install sounddevice "
                         f"({exc})") from exc
    return sounddevice
