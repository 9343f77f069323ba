"""Colour spaces: RGB to and from YIQ, YUV, linear light and OkLab, and luminance.

Every conversion acts on (..., 3) arrays with pure `jax.numpy`, so it can be jitted and vmapped;
`nst_jax.core.color` builds the colour controls on them.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

# NTSC (FCC 1953) RGB -> YIQ, the matrix scikit-image uses. Y uses the Rec. 601 luma weights, so
# a grey pixel (r = g = b) has Y equal to its value and I = Q = 0. The inverse is computed, not
# rounded, so that the two conversions are exact inverses up to float rounding.
YIQ_FROM_RGB = np.array(
  [
    [0.299, 0.587, 0.114],
    [0.59590059, -0.27455667, -0.32134392],
    [0.21153661, -0.52273617, 0.31119955],
  ]
)
RGB_FROM_YIQ = np.linalg.inv(YIQ_FROM_RGB)
# Analogue PAL YUV with the same Y, again scikit-image's matrix.
YUV_FROM_RGB = np.array(
  [
    [0.299, 0.587, 0.114],
    [-0.14714119, -0.28886916, 0.43601035],
    [0.61497538, -0.51496512, -0.10001026],
  ]
)
RGB_FROM_YUV = np.linalg.inv(YUV_FROM_RGB)

# OkLab (Bjorn Ottosson, 2020): linear sRGB -> LMS cone responses, cube root, -> (L, a, b). L is
# perceived lightness in [0, 1]; a and b (green-red, blue-yellow) are within about +-0.3.
LMS_FROM_LINEAR = np.array(
  [
    [0.4122214708, 0.5363325363, 0.0514459929],
    [0.2119034982, 0.6806995451, 0.1073969566],
    [0.0883024619, 0.2817188376, 0.6299787005],
  ]
)
OKLAB_FROM_LMS = np.array(
  [
    [0.2104542553, 0.7936177850, -0.0040720468],
    [1.9779984951, -2.4285922050, 0.4505937099],
    [0.0259040371, 0.7827717662, -0.8086757660],
  ]
)
LINEAR_FROM_LMS = np.linalg.inv(LMS_FROM_LINEAR)
LMS_FROM_OKLAB = np.linalg.inv(OKLAB_FROM_LMS)

_HIGHEST = jax.lax.Precision.HIGHEST  # No TF32/bfloat16 passes: keep conversions invertible.


def check_rgb(image: jax.Array, name: str) -> None:
  """Raises `ValueError` unless `image` has shape (..., 3)."""
  if image.ndim < 1 or image.shape[-1] != 3:
    raise ValueError(f'{name} must have shape (..., 3), got {image.shape}')


def to_float(x: ArrayLike) -> jax.Array:
  """`x` as a JAX array, cast to float32 unless it already has a floating dtype."""
  x = jnp.asarray(x)
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def _apply(matrix: np.ndarray, image: ArrayLike, name: str) -> jax.Array:
  image = to_float(image)
  check_rgb(image, name)
  return jnp.matmul(image, jnp.asarray(matrix.T, image.dtype), precision=_HIGHEST)


# The conversions act on (..., 3) arrays. Neither direction clips: an inverse conversion gives RGB
# in [0, 1] only for a triple that came from an RGB colour in [0, 1].


def rgb_to_yiq(image: ArrayLike) -> jax.Array:
  """RGB in [0, 1] -> YIQ (NTSC): Y in [0, 1], I in about +-0.596, Q in about +-0.523."""
  return _apply(YIQ_FROM_RGB, image, 'image')


def yiq_to_rgb(image: ArrayLike) -> jax.Array:
  """YIQ -> RGB, the exact inverse of `rgb_to_yiq`."""
  return _apply(RGB_FROM_YIQ, image, 'image')


def rgb_to_yuv(image: ArrayLike) -> jax.Array:
  """RGB in [0, 1] -> YUV (PAL), YIQ's Y with rotated chroma: U about +-0.436, V about +-0.615."""
  return _apply(YUV_FROM_RGB, image, 'image')


def yuv_to_rgb(image: ArrayLike) -> jax.Array:
  """YUV -> RGB, the exact inverse of `rgb_to_yuv`."""
  return _apply(RGB_FROM_YUV, image, 'image')


def luminance(image: ArrayLike) -> jax.Array:
  """Luminance (the Y of YIQ: 0.299 R + 0.587 G + 0.114 B).

  Args:
    image: RGB, shape (..., 3), values in [0, 1].

  Returns:
    shape (...), values in [0, 1] (the weights are positive and sum to 1).
  """
  image = to_float(image)
  check_rgb(image, 'image')
  return jnp.matmul(image, jnp.asarray(YIQ_FROM_RGB[0], image.dtype), precision=_HIGHEST)


def srgb_to_linear(image: ArrayLike) -> jax.Array:
  """sRGB-encoded values in [0, 1] -> linear light in [0, 1] (the sRGB transfer function)."""
  x = jnp.clip(to_float(image), 0.0, 1.0)
  return jnp.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(image: ArrayLike) -> jax.Array:
  """Linear light -> sRGB-encoded values, clipped to [0, 1] first."""
  x = jnp.clip(to_float(image), 0.0, 1.0)
  return jnp.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def rgb_to_oklab(image: ArrayLike) -> jax.Array:
  """sRGB in [0, 1], shape (..., 3) -> OkLab (L in [0, 1], a and b within about +-0.3)."""
  lms = _apply(LMS_FROM_LINEAR, srgb_to_linear(image), 'image')
  return _apply(OKLAB_FROM_LMS, jnp.cbrt(lms), 'image')


def oklab_to_rgb(image: ArrayLike) -> jax.Array:
  """OkLab -> sRGB, shape (..., 3), clipped to [0, 1] (the inverse of `rgb_to_oklab` in gamut)."""
  lms = _apply(LMS_FROM_OKLAB, image, 'image') ** 3
  return linear_to_srgb(_apply(LINEAR_FROM_LMS, lms, 'image'))
