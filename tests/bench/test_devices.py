"""bench.devices: cpu / cuda as the report shows them, over realtime.core.context."""
from __future__ import annotations

import pytest

from bench import devices
from bench.usage import DEVICE_NAMES, UsageError
from realtime.core import context
from realtime.engine.loop import EngineOptions
from tests.bench.helpers import one_error_line


def test_device_names_are_the_contexts():
    assert DEVICE_NAMES == tuple(devices.DEVICES) == tuple(context.DEVICES)


def test_cpu_device():
    cpu = devices.get_device("cpu")
    cpu.check()
    assert cpu.label() == "cpu" and cpu.info() == {}
    assert cpu.describe().endswith(" kernel thread(s)")
    assert cpu.configure(EngineOptions(device="cuda")).device == "cpu"
    assert isinstance(cpu.context(), context.CpuContext)


def test_unknown_device():
    with pytest.raises(UsageError, match="unknown device 'tpu'; choose one of: cpu, cuda"):
        devices.get_device("tpu")


def test_cuda_without_gpu_says_what_to_install(monkeypatch):
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    with pytest.raises(UsageError) as e:
        devices.get_device("cuda").check()
    assert str(e.value) == devices.CUDA_MISSING


def test_cuda_context_failure_is_a_usage_error(monkeypatch):
    def unavailable(name):
        raise context.DeviceUnavailable("--device cuda: the CUDA runtime fails (test)")
    monkeypatch.setattr(devices, "cuda_available", lambda: True)
    monkeypatch.setattr(devices, "open_device", unavailable)
    devices._context.cache_clear()
    try:
        with pytest.raises(UsageError, match="the CUDA runtime fails"):
            devices.get_device("cuda").check()
    finally:
        devices._context.cache_clear()


def test_device_cuda_without_gpu(assets, run_bench, monkeypatch):
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    for extra in (("--device", "cuda"), ("--compare", "device=cpu,cuda")):
        rc, out, err = run_bench("--profile", assets["astro"], "--driver", assets["clip"], *extra)
        assert rc == 2
        assert one_error_line(err) == ("error: --device cuda needs an NVIDIA GPU and the gpu "
                                       "extra (pip install -e '.[gpu]')")


@pytest.mark.cuda
def test_cuda_device_reports_the_gpu():
    if not devices.cuda_available():
        pytest.skip("no CUDA device here")
    cuda = devices.get_device("cuda")
    cuda.check()
    info = cuda.info()["gpu"]
    assert info["name"] and info["compute_capability"]
    assert cuda.label() == f"cuda: {cuda.describe()}"
    assert info["name"] in cuda.describe()
