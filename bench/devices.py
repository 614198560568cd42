"""Where a variant's image stages run, as the bench reports it: a thin view of the engine's
device contexts (`realtime.core.context`), whose failures become `UsageError`.

- ``check()``: the context can be opened here (cuda: a GPU, cupy), else UsageError;
- ``configure(options)``: `EngineOptions` with this device;
- ``label()`` / ``describe()`` / ``info()``: what the report shows (cuda: the context's
  ``describe()``, GPU name and compute capability; cpu: the CPU model and kernel threads).

CUDA stage times come from CUDA events on the engine's stream, read after each frame's
synchronisation (`realtime.core.context.EventTimer`), so they are device-synchronised.
"""
from __future__ import annotations

import dataclasses
import functools

import numba

from bench.machine import cpu_model
from bench.usage import UsageError
from kernels._dispatch import cuda_available
from realtime.core.context import INSTALL_HINT, DeviceUnavailable, open_device

__all__ = ["DEVICES", "CUDA_MISSING", "CpuDevice", "CudaDevice", "get_device"]

CUDA_MISSING = f"--device cuda {INSTALL_HINT}"


@functools.cache
def _context(name: str):
    """One context per device name for the whole bench (opening a CUDA context is slow)."""
    return open_device(name)


class _Device:
    name = ""

    def check(self) -> None:
        try:
            _context(self.name)
        except DeviceUnavailable as exc:
            raise UsageError(str(exc)) from None

    def configure(self, options):
        return dataclasses.replace(options, device=self.name)

    def context(self):
        return _context(self.name)


class CpuDevice(_Device):
    """The numba kernels on the CPU; stage times from perf_counter."""

    name = "cpu"

    def label(self) -> str:
        return self.name

    def info(self) -> dict:
        return {}

    def describe(self) -> str:
        return f"{cpu_model()}, {numba.get_num_threads()} kernel thread(s)"


class CudaDevice(_Device):
    """The engine's CUDA path (`EngineOptions.device = "cuda"`): render → generate → smooth →
    composite on the GPU, the frame downloaded once."""

    name = "cuda"

    def check(self) -> None:
        if not cuda_available():
            raise UsageError(CUDA_MISSING)
        super().check()

    def label(self) -> str:
        return f"cuda: {self.context().describe()}"

    def info(self) -> dict:
        ctx = self.context()
        return {"gpu": {"name": ctx.gpu_name, "compute_capability": ctx.capability}}

    def describe(self) -> str:
        return self.context().describe()


DEVICES: dict[str, type[_Device]] = {"cpu": CpuDevice, "cuda": CudaDevice}


def get_device(name: str) -> _Device:
    try:
        return DEVICES[name]()
    except KeyError:
        raise UsageError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}") from None
