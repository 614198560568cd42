"""The swap's last two stages: `AttributesStage` (the masks and the colour/shading gain field of the
frame) and `SwapCompositeStage` (the paste-back into the driver's own frame, `kernels.swap_blend`).

Masks, all in the swap crop:
- alpha: the identity's soft outline — a per-vertex weight, 0 on the face oval and 1 a fifth of
  an interocular inside it (`vertex_alpha`), interpolated over the rendered face: the mask
  follows the identity's outline and jaw as they move, with no seam;
- the openings: inside the identity's eye and mouth fans the driver's own pixels are shown,
  mapped from the driver's openings through the same fans (each fan vertex carries the frame
  position of its driver counterpart): the driver's teeth, tongue and eye whites, fitted into the
  identity's lids and lips, their border anti-aliased (`_coverage`); the eyes not squashed or
  stretched into the identity's lids but cut by them (`eye_sources`). Only when the expression is
  the driver's own (`AttributesStage`'s `driver_openings`): with another source's expression
  (`--expression-from`) the fan field stays zero and the identity's render (the tier's mouth
  interior and eyeballs) covers the openings, blended like the rest of the face;
- occluders: a driver pixel far from the driver's skin low-pass (much darker, or another colour)
  is kept (hair over the forehead, glasses frames, a microphone), except near the driver's own
  features, which are dark or coloured by nature (`triangle_labels` "allow"), and, outside the
  driver's face, where it is the scene around the head rather than hair or an object
  (`realtime.swap.crop.OutsideOccluders`).

Blend across bands: the low band (lighting and colour, up to the gain field's σ of a few crop
cells) is the driver's everywhere under the face (the gain field), the identity's detail comes in
through the soft outline; no seam in either band.
"""
from __future__ import annotations

import cv2
import numpy as np

from kernels import GBuffer, interpolate, rasterize, swap_blend, texture
from kernels.swap_blend import OCCLUSION_DEFAULTS
from realtime.core.context import CpuContext
from realtime.core.frame import Frame
from realtime.core.letterbox import letterbox, letterbox_points
from realtime.face import topology
from realtime.face.topology import N_LANDMARKS
from realtime.mesh.rig import EYE_CENTRES, EYE_LOOPS, Rig, fan_edge_heights
from realtime.swap.colour import ColourTransfer
from realtime.swap.crop import OutsideOccluders, triangle_labels
from realtime.swap.fuse import SwapLink
from realtime.swap.outline import OutlineWeights
from realtime.swap.skin import forehead_triangles, skin_map

__all__ = ["AttributesStage", "SwapCompositeStage", "SwapFields", "eye_sources", "hidden", "HIDE_CELLS"]

#: `hidden`: the frame is averaged down to this many cells across its short side (a face
#: filling the frame keeps about 2 × 3 cells of it: no one is recognised in that)
HIDE_CELLS = 6
CELL = 8      # crop pixels per gain-field cell
SAMPLE = 4    # crop pixels between two colour samples (2×2 per cell)


class SwapFields:
    """The per-frame inputs of `kernels.swap_blend` built by `AttributesStage`."""

    def __init__(self):
        self.alpha = None
        self.fan = None
        self.low = None
        self.colour = None
        self.box = None


class AttributesStage:
    """Frame.gbuf + Frame.render + the driver's frame → the masks (alpha, fan) and the low field (gain,
    the driver's skin low-pass, occlusion allowed) of `kernels.swap_blend`, on the device context.
    strands: `realtime.swap.skin.skin_map`'s (0: the photo's fringe judged by its colour, not closed).
    driver_openings: True: the driver's own pixels are mapped into the identity's eye and mouth
    openings (the fan field); False (the expression comes from another source, whose openings
    the driver's do not match): the fan field is zero on every frame and the render shows there."""

    name = "attributes"
    device_ready = True

    def __init__(self, rig: Rig, profile, link: SwapLink, fields: SwapFields, ctx=None,
                 colour: ColourTransfer | None = None, strands: float = 0.0, outline: OutlineWeights | None = None,
                 driver_openings: bool = True):
        self.ctx = ctx = ctx if ctx is not None else CpuContext()
        xp = ctx.xp
        self.rig, self.link, self.fields = rig, link, fields
        self.driver_openings = bool(driver_openings)
        s = rig.crop_size
        if s % CELL:
            raise ValueError(f"the swap needs a crop size divisible by {CELL}, got {s}")
        self.cells = s // CELL
        # the colour transfer runs on the host (compiled) on any context: on a GPU its ~100
        # operations on arrays of a few thousand values cost 14 ms a frame in launches alone
        self.colour = colour if colour is not None else ColourTransfer(self.cells)
        labels = triangle_labels(rig)
        # the colour samples of both faces: their skin and their foreheads (`forehead_triangles`:
        # without them the gain field's forehead was the cheeks' gain carried up)
        self.skin = ctx.upload(np.maximum(labels["skin"], forehead_triangles(rig)))
        feature = 1.0 - labels["allow"]
        feature[-1] = 0.0            # no face here (tri_id −1): an occluder may be found
        self.feature = ctx.upload(feature)
        self.occluders = OutsideOccluders(OCCLUSION_DEFAULTS, xp=xp)
        self.triangles = ctx.upload(rig.triangles)
        # the outline's weight, the texture's folded outline left out (realtime.swap.outline)
        self.outline = outline if outline is not None else OutlineWeights(rig, profile)
        # the identity's skin over its photo, sampled through the same texture coordinates as
        # the warp tier's (the photo prefiltered to the crop's density)
        photo, uv = rig.texture_at_crop_density(np.ascontiguousarray(profile["image"]),
                                                np.ascontiguousarray(rig.attributes[:, :2]))
        info: dict = {}
        skin = skin_map(photo, uv, rig, strands=strands, info=info)
        self.skin_map = ctx.upload(np.ascontiguousarray(skin[..., None]))
        #: how much of the photo's forehead is hair (`skin_map`'s fringe test; None: too small a face)
        self.forehead_hair: float | None = info["forehead_hair"]
        fans = [rig.ranges[k] for k in ("eyes", "mouth") if k in rig.ranges]
        self.fan_range = (min(r[0] for r in fans), max(r[1] for r in fans))
        if sum(r[1] - r[0] for r in fans) != self.fan_range[1] - self.fan_range[0]:
            raise ValueError(f"the swap needs the eye and mouth triangles in one range, got {fans}")
        # The openings' attributes [1, x_src, y_src] through triangles whose non-opening rows all
        # point at one extra vertex of zeros: interpolated, 0 everywhere but in the openings.
        v = rig.vertex_count
        fan_tris = np.full_like(rig.triangles, v)
        lo, hi = self.fan_range
        fan_tris[lo:hi] = rig.triangles[lo:hi]
        self.fan_triangles = ctx.upload(fan_tris)
        self._fan_attr = np.zeros((v + 1, 3), np.float32)
        self._fan_attr[:v, 0] = 1.0
        # the texture coordinates and the outline's weight, interpolated in one pass
        self._uv_alpha_host = np.ascontiguousarray(np.column_stack([uv, self.outline.reference]), dtype=np.float32)
        self.uv_alpha = ctx.upload(self._uv_alpha_host)
        n = s // SAMPLE
        off = SAMPLE // 2 - 1
        g = np.arange(n, dtype=np.float64) * SAMPLE + off
        self._grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)   # crop px of the samples
        self._off = off
        self._n = n
        self._gbuf = GBuffer.empty(n, n, xp=xp)
        self._alpha = xp.empty((s, s, 1), np.float32)
        self._fan = xp.zeros((s, s, 3), np.float32)
        self._fan_box = (0, 0, 0, 0)          # (y0, y1, x0, x1): where _fan may be non-zero
        self._fan_vertices = np.unique(fan_tris[lo:hi])   # indices into frame.vertices (host)
        self._fan_rows = np.ascontiguousarray(rig.triangles[lo:hi])   # (rim i, rim i + 1, centre)
        self._eye_rows = _eye_rows() if "eyes" in rig.ranges else []
        self._uv_alpha = xp.empty((s, s, 3), np.float32)
        self._own = xp.empty((s, s, 1), np.float32)

    def reset(self) -> None:
        self.colour.reset()
        self.occluders.reset()

    def __call__(self, frame: Frame) -> None:
        geo = self.link.current
        if geo is None:
            return
        if self.link.held and self.fields.alpha is not None:
            # the last face again (a jump the estimator is making sure of): its masks and light
            # as they were; no openings (this image's eyes and mouth are not where that face's
            # were), nothing sampled from this image into the colour memory
            py0, py1, px0, px1 = self._fan_box
            self._fan[py0:py1, px0:px1] = 0.0
            self.fields.fan = self._fan
            return
        ctx, xp = self.ctx, self.ctx.xp
        n = self._n
        image = self._frame_image(frame)
        # the masks: alpha (the outline, times the identity's skin) and the driver's own pixels
        # in the openings (premultiplied by their weight)
        gbuf = frame.gbuf
        tid = gbuf.tri_id
        if self.outline.varies:          # an atlas: its keyframes' outline weight on this frame
            self._uv_alpha_host[:, 2] = self.outline()
            self.uv_alpha = ctx.upload(self._uv_alpha_host, out=self.uv_alpha)
        uva = interpolate(gbuf, self.triangles, self.uv_alpha, out=self._uv_alpha)
        own = texture(self.skin_map, uva[..., :2], tid >= 0, out=self._own)
        alpha = xp.multiply(uva[..., 2:], own, out=self._alpha)
        self.fields.alpha = alpha[..., 0]
        self.fields.fan = self._openings(frame, geo)
        v = frame.vertices[:N_LANDMARKS, :2]   # the mask lies on the face's triangles
        lo, hi = v.min(0), v.max(0)
        self.fields.box = (float(lo[0]) - 1.0, float(hi[0]) + 1.0, float(lo[1]) - 1.0, float(hi[1]) + 1.0)
        # the driver's colour at the sample points, and its mesh rasterised at them
        a = geo.crop_inv
        pts = self._grid @ a[:, :2].T + a[:, 2]
        coords = ctx.upload(np.ascontiguousarray(pts.reshape(n, n, 2), dtype=np.float32))
        d = texture(image, coords)
        dv = geo.driver_vertices.copy()
        dv[:, :2] = (dv[:, :2] - self._off) / SAMPLE
        dv[:, 2] /= SAMPLE
        g = rasterize(ctx.upload(dv), self.triangles, n, n, out=self._gbuf)
        w_d = self.skin[g.tri_id]
        d_allow = self.occluders(image, a, geo.driver_vertices, d, g.tri_id, self.feature)
        # the identity's render at the same points (its own G-buffer and skin, every SAMPLE-th pixel)
        off = self._off
        w_r = self.skin[tid[off::SAMPLE, off::SAMPLE]] * own[off::SAMPLE, off::SAMPLE, 0]
        r = xp.asarray(frame.render)[off::SAMPLE, off::SAMPLE]
        if ctx.on_host:
            self.fields.colour, gain, d_skin = self.colour(d, w_d, r, w_r)
            gain_skin = xp.concatenate([gain, d_skin], axis=-1)
        else:   # the samples to the colour transfer's host in one transfer, its results back in two
            both = ctx.to_host(xp.concatenate([d, w_d[..., None], r, w_r[..., None]], axis=-1).astype(
                np.float32, copy=False))
            lut, gain, d_skin = self.colour(*(np.ascontiguousarray(a) for a in (
                both[..., 0:3], both[..., 3], both[..., 4:7], both[..., 7])))
            self.fields.colour = ctx.upload(lut)
            gain_skin = ctx.upload(np.concatenate([gain, d_skin], axis=-1).astype(np.float32))
        self.fields.low = xp.ascontiguousarray(xp.concatenate(
            [gain_skin, d_allow[..., None]], axis=-1).astype(np.float32))

    def _openings(self, frame: Frame, geo):
        """The fan field (S, S, 3): interpolated over the openings' bounding box only (14 % of the
        crop on d10), zero elsewhere; zero everywhere without `driver_openings`."""
        if not self.driver_openings:
            return self._fan              # allocated zero, never written
        ctx, s = self.ctx, self.rig.crop_size
        fa = self._fan_attr
        fa[:-1, 1:] = geo.driver_vertices[:, :2] @ geo.crop_inv[:, :2].T + geo.crop_inv[:, 2]
        own = np.asarray(frame.vertices)[:, :2]
        drv = np.asarray(geo.driver_landmarks, np.float64)[:, :2]
        for upper, lower, rows, iris in self._eye_rows:
            ends = [upper[0], upper[-1]]
            fa[rows, 1:] = eye_sources(own[rows], own[iris], own[ends], drv[iris], drv[ends],
                                       fa[upper, 1:], fa[lower, 1:])
        p = own[self._fan_vertices]
        x0, y0 = (max(0, int(np.floor(c)) - 1) for c in p.min(0))
        x1, y1 = (min(s, int(np.ceil(c)) + 2) for c in p.max(0))
        py0, py1, px0, px1 = self._fan_box
        self._fan[py0:py1, px0:px1] = 0.0
        self._fan_box = (y0, y1, x0, x1)
        if x0 < x1 and y0 < y1:
            g = frame.gbuf
            box = GBuffer(g.tri_id[y0:y1, x0:x1], g.bary[y0:y1, x0:x1], g.depth[y0:y1, x0:x1])
            field = interpolate(box, self.fan_triangles, ctx.upload(fa), out=self._fan[y0:y1, x0:x1])
            field *= self._coverage(box, frame.vertices)[..., None]
        return self._fan

    def _coverage(self, box: GBuffer, vertices):
        """(h, w) float32 how much of each pixel of `box` the openings cover: 1 inside, falling to
        ½ on the lids' and lips' edge (`fan_edge_heights`), so the driver's pixels come in with an
        anti-aliased border rather than the crop's pixel staircase (magnified on paste-back:
        2–3 frame pixels a step on d10). Only the fan pixels matter (the field is 0 elsewhere)."""
        xp = self.ctx.xp
        lo, hi = self.fan_range
        heights = self.ctx.upload(fan_edge_heights(vertices, self._fan_rows))
        t = xp.clip(box.tri_id - lo, 0, hi - lo - 1)
        return xp.clip(box.bary[..., 1] * heights[t] + 0.5, 0.0, 1.0)

    def _frame_image(self, frame: Frame):
        image = frame.image
        if image is None:      # a warm-up frame
            image = np.zeros((self.rig.crop_size, self.rig.crop_size, 3), np.uint8)
            frame.image = image
        return self.link.image_on_device(image)


class SwapCompositeStage:
    """The paste-back: `kernels.swap_blend` of the render into the driver's frame; the frame as
    it is when no face was found or the user asked for passthrough (hotkey space), or, with
    `hide_unswapped`, blurred past recognition when no face was found (`hidden`: the tracker lost
    the face, it is too small, turned away or covered: the swap's user never goes out as
    themselves; passthrough still shows the frame as it is). `size`: the output (width, height);
    a frame of another size is fitted into it, letter-boxed (None: the frames' own)."""

    name = "composite"
    device_ready = True

    def __init__(self, link: SwapLink, fields: SwapFields, size: tuple[int, int] | None = None,
                 ctx=None, occlusion=OCCLUSION_DEFAULTS, hide_unswapped: bool = False):
        self.ctx = ctx if ctx is not None else CpuContext()
        self.link, self.fields = link, fields
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.occlusion = tuple(occlusion)
        self.passthrough = False
        self.hide_unswapped = bool(hide_unswapped)
        self.hidden = 0           # frames sent blurred (`hide_unswapped`)

    def __call__(self, frame: Frame) -> None:
        geo = self.link.current
        image = frame.image
        if image is None:
            w, h = self.size or (64, 64)
            frame.output = np.zeros((h, w, 3), np.uint8)
            return
        points = None                 # the face shown, frame px (the preview's dots)
        if geo is None or self.passthrough or self.fields.alpha is None:
            out = image
            if self.hide_unswapped and not self.passthrough and frame.index >= 0:
                out = hidden(image)
                self.hidden += 1
            elif frame.landmarks is not None:
                points = np.asarray(frame.landmarks, np.float32)[:, :2]
        else:
            dev = self.link.image_on_device(image)
            f = self.fields
            out = self.ctx.to_host(swap_blend(dev, self.ctx.to_device(frame.render), f.alpha, f.fan, f.low,
                                              geo.crop, f.colour, self.occlusion, box=f.box))
            if frame.vertices is not None:    # the identity's face, crop px → frame px
                v = np.asarray(frame.vertices, np.float32)[:N_LANDMARKS, :2]
                points = v @ geo.crop_inv[:, :2].T.astype(np.float32) + geo.crop_inv[:, 2].astype(np.float32)
        if self.size is not None and (out.shape[1], out.shape[0]) != self.size:
            if points is not None:
                points = letterbox_points(points, (out.shape[1], out.shape[0]), self.size)
            out = letterbox(out, self.size)
        frame.output, frame.face_points = out, points


def eye_sources(points: np.ndarray, iris: np.ndarray, corners: np.ndarray, driver_iris: np.ndarray,
                driver_corners: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """(K, 2) float64: where in the driver's frame each of `points` (K, 2), vertices of one of the
    identity's eye openings (crop px), takes its pixel from. `iris`, `corners` (2,), (2, 2): the
    identity's posed iris centre and its outer and inner eye corner (crop px); `driver_iris`,
    `driver_corners`: the driver's (frame px); `upper`, `lower` (M, 2): the lid lines of the
    driver's opening as the swap samples it (frame px, from its outer end to its inner one; the
    swap's lie a little inside the driver's lashes, `realtime.swap.fuse.EYE_SHRINK`).

    Each point goes through the similarity that takes the identity's iris onto the driver's and
    its corner-to-corner axis onto the driver's, then is kept inside the driver's opening (no
    further across the eye than the driver's lids at its place along it, no further along it
    than its ends). Where the two openings overlap the driver's eye is carried whole,
    neither squashed nor stretched: its iris stays round and sits where the identity's posed
    iris is (the driver's gaze on the identity's eye, as the reenactment draws its eyeballs),
    cut by the identity's lids. Mapping lid onto lid instead squashed a wide-open driver's iris
    into a flat oval inside a narrower identity's opening, and its up-down gaze with it (s1 <-
    d10). Only where the identity's opening reaches past the driver's lids is the driver's
    opening stretched to fill it: no lid skin is shown."""
    c, dc = _complex(np.asarray(corners, np.float64)), _complex(np.asarray(driver_corners, np.float64))
    up, low = np.asarray(upper, np.float64), np.asarray(lower, np.float64)
    a_d = _complex(up[0])
    width_o, width_d = c[1] - c[0], dc[1] - dc[0]
    if abs(width_o) < 1e-9 or abs(width_d) < 1e-9:   # an eye without width: nothing to carry
        return np.tile([a_d.real, a_d.imag], (len(points), 1))
    e = width_d / abs(width_d)                       # the driver's eye axis, outer → inner
    moved = _complex(np.asarray(driver_iris, np.float64)) + (
        _complex(np.asarray(points, np.float64)) - _complex(np.asarray(iris, np.float64))) * width_d / width_o
    # in the driver's eye frame, origin at its opening's outer end: (along, across) = (real, imag)
    w = (moved - a_d) / e
    lids, ends = [], []
    for line in (up, low):
        lw = (_complex(line) - a_d) / e
        order = np.argsort(lw.real, kind="stable")
        lids.append(np.interp(w.real, lw.real[order], lw.imag[order]))
        ends += [lw.real.min(), lw.real.max()]
    along = np.clip(w.real, min(ends), max(ends))
    across = np.clip(w.imag, np.minimum(*lids), np.maximum(*lids))
    q = a_d + (along + 1j * across) * e
    return np.column_stack([q.real, q.imag])


def _eye_rows() -> list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Per eye fan (right, left): its upper and lower lid lines (outer corner to inner), all its
    vertices (the rig's lid loop and fan centre) and its iris centre: the rows `eye_sources`
    reads and writes."""
    return [(np.array(up), np.array(low), np.append(loop, centre), iris)
            for up, low, loop, centre, iris in zip((topology.RIGHT_EYE_UPPER, topology.LEFT_EYE_UPPER),
                                                  (topology.RIGHT_EYE_LOWER, topology.LEFT_EYE_LOWER),
                                                  EYE_LOOPS, EYE_CENTRES,
                                                  (topology.RIGHT_IRIS[0], topology.LEFT_IRIS[0]))]


def _complex(points: np.ndarray) -> np.ndarray:
    """(…, 2) points as (…) complex numbers x + iy."""
    return points[..., 0] + 1j * points[..., 1]


def hidden(image: np.ndarray) -> np.ndarray:
    """`image` (H, W, 3) uint8 blurred past recognition: averaged down to HIDE_CELLS cells across
    its short side and smoothly scaled back up (the scene's colours stay, no face or text can be
    read). What `--hide-unswapped` sends where no face was swapped."""
    h, w = image.shape[:2]
    k = HIDE_CELLS / min(h, w)
    small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
