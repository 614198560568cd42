"""Shared helpers of the neural-tier tests."""


def tiny_config(**kw):
    """A 32² NeuralConfig small enough for CPU unit tests."""
    from realtime.tiers.neural.model import NeuralConfig

    base = dict(resolution=32, levels=2, width=8, max_width=16, embed_width=4, embed_max_width=16,
                bottleneck_blocks=1, attention_resolution=16, d_scales=2, d_width=8, d_layers=2)
    base.update(kw)
    return NeuralConfig(**base)
