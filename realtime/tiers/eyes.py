"""Eyes as layers (DESIGN §5, tier 1): an eyeball behind lids that slide over it.

A photo's eye texture stretched over lids that move does not read as an eye that opens or
closes: the lids move, the iris is stretched with them, the eye does not look wider, and a
shut eye keeps a smear of iris. So the warp tier does not leave the eye openings to the photo's
texture. It draws, inside each opening (the eye fan of the rig), an eyeball made once from the
photo:

- the **sclera**: a texture in eye-local coordinates (origin at the midpoint of the eye
  corners, x along the corners, y across, in eye widths): the photo's own white where it
  shows, and around it a lit white falling off towards the corners as much as the photo's
  visible white does (`CORNER_POWER`), tinted as the photo's white nearby (`_photo_white`);
- the **iris**: a polar texture (angle × radius) sampled around the photo's iris centre out to
  its radius (MediaPipe's iris landmarks), the parts the lids covered filled from the visible
  angles at the same radius (an iris is close to rotationally symmetric); a photo whose eyes
  show little gets a plausible iris and sclera from the colours that are visible.

So an eye at rest shows the photo's white, and the lids' own margin: within `MARGIN` of the
contour, the opening keeps what the warp drew there (MediaPipe's contours run a little inside
the lids' margin, through the lashes and the lid's shadow over the top of the iris, and the pink
inner corner), and it moves with the lids; where the drawn iris has moved off the photo's, the
band shows the eyeball instead, but for the lash line (`STALE_IRIS`, `STALE_KEEP`).

Per frame, the iris is drawn at the posed iris centre (the driver's gaze, retargeted by the
fuse stage, moves it), with the photo's iris radius in eye widths, narrowed along the way it
looks as a turned eyeball's is (`EYEBALL`); the lids occlude it because
nothing outside the opening is drawn; a soft shadow darkens the eyeball under the upper lid and a little
over the lower lid. As the lids meet, the opening's fan collapses to nothing (the rig's eye
fans radiate from the mean of the lid contour), so a closed eye is lid skin only. As the lids
narrow the opening below `SHOWN_TO` of the photo's, the eyeball dims towards the lash colour,
all of it by `SHOWN_FROM` (and never later than the last few hundredths of an eye width), so a
half-shut eye is a shadowed slit, as a real one is, and no sliver of white or iris is left.
The lid that comes down is drawn as lid skin with one lash line, in the colour of the photo's own
lash line (`lash_line`), a little darker (`apply_lids`): the photo has no
closed lid to stretch. It comes in as the upper lid descends over the eyeball (`descent`), or as
the eye shuts whichever way; an eye narrowed by its lower lid (a smile) keeps its open lid.
Tinted towards the skin above the eye (in saturation, so a shaded socket lends it no grey), its
top turns up into the socket's shade (`LID_CHROMA`, `LID_CREASE`); it is shaded as a rounded
lid, darker towards the lash line and the corners, keeping its colour's a*, b* as skin in shade
does, with no fold drawn across it (`lid_shade`, `shaded`).
A lid that goes up past the photo's keeps a lash line at its edge (`WIDE_LASH`): the photo's
lid margin lies above MediaPipe's contour and does not come with it.

Array-module agnostic (numpy, or cupy on the GPU, through the device context): the textures are
uploaded once; per frame the work is a few vectorised operations over the eye pixels only.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.core.colour import LUMA
from realtime.core.context import CpuContext
from realtime.face import geometry, topology
from realtime.mesh.rig import Rig, fan_edge_heights

__all__ = ["EyeModel", "build_eye_model", "EyeLayer", "EYES"]

#: Per eye (right, left): outer corner, inner corner, iris centre, iris boundary points,
#: upper lid contour, lower lid contour (topology indices).
EYES = (
    (33, 133, topology.RIGHT_IRIS[0], topology.RIGHT_IRIS[1:], topology.RIGHT_EYE_UPPER,
     topology.RIGHT_EYE_LOWER),
    (263, 362, topology.LEFT_IRIS[0], topology.LEFT_IRIS[1:], topology.LEFT_EYE_UPPER,
     topology.LEFT_EYE_LOWER),
)
SCLERA_X = 0.65          # the sclera texture spans x in [-0.65, 0.65] eye widths ...
SCLERA_Y = 0.5           # ... and y in [-0.5, 0.5]
IRIS_ANGLES = 64         # the polar iris texture: angles ...
IRIS_RINGS = 16          # ... and radii (centre to the limbus)
# The iris radius drawn / MediaPipe's. Measured on ten portraits (s0, s1, s5, s9, s12 and the
# drivers' first frames), the limbus (the steepest dark-to-light step along horizontal rays from
# the iris centre) lies at 0.85–1.09 of MediaPipe's radius, median 1.0. At 0.92 the drawn iris
# was smaller than the photo's, and a widened eye read narrower than its lids (the tracker puts
# the upper lid at the iris's top). Cross-identity eye r at 1.0 (right / left): s12 ← d10
# 0.856 / 0.895 → 0.884 / 0.901, s5 ← d10 0.887 / 0.915 → 0.900 / 0.924; output jitter
# s1 ← d10 0.90 → 0.81 px.
IRIS_FIT = 1.0
# The iris turns with the eyeball: looking aside by θ from the photo's own look it sits
# sin θ × EYEBALL eye widths from the photo's iris and shows cos θ of its width along that way.
# EYEBALL: the iris plane's distance from the eye's centre of rotation (about 10 mm) over the
# eye's corner-to-corner width (about 30 mm). A flat disc slid aside read as a smaller look:
# self-drive gaze_x gain (picture against the mesh) d0 0.81, d10 0.86, d11 0.83 as a disc; 0.87,
# 0.95, 0.91 (run against the driver) as drawn now. Tried with θ taken from the eye corners'
# midpoint instead of the photo's iris: 0.89 / 0.96 / 0.94 at 0.32, 0.86 / 0.91 / 0.90 at 0.42;
# but that also narrowed the photo's own iris, which was sampled as a disc.
EYEBALL = 0.33
FORESHORTEN_MIN = 0.5    # an iris is never drawn narrower than this share of its width
LIMBUS = 0.35            # darkening of the iris's outer rim (the limbal ring)
CATCHLIGHT = (-0.32, -0.36, 0.09)   # iris-local x, y (iris radii) and size of the catchlight
UPPER_SHADOW = 0.3      # darkening of the eyeball at the upper lid's edge ...
LOWER_SHADOW = 0.1      # ... and at the lower lid's
LASH_BAND = 0.1         # the lower lid's lash band, in eye widths: hidden as the eye shuts
LID_MARGIN = 0.06       # the upper lid's texture slides up this far (eye widths) as the eye
#                         shuts: MediaPipe's upper contour often runs over the top of the iris,
#                         and a lid coming down must carry lid skin, not a band of iris
CLOSED = 0.045           # eye opening / eye width below which the eyeball fades to the lashes ...
OPEN = 0.11              # ... fully shown above this; and, relative to the photo's own opening,
SHOWN_FROM, SHOWN_TO = 0.2, 0.8   # at least these fractions of it (the larger threshold wins)
# Why the eyeball dims as the eye narrows: under lids that come down, a real eye's opening is
# lash and shadow, not lit sclera; drawn at full brightness, a half-shut eye's strip of white
# reads as an open eye (self-drive d19: the tracker lost a third of the lids' narrowing).
# The closed lid. A photo shows no closed lid: the skin that covers a shut eye is folded under the
# crease while the eye is open, so the lid triangles stretched over a shutting eye show the
# photo's lashes and fold smeared downwards (a pale, puffy or dark smeared lid that a tracker,
# and a viewer, read as half open). As an eye shuts, its upper lid (`lid_region`: the triangles
# between the lid's contour and the second ring of vertices above it) is drawn as lid skin
# instead: skin of the cheeks' colour at the second ring's light (`lid_colour`), with the photo's
# skin grain (`skin_grain`), shaded as a rounded lid (`lid_shade`), fading in over the band between
# the two rings; and one lash line LASH_WIDTH eye widths wide, centred on the lid's edge (a shut
# eye's lashes hang over the lower lid), narrowing towards the corners (LASH_TAPER), its border
# anti-aliased (`_lash_line`; drawn inside the lid band only, it ended in a pixel staircase along
# the edge, thinner than a real shut eye's lash line, and stopped bluntly at the corners).
# The lid skin is the upper lid's, unfolding as that lid comes down: it follows how far the upper
# lid has descended over the eyeball (`EyeLayer.descent`: from the photo's, over the photo's
# opening), nothing below LID_FROM, all of it from LID_TO; an eye narrowed by its lower lid
# rising (a smile's squint) keeps its open lid. An eye shut whichever way gets it too: nothing
# below SHUT_FROM closure (1 − opening / the photo's), all of it from SHUT_TO; this is what makes
# a blink's lid whole (its upper lid comes down about 0.8 of the opening, the lower one rises to
# meet it). The descent is measured with the face moved back onto the photo's by its rigid points
# (`_lid_heights`): in the image, a head pitched 30° down read an open eye as 0.4 descended; in
# the face frame (`geometry.face_frame`, whose forehead-to-chin axis tilts as the jaw drops),
# s1 ← d14's talking drew lid skin over 84 open left eyes (64 when keyed on the closure).
# (A lash line of 0.06 eye widths read as an eye a crack open on the frame a blink shuts: s18's
# blink, 0.031 interocular against 0.019 at 0.09.)
# A shut lid bulges forward over the eyeball, into the light, out of the socket's shadow that
# lies above an open one: on portraits with deep-set or made-up eyes the skin at the second ring
# is a third to a half of the cheeks' luminance (s1 0.34/0.52, s5 0.57/0.44, s12 0.32/0.74),
# and a lid of that colour is a dark patch over the eye. The drivers' real shut lids are
# 0.76–0.95 of their cheeks' luminance (the whole lid band, lashes and all; median over their
# closed-eye frames), their second rings 0.6–1.13: the lid is lit at least LID_FLOOR of the
# cheeks (`lid_colour`, cheek points `_CHEEKS`). Measured where the lid skin is drawn (the
# triangles on the lid's contour, without the band above), a real shut lid is 0.86–0.95 of the
# cheeks' L*, hardly darker than the skin around it: seven shut eyes (both of d0's, d10's and
# d14's, d11's left; every frame with the eye shut below 0.03 interocular). At 0.75 d10's drawn
# lids were 2–7 L* darker than hers and less red, a grey patch over her shut eyes. At 0.92
# (LID_CHROMA 0.75), after the lid's shade then (0.03 of it, 0.08 more at the edge) and the lash
# line, the drawn lid's L* is within −2.3…+2.1 of the real one's (median over the frames, per eye),
# and the median CIE76 ΔE between them falls from 4.2 to 3.2 on average over the seven (d10's left
# 10.5 → 5.5): self-drive videos (`run.py live --profile` of the clip's first frame), the lid found
# by the driver's landmarks in both. Closed eyes that arrive (`bench --quality`): s1 ← d14 125 →
# 126 of 130 (128 on the lid change alone), s12 ← d14 130 → 129, s5 ← d14, s1, s5 and s12 ← d10,
# the five self-drives and s18's as before; eye opening gain and r within 0.01.
# That floor was the whole lid's light when the lid was drawn nearly flat; its shade towards the
# lash line and the corners (`lid_shade`, measured on the real shut lids since) comes on top of
# it, and with both the drawn lid skin was 3.5 L* darker than the real one on average over the
# seven eyes (lid minus cheeks, output against driver, the lash line's strip left out: 1.6–5.0
# darker on every eye). The floor is now the lit bulge's light, the cheeks' (the real lids' first
# ring is 0.93–1.0 of them), and `lid_shade` alone darkens it: 0.3 L* lighter than the real lid on
# average over the seven, the mean ΔE 4.4 → 2.0 (with SHADE_CHROMA; 2.1 without it).
LID_FLOOR = 1.0
# It is lit like the cheeks, not like the socket: a shut lid faces forward, and the skin above
# an open lid is in the socket's shade, or made up (d0: the real shut lid is at 0.89 of the
# cheeks' light; lit as his second ring, a* 9–10 b* 13–14, it was a greyish patch over the eye).
_CHEEKS = (50, 280, 101, 330, 36, 266)
# Lit all over in the cheeks' colour, the lid was a flat light oval with an edge wherever the
# photo's socket is darker or more coloured than that (s12's deep-set eyes; s5's painted warm
# shade, against which the cheeks' colour looked grey; s1's eye shadow). A real shut lid is the
# skin of the upper lid, turning up at its top into the socket under the brow. So:
# - its colour takes LID_CHROMA of the way from the cheeks' colour to the socket's (`lid_colour`;
#   measured in CIE a*, b*, mixed in saturation since: `_lab_mix`, below): d10's and d14's real
#   shut lids lie nearer the socket's a*, b* than the cheeks' (d10: cheeks 18.5 / 20.5, socket
#   20–21 / 15–16, shut lid 21–23 / 13–14), d0's between the two (cheeks 13 / 11, socket 9–10 /
#   13–14, shut lid 11–13 / 11–13), d11's a little redder than both;
#   and eye shadow, which lies on the lid folded under the crease, shows on a shut one (0.5
#   before LID_FLOOR's measurement above; the seven eyes' mean ΔE hardly depends on it: 3.1 at
#   0.5, 3.0 at 0.75 and at 1.0, on a scratch variant that also kept the chroma as it lit the lid);
# - towards the first ring it goes over to the crease's colour, the photo's own skin just above
#   (per first-ring vertex, the median of its second-ring neighbours) in chroma, and CREASE_LIGHT
#   of the way to it in lightness, by (1 − t)^LID_CREASE, t from 0 on the first ring to 1 on the
#   contour: the top meets the photo with a softer edge, the half next to the lashes keeps the
#   lit colour.
# The tracker reads a darker top as an eye a crack open: with the crease's full lightness
# (CREASE_LIGHT 1) the closed eyes that arrive (bench --quality) fell from 119/130 to 78/130 on
# s1 ← d14 and from 18/18 to 17/18 on s12 ← d10 (at 0.5: 115/130). At 0.3 with LID_CHROMA 0.5:
# 114/130 and 18/18 (s5 ← d14 128/130 as before; self-drive unchanged, bench --self-drive).
LID_CHROMA = 0.75
CREASE_LIGHT = 0.3
LID_CREASE = 2.0
# The colours are mixed in saturation, CIE a*, b* over L* + 16 (`_lab_mix`), which one surface
# keeps as it is lit more or less; mixed in a*, b* themselves, a socket in shade (its a*, b*
# small with its L*) turned the lit lid grey: s0's left lid (cheeks L* 73, a* 14, b* 20; socket
# L* 38, a* 8, b* 11) was L* 68, a* 9, b* 13, a grey-lavender patch in her warm face (13 / 18
# now), s9's lids a* 7–8, b* 27–31 in cheeks of 4 / 41 (9–12 / 36–37 now). No more saturated than
# the lit colour it starts from: a tinted photo's shade is more saturated than its light (s12's
# right socket 2.5× his cheeks'), and lit at that it drew an orange oval over his eye.
MIX_DARKEST = 8.0        # L*: a sample darker than this has no colour to give
# The shut lid's form (`lid_shade`). A shut lid is a rounded surface over the eyeball, lit where
# it faces forward, turning down into the lash line's shadow and away towards the corners: on
# the drivers' shut eyes (d0, d10, d14, every frame below 0.03 interocular, luminance across
# the lid's middle over the cheeks'), 0.93–1.0 at the first ring, 0.84–0.93 a fifth of the way
# from the lash line to the brow, 0.73–0.86 a tenth of it; drawn as one colour (0.03 darker,
# 0.08 more at the edge), the lid was the flat patch users saw.
# It keeps its colour's CIE a*, b* as it is shaded (`shaded`): a real shut lid is as red as the
# cheeks at 2–7 L* darker (lid minus cheeks Δa* −0.9…+2.1 on LID_FLOOR's seven eyes), as skin in
# shade is (the light that reaches it has crossed more skin); scaled as one surface dimmed, its
# a* fell with its L* and the lid was a greyer, bluer patch (0.5–4 a* less red than the real one
# on every eye: d0's and d10's most). SHADE_CHROMA: sRGB scaled by k scales the linear light by
# about k^2.4 and L* + 16, a*, b* by its cube root, k^0.8; the colour's distance from its own luma
# grown by k^−0.8 gives a*, b* back (within 1.9 on skin colours down to k 0.66, lid_shade's darkest:
# s9's yellow skin and a dark (75, 45, 30) the furthest; 0.75–0.78 would fit a little closer).
SHADE_CHROMA = 0.8
LID_ROLL = (0.3, 0.25, 1.3)   # (from, depth, power): darker from `from` (0 on the first ring, 1 on
#                               the contour) towards the contour, by `depth` at the contour
LID_SIDES = 0.12        # darker towards the corners by this × (|x| / half the eye's width)²
# No fold is drawn across it: the shut lid's skin is stretched smooth over the eyeball. Down the
# middle of the real shut lids (self-drive d0 #65, d10 #333, d14 #51, both eyes, first ring to the
# lash line) the light falls without a dip; a fold drawn as a dip of 0.1 a third of the way down
# (a Gaussian 0.06 of the lid's height wide: about a crop pixel) put a dark line 3-5 L* deep
# across every drawn shut lid, kinked at the lid's triangles, that outlined it as a patch.
# The shut lash line's profile across it, as the real ones' (self-drive `bench --self-drive CLIP
# --quality`, the output against the driver's frame, both sampled along the driver's landmarks;
# every eye with the driver's opening below 0.03 interocular: d0 #65-67, d10, d11's left, d14;
# L* down columns across the line's middle two-thirds, each aligned at its darkest, the median
# profile): its width at half its depth is 0.08 / 0.08 eye widths for d0's eyes, 0.20 / 0.15
# (d10, eyeliner and lashes), 0.17 (d11), 0.13 / 0.13 (d14), median 0.13; drawn 0.09 wide (with
# LASH_SOFT 0.3) it read 0.09-0.10 on all seven, narrower than five of them, and crisper than
# d0's and d14's (its width at three quarters of its depth over that at a quarter 0.53-0.64,
# theirs 0.30-0.42). Its darkness is right on average (the line's L* minimum drawn / real: d0
# 28 / 23, 28 / 21; d10 13 / 13, 15 / 14; d11 20 / 19; d14 28 / 33, 29 / 33), so LASH_SHUT
# stays. At 0.12 it reads 0.12-0.13 on all seven (d0 0.126 / 0.125, d10 0.131 / 0.133, d11
# 0.124, d14 0.123 / 0.124), psnr_eyes up on the four clips (d14 19.34 -> 19.51), closed eyes
# all arriving as before, s1 <- d14 125 -> 128 / 130, s5 <- d14 126 -> 127.
LASH_WIDTH = 0.12
# Its edges' ramp, LASH_SOFT × its width wide, centred on the nominal edge (the same darkness in
# all), so that it reads as lashes rather than a painted band. Softer, as soft as d14's real
# line, a tracker reads an eye a crack open: s5 <- d14's closed eyes that arrive (bench
# --quality) at width 0.12 and LASH_SOFT 1 (no flat core: d14's profile then matched hers,
# 0.134 wide at half depth, 11.1 / 4.4 px at a quarter / three quarters of it, real 11.2 / 4.6)
# 124 of 130 (0.13 wide: 123), at 0.7 125, at 0.5 127, 126 before. At 0.5 d14's reads
# 9.2 / 5.3 px (6.7 / 4.2 before). (At 0.5 and the width of 0.09, d11's right eye read a gain of
# 1.1503 on self-drive; 0.3: 1.1456, none: 1.1471.)
LASH_SOFT = 0.5
# The lash lines' colours are the photo's own lash line's (`lash_line`): the darkest of the upper
# lid in columns across the eye clear of the iris. They were the darkest of the colours under the
# upper contour (each channel's minimum), and MediaPipe's contour runs over the top of the iris:
# that is the iris's or the pupil's colour (luminance 54 / 35 for d14, whose lash line is 88 /
# 89), and both lines were drawn as a black liner. The lid's darkest band (its luminance over the
# skin's above it, median over columns clear of the iris and over the frames; self-drive, the
# driver's picture against the output's, each located by its own landmarks), right / left, real;
# drawn before → now: d14's shut eyes 0.42 / 0.40; 0.30 / 0.20 → 0.36 / 0.37; d14's widest
# eyes (its widest 3 %) 0.57 / 0.53; 0.33 / 0.23 → 0.49 / 0.49; d0's shut eyes 0.46 / 0.51;
# 0.53 / 0.28 → 0.52 / 0.49; d10's (eyeliner) shut eyes 0.22 / 0.22; 0.29 / 0.44 → 0.22 / 0.24
# (at rest the measure reads d14's and d0's output as their driver within 0.08). A widened
# lid's line is the columns' median colour. A shut eye's is darker than the photo's open line:
# its upper and lower lashes meet in the lid margin's shade (the drivers' real shut lines
# against their own at rest, same measure: d14 0.41 / 0.48, d0 0.49 / 0.60): the columns'
# darkest quarter's colour, times LASH_SHUT (the median times 0.8 read d10's right eye's shut
# line 0.39, her winged liner darker towards its outer corner). Measured on the photo at its own
# resolution: at the crop's density (the photo blurred to it) the colour was lighter (d0 86 /
# 92, against 77 / 81), and d0's shut lines read 0.62 / 0.62, a grey band, as the drawing at the
# crop's density and its upscaling blur the line again. The opening still dims towards the
# contour's darkest (`EyeModel.lash`): a narrowing eye is a shadowed slit.
LASH_COLUMNS = (0.4, 33, 4)   # columns within ± this many eye widths of the eye's middle, how many,
#                               and how many clear of the iris make a measurement
LASH_IRIS_CLEAR = 1.15        # columns within this many iris radii of its centre are left out
LASH_REACH = (0.3, 0.08)      # eye widths above and below the upper contour each column runs
LASH_SHUT = 0.9               # a shut eye's lash line: the photo's darker line's colour times this
LASH_TAPER = (0.15, 0.35)   # the lash line narrows over this far (of the lid's length) from each
#                             corner, down to this fraction of LASH_WIDTH at the corner itself
LID_FROM, LID_TO = 0.25, 0.8
# The lid skin fades out towards the corners, between LID_TAPER[0] and [1] eye widths from the
# eye's middle along it (the corners are at 0.5; the rings above run past them): drawn whole to
# its ends, a shut lid's band met the canthus with a vertical edge, a flat patch pasted on (d14
# #51). Tapered from (0.3, 0.55) the photo's open corners showed through and the tracker read
# shut eyes open (s1 ← d14: 101 of 130 closed eyes arrive, 123 before); at (0.45, 0.62) 126, s12
# ← d10 18 of 18, self-drive within 0.01 (d11's right eye 1.120 -> 1.123; 1.16 at (0.3, 0.55)).
LID_TAPER = (0.45, 0.62)
SHUT_FROM, SHUT_TO = 0.45, 0.9
# Keyed on the closure alone (0.25 to 0.85), a smiling or squinting eye whose lids were still
# well apart (d10 frames 130–190: 0.45–0.65 of the photo's opening, the upper lid down 0.2–0.3
# of it) got the shut lid's skin and lash line at a fifth to a half: a ghost of lashes over the
# eye. Keyed on the upper lid's descent (measured before `fuse.LID_SKIN_FOLLOW`, at LID_RESPONSE
# 1.4): self-drive (`bench --self-drive`) eye opening gain (r), right / left, d11 1.157 (0.968) /
# 1.141 (0.974) → 1.140 (0.967) / 1.125 (0.975), d19 0.993 (0.916) / 0.920 (0.959) → 0.938
# (0.913) / 0.876 (0.956), d0, d10, d14 within 0.01; closed eyes that arrive (`bench --quality`)
# s1 ← d14 116 → 122 of 130, s12 ← d10 18 of 18, every closed eye of the five clips and s18's
# blinks still shut. Frames where the driver's eye is open (at least 0.75 of its median) but the
# avatar's got lid skin, right / left (the final code, with the skin above the lid following):
# d10 → its own first frame 92 / 44 → 0 / 0, s1 ← d10 102 / 45 → 10 / 5, s1 ← d14 3 / 64 → 2 / 43.
# The lid skin has the grain of the photo's own skin: one flat colour drew a smooth patch over the
# eye, where a real shut lid shows its skin (d0's blink, frames 65–67). The grain is the photo's
# luminance detail (relative to a GRAIN_SIGMA crop-px blur, at most ±GRAIN_CLIP) on a patch of
# cheek under each eye (GRAIN_SIZE eye widths square, at the crop's density), tiled over the
# lid in its own rest coordinates, so it stretches with the lid as skin does and never flickers.
# (The detail of what the warp drew under the lid carried the photo's smeared lashes and fold
# with it: s12's shut lids read as half-open eyes, and the tracker missed one of d10's blinks.)
GRAIN_SIGMA = 1.5
GRAIN_SIZE = 0.4
GRAIN_CLIP = 0.2
# Sizes taken from a profile's values are clamped here too (profiles.schema bounds the geometry
# first): a crop of 1e-5 crop px per photo px asked `skin_grain` for a blur of sigma 1e5 (a hang),
# eyes 100× too wide for a 4.8 GB sclera grid. Enrolled profiles (the evaluation targets at crop
# 128..512, the astronaut) use a fraction of each: 0.28..1.23 crop px per photo px (a prefilter of
# sigma at most 1.8 px), grain patches of 8..17 texels, sclera grids 23..86 texels across, eye
# openings eroded by 1..4 px.
CROP_PER_PX = (1 / 64, 64.0)   # crop px per photo px that `skin_grain` works at (least, most)
MAX_GRAIN = 256                # texels a side of one eye's grain patch (the tile is twice that)
MAX_SCLERA = 512               # texels across the sclera grid (1.3 eye widths at the photo's density)
MAX_SHRINK = 32                # px the eye opening is eroded by (6 % of the eye's width)
# The widened lid. An eye opened wider than the photo's slides the photo's upper lid up with its
# contour, but MediaPipe's upper contour runs a little below the root of a photo's lash line
# (over the top of the iris: `LID_MARGIN`), so what comes up with it is a pale strip of the photo's eye
# under a faint lash line, and the drawn eyeball's top edge has no lid margin at all. A viewer
# reads that as a lidless stare, and the tracker reads the eye hardly wider (s12 ← d10: the
# output's eye opening stays at the photo's while the posed lids open 1.3× the driver's). A
# real lid's margin is its lash line, however wide the eye: as an eye opens past the photo's
# opening, its upper lash line is drawn along the contour (just outside it: `WIDE_LASH_OUTSIDE`),
# fading in between WIDE_LASH[0] and WIDE_LASH[1] of extra opening. Cross-identity eye r (bench
# --quality, right / left): s12 ← d10 0.78 / 0.83 → 0.86 / 0.895, s5 ← d10 0.84 / 0.86 → 0.89 /
# 0.92, s1 ← d10 0.90 / 0.92 → 0.95 / 0.94. From 0 instead of 0.05, a still eye's lid noise
# flickers the line and the tracked output jitters (s12 ← d14: 0.92 → 1.32 px).
WIDE_LASH = (0.05, 0.3)
# Its width (eye widths) and edges' ramp (`_lash_line`): the shut line's before it was measured
# against the real shut lines (LASH_WIDTH); an open lid's line is the photo's own, and its
# colour was measured at these.
WIDE_LASH_WIDTH, WIDE_LASH_SOFT = 0.09, 0.3
# The widened lid's lash line lies outside the opening: its inner edge on the contour, the line
# lifted along the contour's outward normal by WIDE_LASH_OUTSIDE × its (tapered) half width. Centred on the
# contour (0), its lower half darkened the top of the drawn opening, a dark band between the
# iris and the lid that a tracker reads as lid (s1 ← d10's widest frames: the mesh's opening
# 0.143 eye widths, the picture's 0.109). Lifted (1), the output's eye opening against the
# engine's mesh, gain (r), right / left (bench --quality, "output vs mesh"): s1 ← d10 0.64 (0.91)
# / 0.69 (0.88) → 0.66 (0.92) / 0.74 (0.91), s12 ← d10 0.49 (0.87) / 0.57 (0.89) → 0.51 (0.89)
# / 0.59 (0.91), s5 ← d10 0.71 / 0.84 → 0.72 / 0.87, s1 ← d14 0.95 / 1.07 → 0.98 / 1.11;
# self-drive (bench --self-drive) d14 0.88 / 1.00 → 0.91 / 1.02, d10 within 0.01. Closed eyes
# that arrive, id_dist, fwe and jitter_still_driver_px unchanged. (Measured lifting along the
# eye's up axis; along the normal, which also lifts the sloping ends out, every gain is within
# 0.01. Thinning the drawn eyeball's upper MARGIN as the eye widens added nothing.)
WIDE_LASH_OUTSIDE = 1.0
# The sclera's light across the eye. An eyeball is lit in front and turns away from the light
# towards the corners, under the lids: the white a photo shows beside a forward-looking iris is
# its darker side (on the eval drivers 0.65–0.78 of the white the same eye shows when it looks
# sideways). Drawn with the same light across, an eye at rest is far brighter than the photo's
# (self-drive d0: +45–57 luminance levels; it looks staring, and a tracker reads it wider), and with
# the photo's mean everywhere, an eye looking sideways shows a grey front. So the sclera's light
# falls off from its middle as 1 − a·(|x| / 0.5)^CORNER_POWER (x in eye widths), `a` fitted per
# eye to the photo's visible white (`_corner_fit`) within CORNER_SHADE.
CORNER_POWER = 1.5
CORNER_SHADE = (0.1, 0.85)
CORNER_SHADE_DEFAULT = 0.18     # where neither eye shows enough of its white
# The photo's own white is kept where it shows (`_photo_white`): drawn from the model alone, an
# eye at rest was a cool, even white in a warm face (self-drive frame 0: the photo's white
# R − B 30–40 levels, the model's 5–10), not the photo's eye.
# The lids' margin. MediaPipe's lid contours run a little inside a photo's lid margin, not along
# its edge: the upper one through the lashes and the lid's shadow over the top of the iris (below
# the lash line's root: `LID_MARGIN`, `WIDE_LASH`), the lower one along its wet rim, and both into
# the pink inner corner. So an eyeball drawn over the whole
# opening was a larger eye than the photo's even at rest, lidless and staring (self-drive d14,
# d19). Within MARGIN (upper, lower) eye widths of the contour, narrowing with the opening as the
# photo's margin stretched with the lids does, the opening keeps what the warp drew there. With
# `_photo_white`, at frame 0 of the five self-drive clips the eyes' boxes (`psnr_eyes`'s) read
# 28.5 dB PSNR against the real frame (25.9 before; the openings alone 22.5, 20.3 before, 20.9
# with the white alone); self-drive identity distance d19 0.230 → 0.204 (0.213 at 0.03 / 0.01).
MARGIN = (0.05, 0.02)
# The photo's iris in the band. Where the warp drew the photo's iris (a pixel's source in the photo
# from its fan triangle's barycentrics, `_photo_source`: the warp stretches that iris with the
# lids, and `lid_uv` moves their texture as they shut) and the drawn iris is not, the band shows
# the eyeball, but for its outer STALE_KEEP at the contour, at least STALE_KEEP_PX (the lash
# line). A look aside or down had left the photo's dark iris top under the upper lid. With the
# photo's irises painted green in the warp's texture, self-drive d11 (a child looking around):
# green pixels off the drawn iris, per eye and frame (right / left), 5.8 / 5.1 → 1.8 / 2.3, all
# of them now in that strip (deeper than it 2.5 / 2.0, on half the frames, → 0). The lids' blink
# shapes move the iris landmarks a little too: the same holds there. More white at the lids
# reads as a wider eye, and d11's eyes already read 1.14× the driver's: STALE_IRIS grows both
# discs by that many iris radii (at 0.15, with the photo's disc in corner coordinates, d11's
# right eye read 1.17), and STALE_KEEP at 0.35 read 1.151, at 0.5 1.148 (self-drive eye opening
# gain; both without the pixel floor), as now 1.157 (1.150-1.157 for the variants around it).
STALE_IRIS = 0.0
STALE_KEEP = 0.5        # the band's outer share (at the contour) that keeps the photo's lash line,
STALE_KEEP_PX = 1.0     # and at least this many crop px (the lash line is drawn 1.5 px or more)
MIN_SEEN_WHITE = 6      # visible sclera texels the photo's white is taken from, at least: a noise
#                         floor whatever the photo's size (fewer are a lash gap or a lid's edge)
WHITE_REACH = 0.1       # eye widths over which the photo's white tints the model's around it
WHITE_EVIDENCE = 0.05   # seen-texel weight at which the tint is half the photo's
DEFAULT_SCLERA = np.array([232.0, 224.0, 216.0], np.float32)
DEFAULT_IRIS = np.array([92.0, 64.0, 46.0], np.float32)


@dataclass
class EyeModel:
    """What the eye layer draws, per eye (index 0 right, 1 left), from one photo."""

    sclera: np.ndarray        # (2, H, W, 3) float32 0..255, eye-local grid (see module doc)
    iris: np.ndarray          # (2, IRIS_RINGS, IRIS_ANGLES, 3) float32, row = radius, col = angle
    iris_radius: np.ndarray   # (2,) float32 iris radius in eye widths
    iris_angle: np.ndarray    # (2,) float32 angle of the eye's x axis in the photo (radians):
    #                           the polar texture's angle 0 is the photo's image x axis
    iris_rest: np.ndarray     # (2, 2) float32 the photo's iris centre, eye-local (eye widths):
    #                           where the eye looks straight ahead (`_foreshorten`)
    lash: np.ndarray          # (2, 3) float32 the darkest of the upper lid's contour: what a
    #                           narrowing opening dims to (`SHOWN_FROM`)
    lash_line: np.ndarray     # (2, 3) float32 colour of the photo's upper lash line (`lash_line`)
    lash_shut: np.ndarray     # (2, 3) float32 colour of a shut eye's lash line (`lash_line`)


def _eye_frame(lm: np.ndarray, outer: int, inner: int, down: np.ndarray):
    """(mid (2,), u (2,), v (2,), width): the eye-local frame of one eye, u from the outer to the
    inner corner for the right eye and from the inner to the outer corner for the left (both
    point to the subject's left), v perpendicular and pointing down the face."""
    a, b = lm[outer, :2].astype(np.float64), lm[inner, :2].astype(np.float64)
    mid = 0.5 * (a + b)
    axis = b - a if outer == EYES[0][0] else a - b
    width = float(np.linalg.norm(axis))
    u = axis / max(width, 1e-9)
    v = np.array([-u[1], u[0]])
    if v @ down < 0:
        v = -v
    return mid, u, v, max(width, 1e-9)


def _down(lm: np.ndarray) -> np.ndarray:
    d = lm[topology.CHIN, :2] - lm[topology.FOREHEAD, :2]
    return d / max(np.linalg.norm(d), 1e-9)


def _lid_heights(landmarks: np.ndarray, reference: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """((2,), (2,)) per eye (right, left): how far the middle of its upper lid lies above the
    corners' midpoint, and the lids' mean gap, in eye widths. With `reference` (the photo's
    landmarks) they are measured with `landmarks` moved onto it by the similarity that fits their
    rigid points (`topology.RIGID`: forehead, nose, eye corners, temples; no jaw): a head that
    pitches does not read as lids that move (the lids' middle lies in front of the corners, so in
    the image it drops towards them), nor does a mouth that opens (the face frame's forehead-to-
    chin axis would tilt with the chin)."""
    lm = np.asarray(landmarks[: topology.N_LANDMARKS], np.float64)
    if reference is not None:
        rigid = list(topology.RIGID)
        lm = geometry.umeyama(lm[rigid], np.asarray(reference, np.float64)[rigid]).apply(lm)
        down = _down(np.asarray(reference, np.float64))
    else:
        down = _down(lm)
    tops, gaps = np.empty(2), np.empty(2)
    for e, (outer, inner, _, _, upper, lower) in enumerate(EYES):
        mid, _, v, width = _eye_frame(lm, outer, inner, down)
        tops[e] = np.mean([-(lm[a, :2] - mid) @ v for a in upper[2:-2]]) / width
        gaps[e] = EyeLayer._gap(lm, upper, lower) / width
    return tops, gaps


def lid_region(triangles: np.ndarray, upper, lower) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The upper lid above one eye: (triangle indices into `triangles` (T, 3), the ring of
    vertices above the contour `upper` (corners first and last), the ring above that). The
    triangles are those made of the contour and the two rings, touching the contour's inside or
    the first ring, none of the lower contour's inside."""
    adj = topology.vertex_adjacency()
    contour = set(upper)
    ring1 = {int(j) for j in topology.ring_above(upper)}
    ring2 = {int(j) for i in ring1 for j in adj[i]} - ring1 - contour
    allowed = np.array(sorted(contour | ring1 | ring2))
    inner = np.array(sorted(set(upper[1:-1]) | ring1))
    keep = (np.isin(triangles, allowed).all(axis=1) & np.isin(triangles, inner).any(axis=1)
            & ~np.isin(triangles, list(lower[1:-1])).any(axis=1))
    return np.flatnonzero(keep), np.array(sorted(ring1)), np.array(sorted(ring2))


def lid_colour(ring: np.ndarray, cheek: np.ndarray) -> np.ndarray:
    """(3,) float32 a shut lid's skin colour: the cheeks' colour (`cheek`), its chroma moved
    LID_CHROMA of the way to that of the skin above the open lid (`ring`), at the luminance of
    `ring` but at least LID_FLOOR of the cheeks' (module doc)."""
    ring, cheek = np.asarray(ring, np.float32), np.asarray(cheek, np.float32)
    have, lit = float(ring @ LUMA), float(cheek @ LUMA)
    if lit < 1.0:
        return ring
    tinted = _lab_mix(cheek, ring, light=0.0, chroma=LID_CHROMA)
    want = max(have, LID_FLOOR * lit)
    return np.clip(tinted * (want / max(float(tinted @ LUMA), 1e-3)), 0.0, 255.0).astype(np.float32)


def _lab_mix(base: np.ndarray, other: np.ndarray, light: float, chroma: float) -> np.ndarray:
    """(3,) float32 RGB 0..255: `base` with its CIE L* moved `light` of the way to `other`'s,
    and its colour `chroma` of the way to `other`'s (both (3,) RGB 0..255) in saturation: a*, b*
    over L* + 16, what stays the same as one surface is lit more or less (X, Y, Z scaled by k
    scale L* + 16, a* and b* by k^⅓); no more saturated than `base`. Mixed in a*, b* themselves,
    a socket's shade (its a*, b* small with its L*) made a greyer colour of a lit lid: s0's grey-
    lavender shut lids. An `other` darker than MIX_DARKEST L* gives no colour: `base`'s is kept."""
    lab = cv2.cvtColor(np.stack([base, other]).astype(np.float32).reshape(2, 1, 3) / 255.0,
                       cv2.COLOR_RGB2Lab).reshape(2, 3).astype(np.float64)
    sat = lab[:, 1:] / (lab[:, :1] + 16.0)
    mixed = sat[0] + (chroma if lab[1, 0] >= MIX_DARKEST else 0.0) * (sat[1] - sat[0])
    most = float(np.linalg.norm(sat[0]))
    mixed *= min(1.0, most / max(float(np.linalg.norm(mixed)), 1e-9))
    lightness = lab[0, 0] + light * (lab[1, 0] - lab[0, 0])
    out = np.array([[[lightness, *(mixed * (lightness + 16.0))]]], np.float32)
    rgb = cv2.cvtColor(out, cv2.COLOR_Lab2RGB).reshape(3) * 255.0
    return np.clip(rgb, 0.0, 255.0).astype(np.float32)


def skin_grain(image: np.ndarray, lm: np.ndarray, crop_per_px: float) -> tuple[np.ndarray, np.ndarray]:
    """The shut lids' skin grain (module doc, GRAIN_SIZE): ((2, G, G) float32 per eye, the relative
    luminance detail of a patch of cheek under it at the crop's density, in ±GRAIN_CLIP, mirrored
    into a tile that wraps;
    (V, 2) float32 every landmark's rest position in its nearer eye's frame, crop px: where a
    vertex samples the tile, wrapped). `lm` (≥478, ≥2) photo px; `crop_per_px` crop px per
    photo px."""
    down = _down(lm)
    crop_per_px = float(np.clip(crop_per_px, *CROP_PER_PX))        # blur sigma ≤ 32 px, bounded grids
    step = 1.0 / crop_per_px                                       # photo px per crop px
    lum = image.astype(np.float32) @ LUMA
    if step > 1.0:                                                 # prefiltered to the crop's density
        lum = cv2.GaussianBlur(lum, (0, 0), 0.5 * step)
    frames = [_eye_frame(lm, outer, inner, down) for outer, inner, *_ in EYES]
    g = int(round(float(np.clip(GRAIN_SIZE * np.mean([f[3] for f in frames]) * crop_per_px, 8, MAX_GRAIN))))
    k = (np.arange(g) - 0.5 * (g - 1)) * step
    X, Y = np.meshgrid(k, k)
    tiles = []
    for mid, u, v, width in frames:
        centre = mid + 0.9 * width * v                              # under the eye, on the cheek
        px = (centre[0] + X * u[0] + Y * v[0]).astype(np.float32)
        py = (centre[1] + X * u[1] + Y * v[1]).astype(np.float32)
        patch = cv2.remap(lum, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        low = cv2.GaussianBlur(patch, (0, 0), GRAIN_SIGMA, borderType=cv2.BORDER_REFLECT)
        detail = np.clip(patch / np.maximum(low, 1.0) - 1.0, -GRAIN_CLIP, GRAIN_CLIP)
        # mirrored four ways: a tile that wraps without a seam
        tiles.append(np.block([[detail, detail[:, ::-1]], [detail[::-1], detail[::-1, ::-1]]]))
    grain = np.stack(tiles).astype(np.float32)
    p = np.asarray(lm, np.float64)[:, :2]
    right = np.linalg.norm(p - frames[0][0], axis=1) <= np.linalg.norm(p - frames[1][0], axis=1)
    at = np.empty((len(p), 2), np.float64)
    for e, sel in ((0, right), (1, ~right)):
        mid, u, v, _ = frames[e]
        d = p[sel] - mid
        at[sel] = np.stack([d @ u, d @ v], 1) * crop_per_px
    return grain, at.astype(np.float32)


def _skin_at(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(3,) float32 median colour of the 5×5 photo pixels about `xy` (clipped to the image)."""
    x, y = (int(round(float(c))) for c in xy)
    h, w = image.shape[:2]
    x0, x1 = np.clip([x - 2, x + 3], 0, w)
    y0, y1 = np.clip([y - 2, y + 3], 0, h)
    patch = image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].reshape(-1, 3)
    return (np.median(patch, axis=0) if len(patch) else np.full(3, 128.0)).astype(np.float32)


def _whiten(colour: np.ndarray, image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """The sclera's colour: half-way to a neutral white of its own brightness, and at least as
    bright as 1.15× the forehead's skin (a white in shadow is still whiter than the skin)."""
    pts = np.round(lm[[151, 9, 108, 337], :2]).astype(int)
    pts[:, 0] = np.clip(pts[:, 0], 0, image.shape[1] - 1)
    pts[:, 1] = np.clip(pts[:, 1], 0, image.shape[0] - 1)
    skin = image[pts[:, 1], pts[:, 0]].astype(np.float32).mean(0)
    lum = float(colour @ LUMA)
    target = max(lum, min(235.0, 1.15 * float(skin @ LUMA)))
    grey = np.full(3, lum, np.float32)
    colour = 0.5 * colour + 0.5 * grey
    return np.clip(colour * (target / max(lum, 1.0)), 0, 255).astype(np.float32)


def _no_highlights(polar: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The iris without the photo's catchlights (reflections of the room's lights: they belong
    where the light is, not to the iris, and smeared around a ring they look like scratches):
    samples much brighter than their ring's median are replaced by the median."""
    out = polar.copy()
    lum = polar @ LUMA
    for r in range(polar.shape[0]):
        ok = valid[r]
        if ok.sum() < 3:
            continue
        med = np.median(lum[r, ok])
        bright = lum[r] > med + max(18.0, 0.35 * med)
        out[r, bright] = np.median(polar[r, ok], axis=0)
    return out


def _fill_rings(polar: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill the invalid angles of each ring from the valid ones (periodic linear interpolation
    in angle); a ring with too few valid samples takes the nearest ring that has enough."""
    rings, angles = valid.shape
    out = polar.copy()
    ok = valid.sum(1) >= max(4, angles // 8)
    if not ok.any():
        return np.broadcast_to(DEFAULT_IRIS, polar.shape).astype(np.float32).copy()
    theta = np.arange(angles, dtype=np.float64)
    for r in range(rings):
        if ok[r]:
            src = np.nonzero(valid[r])[0]
            for c in range(3):
                out[r, ~valid[r], c] = np.interp(theta[~valid[r]], theta[src], polar[r, src, c],
                                                 period=angles)
    good = np.nonzero(ok)[0]
    for r in np.nonzero(~ok)[0]:
        out[r] = out[good[np.argmin(np.abs(good - r))]]
    return out


def build_eye_model(image: np.ndarray, landmarks: np.ndarray, texels_per_px: float = 1.0) -> EyeModel:
    """The eye layer's textures from a photo (RGB uint8) and its (478, 3) landmarks (pixels).
    `texels_per_px`: the photo's pixels per crop pixel (the textures are prefiltered to about
    1.25 texels per crop pixel, like the face's, so they do not alias)."""
    lm = np.asarray(landmarks, np.float64)
    down = _down(lm)
    h_img, w_img = image.shape[:2]
    whites, irises, radii, lashes, angles, rests = [], [], [], [], [], []
    lines, shut_lines = [], []
    for eye, (outer, inner, centre, boundary, upper, lower) in enumerate(EYES):
        mid, u, v, width = _eye_frame(lm, outer, inner, down)
        opening = lm[topology.opening_ring(upper, lower), :2]
        c_iris = lm[centre, :2]
        r_iris = float(np.mean(np.linalg.norm(lm[list(boundary), :2] - c_iris, axis=1)))
        r_iris = float(np.clip(IRIS_FIT * r_iris, 0.12 * width, 0.3 * width))
        # -- the sclera: eye-local grid at the photo's density, then prefiltered
        nx = int(round(float(np.clip(2 * SCLERA_X * width, 16, MAX_SCLERA))))
        ny = max(12, int(round(nx * SCLERA_Y / SCLERA_X)))
        gx = (np.arange(nx) + 0.5) / nx * 2 * SCLERA_X - SCLERA_X
        gy = (np.arange(ny) + 0.5) / ny * 2 * SCLERA_Y - SCLERA_Y
        X, Y = np.meshgrid(gx * width, gy * width)
        px = mid[0] + X * u[0] + Y * v[0]
        py = mid[1] + X * u[1] + Y * v[1]
        grid = cv2.remap(image, px.astype(np.float32), py.astype(np.float32), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        inside = np.zeros((h_img, w_img), np.uint8)
        cv2.fillPoly(inside, [np.round(opening).astype(np.int32)], 1)
        shrink = int(round(float(np.clip(0.06 * width, 1, MAX_SHRINK))))
        inside = cv2.erode(inside, np.ones((2 * shrink + 1, 2 * shrink + 1), np.uint8))
        vis = cv2.remap(inside, px.astype(np.float32), py.astype(np.float32), cv2.INTER_NEAREST,
                        borderValue=0).astype(bool)
        far = np.hypot(px - c_iris[0], py - c_iris[1]) > 1.2 * r_iris
        sclera_ok = vis & far
        if sclera_ok.sum() >= MIN_SEEN_WHITE:
            # The white a photo shows is mostly in the lids' shadow, crossed by lashes and
            # veins; an eye opened wider shows it lit. The sclera's colour is the brightest
            # quarter of what is visible, whitened (`_whiten`); its fall-off towards the corners
            # (`_corner_fit`) and the layer's own lid shadow give it its shape.
            seen = grid[sclera_ok].astype(np.float32)
            lum = seen @ LUMA
            colour = _whiten(seen[lum >= np.percentile(lum, 75)].mean(0), image, lm)
        else:
            colour = _whiten(DEFAULT_SCLERA, image, lm)
        whites.append((colour, gx, ny, _corner_fit(grid, sclera_ok, gx, colour), grid, sclera_ok))
        # -- the iris: polar samples, occluded angles filled per ring
        theta = np.arange(IRIS_ANGLES) / IRIS_ANGLES * 2 * np.pi
        rho = (np.arange(IRIS_RINGS) + 0.5) / IRIS_RINGS
        T, P = np.meshgrid(theta, rho)
        ipx = (c_iris[0] + r_iris * P * np.cos(T)).astype(np.float32)
        ipy = (c_iris[1] + r_iris * P * np.sin(T)).astype(np.float32)
        polar = cv2.remap(image, ipx, ipy, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        ivis = cv2.remap(inside, ipx, ipy, cv2.INTER_NEAREST, borderValue=0).astype(bool)
        irises.append(_fill_rings(_no_highlights(polar, ivis), ivis))
        radii.append(r_iris / width)
        angles.append(np.arctan2(u[1], u[0]))
        rests.append(((c_iris - mid) @ u / width, (c_iris - mid) @ v / width))
        lash_pts = np.round(lm[list(upper[2:-2]), :2]).astype(int)
        lash_pts[:, 0] = np.clip(lash_pts[:, 0], 0, w_img - 1)
        lash_pts[:, 1] = np.clip(lash_pts[:, 1], 0, h_img - 1)
        lashes.append(image[lash_pts[:, 1], lash_pts[:, 0]].astype(np.float32).min(0))
        line = lash_line(image, lm, eye, r_iris)
        lines.append(lashes[-1] if line is None else line[0])
        shut_lines.append(lashes[-1] if line is None else line[1])
    fits = [fit for *_, fit, _, _ in whites if fit is not None]
    scleras = []
    for colour, gx, ny, fit, grid, seen in whites:
        a = fit if fit is not None else (float(np.mean(fits)) if fits else CORNER_SHADE_DEFAULT)
        shade = 1.0 - a * np.clip(np.abs(gx) / 0.5, 0.0, 1.0) ** CORNER_POWER
        sclera = (colour[None, None, :] * shade[None, :, None]).repeat(ny, axis=0).astype(np.float32)
        sclera = _photo_white(sclera, grid.astype(np.float32), seen, len(gx) / (2 * SCLERA_X))
        f = min(1.0, 1.25 / max(texels_per_px, 1e-6))
        if f < 1.0:
            sclera = cv2.resize(sclera, (max(8, round(len(gx) * f)), max(6, round(ny * f))),
                                interpolation=cv2.INTER_AREA)
        scleras.append(sclera)
    hs = max(s.shape[0] for s in scleras)
    ws = max(s.shape[1] for s in scleras)
    sclera = np.stack([cv2.resize(s, (ws, hs), interpolation=cv2.INTER_LINEAR) for s in scleras])
    return EyeModel(sclera=sclera.astype(np.float32), iris=np.stack(irises).astype(np.float32),
                    iris_radius=np.asarray(radii, np.float32),
                    iris_angle=np.asarray(angles, np.float32), iris_rest=np.asarray(rests, np.float32),
                    lash=np.stack(lashes).astype(np.float32),
                    lash_line=np.stack(lines).astype(np.float32),
                    lash_shut=np.stack(shut_lines).astype(np.float32))


def lash_line(image: np.ndarray, lm: np.ndarray, eye: int, iris_radius: float) -> tuple[np.ndarray, np.ndarray] | None:
    """((3,), (3,) float32) the colours of the photo's upper lash line over eye `eye` (index into
    EYES) of `image` (RGB) with landmarks `lm` (photo px; `iris_radius` px): open (a widened lid's)
    and shut; or None where it cannot be seen (fewer than LASH_COLUMNS[2] columns). Down each of
    LASH_COLUMNS columns across the eye clear of the iris (which the contour runs over, and whose
    darkest pixel is no lash), the luminance from LASH_REACH[0] eye widths above the upper contour
    to LASH_REACH[1] below it, and the colour at its darkest sample within the photo (a column
    with under half its length within it is left out): open, their median; shut, their darkest
    quarter's (the 25th percentile, each channel) times LASH_SHUT."""
    outer, inner, centre, _, upper, _ = EYES[eye]
    lm = np.asarray(lm, np.float64)
    mid, u, v, width = _eye_frame(lm, outer, inner, _down(lm))
    contour = (lm[list(upper), :2] - mid) / width
    cx, cy = contour @ u, contour @ v
    order = np.argsort(cx)
    iris_x = float((lm[centre, :2] - mid) @ u) / width
    step = 0.25 / width                                   # a quarter photo pixel, in eye widths
    colours = []
    lum = image.astype(np.float32) @ LUMA
    h, w = lum.shape
    for x in np.linspace(-LASH_COLUMNS[0], LASH_COLUMNS[0], LASH_COLUMNS[1]):
        if abs(x - iris_x) < LASH_IRIS_CLEAR * iris_radius / width:
            continue
        top = float(np.interp(x, cx[order], cy[order]))
        ys = np.arange(top - LASH_REACH[0], top + LASH_REACH[1], step)
        at = (mid + x * width * u + ys[:, None] * width * v).astype(np.float32)
        # past the photo's edge is no lash: read there (the border's black), an eye that the
        # edge cuts through had a black line
        inside = (at[:, 0] >= 0) & (at[:, 0] <= w - 1) & (at[:, 1] >= 0) & (at[:, 1] <= h - 1)
        if 2 * int(inside.sum()) < len(at):
            continue
        prof = cv2.remap(lum, at[:, :1], at[:, 1:], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel()
        k = int(np.argmin(np.where(inside, prof, np.inf)))
        colours.append(cv2.remap(image, at[k:k + 1, :1], at[k:k + 1, 1:], cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE).reshape(3))
    if len(colours) < LASH_COLUMNS[2]:
        return None
    colours_ = np.asarray(colours, np.float32)
    return (np.median(colours_, axis=0).astype(np.float32),
            (LASH_SHUT * np.percentile(colours_, 25, axis=0)).astype(np.float32))


def _photo_white(model: np.ndarray, grid: np.ndarray, seen: np.ndarray, per_width: float) -> np.ndarray:
    """The sclera texture: the photo's own white (`grid`, (H, W, 3) float32) where it shows
    (`seen`, (H, W) bool), and elsewhere the `model` white tinted and shaded as the white nearby
    is: `model` times the photo / model ratio averaged over the seen texels around
    (WHITE_REACH eye widths; `per_width` texels per eye width), going over to `model` itself
    where none are near. An eye at rest is the photo's, with its warm corners and the lids'
    shade; what a wider eye or a turned one shows continues it."""
    w = seen.astype(np.float32)
    if w.sum() < MIN_SEEN_WHITE:     # a few stray texels: lashes or a lid's edge, not a white
        return model
    sigma = max(WHITE_REACH * per_width, 1.0)
    ratio = np.where(seen[..., None], grid / np.maximum(model, 1.0), 0.0).astype(np.float32)
    num = cv2.GaussianBlur(ratio, (0, 0), sigma)
    den = cv2.GaussianBlur(w, (0, 0), sigma)[..., None]
    near = den / (den + WHITE_EVIDENCE)
    filled = model * (1.0 + near * (num / np.maximum(den, 1e-6) - 1.0))
    own = cv2.GaussianBlur(w, (0, 0), 0.7)[..., None] * w[..., None]   # a soft border, not a step
    return (filled * (1.0 - own) + grid * own).astype(np.float32)


def _corner_fit(grid: np.ndarray, seen: np.ndarray, gx: np.ndarray, colour: np.ndarray) -> float | None:
    """The sclera's fall-off `a` (module doc, CORNER_POWER) that best fits the photo's visible
    white: per grid column (`gx`, eye widths) with `seen` texels, the median luminance of `grid`
    over `colour`'s, least squares, within CORNER_SHADE; None where fewer than 3 columns show
    any (the other eye's fit, or CORNER_SHADE_DEFAULT, is used)."""
    lum = grid.astype(np.float32) @ LUMA
    ax = np.clip(np.abs(gx) / 0.5, 0.0, 1.0) ** CORNER_POWER
    cols = [j for j in np.nonzero(ax > 0.05)[0] if seen[:, j].sum() >= 2]
    if len(cols) < 3:
        return None
    ratio = np.array([np.median(lum[seen[:, j], j]) for j in cols]) / max(float(colour @ LUMA), 1.0)
    k = ax[cols]
    return float(np.clip(k @ (1.0 - ratio) / (k @ k), *CORNER_SHADE))


def _bilinear(xp, tex, e, x, y):
    """Bilinear samples of textures `tex` (E, H, W, 3) at texel coordinates (x, y) of texture
    index `e` (all 1-D, same length), x wrapped when the texture is periodic in x (never here
    but for the iris's angle, which the caller wraps), clamped at the border."""
    h, w = tex.shape[1], tex.shape[2]
    x = xp.clip(x, 0.0, w - 1.0)
    y = xp.clip(y, 0.0, h - 1.0)
    x0 = xp.floor(x).astype(np.int64)
    y0 = xp.floor(y).astype(np.int64)
    x1 = xp.minimum(x0 + 1, w - 1)
    y1 = xp.minimum(y0 + 1, h - 1)
    fx = (x - x0)[:, None]
    fy = (y - y0)[:, None]
    top = tex[e, y0, x0] * (1 - fx) + tex[e, y0, x1] * fx
    bot = tex[e, y1, x0] * (1 - fx) + tex[e, y1, x1] * fx
    return top * (1 - fy) + bot * fy


class EyeLayer:
    """Draws the eyeballs into the eye-fan pixels of a crop (see the module doc), and hides the
    lower lid's lashes as the eye shuts (`lid_uv`): a closed eye shows one lash line, the upper
    lid's, as a real one does, instead of the photo's two lash bands pressed together.
    eyeballs=False: only the lids and the lash line are drawn, the openings keep what is under
    them (the swap shows the driver's own eyes there)."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, rig: Rig, ctx=None, eyeballs: bool = True):
        self.ctx = ctx if ctx is not None else CpuContext()
        self.eyeballs = bool(eyeballs)
        a = rig.crop_from_image
        crop_per_px = float(np.hypot(a[0, 0], a[0, 1]))
        model = build_eye_model(image, landmarks, texels_per_px=1.0 / max(crop_per_px, 1e-9))
        self.model = model
        up = self.ctx.upload
        self.sclera = up(np.ascontiguousarray(model.sclera))
        self.iris = up(np.ascontiguousarray(model.iris))
        self.lash = up(np.ascontiguousarray(model.lash))
        self.lash_line = up(np.ascontiguousarray(model.lash_line))
        self.lash_shut = up(np.ascontiguousarray(model.lash_shut))
        self.iris_radius = up(model.iris_radius)
        self.iris_angle = up(model.iris_angle)
        self.iris_rest = up(model.iris_rest)
        self.rig = rig
        lm = np.asarray(landmarks, np.float64)
        down = _down(lm)
        self._lower = [np.array(e[5][1:-1]) for e in EYES]
        self._upper = [np.array(e[4][2:-2]) for e in EYES]
        self._rest_gap, self._lash_shift, self._lid_shift = [], [], []
        for outer, inner, _, _, upper, lower in EYES:
            _, _, v, width = _eye_frame(lm, outer, inner, down)
            self._rest_gap.append(self._gap(lm, upper, lower) / width)
            self._lash_shift.append(LASH_BAND * width * v)      # photo px, down the face
            self._lid_shift.append(-LID_MARGIN * width * v)    # photo px, up the face
        self._photo_landmarks = lm[: topology.N_LANDMARKS].copy()
        self._rest_tops, _ = _lid_heights(lm)
        self._build_lids(image, lm, rig)
        lo, hi = rig.ranges["eyes"]
        self.lo, self.hi = lo, hi
        self.per_eye = (hi - lo) // 2
        self.upper_count = len(topology.RIGHT_EYE_UPPER) - 1   # fan triangles along the upper lid
        self._fan = np.asarray(rig.triangles)[lo:hi]   # (ring i, ring i + 1, centre) per triangle
        # each fan triangle's vertices in the photo (the warp's texture coordinates), eye-local
        # (eye widths): a pixel's barycentrics say where in the photo's eye the warp drew it from
        local = np.empty((len(self._fan), 3, 2), np.float32)
        for e, (outer, inner, *_) in enumerate(EYES):
            mid, u, v, width = _eye_frame(lm, outer, inner, down)
            tris = self._fan[e * self.per_eye:(e + 1) * self.per_eye]
            d = np.asarray(rig.attributes, np.float64)[tris, :2] - mid          # (n, 3, 2) photo px
            local[e * self.per_eye:(e + 1) * self.per_eye] = np.stack([d @ u, d @ v], -1) / width
        self._fan_local = up(local)
        # ... and how far (eye widths, along the eye's down axis) `lid_uv` moves each of those
        # vertices' texture as the eye shuts, per unit of closure
        lid = np.zeros((len(self._fan), 3), np.float32)
        for e in range(2):
            tris = slice(e * self.per_eye, (e + 1) * self.per_eye)
            fan = self._fan[tris]
            lid[tris] = np.where(np.isin(fan, self._lower[e]), LASH_BAND,
                                 np.where(np.isin(fan, self._upper[e]), -LID_MARGIN, 0.0))
        self._fan_lid = up(lid)

    def _build_lids(self, image: np.ndarray, lm: np.ndarray, rig: Rig) -> None:
        """The closed lids' tables: which triangle belongs to which eye's lid (`_lid_eye`, −1
        elsewhere), each lid triangle's vertex colours and edge values (1 on the contour, 0.5 on
        the first ring above it, 0 on the second), and each lid's contour and first ring."""
        tris = np.asarray(rig.triangles)
        lo, hi = rig.ranges["face"]
        eye_of = np.full(len(tris), -1, np.int8)
        colour = np.zeros((rig.vertex_count, 3), np.float32)
        edge = np.zeros(rig.vertex_count, np.float32)
        reach = np.ones(rig.vertex_count, np.float32)
        side = np.zeros(rig.vertex_count, np.float32)
        self._lid_contour, self._lid_all = [], []
        cheek = np.median([_skin_at(image, lm[i, :2]) for i in _CHEEKS], axis=0)
        crease = np.zeros((rig.vertex_count, 3), np.float32)
        adj = topology.vertex_adjacency()
        for e, (_, _, _, _, upper, lower) in enumerate(EYES):
            region, ring1, ring2 = lid_region(tris[lo:hi], upper, lower)
            eye_of[lo + region] = e
            # one colour per lid: the cheeks', tinted towards the median of the skin at the
            # second ring and at its light (a brow hair, a shadow or a lash under a few of its
            # points does not change it), at least LID_FLOOR of the cheeks' (`lid_colour`)
            around = np.array([_skin_at(image, lm[r, :2]) for r in ring2])
            skin = lid_colour(np.median(around, axis=0), cheek)
            colour[np.concatenate([ring2, ring1, upper])] = skin
            # the crease: the photo's own skin at the second ring, and at each first-ring vertex
            # that of its second-ring neighbours (the socket's shade and make-up just above it)
            crease[ring2] = around
            at = {int(r): k for k, r in enumerate(ring2)}
            for v in ring1:
                near = [at[int(j)] for j in adj[v] if int(j) in at]
                socket = np.median(around[near], axis=0) if near else skin
                crease[v] = _lab_mix(skin, socket, light=CREASE_LIGHT, chroma=1.0)
            crease[list(upper)] = skin
            edge[ring1] = 0.5
            edge[list(upper)] = 1.0
            # tapered towards the corners by where each vertex lies along the eye (the photo's
            # frame): the band's ends met the canthus with an edge
            mid, u, _, width = _eye_frame(lm, EYES[e][0], EYES[e][1], _down(lm))
            pts = np.concatenate([upper, ring1, ring2])
            along = np.abs((lm[pts, :2] - mid) @ u) / width
            x = np.clip((LID_TAPER[1] - along) / (LID_TAPER[1] - LID_TAPER[0]), 0.0, 1.0)
            reach[pts] = x * x * (3.0 - 2.0 * x)
            side[pts] = np.clip(along / 0.5, 0.0, 1.0) ** 2
            self._lid_contour.append(np.array(upper))
            self._lid_all.append(np.concatenate([upper, ring1, ring2]))
        grains, at = skin_grain(image, lm[:topology.N_LANDMARKS], float(np.hypot(*rig.crop_from_image[0, :2])))
        grain_at = np.zeros((rig.vertex_count, 2), np.float32)   # the lids use face landmarks only
        grain_at[:len(at)] = at
        up = self.ctx.upload
        self._grain = up(grains)
        self._lid_grain_at = up(np.ascontiguousarray(grain_at[tris]))  # (T, 3 vertices, 2)
        self._lid_eye = up(eye_of)
        self._lid_colour = up(np.ascontiguousarray(colour[tris]))     # (T, 3 vertices, 3)
        self._lid_crease = up(np.ascontiguousarray(crease[tris]))     # (T, 3 vertices, 3)
        self._lid_edge = up(np.ascontiguousarray(edge[tris]))         # (T, 3 vertices)
        self._lid_reach = up(np.ascontiguousarray(reach[tris]))       # (T, 3 vertices)
        self._lid_side = up(np.ascontiguousarray(side[tris]))         # (T, 3 vertices)

    def opening(self, fr: np.ndarray) -> np.ndarray:
        """(2,) each eye's opening / the photo's (1: as in the photo). `fr`: `frames(vertices)`."""
        return fr[:, 9] / np.maximum(np.asarray(self._rest_gap), 1e-6)

    def closure(self, fr: np.ndarray) -> np.ndarray:
        """(2,) how shut each eye is: 1 − `opening`, clipped to [0, 1]."""
        return np.clip(1.0 - self.opening(fr), 0.0, 1.0)

    def descent(self, vertices: np.ndarray) -> np.ndarray:
        """(2,) how far each upper lid has come down from the photo's, in units of the photo's
        opening, clipped to [0, 1] (`_lid_heights`: measured with the face moved back onto the
        photo's by its rigid points, so a head that pitches does not read as lids that move).
        `vertices`: posed rig vertices (crop pixels)."""
        tops, _ = _lid_heights(vertices, self._photo_landmarks)
        return np.clip((self._rest_tops - tops) / np.maximum(np.asarray(self._rest_gap), 1e-6), 0.0, 1.0)

    def apply_lids(self, gbuf, vertices: np.ndarray, out, fr: np.ndarray | None = None) -> None:
        """Draw each shutting eye's lid band as lid skin with one lash line (module doc), in
        place on `out` (S, S, 3) float32. `vertices`: posed rig vertices (host, crop px)."""
        xp = self.ctx.xp
        fr = self.frames(vertices) if fr is None else fr
        x = np.maximum(np.clip((self.descent(vertices) - LID_FROM) / (LID_TO - LID_FROM), 0.0, 1.0),
                       np.clip((self.closure(fr) - SHUT_FROM) / (SHUT_TO - SHUT_FROM), 0.0, 1.0))
        strength = x * x * (3.0 - 2.0 * x)
        size = out.shape[0]
        for e in range(2):
            if strength[e] <= 0.0:
                continue
            box = np.asarray(vertices[self._lid_all[e], :2], np.float64)
            x0, y0 = np.clip(np.floor(box.min(0)).astype(int), 0, size)
            x1, y1 = np.clip(np.ceil(box.max(0)).astype(int) + 1, 0, size)
            if x1 <= x0 or y1 <= y0:
                continue
            tri = gbuf.tri_id[y0:y1, x0:x1]
            ys, xs = xp.nonzero((tri >= 0) & (self._lid_eye[xp.maximum(tri, 0)] == e))
            if len(ys) == 0:
                continue
            t = tri[ys, xs]
            b = gbuf.bary[y0 + ys, x0 + xs]
            w = _vertex_weights(xp, b)                      # (N, 3)
            edge = (w * self._lid_edge[t]).sum(1)          # 1 on the contour, 0 two rings up
            lower = xp.clip(2.0 * edge - 1.0, 0.0, 1.0)    # 0 on the first ring, 1 on the contour
            skin = (w[:, :, None] * self._lid_colour[t]).sum(1)
            shade = (1.0 - lower) ** LID_CREASE            # 1 on the first ring, 0 on the contour
            skin += shade[:, None] * ((w[:, :, None] * self._lid_crease[t]).sum(1) - skin)
            skin = shaded(xp, skin, lid_shade(xp, lower, (w * self._lid_side[t]).sum(1))[:, None])
            gx, gy = (w * self._lid_grain_at[t, :, 0]).sum(1), (w * self._lid_grain_at[t, :, 1]).sum(1)
            skin *= (1.0 + _bilinear_wrapped(xp, self._grain[e], gx, gy))[:, None]
            fade = xp.clip(2.0 * edge, 0.0, 1.0)           # the second ring's band: fading in
            reach = (w * self._lid_reach[t]).sum(1)         # fading out past the corners
            a = (float(strength[e]) * fade * fade * (3.0 - 2.0 * fade) * reach)[:, None]
            out[y0 + ys, x0 + xs] = out[y0 + ys, x0 + xs] * (1.0 - a) + skin * a
            self._lash_line(out, vertices[self._lid_contour[e], :2], self._lash_px(fr, e, LASH_WIDTH),
                            float(strength[e]), self.lash_shut[e], LASH_SOFT)

    @staticmethod
    def _lash_px(fr: np.ndarray, e: int, fraction: float) -> float:
        """Eye `e`'s lash line width in crop px: `fraction` of the posed eye's width (`fr`:
        `frames(vertices)`), at least 1.5 px."""
        return max(fraction * float(fr[e, 6]), 1.5)

    def _lash_line(self, out, contour: np.ndarray, width: float, strength: float, colour,
                   soft: float) -> None:
        """Draw a lash line in place on `out`: a band `width` crop px wide at half its darkness
        about the posed lid `contour` ((M, 2), corner to corner), tapering towards the corners
        (`LASH_TAPER`), over whatever lies there (a shut lid's: the lid above, the collapsed
        opening and the lower lid below), at opacity `strength`. Its edges ramp linearly over
        `soft` × its width (at least a pixel, anti-aliased), centred on the band's edge: from 1 on,
        the line is dark only on its middle, a ridge (`LASH_SOFT`)."""
        xp = self.ctx.xp
        c = np.asarray(contour, np.float64)
        size = out.shape[0]
        pad = 0.5 * width * (1.0 + soft) + 1.0
        x0, y0 = np.clip(np.floor(c.min(0) - pad).astype(int), 0, size)
        x1, y1 = np.clip(np.ceil(c.max(0) + pad).astype(int) + 1, 0, size)
        if x1 <= x0 or y1 <= y0:
            return
        a, d = c[:-1], np.diff(c, axis=0)                   # segments: start, direction
        length = np.linalg.norm(d, axis=1)
        start = np.concatenate([[0.0], np.cumsum(length)[:-1]]) / max(float(length.sum()), 1e-9)
        share = length / max(float(length.sum()), 1e-9)
        seg = self.ctx.upload(np.concatenate([a, d, (d * d).sum(1, keepdims=True).clip(1e-9),
                                              start[:, None], share[:, None]], axis=1).astype(np.float32))
        gy, gx = xp.mgrid[y0:y1, x0:x1].astype(np.float32)
        px, py = gx.reshape(-1, 1), gy.reshape(-1, 1)       # (N, 1) against (S,) segments
        t = xp.clip(((px - seg[:, 0]) * seg[:, 2] + (py - seg[:, 1]) * seg[:, 3]) / seg[:, 4], 0.0, 1.0)
        dist2 = (px - seg[:, 0] - t * seg[:, 2]) ** 2 + (py - seg[:, 1] - t * seg[:, 3]) ** 2
        k = xp.argmin(dist2, axis=1)
        n = xp.arange(len(k))
        dist = xp.sqrt(dist2[n, k])
        along = seg[k, 5] + t[n, k] * seg[k, 6]             # 0 at one corner, 1 at the other
        half = 0.5 * width * _lash_taper(xp, along)
        ramp = xp.maximum(2.0 * soft * half, 1.0)
        alpha = (strength * xp.clip((half - dist) / ramp + 0.5, 0.0, 1.0)).reshape(y1 - y0, x1 - x0, 1)
        box = out[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = box * (1.0 - alpha) + colour * alpha

    @staticmethod
    def _gap(lm: np.ndarray, upper, lower) -> float:
        return float(np.mean([np.linalg.norm(lm[a, :2] - lm[b, :2])
                              for a, b in zip(upper[2:-2], lower[2:-2])]))

    def lid_uv(self, uv: np.ndarray, vertices: np.ndarray, to_texture: np.ndarray) -> np.ndarray | None:
        """Texture coordinates with the lower lids' contour moved down the photo by up to
        LASH_BAND eye widths and the upper lids' middle up by up to LID_MARGIN as each eye shuts
        (closure = 1 − opening / the photo's opening), or
        None when both eyes are at least as open as in the photo. `uv` (V, 2) host texture
        coordinates; `to_texture` (2, 2): photo px → texture px (the prefilter's scale)."""
        closures = self.closure(self.frames(vertices))
        moved = None
        for e in range(2):
            closure = float(closures[e])
            if closure <= 0.0:
                continue
            if moved is None:
                moved = np.array(uv, copy=True)
            moved[self._lower[e]] += (closure * to_texture @ self._lash_shift[e]).astype(moved.dtype)
            moved[self._upper[e]] += (closure * to_texture @ self._lid_shift[e]).astype(moved.dtype)
        return moved

    def frames(self, vertices: np.ndarray) -> np.ndarray:
        """(2, 10) float64 per eye: mid x, y, u x, y, v x, y, width, iris centre x, y (in eye
        widths, eye-local), the lids' mean gap (eye widths), from posed vertices (crop pixels)."""
        lm = np.asarray(vertices[: topology.N_LANDMARKS], np.float64)
        down = _down(lm)
        rows = []
        for outer, inner, centre, _, upper, lower in EYES:
            mid, u, v, width = _eye_frame(lm, outer, inner, down)
            d = lm[centre, :2] - mid
            gap = np.mean([np.linalg.norm(lm[a, :2] - lm[b, :2])
                           for a, b in zip(upper[2:-2], lower[2:-2])]) / width
            rows.append([mid[0], mid[1], u[0], u[1], v[0], v[1], width, d @ u / width,
                         d @ v / width, gap])
        return np.asarray(rows, np.float64)

    def apply(self, gbuf, vertices: np.ndarray, out) -> None:
        """Overwrite the eye-opening pixels of `out` (S, S, 3) float32 with the eyeballs.
        `vertices`: the frame's posed rig vertices (host, crop pixels)."""
        fr = self.frames(vertices)
        self.apply_lids(gbuf, vertices, out, fr)
        # eyeballs=False: the openings are the caller's (the swap shows the driver's eyes)
        if self.eyeballs and not self._draw_eyeballs(gbuf, vertices, out, fr):
            return       # no opening shows (both eyes shut): no lash line to widen either
        self._wide_lashes(out, vertices, fr)

    def _draw_eyeballs(self, gbuf, vertices: np.ndarray, out, fr: np.ndarray) -> bool:
        """The sclera and iris into the eye-fan pixels of `out`, their edge at the lids
        anti-aliased, but for the lids' margin (`MARGIN`: a band along each contour that keeps
        what the warp drew, except where the warp drew the photo's iris and the drawn one is not,
        `STALE_IRIS`, all but the lash line's strip, `STALE_KEEP`); False when no eye-fan pixel
        shows."""
        xp = self.ctx.xp
        tri = gbuf.tri_id
        in_eye = (tri >= self.lo) & (tri < self.hi)
        ys, xs = xp.nonzero(in_eye)
        if len(ys) == 0:
            return False
        t = tri[ys, xs] - self.lo
        e = (t >= self.per_eye).astype(np.int64)
        k = t - e * self.per_eye                          # fan triangle within its eye
        rest = np.asarray(self._rest_gap, np.float64)
        shown = np.stack([np.maximum(CLOSED, SHOWN_FROM * rest), np.maximum(OPEN, SHOWN_TO * rest)], 1)
        # the margin narrows with the opening as the photo's margin, stretched with the lids, does
        narrow = np.clip(self.opening(fr), 0.0, 1.0)[:, None]
        closure = self.closure(fr)[:, None]
        f = self.ctx.upload(np.hstack([fr, shown, narrow, closure]).astype(np.float32))[e]   # (N, 14)
        px = xs.astype(np.float32) - f[:, 0]
        py = ys.astype(np.float32) - f[:, 1]
        qx = (px * f[:, 2] + py * f[:, 3]) / f[:, 6]     # eye-local, eye widths
        qy = (px * f[:, 4] + py * f[:, 5]) / f[:, 6]
        sh, sw = self.sclera.shape[1], self.sclera.shape[2]
        sclera = _bilinear(xp, self.sclera, e, (qx + SCLERA_X) / (2 * SCLERA_X) * sw - 0.5,
                           (qy + SCLERA_Y) / (2 * SCLERA_Y) * sh - 0.5)
        radius = self.iris_radius[e]
        dx = (qx - f[:, 7]) / radius
        dy = (qy - f[:, 8]) / radius
        ahead = self.iris_rest[e]
        gx, gy = dx - CATCHLIGHT[0], dy - CATCHLIGHT[1]     # the cornea's reflection stays round
        dx, dy = _foreshorten(xp, dx, dy, f[:, 7] - ahead[:, 0], f[:, 8] - ahead[:, 1])
        rho = xp.sqrt(dx * dx + dy * dy)
        px_per_radius = radius * f[:, 6]
        # the drawn iris (turned), grown as the photo's below is: at rest the two cancel
        drawn = _disc(xp, rho - 0.5 / px_per_radius, 1.0 + STALE_IRIS, px_per_radius)
        # the iris turns with the eye (roll): its angle in the photo = the eye-local angle plus
        # the photo's eye axis angle (the (u, v) frames are rotations of the image axes)
        ang = xp.arctan2(dy, dx) + self.iris_angle[e]
        col = (ang % (2 * np.pi)) / (2 * np.pi) * IRIS_ANGLES - 0.5
        col = col % IRIS_ANGLES
        iris = _bilinear_periodic(xp, self.iris, e, col, rho * IRIS_RINGS - 0.5)
        iris *= (1.0 - LIMBUS * xp.clip((rho - 0.78) / 0.22, 0.0, 1.0) ** 2)[:, None]
        # one catchlight, up and to the outer side of the pupil, fixed to the iris
        glint = xp.exp(-(gx * gx + gy * gy) / (2 * CATCHLIGHT[2] ** 2))[:, None] * 0.85
        iris = iris * (1 - glint) + 245.0 * glint
        a_iris = xp.clip((1.0 - rho) / 0.08 + 0.5, 0.0, 1.0)[:, None]
        colour = sclera * (1 - a_iris) + iris * a_iris
        b = gbuf.bary[ys, xs]
        edge = xp.clip(1.0 - b[:, 1], 0.0, 1.0)          # 0 at the fan centre, 1 at the lid
        upper = k < self.upper_count
        shadow = xp.where(upper, UPPER_SHADOW, LOWER_SHADOW).astype(np.float32)
        colour *= (1.0 - shadow * edge ** 6)[:, None]   # a narrow shadow at the lid's rim
        gap = f[:, 9]
        show = xp.clip((gap - f[:, 10]) / (f[:, 11] - f[:, 10]), 0.0, 1.0)[:, None]
        colour = colour * show + self.lash[e] * (1 - show)
        # the lid's edge, anti-aliased: a pixel within a pixel of it is partly lid (what the
        # frame shows under it), so the opening's border does not step from pixel to pixel
        # and the lids' own margin: within MARGIN eye widths of the contour, what the warp drew
        # there (the photo's lid margin, lashes and corners, which move with the lids) stays
        rim = b[:, 1] * self.ctx.upload(fan_edge_heights(vertices, self._fan))[t]   # px from the lid
        margin = xp.where(upper, MARGIN[0], MARGIN[1]).astype(np.float32) * f[:, 6] * f[:, 12]
        cover = xp.clip(rim - margin + 0.5, 0.0, 1.0)
        # ... but not the photo's own iris there once the drawn one has moved off it: where the
        # warp took the pixel from the photo's iris (its source in the photo from the fan
        # triangle's barycentrics, the lids' texture moved as `lid_uv` moves it) and the drawn
        # iris is not there, the band shows the eyeball (a look aside left a dark arc under the
        # lid). The photos' disc is measured in the photo, its edge in the posed eye's pixels.
        sx, sy = self._photo_source(t, b, f[:, 13])
        sx, sy = sx - ahead[:, 0], sy - ahead[:, 1]              # from the photo's iris (eye widths)
        # the photo's iris whole to its edge (the ramp's half pixel outside it)
        photos = _disc(xp, xp.sqrt(sx * sx + sy * sy) / radius - 0.5 / px_per_radius,
                       1.0 + STALE_IRIS, px_per_radius)
        # the lash line itself stays: the band's outer STALE_KEEP, and at least a pixel, goes on
        # showing what the warp drew
        keep = xp.maximum(STALE_KEEP * margin, np.float32(STALE_KEEP_PX))
        stale = xp.maximum(photos - drawn, 0.0) * xp.clip(rim - keep + 0.5, 0.0, 1.0)
        cover = xp.maximum(cover, stale)
        out[ys, xs] = colour * cover[:, None] + out[ys, xs] * (1.0 - cover[:, None])
        return True

    def _photo_source(self, t, b, closure):
        """Where in the photo's eye the warp took eye-fan pixels from: eye-local x, y (eye widths,
        the photo's eye frame) of each pixel, from its fan triangle `t` (index within the eyes'
        range), its barycentrics `b` (N, 2) and its eye's `closure` (N,), by which `lid_uv` has
        moved the lids' texture."""
        xp = self.ctx.xp
        w = _vertex_weights(xp, b)                          # (N, 3)
        src = self._fan_local[t]                            # (N, 3, 2) the triangle's vertices
        shift = closure[:, None] * self._fan_lid[t]         # (N, 3) lid_uv's move of them
        return (w * src[:, :, 0]).sum(1), (w * (src[:, :, 1] + shift)).sum(1)

    def _wide_lashes(self, out, vertices: np.ndarray, fr: np.ndarray) -> None:
        """Draw the upper lash line of each eye open wider than the photo's, in place on `out`
        (`WIDE_LASH`). `fr`: `frames(vertices)`."""
        wide = self.opening(fr) - 1.0
        for e in range(2):
            strength = min(max((float(wide[e]) - WIDE_LASH[0]) / (WIDE_LASH[1] - WIDE_LASH[0]), 0.0), 1.0)
            if strength >= 0.01:       # fainter is invisible (under 2 levels), and costs a pass
                width = self._lash_px(fr, e, WIDE_LASH_WIDTH)
                contour = np.asarray(vertices[self._lid_contour[e], :2], np.float64)
                length = np.linalg.norm(np.diff(contour, axis=0), axis=1)
                along = np.concatenate([[0.0], np.cumsum(length)]) / max(float(length.sum()), 1e-9)
                lift = WIDE_LASH_OUTSIDE * 0.5 * width * _lash_taper(np, along)     # (M,) crop px
                self._lash_line(out, contour + lift[:, None] * _outward(contour, -fr[e, 4:6]), width,
                                strength, self.lash_line[e], WIDE_LASH_SOFT)


def lid_shade(xp, lower, side):
    """A shut lid's light (a factor, 1 where it faces the camera) at `lower` (0 on the first ring
    above the contour, 1 on the contour) and `side` ((|x| / half the eye's width)², x along the
    eye): darker towards the lash line (`LID_ROLL`) and towards the corners (`LID_SIDES`), never
    lighter further down the lid (no fold line across it)."""
    start, depth, power = LID_ROLL
    roll = xp.clip((lower - start) / (1.0 - start), 0.0, 1.0) ** power
    return (1.0 - depth * roll) * (1.0 - LID_SIDES * side)


def shaded(xp, colour, light):
    """`colour` ((N, 3) RGB 0..255) shaded by `light` ((N, 1) factors ≤ 1) as skin is: darker,
    its CIE a*, b* kept (SHADE_CHROMA), no channel below 0."""
    dark = colour * light
    luma = (dark * xp.asarray(LUMA)).sum(1, keepdims=True)
    return xp.maximum(luma + (dark - luma) * xp.maximum(light, 1e-3) ** -SHADE_CHROMA, 0.0)


def _outward(contour: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(M, 2) unit normals of a lid `contour` ((M, 2), corner to corner) at its points (from the
    neighbours' chord), each turned to the side of `up` (2,): where the lid slopes down to a
    corner, a shift along the eye's up axis alone leaves part of a line inside the opening."""
    chord = np.gradient(contour, axis=0)
    normal = np.stack([-chord[:, 1], chord[:, 0]], axis=1)
    normal *= np.where(normal @ up < 0.0, -1.0, 1.0)[:, None]
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)


def _lash_taper(xp, along):
    """A lash line's half width, as a fraction of its middle's, at `along` (0 at one corner, 1 at
    the other) along its contour (`LASH_TAPER`)."""
    return xp.clip(xp.minimum(along, 1.0 - along) / LASH_TAPER[0], LASH_TAPER[1], 1.0)


def _vertex_weights(xp, b):
    """(N, 3) each pixel's weights of its triangle's three vertices, in the triangle's vertex
    order, from the G-buffer's barycentrics `b` (N, 2) (those of vertices 1 and 2)."""
    return xp.stack([1.0 - b[:, 0] - b[:, 1], b[:, 0], b[:, 1]], axis=1)


def _disc(xp, rho, radius: float, px_per_unit):
    """Coverage of a disc of `radius` at distances `rho` from its centre (both in units of
    `px_per_unit` pixels, a scalar or per point): 1 inside, 0 outside, anti-aliased over a pixel."""
    return xp.clip((radius - rho) * px_per_unit + 0.5, 0.0, 1.0)


def _foreshorten(xp, dx, dy, ox, oy):
    """Iris-local offsets (`dx`, `dy`, in iris radii) of the pixels of an iris whose centre sits
    (`ox`, `oy`) eye widths from where it looks straight ahead (the photo's, which is taken as
    looking at the camera; its iris was sampled as a disc), stretched along that way by 1 / cos θ
    (sin θ = offset / EYEBALL, cos θ at least FORESHORTEN_MIN): the polar texture, sampled at
    them, draws a disc turned θ away, an ellipse narrowed towards the corner it looks at."""
    off = xp.sqrt(ox * ox + oy * oy)
    cos = xp.sqrt(xp.maximum(1.0 - (off / np.float32(EYEBALL)) ** 2, np.float32(FORESHORTEN_MIN ** 2)))
    safe = xp.maximum(off, np.float32(1e-6))
    turned = off > 1e-6
    nx = xp.where(turned, ox / safe, np.float32(1.0))
    ny = xp.where(turned, oy / safe, np.float32(0.0))
    along = (dx * nx + dy * ny) / cos
    across = dy * nx - dx * ny
    return along * nx - across * ny, along * ny + across * nx


def _bilinear_wrapped(xp, tile, x, y):
    """Bilinear samples of one (G, G) `tile` at (x, y) (1-D, texels), periodic in both axes."""
    h, w = tile.shape
    x0f, y0f = xp.floor(x), xp.floor(y)
    fx, fy = x - x0f, y - y0f
    x0 = x0f.astype(np.int64) % w
    y0 = y0f.astype(np.int64) % h
    x1, y1 = (x0 + 1) % w, (y0 + 1) % h
    top = tile[y0, x0] * (1 - fx) + tile[y0, x1] * fx
    bot = tile[y1, x0] * (1 - fx) + tile[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def _bilinear_periodic(xp, tex, e, x, y):
    """`_bilinear` with x periodic over the texture's width (the iris's angle)."""
    h, w = tex.shape[1], tex.shape[2]
    y = xp.clip(y, 0.0, h - 1.0)
    x0 = xp.floor(x).astype(np.int64)
    y0 = xp.floor(y).astype(np.int64)
    x1 = (x0 + 1) % w
    x0 = x0 % w
    y1 = xp.minimum(y0 + 1, h - 1)
    fx = (x - xp.floor(x))[:, None]
    fy = (y - y0)[:, None]
    top = tex[e, y0, x0] * (1 - fx) + tex[e, y0, x1] * fx
    bot = tex[e, y1, x0] * (1 - fx) + tex[e, y1, x1] * fx
    return top * (1 - fy) + bot * fy
