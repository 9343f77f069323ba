"""The one resampling rule of nst_jax, and fitting a size into a box.

Every image that nst_jax resizes, in a script or from Python, goes through `resize`: inputs are
fitted once from their own pixels to the final size, coarser scales are resized from that, and
each scale's result is resized to start the next. So the same files give the same targets
whichever way they come in.
"""

import functools

import jax
import jax.numpy as jnp
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
