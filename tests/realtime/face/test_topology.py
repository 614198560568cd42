"""realtime.face.topology: the fixed Face Mesh topology (triangles, mirror, holes, groups)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from realtime.face import geometry
from realtime.face import topology as T


@pytest.fixture(scope="module")
def tessellation_edges() -> set[tuple[int, int]]:
    mp = pytest.importorskip("mediapipe")

    return {tuple(sorted(e)) for e in mp.solutions.face_mesh.FACEMESH_TESSELATION}


def _loop_edges(seq, closed: bool) -> set[tuple[int, int]]:
    s = list(seq)
    n = len(s) if closed else len(s) - 1
    return {tuple(sorted((s[i], s[(i + 1) % len(s)]))) for i in range(n)}


def _edge_counts(tris: np.ndarray) -> Counter:
    c: Counter = Counter()
    for t in tris:
        for i in range(3):
            c[tuple(sorted((int(t[i]), int(t[(i + 1) % 3]))))] += 1
    return c


# ------------------------------------------------------------------------------------ mirror
def test_mirror_is_an_involution_over_all_landmarks():
    m = T.MIRROR
    assert m.shape == (T.N_LANDMARKS,)
    assert sorted(m.tolist()) == list(range(T.N_LANDMARKS))  # a permutation
    np.testing.assert_array_equal(m[m], np.arange(T.N_LANDMARKS))


@pytest.mark.parametrize("a, b", [(33, 263), (133, 362), (61, 291), (78, 308), (234, 454),
                                  (127, 356), (468, 473), (159, 386), (145, 374)])
def test_mirror_known_pairs(a, b):
    assert T.MIRROR[a] == b and T.MIRROR[b] == a


@pytest.mark.parametrize("i", [1, 0, 4, 6, 10, 13, 14, 17, 151, 152, 168])
def test_mirror_fixes_the_midline(i):
    assert T.MIRROR[i] == i


@pytest.mark.tracking
def test_mirror_maps_tessellation_edges_onto_edges(tessellation_edges):
    m = T.MIRROR
    mapped = sum(tuple(sorted((int(m[a]), int(m[b])))) in tessellation_edges
                 for a, b in tessellation_edges)
    assert mapped >= 0.99 * len(tessellation_edges)


def test_mirror_swaps_the_named_contours():
    m = T.MIRROR
    assert [m[i] for i in T.RIGHT_EYE_UPPER] == list(T.LEFT_EYE_UPPER)
    assert [m[i] for i in T.RIGHT_EYE_LOWER] == list(T.LEFT_EYE_LOWER)
    assert [m[i] for i in T.RIGHT_BROW] == list(T.LEFT_BROW)
    assert m[T.RIGHT_IRIS[0]] == T.LEFT_IRIS[0]  # centres; the ring's sides swap
    assert {int(m[i]) for i in T.RIGHT_IRIS} == set(T.LEFT_IRIS)
    assert [m[i] for i in T.INNER_LIP_UPPER] == list(reversed(T.INNER_LIP_UPPER))
    assert [m[i] for i in T.INNER_LIP_LOWER] == list(reversed(T.INNER_LIP_LOWER))
    assert {int(m[i]) for i in T.OUTER_LIP} == set(T.OUTER_LIP)
    assert {int(m[i]) for i in T.FACE_OVAL} == set(T.FACE_OVAL)
    assert {int(m[i]) for i in T.RIGID} == set(T.RIGID)


def test_mirror_matches_the_geometry_of_a_real_face(astronaut_landmarks):
    """Reflecting the (nearly frontal) astronaut in its canonical frame and relabelling with
    MIRROR gives back the face: every landmark lands next to its own position. A wrong pair
    lands a whole face half away."""
    lm = astronaut_landmarks
    canon = geometry.face_frame(lm).invert_points(lm)[: T.N_MESH]
    reflected = canon[T.MIRROR[: T.N_MESH]] * np.array([-1.0, 1.0, 1.0])
    err = np.linalg.norm(reflected - canon, axis=1)
    assert err.max() < 0.1   # canonical units: the face is about 2.6 wide
    assert err.mean() < 0.04


# --------------------------------------------------------------------------------- triangles
@pytest.mark.tracking
def test_committed_triangles_are_the_ones_mediapipe_gives():
    """The table in realtime/face/tessellation.py is exactly what mediapipe's tessellation
    derives (the run-time path reads the table, never mediapipe)."""
    mp = pytest.importorskip("mediapipe")
    derived = T.derive_triangles(mp.solutions.face_mesh.FACEMESH_TESSELATION)
    np.testing.assert_array_equal(T.face_triangles(), derived)
    assert derived.dtype == T.face_triangles().dtype == np.int32


def test_face_triangles_come_from_the_table_without_mediapipe():
    """The table as an array: sorted rows of sorted indices (that it is read without mediapipe
    is checked end to end in tests/realtime/io/test_tracked.py)."""
    from realtime.face.tessellation import FACE_TRIANGLES

    tris = T.face_triangles()
    assert tris.shape == (len(FACE_TRIANGLES), 3) == (854, 3)
    assert [tuple(t) for t in tris.tolist()] == sorted(FACE_TRIANGLES)
    assert all(list(t) == sorted(t) for t in FACE_TRIANGLES)


@pytest.mark.tracking
def test_face_triangles_are_the_tessellation_cliques(tessellation_edges):
    tris = T.face_triangles()
    assert tris.dtype == np.int32 and tris.ndim == 2 and tris.shape[1] == 3
    assert 800 <= len(tris) <= 900
    assert tris.min() >= 0 and tris.max() < T.N_MESH  # no iris vertex in the surface
    assert len({tuple(sorted(t)) for t in tris.tolist()}) == len(tris)  # no duplicates
    assert all(len(set(t)) == 3 for t in tris.tolist())
    for a, b, c in tris.tolist():  # every side is a tessellation edge
        for e in ((a, b), (b, c), (a, c)):
            assert tuple(sorted(e)) in tessellation_edges
    assert T.face_triangles() is T.face_triangles()  # cached


def _spans(tris, upper, lower) -> list:
    up = set(upper[1:-1])
    lo = set(lower[1:-1])
    return [t for t in tris.tolist() if set(t) & up and set(t) & lo]


def test_no_triangle_spans_the_mouth_opening():
    assert _spans(T.face_triangles(), T.INNER_LIP_UPPER, T.INNER_LIP_LOWER) == []


@pytest.mark.parametrize("upper, lower", [(T.RIGHT_EYE_UPPER, T.RIGHT_EYE_LOWER),
                                          (T.LEFT_EYE_UPPER, T.LEFT_EYE_LOWER)])
def test_no_triangle_spans_an_eye_opening(upper, lower):
    assert _spans(T.face_triangles(), upper, lower) == []


def test_the_holes_are_exactly_the_mouth_and_eyes():
    """The open boundary of the surface is the face oval plus the inner-lip and eye loops."""
    counts = _edge_counts(T.face_triangles())
    boundary = {e for e, c in counts.items() if c == 1}
    oval = _loop_edges(T.FACE_OVAL, closed=True)
    lips = _loop_edges(T.INNER_LIP_UPPER, False) | _loop_edges(T.INNER_LIP_LOWER, False)
    eyes = (_loop_edges(T.RIGHT_EYE_UPPER, False) | _loop_edges(T.RIGHT_EYE_LOWER, False)
            | _loop_edges(T.LEFT_EYE_UPPER, False) | _loop_edges(T.LEFT_EYE_LOWER, False))
    assert boundary == oval | lips | eyes


def test_mouth_fan_fills_the_inner_lip_loop():
    centre = T.N_LANDMARKS
    fan = T.mouth_fan(centre)
    ring = len(T.INNER_LIP_UPPER) + len(T.INNER_LIP_LOWER) - 2
    assert fan.shape == (ring, 3) and fan.dtype == np.int32
    assert (fan[:, 2] == centre).all()
    # the fan's outer edges are the inner-lip loop, each once
    outer = Counter(tuple(sorted(e)) for e in fan[:, :2].tolist())
    assert set(outer) == (_loop_edges(T.INNER_LIP_UPPER, False)
                          | _loop_edges(T.INNER_LIP_LOWER, False))
    assert set(outer.values()) == {1}


def test_eye_fans_fill_both_eye_loops():
    fans = T.eye_fans(468, 473)
    n = len(T.RIGHT_EYE_UPPER) + len(T.RIGHT_EYE_LOWER) - 2
    assert fans.shape == (2 * n, 3)
    assert (fans[:n, 2] == 468).all() and (fans[n:, 2] == 473).all()
    right = {tuple(sorted(e)) for e in fans[:n, :2].tolist()}
    assert right == _loop_edges(T.RIGHT_EYE_UPPER, False) | _loop_edges(T.RIGHT_EYE_LOWER, False)
    left = {tuple(sorted(e)) for e in fans[n:, :2].tolist()}
    assert left == _loop_edges(T.LEFT_EYE_UPPER, False) | _loop_edges(T.LEFT_EYE_LOWER, False)


# ----------------------------------------------------------------------------------- groups
def test_region_labels():
    lab = T.region_labels()
    assert lab.shape == (T.N_LANDMARKS,)
    assert set(lab[list(T.INNER_LIP_UPPER + T.INNER_LIP_LOWER + T.OUTER_LIP)]) == {1}
    assert set(lab[list(T.RIGHT_EYE_UPPER + T.RIGHT_EYE_LOWER + T.RIGHT_IRIS)]) == {2}
    assert set(lab[list(T.LEFT_EYE_UPPER + T.LEFT_EYE_LOWER + T.LEFT_IRIS)]) == {3}
    assert set(lab[list(T.RIGHT_BROW)]) == {4}
    assert set(lab[list(T.LEFT_BROW)]) == {5}
    assert set(lab[[10, 151, 9, 168, 6, 4, 127, 356]]) == {0}
    # mirror-symmetric: right regions map to left ones
    swap = np.array([0, 1, 3, 2, 5, 4])
    np.testing.assert_array_equal(lab[T.MIRROR], swap[lab])


def test_named_groups_are_valid_indices():
    for group in (T.INNER_LIP_UPPER, T.INNER_LIP_LOWER, T.OUTER_LIP, T.RIGHT_EYE_UPPER,
                  T.LEFT_EYE_LOWER, T.RIGHT_BROW, T.FACE_OVAL, T.RIGID):
        assert all(0 <= i < T.N_MESH for i in group)
        assert len(set(group)) == len(group)
    assert T.INNER_LIP_UPPER[0] == T.INNER_LIP_LOWER[0] == 78
    assert T.INNER_LIP_UPPER[-1] == T.INNER_LIP_LOWER[-1] == 308
    assert len(T.FACE_OVAL) == 36


def test_vertex_adjacency_is_symmetric_and_follows_the_triangles():
    nbrs = T.vertex_adjacency()
    assert len(nbrs) == T.N_LANDMARKS
    for i, nb in enumerate(nbrs):
        assert i not in nb
        for j in nb:
            assert i in nbrs[j]
    a, b, c = T.face_triangles()[0]
    assert b in nbrs[a] and c in nbrs[a]
    assert set(nbrs[468].tolist()) == {469, 470, 471, 472}  # iris: its own ring
