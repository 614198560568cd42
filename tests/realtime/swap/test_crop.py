"""realtime.swap.crop: the rig without its head layer, the virtual coordinates, the crop that
follows the face, the soft outline and the triangle labels."""
from __future__ import annotations

import numpy as np

from kernels.swap_blend import OCCLUSION_DEFAULTS
from realtime.face import topology
from realtime.face.geometry import Similarity
from realtime.mesh import rig as rig_mod
from realtime.swap.crop import (
    CropFollower,
    OutsideOccluders,
    derived_attribute,
    eye_wings,
    face_rig,
    hair_band,
    hairline,
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



def test_no_occluder_beyond_the_outer_eye_corners(astronaut_profile):
    """Eyeliner and the outer lashes run past the eye's one ring of triangles along the eye line
    (d10's black wing ~0.35 interoculars out): kept as an occluder, a grey smudge beside the
    swapped eye on every astronaut ← d10 frame. No triangle on the eye-line points just beyond
    either outer corner (226, 35; 446, 265) allows one, wherever the face lies in the crop
    (`eye_wings` in interoculars along the eye line); the face's side beside the eye (the oval
    at the temple: hair, a hand) still does, the outline's triangles on the eye line too (the
    wing reached them, where d10's, d11's and d14's oval lies over their hair)."""
    rig = face_rig(rig_mod.build(astronaut_profile), nominal_affine(astronaut_profile, 256))
    flo, fhi = rig.ranges["face"]
    face, allow = rig.triangles[flo:fhi], triangle_labels(rig)["allow"][flo:fhi]
    for side in ([226, 35], [446, 265]):
        assert not allow[np.isin(face, side).any(1)].any()
    for temple in ([127, 234, 162], [356, 454, 389]):
        assert allow[np.isin(face, temple).any(1)].any()
    for outline in ([34, 127, 234], [264, 356, 454]):
        tri = (np.sort(face, 1) == outline).all(1)
        assert tri.sum() == 1 and allow[tri].all()
    pts = rig.attributes[:topology.N_LANDMARKS, :2].astype(np.float64)
    wings = eye_wings(pts, face)
    assert wings.any()
    turn = np.array([[np.cos(0.5), -np.sin(0.5)], [np.sin(0.5), np.cos(0.5)]])
    np.testing.assert_array_equal(eye_wings(3.0 * pts @ turn.T + 40.0, face), wings)

# --- OutsideOccluders: outside the driver's face, hair and odd objects are occluders, the wall is not

WALL, SKIN, HAIR, EARRING = (60, 68, 64), (200, 160, 140), (30, 20, 15), (220, 200, 40)


def _oval_face(centre=(64.0, 72.0), radii=(28.0, 38.0)):
    """(478, 2) landmarks with the face oval on an ellipse (FOREHEAD on top, CHIN at the bottom)
    and the rest at its centre: all that `hair_band` reads."""
    v = np.tile(np.asarray(centre), (topology.N_LANDMARKS, 1))
    ring = list(topology.FACE_OVAL)
    for k, i in enumerate(ring):
        a = 2.0 * np.pi * k / len(ring)
        v[i] = (centre[0] + radii[0] * np.sin(a), centre[1] - radii[1] * np.cos(a))
    return v


def _scene(hair=True, earring=True, strand=True):
    """A 128² frame: a dark wall, a skin ellipse (the face), hair over the head above it, a strand
    hanging beside the left cheek and a yellow earring beside the right jaw; the samples every 4 px
    and the face's triangle (0) or −1 at each."""
    img = np.zeros((128, 128, 3), np.uint8)
    img[:] = WALL
    yy, xx = np.mgrid[0:128, 0:128]
    face = ((xx - 64) / 28.0) ** 2 + ((yy - 72) / 38.0) ** 2 <= 1.0
    if hair:
        img[(yy >= 12) & (yy < 48) & (np.abs(xx - 64) < 36)] = HAIR
    if strand:
        img[(yy >= 48) & (yy < 112) & (xx >= 16) & (xx < 34)] = HAIR
    if earring:
        img[(yy >= 88) & (yy < 104) & (xx >= 96) & (xx < 112)] = EARRING
    img[face] = SKIN
    samples = img[1::4, 1::4].astype(np.float32)
    tri = np.where(face[1::4, 1::4], 0, -1).astype(np.int32)
    return img, samples, tri


def _allow(occ, hair=True, earring=True, strand=True, frames=1):
    img, samples, tri = _scene(hair, earring, strand)
    blocked = np.zeros(2, np.float32)
    crop_inv = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    for _ in range(frames):
        out = occ(img, crop_inv, _oval_face(), samples, tri, blocked)
    return out


def _cell(allow, x, y):
    """The allowed share of the low-grid cell (8 px) holding frame pixel (x, y)."""
    return float(allow[y // 8, x // 8])


def test_outside_the_face_the_wall_is_no_occluder_but_hair_and_an_earring_are():
    """s12 <- d14: beside the driver's jaw, where the identity's face is wider, the dark wall came
    through the swapped jaw as a dark wedge; hair hanging beside d10's cheeks (like her crown) and
    her earring (like nothing in the scene around her head) stay in front of the swapped face."""
    occ = OutsideOccluders(OCCLUSION_DEFAULTS)
    allow = _allow(occ)
    assert allow.shape == (16, 16)
    assert _cell(allow, 100, 76) == 0.0 and _cell(allow, 28, 120) == 0.0    # the wall beside the jaw
    assert _cell(allow, 20, 76) == 1.0                                        # the hanging strand
    assert _cell(allow, 100, 92) == 1.0                                       # the earring
    assert _cell(allow, 64, 72) == 1.0                                        # the face, as labelled
    np.testing.assert_allclose(np.exp(occ.model[0]) - 1.0, 0.299 * 30 + 0.587 * 20 + 0.114 * 15, rtol=0.05)


def test_the_face_keeps_its_labels_and_without_a_hair_model_the_scene_alone_decides():
    occ = OutsideOccluders(OCCLUSION_DEFAULTS)
    img, samples, tri = _scene(hair=False, strand=False)
    tri[tri == 0] = np.where(np.mgrid[0:32, 0:32][0] < 18, 1, 0)[tri == 0]   # the upper face: a feature
    blocked = np.array([0.0, 1.0, 0.0], np.float32)
    above = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -80.0]])   # the hair band out of the frame
    allow = occ(img, above, _oval_face(), samples, tri, blocked)
    assert occ.model is None
    assert _cell(allow, 64, 56) == 0.0 and _cell(allow, 64, 96) == 1.0       # the labels, as before
    assert _cell(allow, 100, 76) == 0.0 and _cell(allow, 100, 92) == 1.0     # wall no, earring yes


def test_before_any_scene_an_occluder_may_be_found_anywhere_outside_the_face():
    occ = OutsideOccluders(OCCLUSION_DEFAULTS)
    img, samples, tri = _scene(hair=False, strand=False, earring=False)
    img[:] = SKIN                                           # skin everywhere: no scene to learn
    samples = img[1::4, 1::4].astype(np.float32)
    allow = occ(img, np.eye(2, 3), _oval_face(), samples, tri, np.zeros(2, np.float32))
    assert occ.scene is None and occ.model is None
    np.testing.assert_array_equal(allow, 1.0)


def test_hairline_takes_the_first_rows_past_the_skin():
    w = np.array([[0.0, 0.0, 0.0],
                  [1.0, 0.0, 0.0],
                  [1.0, 1.0, 0.0],
                  [1.0, 1.0, 0.0],
                  [1.0, 0.5, 0.0],
                  [1.0, 1.0, 0.0]])
    want = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]], bool)
    np.testing.assert_array_equal(hairline(w, depth=3), want)


def test_hair_band_lies_above_the_forehead_along_the_faces_own_axis():
    v = _oval_face()
    p = hair_band(v, rows=4, cols=3)
    assert p.shape == (4, 3, 2)
    assert np.all(p[..., 1] < v[topology.FOREHEAD, 1]) and np.all(np.diff(p[:, 0, 1]) < 0)   # row 0 nearest
    # a face turned 90 degrees in the image plane: the band turns with it
    rot = np.column_stack([v[:, 1], -v[:, 0]])
    q = hair_band(rot, rows=4, cols=3)
    np.testing.assert_allclose(q, np.stack([p[..., 1], -p[..., 0]], -1), atol=1e-9)
