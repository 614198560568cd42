"""dlib's face descriptors (realtime/face/identity.py): the bench's identity distance and video
enrollment's one-person check share one encoder; a face another tracker found is described on
its box without the detector."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.face.identity import IdentityEncoder


def test_the_bench_imports_the_same_encoder():
    from bench import metrics

    assert metrics.IdentityEncoder is IdentityEncoder
    assert "IdentityEncoder" in metrics.__all__


def test_a_face_is_described_on_a_given_box_as_on_the_detectors(astronaut_rgb):
    if not IdentityEncoder.available():
        pytest.skip(IdentityEncoder.unavailable_reason())
    enc = IdentityEncoder(upsample=0)
    (face,) = enc.detector(astronaut_rgb, 0)
    box = (face.left(), face.top(), face.right(), face.bottom())
    assert np.allclose(enc.descriptor_in(astronaut_rgb, box), enc.descriptor(astronaut_rgb))
    moved = enc.descriptor_in(astronaut_rgb, (box[0] + 4, box[1] - 4, box[2] + 4, box[3]))
    assert 0 < np.linalg.norm(moved - enc.descriptor(astronaut_rgb)) < 0.1
    with pytest.raises(ValueError, match="RGB"):
        enc.descriptor_in(astronaut_rgb[..., 0], box)
