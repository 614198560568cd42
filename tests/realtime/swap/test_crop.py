"""realtime.swap.crop: the rig without its head layer, the virtual coordinates, the crop that
follows the face, the soft outline and the triangle labels."""
from __future__ import annotations

import numpy as np

from realtime.face import topology
from realtime.face.geometry import Similarity
from realtime.mesh import rig as rig_mod
from realtime.swap.crop import (
    CropFollower,
    derived_attribute,
    face_rig,
    invert_affine,
    nominal_affine,
    to_virtual,
    triangle_labels,
    vertex_alpha,
)


def test_face_rig_drops_the_head_layer_and_keeps_the_rest(astronaut_profile):
    full = rig_mod.build(astronaut_profile)
    rig = face_rig(full, nominal_affine(astronaut_profile, 256))
    head_lo, head_hi = full.ranges["head"]
    assert len(rig.triangles) == len(full.triangles) - (head_hi - head_lo)
    assert rig.ranges["head"] == (len(rig.triangles), len(rig.triangles))
    for key in ("face", "eyes", "mouth"):
        lo, hi = rig.ranges[key]
        flo, fhi = full.ranges[key]
        np.testing.assert_array_equal(rig.triangles[lo:hi], full.triangles[flo:fhi])
    assert rig.vertex_count == full.vertex_count


def test_virtual_coordinates_land_where_the_crop_says(astronaut_profile, astronaut_landmarks):
    rig = face_rig(rig_mod.build(astronaut_profile), nominal_affine(astronaut_profile, 256))
    crop = np.array([[0.9, 0.0, -40.0], [0.0, 0.9, -25.0]])
    pts = np.asarray(astronaut_landmarks, np.float64) * 1.3 + np.array([12.0, -7.0, 0.0])
    v = rig.pose(to_virtual(pts, crop, invert_affine(rig.crop_from_image)), rig.neutral_frame)
    want = pts[:, :2] @ crop[:, :2].T + crop[:, 2]
    np.testing.assert_allclose(v[:topology.N_LANDMARKS, :2], want, atol=1e-3)
    np.testing.assert_allclose(v[:topology.N_LANDMARKS, 2], pts[:, 2] * 0.9, rtol=1e-4, atol=1e-3)


def test_crop_follower_smooths_and_snaps(astronaut_profile):
    f = CropFollower(astronaut_profile["neutral"], 256, keep=0.5, snap=0.08)
    pose = Similarity(np.eye(3), 100.0, np.array([200.0, 150.0, 0.0]))
    a0 = f(pose)
    np.testing.assert_allclose(f(pose), a0)                      # still: the same crop
    moved = Similarity(np.eye(3), 100.0, np.array([203.0, 150.0, 0.0]))
    a1 = f(moved)
    shift = (a0[0, 2] - a1[0, 2]) / a0[0, 0]
    assert 1.0 < shift < 2.0                                     # half-way (smoothed)
    far = Similarity(np.eye(3), 100.0, np.array([300.0, 150.0, 0.0]))
    a2 = f(far)
    c = invert_affine(a2) @ np.array([128.0, 128.0, 1.0])
    np.testing.assert_allclose(c[0], far.apply(f.centre[None])[0, 0], atol=1e-6)   # snapped


def test_vertex_alpha_is_zero_on_the_outline_and_one_inside(astronaut_profile):
    a = vertex_alpha(astronaut_profile["neutral"])
    assert np.all(a[list(topology.FACE_OVAL)] == 0.0)
    inner = list(topology.RIGHT_EYE_UPPER) + list(topology.INNER_LIP_UPPER) + [topology.NOSE_TIP]
    assert np.all(a[inner] == 1.0)
    assert ((a > 0) & (a < 1)).any()


def test_derived_attribute_follows_the_rigs_own_vertices(astronaut_profile):
    rig = face_rig(rig_mod.build(astronaut_profile), nominal_affine(astronaut_profile, 256))
    values = np.linspace(0.0, 1.0, topology.N_LANDMARKS)
    out = derived_attribute(rig, values)
    np.testing.assert_allclose(out[:topology.N_LANDMARKS], values, atol=1e-5)
    inner = sorted(set(topology.INNER_LIP_UPPER) | set(topology.INNER_LIP_LOWER))
    np.testing.assert_allclose(out[rig_mod.MOUTH_CENTRE], values[inner].mean(), atol=1e-5)


def test_triangle_labels(astronaut_profile):
    rig = face_rig(rig_mod.build(astronaut_profile), nominal_affine(astronaut_profile, 256))
    lab = triangle_labels(rig)
    n = len(rig.triangles)
    for key in ("skin", "allow", "fan"):
        assert lab[key].shape == (n + 1,) and lab[key][-1] == 0.0
    flo, fhi = rig.ranges["face"]
    assert 0.3 < lab["skin"][flo:fhi].mean() < 0.9
    assert lab["fan"][flo:fhi].sum() == 0 and lab["fan"][fhi:n].all()
    assert not lab["allow"][fhi:n].any()                          # never an occluder in an opening
    # no occluder within two rings of the lips (a wide-open mouth stretches the lower lip past
    # the first), while the eyes keep one (glasses rims run close to them)
    face = rig.triangles[flo:fhi]
    allow = lab["allow"][flo:fhi]

    def ring(points, k):
        mark = np.zeros(topology.N_LANDMARKS, bool)
        mark[list(points)] = True
        for _ in range(k):
            mark[np.unique(face[mark[face].any(1)])] = True
        return mark

    lips = ring(topology.OUTER_LIP, 2)
    assert not allow[lips[face].any(1)].any()
    eye_ring2 = ring(topology.RIGHT_EYE_UPPER + topology.RIGHT_EYE_LOWER, 2)
    assert allow[eye_ring2[face].any(1) & ~lips[face].any(1)].any()


def test_no_occluder_in_the_groove_beside_the_nose(astronaut_profile):
    """The groove where a nose wing meets the cheek is in shadow on a smiling or side-lit driver,
    and reads as an occluder against the skin low-pass; where the identity's nose is narrower it
    lies on the identity's cheek. Before: kept there, a dark scratch down the swapped cheek (s5 ←
    d13, frames 200-320). No triangle on the groove's points (the wings' outer points 129 and 358,
    and their neighbours up the nose's side and on the cheek) allows one."""
    rig = face_rig(rig_mod.build(astronaut_profile), nominal_affine(astronaut_profile, 256))
    flo, fhi = rig.ranges["face"]
    face, allow = rig.triangles[flo:fhi], triangle_labels(rig)["allow"][flo:fhi]
    groove = np.zeros(topology.N_LANDMARKS, bool)
    groove[[129, 358, 142, 371, 36, 266]] = True
    assert not allow[groove[face].any(1)].any()
