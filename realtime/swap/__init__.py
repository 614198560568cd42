"""Face swap (DESIGN §5b): the profile's identity rendered into the driver's own frame.

The swap engine runs the reenactment's stages where they fit and adds its own:

    track (largest face) → estimate → fuse (swap) → render → generate → smooth → attributes
        → glasses → composite (swap)

- `realtime.swap.track`: the largest face of the frame (others stay untouched).
- `realtime.swap.fuse`: the profile's neutral shape with the driver's expression, posed by the
  driver's *absolute* face frame (UniFaceGAN eq. 3–4 with C^p = the driver's camera pose), drawn
  into a crop that follows the driver's face (`realtime.swap.crop`).
- `realtime.swap.colour`: attribute preservation (AP-GAN §III): the driver's colour (Lab
  transfer from its face region, smoothed in time) and large-scale shading, as a low-resolution
  gain field on the identity's render.
- `realtime.swap.composite`: the soft mask from the face outline, the driver's own mouth
  interior and eye whites inside the identity's openings (with the driver's own expression;
  under `--expression-from` the tier's mouth and eyeballs instead), occluders kept, and the paste-back
  (`kernels.swap_blend`, numba and CUDA twins). No face: the frame passes through untouched.
- `realtime.swap.glasses`: the driver's glasses rims, found by their shape round the eyes and
  kept in front of the swapped face.

What those stages build on:

- `realtime.swap.crop`: the rig without the head layer, the crop that follows the driver's
  face, and the per-vertex / per-triangle attributes the masks are made of;
  `realtime.swap.outline`: the mask's weight along the identity's face oval.
- `realtime.swap.photo`: the profile's photo as the swap textures with it, prepared once per
  engine: grain evened (`grain`), a turned face's far side filled (`farside`), shaded eye
  sockets lifted (`sockets`); `realtime.swap.skin`: where that photo shows skin (not hair).
- `realtime.swap.colour_numba`: the colour transfer's loops compiled for the CPU.

The stages of one engine share a `SwapLink` (the crop transform and the driver's geometry of
the current frame), written by the fuse stage and read by the ones after it.
"""
