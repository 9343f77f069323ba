"""Total variation: the seed's "denoising" smoothness term, for ONE image."""

from typing import Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core.losses.common import as_float
from nst_jax.errors import ConfigError

TVKind = Literal['l1', 'l2']


def total_variation(image: ArrayLike, *, kind: TVKind = 'l1') -> jax.Array:
  """Total-variation smoothness penalty of one image.

  Args:
    image: (H, W, C) image (usually RGB in [0, 1]), H >= 2 and W >= 2.
    kind: 'l1' for absolute differences (anisotropic TV), 'l2' for squared differences.

  Returns:
    Scalar >= 0: the mean, over all H*(W-1)*C horizontal and (H-1)*W*C vertical pairs of
    neighbouring pixels, of `|a - b|` ('l1') or `(a - b)**2` ('l2'); independent of image size.

  Raises:
    ValueError: if `image` is not 3-D or smaller than 2x2.
    ConfigError: if `kind` is not 'l1' or 'l2'.
  """
  if kind == 'l1':
    penalty = jnp.abs
  elif kind == 'l2':
    penalty = jnp.square
  else:
    raise ConfigError(f"unknown total variation kind {kind!r}; expected 'l1' or 'l2'")
  x = as_float(image)
  if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 2:
    raise ValueError(f'image must be (H, W, C) with H, W >= 2, got shape {x.shape}')
  dx = penalty(x[:, 1:] - x[:, :-1])
  dy = penalty(x[1:] - x[:-1])
  return (jnp.sum(dx) + jnp.sum(dy)) / (dx.size + dy.size)
