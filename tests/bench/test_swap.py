"""bench.swap: the swap's quality pass on a few frames of the astronaut, and its helpers."""
from __future__ import annotations

import numpy as np

from bench import fidelity
from bench.benchmark import NO_DISCLOSURE
from bench.swap import PSNR_CAP, SwapExtremes, hull_mask, square_box, swap_quality_pass
from realtime.engine.loop import Engine, EngineOptions


class _Frames:
    fps, is_live = 30.0, False

    def __init__(self, images):
        self.images, self.i = images, 0
        self.size = (images[0].shape[1], images[0].shape[0])
        self.frame_count = len(images)

    def read(self):
        if self.i >= len(self.images):
            return None
        self.i += 1
        return {"image": self.images[self.i - 1]}

    def close(self):
        pass


def test_hull_and_box():
    lm = np.zeros((478, 3))
    lm[:, :2] = np.random.default_rng(0).uniform(40, 60, size=(478, 2))
    m = hull_mask(lm, (100, 100))
    g = hull_mask(lm, (100, 100), 1.25)
    assert m[50, 50] and not m[10, 10] and g.sum() > m.sum() * 1.4
    x0, y0, x1, y1 = square_box(lm, 2.0, (100, 100))
    assert x1 - x0 == y1 - y0 and x0 < 40 and x1 > 60


def test_swap_quality_pass(astronaut_profile, astronaut_rgb, monkeypatch):
    driver = np.ascontiguousarray(astronaut_rgb[:, ::-1])
    blank = np.full_like(driver, 100)
    images = [driver] * 4 + [blank] + [driver] * 2
    ex = SwapExtremes()
    meshes = []                                          # what the split's mesh column reads

    def spy(vertices, _real=fidelity.mesh_signals):
        meshes.append(None if vertices is None else np.shape(vertices))
        return _real(vertices)
    monkeypatch.setattr(fidelity, "mesh_signals", spy)
    options = EngineOptions(mode="swap", output_size=(512, 512), kernel_threads=1, disclosure=NO_DISCLOSURE)
    res = swap_quality_pass(lambda: Engine(astronaut_profile, options),
                            astronaut_profile, _Frames(images), fps=30.0, total=len(images), id_stride=3,
                            extremes=ex, floor=True)
    q, info = res.metrics, res.info
    assert info["frames_in"] == info["frames_out"] == 7 and info["driver_tracked"] == 6
    assert q["psnr_scene"] == PSNR_CAP                   # the scene is left exactly as it is
    assert q["fwe_face"] >= 0 and q["fwe_face_driver"] >= 0 and info["fwe_pairs"] >= 3
    assert "mouth_open" in res.follow
    split = info["follow_split"]                        # the identity's mesh: one per tracked frame
    assert split["mesh"]["mouth_open"]["n"] == split["picture"]["mouth_open"]["n"] == 6
    # the engine's posed mesh (the rig's vertices, more than the 478 landmarks), not a tracked face;
    # none where the driver's face is missing
    assert len(meshes) == 7 and meshes[4] is None
    assert all(m[0] > 478 and m[1] == 3 for k, m in enumerate(meshes) if k != 4)
    assert set(info["floor"]) == set(res.follow) and info["floor"]["mouth_open"]["n"] == 6
    if "id_photo" not in q:                             # dlib not installed: said so
        assert any("id_photo" in n or "id_dist" in n for n in res.notes)
    assert ex.sheet("t").shape[0] > 256 and "first face" in ex.best
