"""Tier 3, "neural": the Deep Blending Network of UniFaceGAN §III-C, trained per profile; what
runs live. Its training (dataset, losses, discriminator, steps, loop) is `realtime.train`.

Modules:

- `generator`   `NeuralTierGenerator`: the tier itself. Runs the trained generator on the base
                render (the atlas or warp tier, given by the registry) at its resolution R and
                adds its change to the full-resolution render over the face.
- `model`       `NeuralConfig`, `NeuralGenerator` (E + encoder–decoder G with RCN and
                self-attention), `AppearanceEmbedder`, `RCN` / `rcn`, `SelfAttention`.
- `checkpoint`  safetensors checkpoints (models, optimizer state, step, configs, RNG), no pickle.
- `export`      ONNX export (TorchScript exporter, opset 17) + onnxruntime parity check.
- `infer`       `NeuralRunner`: torch (CPU fp32 channels-last inference mode, or CUDA fp16) or
                onnxruntime (CPU; ~2.5× faster than torch at 128² on the 2-core machine);
                `GraphedForward` (CUDA graphs).
- `tensorrt`    the TensorRT engine cached in the profile with its manifest.

Importing this package imports nothing: torch is loaded only when the tier is built.
`BACKENDS`: how the generator runs on CUDA (torch FP16 + CUDA graphs, or a TensorRT engine).

Tensor conventions: NCHW; images in [-1, 1]; masks in [0, 1] with 1 = face; flows (B,H,W,2) in
pixels as produced by `kernels.flow3d` (offset from t to t−1). `NeuralRunner` takes and returns
numpy (S,S,3) float32 0..255 like the other tiers' renders.

Deviations from the papers (details in `model.py`):

1. T_l (RCN's appearance input) comes from E's feature pyramid at U_l's resolution, not only
   from upsampling the coarsest map P (`embed_pyramid=False` restores the paper's version).
2. At 128² the self-attention sits at 32² (not 64²) with 2×2-pooled keys/values (1024 queries
   × 256 keys), for the CPU budget; 256² and 512² use full attention at 64².
3. The width is AP-GAN-light (16 channels at full resolution, doubling to ≤ 128), encoder
   stride-2 3×3 convs, depthwise-separable bottleneck blocks, nearest-upsample + conv decoder.
4. D is conditioned on (R, M̂) (pix2pixHD label-map style) and spectrally normalised.
5. The appearance loss compares E(Y·H̄, H̄) with E(M·H̄, H̄) through frozen E weights.
6. The temporal loss is eq. 17 seen from frame t: ‖Y_t − warp(Y_{t−1}, F)‖² over visible pixels.
"""

BACKENDS = ("torch", "tensorrt")
