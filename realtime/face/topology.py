"""Fixed topology of MediaPipe Face Mesh (478 landmarks: 468 mesh + 10 iris).

Everything here is derived from MediaPipe's own connection lists or measured once and checked
by tests (tests/realtime/face/test_topology.py): the triangle list (kept as data in
`realtime.face.tessellation`, so that playing landmarks never needs mediapipe), the left/right mirror
permutation, the hole loops (mouth, eyes) and the landmark groups the estimator and the
retargeting use. Indices follow MediaPipe; "right" is the subject's right (image left).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from realtime.face.tessellation import FACE_TRIANGLES

N_LANDMARKS = 478
N_MESH = 468

# Subject's-left <-> subject's-right permutation (an involution). Found by matching a mean
# face to its reflection (Hungarian assignment on 3 clips) and checked against the
# tessellation: it maps 1316 of its 1322 edges onto edges (the other 6 are quads whose
# diagonal MediaPipe drew asymmetrically).
MIRROR = np.array([
    0, 1, 2, 248, 4, 5, 6, 249, 8, 9, 10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 250, 251, 252, 253, 254, 255, 256, 257, 258, 259, 260, 261,
    262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 272, 273, 274, 275, 276, 277,
    278, 279, 280, 281, 282, 283, 284, 285, 286, 287, 288, 289, 290, 291, 292, 293,
    294, 295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309,
    310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 322, 323, 94, 324,
    325, 326, 327, 328, 329, 330, 331, 332, 333, 334, 335, 336, 337, 338, 339, 340,
    341, 342, 343, 344, 345, 346, 347, 348, 349, 350, 351, 352, 353, 354, 355, 356,
    357, 358, 359, 360, 361, 362, 363, 364, 365, 366, 367, 368, 369, 370, 371, 372,
    373, 374, 375, 376, 377, 378, 379, 151, 152, 380, 381, 382, 383, 384, 385, 386,
    387, 388, 389, 390, 164, 391, 392, 393, 168, 394, 395, 396, 397, 398, 399, 175,
    400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
    416, 417, 418, 195, 419, 197, 420, 199, 200, 421, 422, 423, 424, 425, 426, 427,
    428, 429, 430, 431, 432, 433, 434, 435, 436, 437, 438, 439, 440, 441, 442, 443,
    444, 445, 446, 447, 448, 449, 450, 451, 452, 453, 454, 455, 456, 457, 458, 459,
    460, 461, 462, 463, 464, 465, 466, 467, 3, 7, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41,
    42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57,
    58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73,
    74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89,
    90, 91, 92, 93, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106,
    107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122,
    123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138,
    139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 153, 154, 155, 156,
    157, 158, 159, 160, 161, 162, 163, 165, 166, 167, 169, 170, 171, 172, 173, 174,
    176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 196, 198, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211,
    212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223, 224, 225, 226, 227,
    228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 242, 243,
    244, 245, 246, 247, 473, 476, 475, 474, 477, 468, 471, 470, 469, 472,
], dtype=np.int32)

# Inner lip contour, corner to corner (78 = right corner, 308 = left corner).
INNER_LIP_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LIP_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
OUTER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
MOUTH_CORNERS = (OUTER_LIP[0], OUTER_LIP[10])      # (61, 291): subject's right, left
# Eye contours, outer corner to inner corner, upper lid then lower lid.
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
RIGHT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)
# Lids and irises of both eyes.
EYE_POINTS = tuple(sorted(set(RIGHT_EYE_UPPER) | set(RIGHT_EYE_LOWER) | set(LEFT_EYE_UPPER)
                          | set(LEFT_EYE_LOWER) | set(RIGHT_IRIS) | set(LEFT_IRIS)))
# Face silhouette, clockwise from the top of the forehead (10).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
CHIN = 152
FOREHEAD = 10
NOSE_TIP = 1
# Points that move with the skull, not with expression: forehead, nose bridge, eye corners,
# temples (not the cheekbones: they rise with a smile). The pose fit uses only these.
RIGID = (10, 109, 338, 151, 9, 8, 168, 6, 197, 195, 5, 4, 33, 133, 263, 362,
         127, 356, 234, 454)
# Pairs used for the mouth-opening and eye-opening features (upper, lower).
MOUTH_GAP_PAIRS = ((13, 14), (82, 87), (312, 317))
RIGHT_EYE_GAP_PAIRS = ((159, 145), (158, 153), (160, 144))
LEFT_EYE_GAP_PAIRS = ((386, 374), (385, 380), (387, 373))
EYE_OUTER = (33, 263)
# Each eye's (outer, inner) corner, the subject's right eye first.
EYE_CORNERS = ((33, 133), (263, 362))


@lru_cache(maxsize=1)
def face_triangles() -> np.ndarray:
    """(854, 3) int32 triangles of the face surface: the 3-cliques of FACEMESH_TESSELATION.

    The mouth opening and the eye openings are holes (no triangle spans them), so the lips
    can part and the lids can close. Winding is arbitrary (the rasterizer draws both);
    rows are sorted for determinism. Read from the committed table
    (`realtime.face.tessellation`): no mediapipe at run time.
    """
    return np.asarray(FACE_TRIANGLES, dtype=np.int32)


def derive_triangles(tessellation) -> np.ndarray:
    """The 3-cliques of an edge list (MediaPipe's FACEMESH_TESSELATION), each row sorted, rows
    sorted: how the committed table was made (the topology test re-derives it)."""
    edges = {tuple(sorted(e)) for e in tessellation}
    adj: dict[int, set[int]] = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = sorted({tuple(sorted((a, b, c))) for a, b in edges for c in adj[a] & adj[b]})
    return np.asarray(tris, dtype=np.int32)


def opening_ring(upper, lower) -> list[int]:
    """The landmark indices around an opening (an eye's, the inner lips'): `upper` from corner to
    corner, then `lower` back without its corners, each once."""
    return list(upper) + list(reversed(lower[1:-1]))


def _fan(loop_upper, loop_lower, centre: int) -> np.ndarray:
    ring = opening_ring(loop_upper, loop_lower)
    return np.array([(ring[i], ring[(i + 1) % len(ring)], centre) for i in range(len(ring))],
                    dtype=np.int32)


def mouth_fan(centre_index: int) -> np.ndarray:
    """Triangles filling the mouth opening: a fan from an extra vertex `centre_index` to the
    inner lip contour. They collapse to nothing when the lips close."""
    return _fan(INNER_LIP_UPPER, INNER_LIP_LOWER, centre_index)


def eye_fans(right_centre: int, left_centre: int) -> np.ndarray:
    """Triangles filling both eye openings, fans from the iris centres (468 / 473) or any
    other vertex index given."""
    return np.concatenate([_fan(RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, right_centre),
                           _fan(LEFT_EYE_UPPER, LEFT_EYE_LOWER, left_centre)])


def region_labels() -> np.ndarray:
    """(478,) int8 region of each landmark for retargeting: 0 rest of face, 1 mouth,
    2 right eye, 3 left eye, 4 right brow, 5 left brow."""
    lab = np.zeros(N_LANDMARKS, np.int8)
    mouth = set(INNER_LIP_UPPER) | set(INNER_LIP_LOWER) | set(OUTER_LIP)
    lab[list(mouth)] = 1
    lab[list(set(RIGHT_EYE_UPPER) | set(RIGHT_EYE_LOWER) | set(RIGHT_IRIS))] = 2
    lab[list(set(LEFT_EYE_UPPER) | set(LEFT_EYE_LOWER) | set(LEFT_IRIS))] = 3
    lab[list(RIGHT_BROW)] = 4
    lab[list(LEFT_BROW)] = 5
    return lab


@lru_cache(maxsize=1)
def vertex_adjacency() -> list[np.ndarray]:
    """Neighbour lists of the 478 landmarks over the face triangles (iris points: their ring)."""
    nbrs: list[set[int]] = [set() for _ in range(N_LANDMARKS)]
    for a, b, c in face_triangles():
        nbrs[a] |= {b, c}
        nbrs[b] |= {a, c}
        nbrs[c] |= {a, b}
    for iris in (RIGHT_IRIS, LEFT_IRIS):
        for i in iris:
            nbrs[i] |= set(iris) - {i}
    return [np.fromiter(sorted(s), np.int32) for s in nbrs]


def ring_above(upper) -> np.ndarray:
    """The landmarks next to an upper lid's contour `upper` (corners first and last): the
    neighbours of its inner points that are not on it, sorted. (The rig has no triangle across
    an eye opening, so none of them is on the lower contour.)"""
    adj = vertex_adjacency()
    contour = {int(c) for c in upper}
    return np.array(sorted({int(j) for i in upper[1:-1] for j in adj[i]} - contour))
