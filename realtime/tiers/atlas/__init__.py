"""Tier 2, "atlas": face-view interpolation over pose *and* expression (FSGAN §3.6, extended).

A video profile holds N keyframes of the target, each its own square face crop with its
landmarks, spread over a 4-D query space

    q = (yaw / 30°, pitch / 20°, mouth opening / interocular / 0.3, eye opening / interocular / 0.1)

measured by `measure` the same way at enrollment (a keyframe's tracked landmarks) and at run
time (the avatar's posed mesh: the recombined canonical shape in the rendered pose). The
keyframes' queries are triangulated (Delaunay) over the dimensions that vary in the clip
(`AtlasMap`). Per frame:

1. the query point picks a simplex; its barycentric coordinates are the raw keyframe weights
   (a query outside the hull is first moved radially onto the hull, towards the keyframes'
   centroid, so the weights stay continuous there too); mirrored keyframes are down-weighted,
   the weights sharpened (squared, renormalised: the nearest view dominates, less blur), and at
   most `MAX_FACE_KEYS` keep weight (a continuous top-k soft threshold);
2. the weight vector is cross-faded in time (`WeightSmoother`: a rate limit, a complete
   switch takes 3 frames, ~100 ms), so a change of simplex never pops, and ordinary motion
   is not delayed;
3. the mouth (mouth-fan triangles and lips) and the eyes (eye fans, lids, irises) are each
   taken from ONE keyframe at a time (`RegionPicker`: the keyframe whose frontalised lip or
   eye contours best match the avatar's, then the nearest view, with hysteresis; cross-faded
   in time too), feathered into the face blend over two rings of the mesh, so teeth and irises
   never double; only when no keyframe opens its mouth as wide as asked does the warp tier's
   synthetic cavity fill the difference;
4. one pass over the G-buffer (`kernels.atlas_blend`, numba): face, eye and mouth triangles sample
   each active keyframe's crop at that keyframe's landmark coordinates and blend by weight;
   head-layer triangles (hair, neck, background) sample the reference image exactly as the
   warp tier does, so they never ghost, and the outermost rings of the face fade to the same
   reference image, so the face meets the head layer without a seam.

The rasterization is shared by all keyframes (RenderStage draws the posed mesh once).

Modules: `query` (the query point, the triangulation), `weights` (sparsify, the cross-fade),
`regions` (the mouth and eye pickers, the region alphas), `generator` (the tier); the per-pixel
blend is the kernel `kernels.atlas_blend`.
"""
