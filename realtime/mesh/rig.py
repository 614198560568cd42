"""The avatar rig: one profile turned into the vertex/triangle arrays the renderer draws.

Vertex order (V = 478 + 3 + K + B + 36):
    [0, 478)            face landmarks (posed by recombination)
    478                 mouth-cavity centre (mean of the inner lips)
    479, 480            eye-opening centres, right and left (mean of each eye's lid contour)
    [481, 481+K)        head-layer rings 2 and 3 (481 = HEAD_START)
    [481+K, 481+K+B)    head-layer border points (fixed)
    [481+K+B, V)        head-layer ring 1: where the face-oval landmarks are, drawn behind the
                        face, with the texture of the face's outer edge (`head_inner_uv`)
Triangle order, each a contiguous range (see `Rig.ranges`):
    face (854) | eyes (2 fans) | mouth (1 fan) | head layer

The eye and mouth openings are fans from a centre that is the mean of their own contour, so a
fan always stays inside its opening and collapses to nothing when the lids or lips meet (a fan
from the iris centre would sweep over the lid skin whenever the iris is not between the lids,
e.g. in a blink).
Per-vertex attributes (V, 4): texture coordinates u, v (target-image pixels at rest), and the
mouth-cavity coordinates m (+1 upper inner lip, −1 lower inner lip, 0 centre and corners) and
mx (−1 right corner … +1 left corner) used to shade the synthesised mouth interior.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.face import topology
from realtime.face.geometry import Similarity
from realtime.mesh import head_layer

MOUTH_CENTRE = topology.N_LANDMARKS
EYE_CENTRES = (MOUTH_CENTRE + 1, MOUTH_CENTRE + 2)   # right, left
HEAD_START = MOUTH_CENTRE + 3                        # the first head-layer vertex
FAR_Z = 1.0e4  # head layer depth: always behind the face surface
TEXTURE_OVERSAMPLE = 1.25  # texels per crop pixel the texture prefilter keeps at most
_INNER_LIPS = np.array(sorted(set(topology.INNER_LIP_UPPER) | set(topology.INNER_LIP_LOWER)))
_OVAL = np.array(topology.FACE_OVAL)
EYE_LOOPS = tuple(np.array(sorted(set(u) | set(lo))) for u, lo in (
    (topology.RIGHT_EYE_UPPER, topology.RIGHT_EYE_LOWER),
    (topology.LEFT_EYE_UPPER, topology.LEFT_EYE_LOWER)))


def head_inner_uv(face_uv: np.ndarray, face_tris: np.ndarray) -> np.ndarray:
    """(36, 2) texture coordinates of the head layer's ring 1: each face-oval point, pushed
    outward from the oval's centre to the far edge of the face mesh in texture space.

    Why: on a turned face the fitted mesh reaches past its own oval landmarks (on s18's far
    cheek some points lie ~7 crop px beyond it, up to the real edge of the skin). Were the
    head layer to start at the oval, that strip of texture would be drawn twice, by the face
    and again by the head layer beside it: a bright 1-px seam along the cheek. Moving the
    face's texture inside the oval instead misplaces the cheek (−0.35 dB on s18's face)."""
    uv = np.asarray(face_uv, np.float64)[:, :2]
    oval = uv[_OVAL]
    c = oval.mean(0)
    d = oval - c                                                     # rays c + t·d, oval at t = 1
    a = uv[face_tris].reshape(-1, 2)                                 # every triangle edge a → b
    b = uv[np.roll(face_tris, -1, axis=1)].reshape(-1, 2)
    e = b - a
    den = d[:, None, 0] * e[None, :, 1] - d[:, None, 1] * e[None, :, 0]
    ac = a[None] - c
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (ac[..., 0] * e[None, :, 1] - ac[..., 1] * e[None, :, 0]) / den
        s = (ac[..., 0] * d[:, None, 1] - ac[..., 1] * d[:, None, 0]) / den
    hit = (np.abs(den) > 1e-12) & (s >= 0.0) & (s <= 1.0)
    t_far = np.where(hit, t, 1.0).max(1)
    return c + np.maximum(t_far, 1.0)[:, None] * d


def texel_density(crop_from_image: np.ndarray, oversample: float = TEXTURE_OVERSAMPLE) -> float:
    """Texels per crop pixel of `Rig.texture_at_crop_density`'s texture (before rounding): the
    photo's own density, at most `oversample`."""
    a = np.asarray(crop_from_image, np.float64)
    return min(1.0 / float(np.hypot(a[0, 0], a[0, 1])), float(oversample))


def sharpen_texture(image: np.ndarray, amount: float) -> np.ndarray:
    """`image` filtered once with the separable 3-tap kernel [−a, 1 + 2a, −a] (a = `amount`),
    clipped to its value range, same dtype: a prefilter that compensates bilinear lookup.

    Why: every bilinear lookup at a fractional position averages neighbouring texels; at the
    random sub-pixel phases of a moving mesh its mean power response per axis is
    1 − (1 − cos ω)/3 (⅓ at the Nyquist frequency). The face goes through two such lookups on
    its way to the output (texture → crop, crop → output on paste-back), which is why a crop
    drawn at the output's own resolution still kept only ~0.4 of the photo's face-region
    Laplacian variance (d10 self-drive at 512²). a = 0.25 doubles the Nyquist amplitude and
    restores ~0.9 of it without visible halos (clipping bounds the overshoot at hard edges)."""
    a = float(amount)
    k = np.array([-a, 1.0 + 2.0 * a, -a], np.float32)
    out = cv2.sepFilter2D(image.astype(np.float32), -1, k, k, borderType=cv2.BORDER_REFLECT_101)
    if image.dtype == np.uint8:
        return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))
    return np.ascontiguousarray(out.astype(image.dtype))


def fan_edge_heights(vertices: np.ndarray, fans: np.ndarray) -> np.ndarray:
    """(T,) float32 each opening-fan triangle's height over its rim (crop px): the distance from
    its centre vertex to the edge it shares with the lids or lips. `fans` (T, 3): triangles
    (rim i, rim i + 1, centre), as `topology.eye_fans` / `mouth_fan` make them; `vertices`
    (V, ≥2) posed, crop px. A pixel of such a triangle lies (its centre's barycentric weight) ×
    this from the rim, which is what anti-aliases an opening's border (coverage = that + ½)."""
    v = np.asarray(vertices, np.float64)[:, :2]
    f = np.asarray(fans)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    edge, to_c = b - a, c - a
    area2 = np.abs(edge[:, 0] * to_c[:, 1] - edge[:, 1] * to_c[:, 0])
    return (area2 / np.maximum(np.linalg.norm(edge, axis=1), 1e-9)).astype(np.float32)


@dataclass
class Rig:
    triangles: np.ndarray        # (T, 3) int32
    attributes: np.ndarray       # (V, 4) float32 rest attributes
    ranges: dict[str, tuple[int, int]]
    layer: head_layer.HeadLayer
    neutral_frame: Similarity
    crop_from_image: np.ndarray  # (2, 3)
    crop_size: int
    texture_sharpen: float = 0.0  # interpolation compensation of the texture (see sharpen_texture)

    @property
    def vertex_count(self) -> int:
        return len(self.attributes)

    @property
    def inner_ring(self) -> slice:
        """The vertices of the head layer's ring 1 (one per face-oval landmark, same order)."""
        return slice(self.vertex_count - len(topology.FACE_OVAL), self.vertex_count)

    def texture_at_crop_density(self, image: np.ndarray, uv: np.ndarray,
                                oversample: float = TEXTURE_OVERSAMPLE) -> tuple[np.ndarray, np.ndarray]:
        """(image', uv') with `image` area-downscaled to `oversample` texels per crop pixel
        and the texture coordinates `uv` (.., 2) (image px) mapped onto it; unchanged when the
        image is not denser than that.

        Why: a portrait photo is often 3-4× denser than the crop it is drawn into, and bilinear
        lookup at that minification aliases: hair, jewellery and fabric shimmer whenever the
        head moves by a fraction of a pixel (most of the frame-to-frame warping error on
        s1 ← d10). A prefiltered texture (one mip level, chosen once: the head size is fixed
        by default) removes that at no per-frame cost.

        With `texture_sharpen` > 0 the texture is then sharpened once (`sharpen_texture`) to
        make up for the blur of the bilinear lookups it goes through on its way to the output."""
        a = self.crop_from_image
        f = float(oversample) * float(np.hypot(a[0, 0], a[0, 1]))
        if f < 1.0:
            h, w = image.shape[:2]
            size = (max(1, int(round(w * f))), max(1, int(round(h * f))))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            # pixel centres at integer coordinates: x ↦ (x + ½)·f' − ½ with the realised factor
            fx, fy = size[0] / w, size[1] / h
            uv2 = np.empty_like(uv)
            uv2[..., 0] = (uv[..., 0] + 0.5) * fx - 0.5
            uv2[..., 1] = (uv[..., 1] + 0.5) * fy - 0.5
            image, uv = np.ascontiguousarray(image), np.ascontiguousarray(uv2)
        if self.texture_sharpen > 0.0:
            image = sharpen_texture(image, self.texture_sharpen)
        return image, uv

    def pose(self, face_px: np.ndarray, posed_frame: Similarity,
             out: np.ndarray | None = None) -> np.ndarray:
        """(V, 3) float32 vertices in crop pixels for posed landmarks `face_px` (image px)."""
        a = self.crop_from_image
        n_head = len(self.layer.points)
        v = out if out is not None else np.empty((self.vertex_count, 3), np.float32)
        image_px = np.empty((self.vertex_count, 3), np.float64)
        image_px[:MOUTH_CENTRE] = face_px
        image_px[MOUTH_CENTRE] = face_px[_INNER_LIPS].mean(0)
        for centre, loop in zip(EYE_CENTRES, EYE_LOOPS):
            image_px[centre] = face_px[loop].mean(0)
        ring = head_layer.pose_points(self.layer, self.neutral_frame, posed_frame)
        image_px[HEAD_START:HEAD_START + n_head, :2] = ring[:, :2]
        image_px[HEAD_START + n_head:self.inner_ring.start, :2] = self.layer.border
        image_px[self.inner_ring, :2] = face_px[_OVAL, :2]
        image_px[HEAD_START:, 2] = FAR_Z
        v[:, 0] = a[0, 0] * image_px[:, 0] + a[0, 1] * image_px[:, 1] + a[0, 2]
        v[:, 1] = a[1, 0] * image_px[:, 0] + a[1, 1] * image_px[:, 1] + a[1, 2]
        v[:, 2] = image_px[:, 2] * float(np.hypot(a[0, 0], a[0, 1]))
        v[HEAD_START:, 2] = FAR_Z
        return v


def build(profile, texture_sharpen: float = 0.0) -> Rig:
    """Assemble the rig of a loaded profile (deterministic; nothing here is stored).
    `texture_sharpen`: see `sharpen_texture` (0: the texture as it is)."""
    lm = profile["landmarks"].astype(np.float64)
    frame = profile.frame()
    layer = head_layer.HeadLayer(points=profile["head_points"].astype(np.float64),
                                 gains=profile["head_gains"].astype(np.float64),
                                 border=profile["head_border"].astype(np.float64),
                                 triangles=profile["head_triangles"])
    n_head = len(layer.points)
    # Head-layer triangles index [oval (36), rings (K), border (B)]: map into the rig order,
    # the oval onto the layer's own ring-1 vertices at the end.
    n_rest = HEAD_START + n_head + len(layer.border)
    remap = np.concatenate([n_rest + np.arange(len(_OVAL)),
                            HEAD_START + np.arange(n_head + len(layer.border))]).astype(np.int32)
    parts = {
        "face": topology.face_triangles(),
        "eyes": topology.eye_fans(*EYE_CENTRES),
        "mouth": topology.mouth_fan(MOUTH_CENTRE),
        "head": remap[layer.triangles],
    }
    ranges, start = {}, 0
    for key, tris in parts.items():
        ranges[key] = (start, start + len(tris))
        start += len(tris)
    triangles = np.ascontiguousarray(np.concatenate(list(parts.values())), dtype=np.int32)

    attrs = np.zeros((n_rest + len(_OVAL), 4), np.float32)
    attrs[:MOUTH_CENTRE, :2] = lm[:, :2]
    attrs[MOUTH_CENTRE, :2] = lm[_INNER_LIPS, :2].mean(0)
    for centre, loop in zip(EYE_CENTRES, EYE_LOOPS):
        attrs[centre, :2] = lm[loop, :2].mean(0)
    attrs[HEAD_START:HEAD_START + n_head, :2] = frame.apply(layer.points)[:, :2]
    attrs[HEAD_START + n_head:n_rest, :2] = layer.border
    attrs[n_rest:, :2] = head_inner_uv(lm[:, :2], parts["face"])
    upper = np.array(topology.INNER_LIP_UPPER)
    lower = np.array(topology.INNER_LIP_LOWER)
    attrs[upper[1:-1], 2] = 1.0
    attrs[lower[1:-1], 2] = -1.0
    neutral = profile["neutral"].astype(np.float64)
    x = neutral[_INNER_LIPS, 0]
    lo, hi = neutral[topology.INNER_LIP_UPPER[0], 0], neutral[topology.INNER_LIP_UPPER[-1], 0]
    attrs[_INNER_LIPS, 3] = np.clip(2.0 * (x - lo) / max(hi - lo, 1e-6) - 1.0, -1, 1)
    return Rig(triangles=triangles, attributes=attrs, ranges=ranges, layer=layer,
               neutral_frame=frame, crop_from_image=profile["crop_from_image"].astype(np.float64),
               crop_size=int(profile.crop_size), texture_sharpen=float(texture_sharpen))
