"""bench.machine: what the numbers were measured on."""
import json

import numpy as np

from bench.machine import cpu_model, machine_info


def test_machine_info_fields():
    m = machine_info()
    for k in ("cpu", "cores", "ram_gb", "os", "python", "packages", "gpu", "git_commit"):
        assert k in m
    assert m["cores"] >= 1 and isinstance(m["cpu"], str)
    assert m["packages"]["numpy"] == np.__version__
    assert set(m["packages"]) >= {"numpy", "numba", "torch", "opencv", "mediapipe"}
    json.dumps(m)
    assert m["cpu"] == cpu_model()
