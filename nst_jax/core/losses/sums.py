"""Sums over masked positions: what the losses that are functions of such sums share.

The Gram, Gaussian (W2), content and total-variation losses of ONE example are functions of sums
over the positions of a feature map (or of the image): the sum of `f f^T` and the position count
for Gram matrices, the first and second moments for Gaussian fits, the squared error for content,
the neighbour differences for total variation. Each loss module has its `*_sums` functions, which
take a window of features (h, w, C) and a `mask` (h, w) of the positions the window owns, and its
`*_from_sums`: adding the sums of windows whose masks partition the image and applying
`*_from_sums` to the totals gives the loss of the whole image, up to float rounding.
`nst_jax.run.tiles` builds tiled objectives on this. A mask of weights in [0, 1] (a region's
guide) weighs each position instead.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core.losses.common import PRECISION, as_float, positions


def flat_positions(features: ArrayLike, mask: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """(h, w, C) features and an (h, w) mask -> `(f (h*w, C), m (h*w,))`."""
  f = as_float(features)
  m = as_float(mask)
  if f.ndim != 3 or m.shape != f.shape[:2]:
    raise ValueError(f'expected features (h, w, C) and mask (h, w), got {f.shape} and {m.shape}')
  return positions(f), m.reshape(-1)


@jax.custom_vjp
def masked_outer(f: jax.Array, m: jax.Array) -> jax.Array:
  """`sum_p m_p f_p f_p^T` for f (P, C), m (P,); its gradient is one matmul (as the Gram loss's)."""
  return jnp.einsum('pc,pd->cd', f * m[:, None], f, precision=PRECISION)


def _masked_outer_fwd(f, m):
  return masked_outer(f, m), (f, m)


def _masked_outer_bwd(residuals, g):
  f, m = residuals
  d_f = m[:, None] * jnp.matmul(f, g + g.T, precision=PRECISION)
  return d_f, jnp.zeros_like(m)


masked_outer.defvjp(_masked_outer_fwd, _masked_outer_bwd)


class ErrorSums(NamedTuple):
  """total: () sum of the penalties; count: () how many entries were penalised."""

  total: jax.Array
  count: jax.Array


def mean_from_sums(sums: ErrorSums) -> jax.Array:
  """`total / count`: `content_loss` (or `total_variation`) of the entries summed."""
  return sums.total / sums.count
