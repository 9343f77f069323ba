"""The coarse-to-fine schedule: sizes, steps per scale, style sizes, and the one resampling rule.

Every image that nst_jax resizes, in a script or from Python, goes through `resize`: inputs are
fitted once from their own pixels to the final size, coarser scales are resized from that, and
each scale's result is resized to start the next. So the same files give the same targets
whichever way they come in.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
from jax.typing import ArrayLike


def fit_size(shape: tuple[int, int], bound: int | tuple[int, int]) -> tuple[int, int]:
  """(height, width) of an image of `shape` scaled to fit `bound`, keeping its aspect ratio.

  Args:
    shape: (height, width) of the image.
    bound: the longest side in pixels, or a (height, width) box to fit inside.

  Returns:
    (height, width), each rounded, at least 1 and at most the box's.
  """
  height, width = shape
  box = (bound, bound) if isinstance(bound, int) else tuple(bound)
  factor = min(box[0] / height, box[1] / width)
  return (
    max(1, min(box[0], round(height * factor))),
    max(1, min(box[1], round(width * factor))),
  )


@functools.partial(jax.jit, static_argnums=1)
def _resize(image: jax.Array, size: tuple[int, int]) -> jax.Array:
  shape = (*image.shape[:-3], *size, image.shape[-1])
  return jnp.clip(jax.image.resize(image, shape, 'lanczos3', antialias=True), 0.0, 1.0)


def resize(image: ArrayLike, size: tuple[int, int]) -> jax.Array:
  """Resizes images with a Lanczos-3 filter, antialiased when shrinking: the one rule of nst_jax.

  Lanczos keeps the fine texture that style statistics measure (a bilinear filter blurs it, and
  Gram targets of a high-frequency style then differ many times over), and its antialiasing
  averages away detail finer than the new grid instead of aliasing it. Values are clipped back
  to [0, 1], since Lanczos rings slightly beyond the input range at sharp edges.

  Args:
    image: (..., H, W, C) floats in [0, 1].
    size: (height, width) of the result, both >= 1.

  Returns:
    (..., height, width, C) float32 in [0, 1]; `image` itself (as an array) if the size is equal.
  """
  image = jnp.asarray(image, jnp.float32)
  if image.ndim < 3 or 0 in image.shape:
    raise ValueError(f'expected non-empty (..., H, W, C) images, got shape {image.shape}')
  size = (int(size[0]), int(size[1]))
  if min(size) < 1:
    raise ValueError(f'resize size must be positive (height, width), got {size}')
  if tuple(image.shape[-3:-1]) == size:
    return image
  return _resize(image, size)


def scale_sizes(shape: tuple[int, int], config: ml_collections.ConfigDict) -> list[tuple[int, int]]:
  """(height, width) of each scale, coarsest first; the last has longest side `image_size`."""
  return [
    fit_size(shape, round(config.image_size / config.scale_ratio**k))
    for k in reversed(range(config.num_scales))
  ]


def steps_per_scale(config: ml_collections.ConfigDict) -> list[int]:
  """Optimizer steps at each scale, coarsest first."""
  coarse = config.coarse_steps or config.num_steps
  return [coarse] * (config.num_scales - 1) + [config.num_steps]


def style_side(content_size: tuple[int, int], config: ml_collections.ConfigDict) -> int:
  """Longest side of the style images for content of `content_size` (height, width)."""
  return max(1, round(config.style_size or config.style_scale * max(content_size)))


def final_style_side(config: ml_collections.ConfigDict) -> int:
  """Longest side of the style images at the final scale, where the content's is `image_size`."""
  return style_side((config.image_size, config.image_size), config)
