"""How the optimizer sees the image: as pixels, or as Laplacian-pyramid coefficients.

With `pyramid`, the optimizer's variables are the levels of a Laplacian pyramid (STROTSS and NNST
optimise these): the finest detail first, then coarser details, then a low-pass residual. A step
of the same size in every coefficient (as Adam takes) then moves coarse structure as fast as
fine detail, so the layout settles early. `reconstruct(laplacian_pyramid(x, n))` is `x` up to
float rounding, by construction: each detail level is exactly what upsampling the next level
misses. The image stays in [0, 1] by projection: after each update the reconstructed image is
clipped and decomposed again.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

PARAMETRIZATIONS = ('pixels', 'pyramid')


def _down(image: jax.Array) -> jax.Array:
  """(h, w, c) -> (ceil(h / 2), ceil(w / 2), c), antialiased bilinear."""
  h, w, c = image.shape
  return jax.image.resize(image, (-(-h // 2), -(-w // 2), c), 'linear', antialias=True)


def _up(image: jax.Array, size: tuple[int, int]) -> jax.Array:
  return jax.image.resize(image, (*size, image.shape[-1]), 'linear')


def laplacian_pyramid(image: jax.Array, levels: int) -> tuple[jax.Array, ...]:
  """The Laplacian pyramid of ONE image.

  Args:
    image: (H, W, C), any real values.
    levels: number of levels, >= 1 (1: the image itself).

  Returns:
    `levels` arrays: details (H, W, C), (ceil(H/2), ceil(W/2), C), ..., then the low-pass
    residual, each half the size of the one before; signed values.
  """
  if levels < 1:
    raise ValueError(f'a pyramid needs at least one level, got {levels}')
  out = []
  for _ in range(levels - 1):
    low = _down(image)
    out.append(image - _up(low, image.shape[:2]))
    image = low
  return (*out, image)


def reconstruct(pyramid: tuple[jax.Array, ...]) -> jax.Array:
  """The image (H, W, C) of a `laplacian_pyramid`: each level upsampled onto the next finer."""
  image = pyramid[-1]
  for detail in reversed(pyramid[:-1]):
    image = detail + _up(image, detail.shape[:2])
  return image


def pyramid_levels(size: tuple[int, int], coarsest: int = 16) -> int:
  """Levels down to a residual whose short side is about `coarsest` pixels (at least 1 level)."""
  levels, short = 1, min(size)
  while short >= 2 * coarsest:
    short, levels = -(-short // 2), levels + 1
  return levels


@dataclasses.dataclass(frozen=True)
class Parametrization:
  """The optimizer's variables for ONE image (H, W, 3) in [0, 1], and back.

  Attributes:
    kind: 'pixels' (the image itself) or 'pyramid' (Laplacian-pyramid levels down to a
      residual of about `coarsest` pixels on its short side).
    coarsest: see `kind`.
  """

  kind: str = 'pixels'
  coarsest: int = 16

  def __post_init__(self):
    if self.kind not in PARAMETRIZATIONS:
      raise ValueError(f'unknown parametrization {self.kind!r}; expected one of {PARAMETRIZATIONS}')

  def encode(self, image: jax.Array) -> Any:
    """The variables that represent `image` (H, W, 3)."""
    if self.kind == 'pixels':
      return image
    return laplacian_pyramid(image, pyramid_levels(image.shape[:2], self.coarsest))

  def decode(self, variables: Any) -> jax.Array:
    """The image (H, W, 3) that `variables` represent (not clipped)."""
    return variables if self.kind == 'pixels' else reconstruct(variables)

  def project(self, variables: Any) -> Any:
    """The variables of the represented image clipped to [0, 1]."""
    return self.encode(jnp.clip(self.decode(variables), 0.0, 1.0))
