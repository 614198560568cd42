"""The synthetic mouth interior of the photo tiers (the warp tier; the atlas tier where no
keyframe opens as wide as asked): where the lips part wider than the avatar's photo shows, the
mouth-fan pixels get teeth, a tongue and a dark graded throat, drawn in absolute face units.

Geometry comes from the pixels themselves: per column of the mouth opening, the first and last
mouth-fan pixel are the upper and lower lip edges, so every pixel knows how far it hangs below
the upper lip (`a`) and stands above the lower lip (`b`), in crop pixels. Sizes are fractions of
the avatar's interocular distance (outer eye corners, `iod`), so a slightly parted mouth shows
the tips of the upper teeth in the lip's shadow over a dark gap, never a full white bar:

- upper teeth hang from under the upper lip; their visible length grows with the opening up to
  the crown's (~0.115 iod at the incisors), faster in a smile (a mouth wider than at rest: the
  lips draw back off the teeth) than when the jaw drops with the lips at rest. Lower teeth rise
  from behind the lower lip when the mouth is wide open, and in a smile up to just behind the
  upper tips (a grin's rows meet). The tips lie on a curve anchored
  at the mouth's centre (teeth belong to the jaw): the sides of a round mouth cover them, a
  smile's raised corners show more; and where a smile lifts the upper lip's sides above its
  centre, no column's tips stop short of the share of its own opening the centre shows (the
  smile arc: the tips follow the lifted lower lip instead of leaving a dark band under them).
  A grin that parts the lips without widening them is not told from a dropped jaw by the
  lips' shape, so the driver's own mouth says it: where most of its opening shows teeth
  (`FaceState.teeth`, `realtime.face.teeth`; `GRIN`), the avatar's teeth are drawn as a
  smile's, both rows meeting, in full light.
- a photo that shows its own teeth (a smiling portrait) gives the drawn teeth their colour
  (`PHOTO_TEETH`): the warp tier shows its teeth un-stretched under the upper lip and the drawn
  cavity below them (`realtime.tiers.warp.PhotoMouth`).
- the teeth stand on an arch (radius `ARCH_R`): a pixel's lateral offset gives its place along
  the arch, hence which tooth it is on, how foreshortened that tooth is, and how dark (teeth
  turn away from the light toward the back). Each tooth is rounded (a falloff across it, rounded
  tips) with a gap to its neighbours, dark at the tips and faint along the body, and has its own
  shade (`TOOTH_VALUE`, `TOOTH_CHROMA`: canines darker and yellower), yellower at the gum. The
  teeth's level follows the skin's luma (`TEETH_LEVEL`; on a dark skin no lower than
  `TEETH_LEVEL_MIN`, nor than the white of the photo's eyes says, `WHITE_LEVEL`), their tint the
  skin's (`TEETH_SKIN_TINT`), no more colourful than that white (`photo_white`: a dark skin's
  colour is its own, not the light's; where no white shows, than an eval driver's,
  `NO_WHITE_SPREAD`; a greyscale photo's teeth and tongue are grey, `COLOURFUL`), and their
  fine lines (gaps, tips) are no sharper than the photo (`photo_blur`).
- a tongue (rounded, reddish, from the avatar's lip colour) lies low in the mouth behind the
  lower teeth, in the shade of the lips and the upper teeth (darker than the lips), at most
  a quarter of the opening high, with a crease where the lower lip meets it (so a tracker
  finds the lower lip at the lip, not at the tongue's top); where the driver's own open mouth
  shows its tongue (`FaceState.tongue`, `realtime.face.teeth`; `TONGUE_SHOWN`) and the mouth is
  wide open, it is higher and lighter. The throat is the lip colour darkened (`THROAT`),
  darkest away from the lips and at the corners; light entering the mouth grows
  with the opening (on the teeth, which stand at its front, it is full from a smile's
  opening). Puckered lips (a mouth much narrower than the photo's) hide the teeth. Known
  limit: the width is the mouth's width on screen, so a strongly turned head (> ~35°)
  starts to read as a pucker.

Array-module agnostic (numpy, or cupy on the GPU path): only elementwise work on the mouth-fan
pixels and a few reductions over the mouth's bounding box.
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.core.colour import LUMA
from realtime.core.context import CpuContext
from realtime.core.ramp import smoothstep
from realtime.face import geometry, topology
from realtime.mesh.rig import Rig

# All lengths in interocular units (outer eye corners, ~90 mm on an adult).
ARCH_R = (0.30, 0.27)                        # dental arch radius: upper, lower
# Teeth from the midline backwards (incisors, lateral incisors, canines, premolars, molars):
# width along the arch, and crown length (a central incisor's crown is ~10.5 mm, the outer eye
# corners ~90 mm apart; at 0.095 a smile's teeth stopped well short of its lower lip).
UPPER_W = (0.094, 0.072, 0.083, 0.078, 0.078, 0.11, 0.11)
UPPER_H = (0.115, 0.1, 0.105, 0.09, 0.082, 0.072, 0.066)
LOWER_W = (0.062, 0.066, 0.077, 0.077, 0.077, 0.12, 0.12)
LOWER_H = (0.08, 0.08, 0.085, 0.075, 0.07, 0.065, 0.06)
UPPER_SHOW = (0.0, 0.6)     # visible upper-teeth length = min(crown, SHOW[0] + SHOW[1]·opening)
# ... and in a smile: the lips draw back and up off the teeth, so the upper teeth fill most of
# the opening down to the lower lip (SMILE_SHOW of it, for SHOW[1]) once the mouth is wider
# than at rest by SMILE_WIDEN of the rest width; a jaw dropped with the lips at rest keeps
# SHOW[1]. (At 0.6 a smile showed a dark crescent under short teeth: d19 #246, d0 #33.)
SMILE_SHOW = 0.9
SMILE_WIDEN = 0.2
LOWER_SHOW = (0.2, 0.5)     # lower teeth: hidden up to an opening of [0], fully shown [1] later
# ... and in a smile, whatever the opening: lips drawn back off the teeth show the lower row
# too, from the lower lip up to OVERBITE behind the upper tips (up to its crown): without it a
# smile showed a dark band under its upper row (d0 #33: 0.17 of the opening darker than a
# quarter of the cheeks, against the driver's 0.09; 0.10 with it). A grin that parts the lips
# without widening them (d14 #27) is told by the driver's own teeth (GRIN).
OVERBITE = 0.02
# The driver's teeth share (`FaceState.teeth`) over which its mouth counts as a smile's for the
# teeth (0 at [0], fully at [1]). Per clip (`realtime.face.teeth.teeth_share` of every frame):
# d14's clenched grin (frames 22-51) 0.81-0.88, her other frames 0; d0 (smiling) median 0.73;
# d19 0 with his lips closed, up to 0.87 when his smile shows teeth; d10 (talking, teeth often
# in view) median 0.28, max 0.71.
GRIN = (0.25, 0.55)
#: ... and a grin's rows meet however far its lips part: the lower row rises past its crown (the
#: lower lip drawn down off the gum) up to this many crowns. Capped at one crown, the astronaut's
#: wide grin on d0 (#44-50: opening 0.23 iod, teeth 0.73) showed a dark crescent 0.03 iod high
#: between her own upper teeth and the drawn lower row, where the driver's rows touch.
GRIN_CROWNS = 2.0
TONGUE_W, TONGUE_H = 0.2, 0.14               # half width; height (at most TONGUE_SHARE × the opening)
# The tongue lies back in the mouth, in the shade of the lips and the upper teeth: TONGUE_LIGHT
# of the mouth's light (`light`, as on the throat), at most TONGUE_SHARE of the opening high (so
# TONGUE_H only from an opening of 0.56), and a crease where the lower lip's inner face meets it
# (TONGUE_CREASE: its depth at the lip's edge, and the distance in iod over which it fades, an
# e-fold). A tongue lit like the lips, a third of the opening high and flush against the lower
# lip read as the lower lip itself: the tracker put a moustached face's lower lip on the
# tongue's top and read his open mouth half shut (s12 ← d10: mouth r 0.85 -> 0.91, gain 0.58 ->
# 0.70; s5 ← d10 gain 0.53 -> 0.61). The price: d10's own tongue is large and bright, so her
# self-drive mouth PSNR against the real frames falls 20.75 -> 20.46 dB (d0, d14, d19 within
# 0.01 dB; d11 22.75 -> 22.64). A tongue raised off the lip (a dark gap under it) read worse
# (r 0.82), and a top fading into the throat alone reached 0.88.
TONGUE_SHARE = 0.25
TONGUE_LIGHT = 0.7
TONGUE_CREASE = (0.7, 0.04)
#: ... but a driver whose own open mouth shows its tongue (`FaceState.tongue`,
#: `realtime.face.teeth.tongue_share`: 0 at TONGUE_GAUGE[0], fully at [1]) gets a tongue as
#: high as TONGUE_SHOWN[0] of the opening (up to TONGUE_SHOWN[1] iod) in TONGUE_SHOWN[2] of the
#: mouth's light, still behind the lower teeth and creased at the lip, once the mouth is open
#: TONGUE_OPENING iod (0 at [0], fully at [1]; the lower teeth stand in front of it from
#: LOWER_SHOW[0]). d10's open mouths read 0.43 (median; her tongue fills the lower half of
#: #96-100), d0's (teeth over a dark throat) 0.07 at most: his avatars keep the small dim
#: tongue. s12 ← d10 (the moustache that read a lit tongue as its lower lip) mouth_open gain
#: (r): 0.713 (0.904) before; 0.620 (0.849) with a tongue 0.45 of the opening high at 0.9 of
#: the light from any opening (and a lighter throat); 0.676 (0.885) with this one from any
#: opening; 0.682 (0.896) from (0.2, 0.3); 0.701 (0.905) from (0.25, 0.35).
TONGUE_GAUGE = (0.15, 0.4)
TONGUE_SHOWN = (0.35, 0.16, 0.8)
TONGUE_OPENING = (0.25, 0.35)
#: The throat: the lip colour, THROAT[0] of it at the lips' edges, THROAT[1] deep in the
#: mouth, graded over THROAT[2] iod (an e-fold) from the nearer lip. Nearly black
#: ((17, 11, 7) deep on the astronaut; d10's own throat above her tongue is about (90, 32, 45)),
#: because the tracker reads a lighter or redder mouth as less open and s12 ← d10's mouth_open r
#: must stay ≥ 0.9 (issue #13 item 5): 0.905 as here; 0.879 at lip × (0.45, 0.2) tinted (1, 0.7,
#: 0.75) over 0.07 iod; 0.889 at (0.25, 0.11) tinted (1.4, 0.72, 0.8) over 0.05, the same luma;
#: 0.895 at (0.25, 0.12) tinted (1.2, 0.85, 0.9) (helper 114's sweep, with the tongue above).
THROAT = (0.25, 0.1, 0.035)
TIP_CURVE = (0.5, 0.3)      # the teeth tips' curve (upper rises, lower sinks to the sides)
TIP_ROUND = 0.012           # how far a tooth's corners are rounded off
SMILE_LIFT = 0.02           # the upper lip's sides this far above its centre: a smile's arc
GAP_W = 0.004               # width of the gap between two teeth ...
# ... and how dark it is at the root, as a share of its darkness at the tip (it rises as the
# cube towards the tip: real teeth touch along their body, the gap shows at the tips). A gap as
# dark along half the tooth drew a clenched grin as a row of blocks (d14 #27). With these
# (0.006 and 0.5 rising linearly before), self-drive mouth PSNR against the real frames: d14
# 26.65 -> 26.67 dB, d19 29.86 -> 29.88, d0 27.635 -> 27.629, d10 level, d11 22.79 -> 22.75;
# the mouth SSIM up on all five.
GAP_ROOT = 0.1
#: A tooth's body is darker towards its sides, by BODY_ROUND at its edge (a smoothstep across it,
#: flat where two teeth meet). At 0.15 × across² two teeth met in a V whose sides fell 3-4 levels
#: a pixel: at the photo tier's crop (a tooth 5-7 px wide) every boundary drew as a dark line, and
#: with the gaps a fine grid over d14's grin (her soft video's own teeth show none).
BODY_ROUND = 0.08
#: The teeth's shade along the arch: a tooth turned `theta` from the camera is lit
#: 0.15 + 0.85·cos(theta)**TEETH_TURN (Lambert's cosine), and the teeth darken towards the
#: mouth's corners by TEETH_CORNER[1], from TEETH_CORNER[0] of the half width out (smoothstep
#: to the corner: the dark buccal corridor). With cos**1.5 and the corners darkening from 0.65,
#: every smile's teeth fell off from a third of the way out and ended in black wedges at the
#: corners. Measured on the self-drives' smiles (`bench --self-drive`) as the share of the
#: inner-lip opening's outer 40 % (of the half width) darker than 0.35 of its brightest tenth,
#: driver / before / now: d0 #33 0.49 / 0.62 / 0.49, #47 0.50 / 0.65 / 0.54; d14 #22 0.07 /
#: 0.20 / 0.13, #27 0.04 / 0.19 / 0.13; d19 #246 0.31 / 0.50 / 0.35. Lighter still (cos**0.75,
#: corners from 0.85) matched d14 (0.05) but cost d0's and d19's mouth PSNR against their real
#: frames 0.4 and 0.3 dB (their teeth are darker and yellower than the drawn ones), where this
#: costs 0.2 and 0.1 and gains d14 0.4.
TEETH_TURN = 1.0
TEETH_CORNER = (0.75, 0.85)
#: Natural teeth are not one colour. From the midline back (incisors, lateral incisors, canines,
#: premolars, molars): each tooth's lightness (TOOTH_VALUE), and how much of the teeth's own
#: yellow it has (TOOTH_CHROMA: the power of TEETH_TINT it takes), as multiples of the central
#: incisor's: the lateral incisors a little darker, the canines the darkest and most chromatic of
#: the front teeth (as shade-guide surveys of natural dentitions find them); and no tooth quite
#: the shade of its twin across the midline (TOOTH_SIDE: lightness × (1 + it) on the right,
#: (1 − it) on the left; the central incisors match). Along a tooth the cervical end (at the
#: gum) has up to 1 + CERVICAL times the yellow, fading towards the tip, whose translucent edge
#: has half of it. One uniform ivory drew d0's and d19's yellow, uneven teeth as a pale even
#: bar (d19: CIELAB b* 12.3 against his 15.1, L* sd within the teeth 4.4 against 6.6). More of
#: the light's cast instead (of the skin's tint) drew a warm-lit face's canines orange.
TOOTH_VALUE = (1.0, 0.96, 0.88, 0.94, 0.94, 0.9, 0.9)
TOOTH_CHROMA = (1.0, 1.3, 2.0, 1.6, 1.6, 1.6, 1.6)
TOOTH_SIDE = (0.0, -0.03, 0.025, -0.02, 0.03, -0.02, 0.02)
CERVICAL = 1.0
REST_WIDTH = (0.36, 0.5)    # the avatar's rest mouth width, clipped to this range
PUCKER = (0.8, 0.6)         # teeth fade out as the mouth narrows from [0] to [1] × rest width
PUCKER_RIM = 0.05           # a full pucker's inner-lip rim, inside the lip contour
LIGHT_OPENING = 0.16        # light in the mouth: dim when barely open, full at this opening
TEETH_LIGHT_OPENING = 0.1  # ... on the teeth, at the front of the mouth: full sooner (a smile)
# The teeth's level (luma of the colour drawn, before shading): TEETH_LEVEL[0] × 255 ×
# (the skin's luma / 255) ** TEETH_LEVEL[1]. Teeth and skin are lit by one light and seen through
# one exposure, but a darker skin is a darker surface, not a dimmer light, so the teeth follow the
# skin less than in proportion (the power). On the eval drivers' own teeth (brightest 40 % of the
# inner mouth, widest-mouth frames) against their skin (`_SKIN_POINTS`, frame 0): luma 218 / 210
# (d14), 164 / 153 (d0), 160 / 125 (d19), which this gives once shaded. The level used to follow
# the skin's mean only up to 155 and then stay at 229 (an ivory's): d0's teeth were drawn at
# CIELAB L 77 against his 67 (pale), d14's shaded to 82 against her 86 (grey). And at least
# TEETH_LEVEL_MIN (where the ivory stopped before: 0.55 × 1.1 of its 229 at the light's floor):
# a skin as dark as luma 40-70 is a dark skin more than a dim light, and the teeth, a pale
# surface, stay teeth-bright; the power alone drew a skin of luma 50's teeth at 118 (CIELAB L 47
# once shaded, a grey-brown), luma 40's at 105 (L 42), every eval face's at 186 or more.
TEETH_LEVEL = (1.1, 0.55)
TEETH_LEVEL_MIN = 139.0
#: ... and, where the photo shows the white of its eyes (`photo_white`), at least WHITE_LEVEL × that
#: white's luma: teeth and the white are both pale, unpigmented and lit by the face's light, where
#: a dark skin's luma says little of the light (TEETH_LEVEL_MIN drew a skin of (75, 45, 30) under
#: whites of CIELAB L 75 teeth of L 58, grey; now L 88). Self-drive (`bench --self-drive`), the drivers' own
#: teeth (the lit half of the pixels `realtime.face.teeth` finds inside the inner lip, the 5-8
#: widest-mouth frames that show teeth) have 1.19-1.24 × the luma of frame 0's white where the
#: teeth show broadly (d0 167 / 135, d14 216 / 182, d19 154 / 126; 1.02-1.23 × the skin's), and
#: the drawn teeth shade to 0.86-0.89 of their colour's luma, so the colour that matches them is
#: 1.44, 1.34, 1.42 × the white (d10's slivers under her lip 1.22; d11's read takes in her tongue,
#: 1.1). A floor under the skin's rule below all those: no eval driver's or eval profile's teeth
#: reach it (each drawn as before); a dark skin's under a white of luma 180 are drawn at 216.
WHITE_LEVEL = 1.2
# The teeth's tint. Teeth are lit by the light that lights the face, and take its colour and the
# mouth's: on the eval drivers' own teeth (brightest quarter of the inner mouth, open-mouth frames;
# d0, d14, d19) the tint (RGB / luminance) is TEETH_TINT × the skin's tint ** TEETH_SKIN_TINT,
# per channel within 0.03 (fitted in log space; the skin's tint from frame 0, `_SKIN_POINTS`).
# An ivory with a tenth of the skin mixed in was too cool on all three (d0: 1.05 / 0.99 / 0.92
# against his 1.10 / 0.97 / 0.88): bluish white.
TEETH_TINT = (1.0, 1.0, 0.955)
TEETH_SKIN_TINT = 0.53
#: ... but a skin's tint is its own pigment's as well as the light's: a dark skin's melanin read
#: as a warm light, and a skin of RGB (75, 45, 30) got teeth of (171, 130, 101), CIELAB b* 22, a
#: tan. The white of the eye is lit by the same light and has no pigment, so the skin's tint to
#: TEETH_SKIN_TINT keeps its hue but spreads (its largest channel less its smallest, over its luma)
#: no more than the photo's visible white does (`photo_white`; where it shows too little, no more than
#: NO_WHITE_SPREAD). On the astronaut with her skin recoloured to (75, 45, 30) and her eyes kept: teeth b*
#: 7 (22 before). The white alone as the light (its tint for the skin's) predicted the eval drivers'
#: own teeth no better: CIELAB a*b* distance on d0 / d14 / d19 2.0 / 8.5 / 5.5 (their brightest
#: 40 % inner-mouth pixels; the skin's rule 1.9 / 6.1 / 3.0), and a painting's white is its paint
#: (s9's, yellow varnish: teeth b* 56); the skin's spread capped by the white's 2.2 / 6.1 / 4.2
#: (brightest 12 %: 1.1 / 5.4 / 4.4, skin's 1.2 / 5.4 / 5.1).
#: The white is read from the photo's eye openings (inside the lid contours by SCLERA_ERODE eye
#: widths, outside SCLERA_IRIS iris radii of the iris's centre), both eyes' pixels together, at
#: least SCLERA_PIXELS of them, as the mean of those between the SCLERA_BAND luma percentiles
#: (lit white, not lashes, the lids' shade or a catchlight); a read darker than SCLERA_MIN_LUMA ×
#: the skin's luma is mostly lashes and shadow, not a white, and is not used.
SCLERA_ERODE = 0.06
SCLERA_IRIS = 1.2
SCLERA_PIXELS = 12
SCLERA_BAND = (60.0, 95.0)
SCLERA_MIN_LUMA = 0.5
#: A pixel with a channel at SCLERA_CLIPPED or above is clipped, its hue lost, and is not read: an
#: overexposed photo's whites read (255, 255, 255) and took all the skin's warmth from the teeth
#: (the neutral ivory that reads bluish white), where a clipped white says nothing of the light.
SCLERA_CLIPPED = 250.0
#: Where the photo shows no white to read (eyes shut or turned away, lashes, a clipped white), the
#: light's spread is capped at NO_WHITE_SPREAD, the most that frame 0 of an eval driver's white
#: reads (d19 0.23, d14 0.22, d10 0.21, d0 0.17, d11 0.16): a skin of RGB (75, 45, 30) spreads its
#: light 0.45-0.46 (the skin's rule alone drew her teeth tan, CIELAB a* 7-11, b* 20-22 on s1, s5,
#: s12 recoloured with their eyes shut; now a* 3-4, b* 12-13), a light skin's 0.12-0.26 (the eval
#: drivers'), a warm light one's more (s1 0.30, s9 0.35: their teeth with eyes shut are capped too,
#: s9's b* 34 -> 24; with their whites read, as enrolled, as before).
NO_WHITE_SPREAD = 0.23
#: The colours the cavity makes up (the teeth's own yellow, TEETH_TINT and TOOTH_CHROMA; the
#: tongue's pink) in full where the skin's tint spreads (its largest channel less its smallest,
#: over its luma) COLOURFUL or more, fading to grey with it: a greyscale photo gets grey teeth and
#: tongue (they were drawn yellow, a canine's CIELAB b* 8 at the gum, and pink into a grey
#: image). The eval photos' and drivers' skins spread 0.18 (s12) to 0.61, and keep them in full.
COLOURFUL = 0.1
_SKIN_POINTS = (50, 280, 101, 330, 36, 266, 195, 197, 199, 175)   # cheeks, nose sides and bridge, chin
TONGUE_RGB = (190.0, 95.0, 95.0)
TEETH_COUNT = len(UPPER_W)                   # per side


def teeth_level(skin_luma: float, white_luma: float | None = None) -> float:
    """The luma (0..255) of the teeth drawn for a face whose skin's luma is `skin_luma` and
    whose eyes' white (`photo_white`) reads `white_luma`, None where none is read (0..255; see
    TEETH_LEVEL, TEETH_LEVEL_MIN, WHITE_LEVEL)."""
    level = TEETH_LEVEL[0] * 255.0 * (max(skin_luma, 0.0) / 255.0) ** TEETH_LEVEL[1]
    floor = TEETH_LEVEL_MIN if white_luma is None else max(TEETH_LEVEL_MIN, WHITE_LEVEL * white_luma)
    return float(min(max(level, floor), 255.0))


def colourfulness(tone: np.ndarray) -> float:
    """0 (grey) … 1: how much of the colours it makes up (`COLOURFUL`) the cavity draws for a
    face whose skin's RGB is `tone` (3,)."""
    tone = np.asarray(tone, np.float64)
    return float(np.clip(np.ptp(tone) / max(float(tone @ LUMA), 1.0) / COLOURFUL, 0.0, 1.0))


def _edges(widths) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(widths), [1e3]]).astype(np.float32)


class MouthCavity:
    """Shades the mouth-fan pixels of a G-buffer (see the module docstring)."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, ctx=None):
        h, w = image.shape[:2]
        lm = np.asarray(landmarks, np.float64)

        def mean_colour(idx):
            pts = np.round(lm[list(idx), :2]).astype(np.int64)
            pts[:, 0] = np.clip(pts[:, 0], 0, w - 1)
            pts[:, 1] = np.clip(pts[:, 1], 0, h - 1)
            return image[pts[:, 1], pts[:, 0]].astype(np.float32).mean(0)

        lip = mean_colour(topology.OUTER_LIP)
        skin = mean_colour((50, 280, 4, 151))
        self.light = float(np.clip(skin.mean() / 170.0, 0.55, 1.1))
        a, b = topology.EYE_OUTER
        self.iod_image = float(np.linalg.norm(lm[a, :2] - lm[b, :2]))
        # The photo's inner mouth width (corner to corner), iod units, within a normal range
        # (a grinning photo must not make every normal mouth look puckered).
        self.rest_width = float(np.clip(np.linalg.norm(lm[78, :2] - lm[308, :2]) / self.iod_image,
                                        *REST_WIDTH))
        # the skin's tint: the median of small patches (not a pore or a highlight) over the
        # cheeks, nose and chin (not blush alone, nor a forehead that may be under a fringe)
        r = max(1, int(round(0.03 * self.iod_image)))
        patches = [image[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1].reshape(-1, 3).mean(0)
                   for x, y in np.round(lm[list(_SKIN_POINTS), :2]).astype(np.int64)
                   if 0 <= x < w and 0 <= y < h]
        tone = np.median(patches, axis=0).astype(np.float32) + 1.0 if patches else skin + 1.0
        colour = colourfulness(tone)
        own_tint = np.array(TEETH_TINT, np.float32) ** np.float32(colour)   # the teeth's own yellow
        light = (tone / float(tone @ LUMA)) ** TEETH_SKIN_TINT
        white = photo_white(image, lm, float(tone @ LUMA))
        unit = light / float(light @ LUMA)
        spread = float(np.ptp(unit))
        cap = NO_WHITE_SPREAD if white is None else float(np.ptp(white / float(white @ LUMA)))
        if spread > cap:
            light = 1.0 + (unit - 1.0) * np.float32(cap / spread)
        tint = own_tint * light
        tint = tint / float(tint @ LUMA)
        level = teeth_level(float(tone @ LUMA), None if white is None else float(white @ LUMA))
        # (at most as bright as keeps every channel of the tint: a clipped red drew a pale
        # skin's teeth green-grey, d14's CIELAB a* −1 against her 8)
        teeth = (min(level, 255.0 / float(tint.max())) * tint).astype(np.float32)
        # A photo that shows its own teeth (a smiling portrait) gives them their colour: the warp
        # tier shows them under the upper lip (`warp.PhotoMouth`), the drawn teeth go on below.
        own = _photo_teeth(image, lm, lip, self.iod_image)
        if own is not None:
            teeth = own
        self.photo_teeth = own is not None
        #: the photo's blur (`photo_blur`), interoculars
        self.blur = photo_blur(image, lm) / max(self.iod_image, 1e-6)
        #: the luma of the teeth drawn (the photo's own, where it shows them)
        self.teeth_luma = float(teeth @ LUMA)
        # The tongue: half a standard tongue pink at the avatar's light, half its lip colour.
        tongue = (0.5 * np.array(TONGUE_RGB, np.float32) * self.light
                  + 0.5 * lip * np.array([1.0, 0.8, 0.8], np.float32))
        if colour < 1.0:
            tongue = float(tongue @ LUMA) + np.float32(colour) * (tongue - float(tongue @ LUMA))
        # Array-module agnostic: the shading runs where the G-buffer is (numpy, or cupy on the
        # GPU); `ctx` uploads the constants once (on the CPU upload is the identity).
        self.ctx = ctx if ctx is not None else CpuContext()
        self.xp = self.ctx.xp
        up = self.ctx.upload
        # the teeth as the light's cast (their colour over their own tint: TEETH_TINT, as colourful
        # as the photo) and that tint's logarithm: a tooth TOOTH_CHROMA times as chromatic has the
        # tint to that power (more of the teeth's own yellow, not more of the light's colour)
        self.colours = {k: up(np.ascontiguousarray(v, np.float32)) for k, v in (
            ("teeth", teeth), ("teeth_cast", teeth / own_tint), ("teeth_tint", np.log(own_tint)), ("luma", LUMA),
            ("throat", lip * THROAT[0]), ("deep", lip * THROAT[1]), ("tongue", tongue), ("lip", lip))}
        # per tooth (right side, then left; one past the last: the arch's end), for the shading
        self._tooth_value = up(np.concatenate([np.array(TOOTH_VALUE + TOOTH_VALUE[-1:], np.float32)
                                               * (1 + sign * np.array(TOOTH_SIDE + TOOTH_SIDE[-1:], np.float32))
                                               for sign in (1, -1)]))
        self._tooth_chroma = up(np.array(TOOTH_CHROMA + TOOTH_CHROMA[-1:], np.float32))
        self._teeth = [(r, up(_edges(wd)), up(np.array(list(wd) + [wd[-1]], np.float32)),
                        up(np.array(list(ht) + [ht[-1]], np.float32)))
                       for r, wd, ht in ((ARCH_R[0], UPPER_W, UPPER_H), (ARCH_R[1], LOWER_W, LOWER_H))]
        self._iod: tuple | None = None

    def iod_px(self, rig: Rig) -> float:
        """The avatar's interocular distance in crop pixels."""
        if self._iod is None or self._iod[0] is not rig:
            a = rig.crop_from_image
            self._iod = (rig, self.iod_image * float(np.hypot(a[0, 0], a[0, 1])))
        return self._iod[1]

    def apply(self, gbuf, rig: Rig, out, real: float = 0.0, teeth: float = 0.0, photo=None,
              tongue: float = 0.0) -> None:
        """Blend the synthetic cavity into `out` on the mouth-fan pixels of `gbuf`, keeping a
        fraction `real` of what is there (the real mouth interior of the source). `teeth` and
        `tongue`: the shares of the driver's open mouth that show teeth and tongue
        (`FaceState.teeth`, `FaceState.tongue`).

        `photo` (instead of `real`): the source's own mouth interior, per pixel, as a function
        ``photo(ys, xs, top, bottom, there)`` of the N mouth pixels (crop rows and columns), the
        rows of the upper and lower lip's edges in their columns (float32) and what is there
        ((N, 3)), returning None (keep what is there) or ((N, 3) colours, (N,) share):
        out = share·colours + (1 − share)·cavity (`realtime.tiers.warp.PhotoMouth`)."""
        if photo is None and real >= 1.0:
            return
        xp = self.xp
        lo, hi = rig.ranges["mouth"]
        in_mouth = (gbuf.tri_id >= lo) & (gbuf.tri_id < hi)
        ys, xs = xp.nonzero(in_mouth)
        if int(ys.size) == 0:
            return
        # one host transfer for the box (on the GPU each scalar read is a sync)
        y0, y1, x0, x1 = (int(v) for v in self.ctx.to_host(xp.stack([ys.min(), ys.max() + 1,
                                                                     xs.min(), xs.max() + 1])))
        box = in_mouth[y0:y1, x0:x1]
        if photo is not None:
            top, bottom = _lip_edges(xp, box)
            c = xs - x0
            got = photo(ys, xs, top[c] + np.float32(y0), bottom[c] + np.float32(y0), out[ys, xs])
            if got is None:
                return
            kept, share = got[0], got[1][:, None]
        else:
            kept, share = out[ys, xs], real
        colour = self.shade(box, ys - y0, xs - x0, self.iod_px(rig), teeth, tongue)
        out[ys, xs] = share * kept + (1.0 - share) * colour

    def shade(self, box, ys, xs, iod: float, teeth: float = 0.0, tongue: float = 0.0):
        """(N, 3) colours of the mouth pixels (`ys`, `xs`) of the boolean mask `box` (the
        mouth's bounding box), for an interocular distance of `iod` pixels; `teeth` and
        `tongue` as in `apply`."""
        xp = self.xp
        f32 = np.float32
        h, w = box.shape
        top, bottom = _lip_edges(xp, box)
        gap = (bottom - top + 1) * box.any(axis=0)            # 0 where a column is empty
        cx = xp.arange(w, dtype=f32) - f32(0.5 * (w - 1))      # px from the mouth's centre
        mid = 0.5 * (top + bottom)
        centre = gap * (xp.abs(cx) <= max(1.0, 0.05 * iod))
        # All the scalars below in one host transfer (on the GPU each read is a sync).
        sums = xp.stack([gap.sum(), (gap * cx).sum(), (gap * cx * cx).sum(), (gap * mid).sum(),
                         (gap * cx * mid).sum(), centre.sum(), (centre * top).sum(),
                         (centre * bottom).sum(), (centre * cx).sum(), gap.max()])
        s_g, s_gc, s_gcc, s_gm, s_gcm, s_c, s_ct, s_cb, s_cx, g_max = (
            float(v) for v in self.ctx.to_host(sums))
        # The mouth's tilt (a rolled head): slope of the columns' mid-points, gap-weighted.
        slope = (s_gcm - s_gm / s_g * s_gc) / max(s_gcc, 1e-6)
        # Where the teeth and tongue hang from: the lips' edges at the mouth's centre.
        s_c = max(s_c, 1e-6)
        top_c = (s_ct - slope * s_cx) / s_c
        bottom_c = (s_cb - slope * s_cx) / s_c
        opening = g_max / iod                                  # iod units

        a = ys.astype(f32) - top[xs] + f32(0.5)                # px below the upper lip's edge
        b = bottom[xs] - ys.astype(f32) + f32(0.5)             # px above the lower lip's edge
        yl = ys.astype(f32) - f32(slope) * cx[xs]              # de-tilted row
        x = cx[xs] / f32(iod)                                  # from the mouth's centre, iod
        corner = xp.abs(x) / f32(max(0.5 * w / iod, 1e-3))     # 0 centre … 1 corner
        # Puckered lips (a mouth much narrower than at rest) stand in front of the teeth: the
        # teeth hide in the dark and less light gets in.
        rest = self.rest_width
        pucker = smoothstep((PUCKER[0] * rest - w / iod) / ((PUCKER[0] - PUCKER[1]) * rest))
        grin = smoothstep((float(teeth) - GRIN[0]) / (GRIN[1] - GRIN[0]))
        smile = max(smoothstep((w / iod / rest - 1.0) / SMILE_WIDEN), grin)
        show = UPPER_SHOW[1] + (SMILE_SHOW - UPPER_SHOW[1]) * smile
        reach = UPPER_SHOW[0] + show * opening      # the upper row's visible length (≤ its crowns)
        light, teeth_light = ((0.25 + 0.75 * smoothstep(opening / full)) * (1 - 0.4 * pucker)
                              for full in (LIGHT_OPENING, TEETH_LIGHT_OPENING))
        teeth_light += (1.0 - teeth_light) * grin    # a grin's teeth stand in the light
        c = self.colours

        # Throat: lip colour darkened, darkest far from the lips and at the corners.
        depth = xp.minimum(a, b) / f32(iod)
        k = (xp.exp(-depth / f32(THROAT[2])) * (1 - 0.85 * smoothstep((corner - 0.6) / 0.4)))[:, None]
        col = (c["deep"] + (c["throat"] - c["deep"]) * k) * f32(light)

        # Tongue: a dome low in the mouth, behind the lower teeth; larger and lighter where the
        # driver's own shows.
        shown = (smoothstep((float(tongue) - TONGUE_GAUGE[0]) / (TONGUE_GAUGE[1] - TONGUE_GAUGE[0]))
                 * smoothstep((opening - TONGUE_OPENING[0]) / (TONGUE_OPENING[1] - TONGUE_OPENING[0])))
        th = min(TONGUE_H + (TONGUE_SHOWN[1] - TONGUE_H) * shown,
                 (TONGUE_SHARE + (TONGUE_SHOWN[0] - TONGUE_SHARE) * shown) * opening) * iod
        tongue_light = TONGUE_LIGHT + (TONGUE_SHOWN[2] - TONGUE_LIGHT) * shown
        if th > 0.5:
            u2 = xp.clip((x / f32(TONGUE_W)) ** 2, 0, 1)
            t = f32(th) * xp.sqrt(1 - u2)                              # its height at x, px
            over = yl - f32(bottom_c) + t                              # px below its top
            alpha = xp.clip(over + 0.5, 0, 1)
            rel = xp.clip(over / xp.maximum(t, f32(1.0)), 0, 1)         # 0 top … 1 front
            shade = ((0.55 + 0.45 * xp.sqrt(rel)) * (0.65 + 0.35 * (1 - u2))
                     * (1 - 0.12 * xp.exp(-(x * f32(iod) / f32(1.2)) ** 2))   # median groove
                     * (1 - TONGUE_CREASE[0] * xp.exp(-b / f32(TONGUE_CREASE[1] * iod)))
                     * f32(tongue_light * light))
            col = col + (c["tongue"] * shade[:, None] - col) * alpha[:, None]

        # Lower teeth (only when wide open), then the upper teeth. Their tips lie on a curve
        # anchored at the mouth's centre (the teeth belong to the jaw, not to the lips): at
        # the sides of a round mouth the lips cover them, a smile's raised corners show more.
        # The teeth's fine lines (the gaps, the tips' edges) are no sharper than the photo's own
        # edges (`photo_blur`): a pixel's antialiasing (0.6 px) and the photo's blur add up (in
        # quadrature, as two blurs do).
        soft = float(np.hypot(0.6, self.blur * iod))
        ramp = 1.0 + 2.0 * (soft - 0.6)             # px over which a tip's edge fades in
        low_show = smoothstep((opening - LOWER_SHOW[0]) / (LOWER_SHOW[1] - LOWER_SHOW[0]))
        low_smile = smile * (opening - min(UPPER_H[0], reach) + OVERBITE)
        for upper in (False, True):
            if not upper and low_show <= 0 and low_smile <= 0:
                continue
            r, edges, widths, heights = self._teeth[0 if upper else 1]
            theta = xp.arcsin(xp.clip(x / f32(r), -1, 1))
            arc = f32(r) * xp.abs(theta)
            i = xp.clip(xp.searchsorted(edges, arc, side="right") - 1, 0, TEETH_COUNT)
            f = xp.clip((arc - edges[i]) / widths[i], 0, 1)             # across the tooth
            across = xp.abs(2 * f - 1)
            if upper:
                length = xp.minimum(heights[i], f32(reach))
                tip = f32(top_c) + (length - f32(TIP_CURVE[0]) * x * x) * f32(iod)
                # ... and, where a smile lifts the upper lip's sides above its centre, at least
                # as low as the same share of the column's own opening (the smile arc: the tips
                # follow the lifted lower lip); a round mouth's sides still cover them
                lip = top[xs] - f32(slope) * cx[xs]                      # de-tilted, as yl
                lifted = f32(top_c) - lip
                arc = lip + xp.minimum(heights[i] * f32(iod), f32(show) * gap[xs])
                tip = tip + xp.maximum(arc - tip, 0) * smoothstep(lifted / f32(SMILE_LIFT * iod))
                to_tip = tip - yl                                        # px above the tip
                dist, lip_dark = a, 0.5
            else:
                crown = heights[i] * f32(1.0 + (GRIN_CROWNS - 1.0) * grin)
                length = xp.maximum(heights[i] * f32(low_show), xp.minimum(crown, f32(low_smile)))
                tip = f32(bottom_c) - (length - f32(TIP_CURVE[1]) * x * x) * f32(iod)
                to_tip = yl - tip
                dist, lip_dark = b, 0.5
            to_tip = to_tip - f32(TIP_ROUND * iod) * across ** 4           # rounded tips
            alpha = (xp.clip(to_tip / f32(ramp) + 0.5, 0, 1) * f32(1 - pucker)
                     * xp.clip((f32(r) - xp.abs(x)) * f32(iod) + 0.5, 0, 1))   # arch's end
            cos = xp.maximum(xp.cos(theta), f32(0.0))
            # The dark gap between two teeth, drawn as its area over the pixel: a thin dark
            # line when the face is large, a faint one when a tooth is a few pixels wide.
            gap_px = f32(GAP_W * iod) * cos
            sigma = xp.maximum(f32(soft), 0.3 * gap_px)
            edge_px = xp.minimum(f, 1 - f) * widths[i] * cos * f32(iod)      # px to the gap
            down = xp.clip(1 - to_tip / xp.maximum(length * f32(iod), f32(1.0)), 0, 1)
            dark = (0.8 * xp.minimum(1, gap_px / (2.5 * sigma)) * xp.exp(-(edge_px / sigma) ** 2)
                    * (GAP_ROOT + (1 - GAP_ROOT) * down ** 3))           # dark at the tips
            # rounded body: darker towards its sides, with no crease where two teeth meet
            shade = ((1 - f32(BODY_ROUND) * smoothstep(across)) * (1 - dark)
                     * (0.15 + 0.85 * cos ** f32(TEETH_TURN))                 # turning away
                     * (1 - f32(TEETH_CORNER[1])                                # mouth corners
                        * smoothstep((corner - f32(TEETH_CORNER[0])) / f32(1 - TEETH_CORNER[0])))
                     * (1 - lip_dark * xp.exp(-dist / f32(0.022 * iod)))     # the lip's shadow
                     * (1 - 0.12 * smoothstep(down * 4 - 3))                    # translucent tip
                     * f32(teeth_light))
            # each tooth its own shade; more colour at the gum, less at the translucent tip
            chroma = (self._tooth_chroma[i] * (1 + f32(CERVICAL) * (1 - down) ** 2)
                      * (1 - 0.5 * smoothstep(down * 4 - 3)))
            value = self._tooth_value[i + (x < 0) * (TEETH_COUNT + 1)]
            tooth = c["teeth_cast"] * xp.exp(chroma[:, None] * c["teeth_tint"])
            tooth = xp.minimum(tooth * (value * f32(self.teeth_luma) / (tooth @ c["luma"]))[:, None], f32(255))
            col = col + (tooth * shade[:, None] - col) * alpha[:, None]

        # Puckered lips roll forward: their inner surface shows as a lip-coloured rim and
        # the dark hole is smaller than the lip contour.
        if pucker > 0:
            rim = f32(PUCKER_RIM * pucker * iod)
            to_edge = xp.minimum(xp.minimum(a, b), (1 - corner) * f32(0.5 * w))
            alpha = xp.clip(rim - to_edge + 0.5, 0, 1)
            shade = 0.75 - 0.35 * xp.clip(to_edge / xp.maximum(rim, f32(1.0)), 0, 1)
            col = col + (c["lip"] * shade[:, None] - col) * alpha[:, None]
        return col


#: The photo's own teeth: the brightest PHOTO_TEETH[0] of its mouth opening (the inner lip
#: contour), if at least PHOTO_TEETH[1] times as bright as its lips and no more coloured than
#: PHOTO_TEETH[2] (channel spread over luma; the astronaut's teeth 0.11), where
#: the lips part by PHOTO_TEETH[3] iod at least (the astronaut's 0.11).
PHOTO_TEETH = (0.25, 1.25, 0.35, 0.03)


def _photo_teeth(image: np.ndarray, lm: np.ndarray, lip: np.ndarray, iod: float):
    """The colour of the teeth the photo shows between its lips, or None (see PHOTO_TEETH)."""
    if geometry.mouth_opening(lm) < PHOTO_TEETH[3] * iod:
        return None
    ring = list(topology.INNER_LIP_UPPER) + list(topology.INNER_LIP_LOWER[::-1])
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(lm[ring, :2]).astype(np.int32)], 1)
    px = image[mask > 0].astype(np.float32)
    if len(px) < 12:
        return None
    luma = px @ LUMA
    bright = px[luma >= np.quantile(luma, 1.0 - PHOTO_TEETH[0])].mean(0)
    level = float(bright @ LUMA)
    if level < PHOTO_TEETH[1] * float(lip @ LUMA) or np.ptp(bright) > PHOTO_TEETH[2] * level:
        return None
    return np.minimum(bright, 255.0).astype(np.float32)


#: `photo_blur`: the share of the face's pixels that count as its sharpest edges, and the blur
#: (sigma, px) added to measure them by
BLUR_PROBE = (0.01, 1.5)


def photo_white(image: np.ndarray, landmarks: np.ndarray, skin_luma: float) -> np.ndarray | None:
    """The RGB (3,) float32 of the white of the eyes the photo `image` (H, W, 3) shows, or None
    where it shows too little of it (see SCLERA_ERODE .. SCLERA_MIN_LUMA); `skin_luma`: the
    skin's (0..255)."""
    lm = np.asarray(landmarks, np.float64)
    if len(lm) < topology.N_LANDMARKS:      # no iris landmarks
        return None
    h, w = image.shape[:2]
    seen = []
    for upper, lower, ring in ((topology.RIGHT_EYE_UPPER, topology.RIGHT_EYE_LOWER, topology.RIGHT_IRIS),
                               (topology.LEFT_EYE_UPPER, topology.LEFT_EYE_LOWER, topology.LEFT_IRIS)):
        opening = lm[topology.opening_ring(upper, lower), :2]
        x0, y0 = np.maximum(np.floor(opening.min(0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(opening.max(0)).astype(int) + 2, (w, h))
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(inside, [np.round(opening - (x0, y0)).astype(np.int32)], (1,))
        width = float(np.linalg.norm(lm[upper[0], :2] - lm[upper[-1], :2]))
        r = max(1, int(round(SCLERA_ERODE * width)))
        inside = cv2.erode(inside, np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(bool)
        centre = lm[ring[0], :2]
        r_iris = float(np.mean(np.linalg.norm(lm[list(ring[1:]), :2] - centre, axis=1)))
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside &= np.hypot(xx - centre[0], yy - centre[1]) > SCLERA_IRIS * r_iris
        seen.append(image[y0:y1, x0:x1][inside].astype(np.float32))
    pixels = np.concatenate(seen) if seen else np.zeros((0, 3), np.float32)
    pixels = pixels[pixels.max(1) < SCLERA_CLIPPED]
    if len(pixels) < SCLERA_PIXELS:
        return None
    luma = pixels @ LUMA
    lo, hi = np.percentile(luma, SCLERA_BAND)
    white = pixels[(luma >= lo) & (luma <= hi)].mean(0).astype(np.float32)
    return white if float(white @ LUMA) >= SCLERA_MIN_LUMA * skin_luma else None


def photo_blur(image: np.ndarray, landmarks: np.ndarray) -> float:
    """How soft the photo `image` (H, W, 3) uint8 is about the face of `landmarks` (478, 2+), in
    its pixels: the Gaussian sigma its sharpest edges (the top BLUR_PROBE[0] of the gradients
    over the face's box: eyes, brows, lips) read as. A further blur of s = BLUR_PROBE[1] px leaves
    a step blurred by sigma its peak gradient × sigma / sqrt(sigma² + s²); the median of that
    ratio over those pixels gives sigma (with the half pixel of blur they are read at). Frame 0
    of the eval drivers: d14 (a soft, compressed webcam video) 2.0 px, d0 1.1, d19 1.0, d10 1.1;
    the astronaut 0.9. 0 where the face's box is under 8 px or flat."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    h, w = image.shape[:2]
    x0, y0 = (max(int(np.floor(v)), 0) for v in lm.min(0))
    x1, y1 = min(int(np.ceil(lm[:, 0].max())) + 1, w), min(int(np.ceil(lm[:, 1].max())) + 1, h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 0.0
    luma = image[y0:y1, x0:x1].astype(np.float32) @ LUMA.astype(np.float32)

    def gradient(sigma: float) -> np.ndarray:
        a = cv2.GaussianBlur(luma, (0, 0), sigma)
        return np.hypot(cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=3))

    share, s = BLUR_PROBE
    sharp, blurred = gradient(0.5), gradient(float(np.hypot(0.5, s)))
    edges = sharp >= max(float(np.quantile(sharp, 1.0 - share)), 1e-3)
    if not edges.any():
        return 0.0
    r = min(float(np.median(blurred[edges] / sharp[edges])), 0.99)
    return s * r / float(np.sqrt(1.0 - r * r))


def _lip_edges(xp, box):
    """Per column of the boolean mouth box: the rows (float32) of its first and last mouth
    pixel, the upper and lower lip's edges (0 and h - 1 in an empty column)."""
    top = xp.argmax(box, axis=0).astype(np.float32)
    bottom = np.float32(box.shape[0] - 1) - xp.argmax(box[::-1], axis=0).astype(np.float32)
    return top, bottom
