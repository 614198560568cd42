"""realtime.swap.fuse: the swap's fuse settings (the face follows the driver's head fully)."""
from __future__ import annotations

import numpy as np

from realtime.face import geometry as G
from realtime.face.state import FaceState
from realtime.mesh.fuse import MAX_HEAD_ANGLE, FuseConfig, Recombiner
from realtime.swap.fuse import swap_fuse_config


def test_the_swapped_face_turns_as_far_as_the_driver(astronaut_profile):
    """The reenactment stops the head at MAX_HEAD_ANGLE (its head layer would tear); the swap has
    no head layer and its face must stay on the driver's head, however far it turns."""
    rot = G.rotation_from_euler(0, 55, 0)
    assert np.degrees(np.linalg.norm(G.rotvec_from_matrix(rot))) > MAX_HEAD_ANGLE
    frame = astronaut_profile.frame()
    swap = Recombiner(astronaut_profile["neutral"], frame, swap_fuse_config(FuseConfig()))
    np.testing.assert_allclose(swap.pose(FaceState(rotation=rot)).rotation, rot @ frame.rotation, atol=1e-12)
    reenact = Recombiner(astronaut_profile["neutral"], frame, FuseConfig())
    rel = reenact.pose(FaceState(rotation=rot)).rotation @ frame.rotation.T
    assert np.degrees(np.linalg.norm(G.rotvec_from_matrix(rel))) < MAX_HEAD_ANGLE + 1e-6
