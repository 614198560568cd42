"""Golden tests of `disclose`: the label blend and the saturating mark, against numpy."""
from __future__ import annotations

import numpy as np
import pytest

from kernels import disclose


def reference(image, mark, label, origin):
    out = image.astype(np.int32)
    if label is not None:
        y0, x0 = origin
        h, w = label.shape[:2]
        a = label[..., 3:4].astype(np.int32)
        box = out[y0:y0 + h, x0:x0 + w]
        out[y0:y0 + h, x0:x0 + w] = (label[..., :3].astype(np.int32) * a + box * (255 - a) + 127) // 255
    if mark is not None:
        out = out + mark.astype(np.int32)[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def inputs(seed=0, h=48, w=70):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(h, w, 3)).astype(np.uint8)
    image[:4] = 255
    image[4:8] = 0
    mark = rng.integers(-6, 7, size=(h, w)).astype(np.int8)
    label = rng.integers(0, 256, size=(9, 20, 4)).astype(np.uint8)
    label[0, :, 3] = 0      # transparent: the pixel stays
    label[1, :, 3] = 255    # opaque: the sprite's colour
    return image, mark, label


@pytest.mark.parametrize("use_mark", [True, False])
@pytest.mark.parametrize("use_label", [True, False])
def test_matches_reference(dev, use_mark, use_label):
    image, mark, label = inputs()
    mark = mark if use_mark else None
    label = label if use_label else None
    origin = (2, 45)
    out = disclose(dev.put(image), dev.put(mark), dev.put(label), origin)
    np.testing.assert_array_equal(dev.get(out), reference(image, mark, label, origin))


def test_saturates_and_is_exact_at_the_extremes(dev):
    image = np.array([[[0, 128, 255], [250, 3, 127]]], np.uint8)
    mark = np.array([[-5, 7]], np.int8)
    out = dev.get(disclose(dev.put(image), dev.put(mark)))
    np.testing.assert_array_equal(out, [[[0, 123, 250], [255, 10, 134]]])
    label = np.array([[[255, 0, 10, 255], [9, 9, 9, 0]]], np.uint8)  # opaque, transparent
    out = dev.get(disclose(dev.put(image), None, dev.put(label)))
    np.testing.assert_array_equal(out, [[[255, 0, 10], [250, 3, 127]]])


def test_in_place_equals_a_new_output(dev):
    image, mark, label = inputs(1)
    expect = reference(image, mark, label, (39, 0))
    buf = dev.put(image.copy())
    res = disclose(buf, dev.put(mark), dev.put(label), (39, 0), out=buf)
    assert res is buf
    np.testing.assert_array_equal(dev.get(buf), expect)


def test_strided_output_and_inputs():
    image, mark, label = inputs(2)
    big = np.zeros((48, 140, 3), np.uint8)
    out = big[:, ::2]
    res = disclose(image[:, ::-1], mark[:, ::-1], label[::-1], (0, 0), out=out)
    assert res is out
    np.testing.assert_array_equal(out, reference(image[:, ::-1], mark[:, ::-1], label[::-1], (0, 0)))
    assert not big[:, 1::2].any()


def test_bad_inputs_are_named():
    image, mark, label = inputs()
    with pytest.raises(TypeError, match="image must have dtype uint8"):
        disclose(image.astype(np.float32), mark)
    with pytest.raises(ValueError, match=r"mark must have shape \(48, 70\)"):
        disclose(image, mark[:10])
    with pytest.raises(TypeError, match="mark must have dtype int8"):
        disclose(image, mark.astype(np.int16))
    with pytest.raises(ValueError, match="does not fit"):
        disclose(image, None, label, (40, 0))
    with pytest.raises(ValueError, match="does not fit"):
        disclose(image, None, label, (0, -1))
    with pytest.raises(ValueError, match="label must have shape"):
        disclose(image, None, label[..., :3])
