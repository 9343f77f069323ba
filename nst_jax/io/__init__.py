"""Files in and out: images, the VGG19 weights and their formats, atomic writes, output paths.

Builds on `nst_jax.core` (the network the weights fill, the one resampling rule).
"""
