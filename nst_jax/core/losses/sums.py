"""The built-in losses as functions of sums over positions, so that an image can go in tiles.

The Gram, Gaussian (W2), content and total-variation losses of ONE example are functions of sums
over the positions of a feature map (or of the image): the sum of `f f^T` and the position count
for Gram matrices, the first and second moments for Gaussian fits, the squared error for content,
the neighbour differences for total variation. Each `*_sums` function here takes a window of
features (h, w, C) and a 0/1 `mask` (h, w) of the positions the window owns; adding the sums of
windows whose masks partition the image and applying `*_from_sums` to the totals gives the loss of
the whole image, up to float rounding. `nst_jax.tiles` builds tiled objectives on this.

Style targets are built the same way from a style image's windows (`gram_target_from_sums`,
`gaussian_stats`, `merge_gaussian_stats`, `gaussian_target_from_stats`).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core.losses.common import PRECISION, as_float, positions, symmetrize
from nst_jax.core.losses.gaussian import GaussianTarget, psd_sqrtm, wasserstein2_from_moments
from nst_jax.core.losses.gram import GramTarget
from nst_jax.core.losses.tv import TVKind, total_variation


def _flat(features: ArrayLike, mask: ArrayLike) -> tuple[jax.Array, jax.Array]:
  f = as_float(features)
  m = as_float(mask)
  if f.ndim != 3 or m.shape != f.shape[:2]:
    raise ValueError(f'expected features (h, w, C) and mask (h, w), got {f.shape} and {m.shape}')
  return positions(f), m.reshape(-1)


@jax.custom_vjp
def _masked_outer(f: jax.Array, m: jax.Array) -> jax.Array:
  """`sum_p m_p f_p f_p^T` for f (P, C), m (P,); its gradient is one matmul (as `_gram_loss`)."""
  return jnp.einsum('pc,pd->cd', f * m[:, None], f, precision=PRECISION)


def _masked_outer_fwd(f, m):
  return _masked_outer(f, m), (f, m)


def _masked_outer_bwd(residuals, g):
  f, m = residuals
  d_f = m[:, None] * jnp.matmul(f, g + g.T, precision=PRECISION)
  return d_f, jnp.zeros_like(m)


_masked_outer.defvjp(_masked_outer_fwd, _masked_outer_bwd)


class GramSums(NamedTuple):
  """outer: (C, C) sum of f f^T over the masked positions; count: () how many there are."""

  outer: jax.Array
  count: jax.Array


def gram_sums(features: ArrayLike, mask: ArrayLike) -> GramSums:
  """The sums a Gram matrix needs, over the positions of features (h, w, C) where mask is 1."""
  f, m = _flat(features, mask)
  return GramSums(_masked_outer(f, m), jnp.sum(m))


def gram_target_from_sums(sums: GramSums) -> GramTarget:
  """The `GramTarget` of the positions summed (as `gram_style_target` of all of them)."""
  return GramTarget(sums.outer / sums.count)


def gram_loss_from_sums(sums: GramSums, target_gram: ArrayLike) -> jax.Array:
  """`gram_style_loss` of the positions summed: `mean((outer / count - target_gram)**2)`."""
  return jnp.mean(jnp.square(sums.outer / sums.count - as_float(target_gram)))


class MomentSums(NamedTuple):
  """Moments about a fixed `shift` (C,), which keeps float32 sums accurate near the shift.

  Attributes:
    first: (C,) sum of (f - shift) over the masked positions.
    second: (C, C) sum of (f - shift)(f - shift)^T.
    count: () number of masked positions.
  """

  first: jax.Array
  second: jax.Array
  count: jax.Array


def moment_sums(features: ArrayLike, mask: ArrayLike, shift: ArrayLike) -> MomentSums:
  """First and second moments about `shift` (C,) of features (h, w, C) where mask (h, w) is 1."""
  f, m = _flat(features, mask)
  centred = f - as_float(shift)
  return MomentSums(jnp.sum(centred * m[:, None], axis=0), _masked_outer(centred, m), jnp.sum(m))


def moments_from_sums(sums: MomentSums, shift: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """`(mean (C,), population covariance (C, C))` of the positions summed."""
  offset = sums.first / sums.count
  cov = sums.second / sums.count - jnp.outer(offset, offset)
  return as_float(shift) + offset, symmetrize(cov)


def gaussian_loss_from_sums(
  sums: MomentSums, target: GaussianTarget, *, eps: float = 1e-6
) -> jax.Array:
  """`wasserstein2_style_loss` of the positions summed; the moments are about `target.mean`."""
  mean, cov = moments_from_sums(sums, target.mean)
  return wasserstein2_from_moments(mean, cov, target, eps=eps)


class GaussianStats(NamedTuple):
  """count (), mean (C,) and scatter `sum (f - mean)(f - mean)^T` (C, C) of some positions."""

  count: jax.Array
  mean: jax.Array
  scatter: jax.Array


def gaussian_stats(features: ArrayLike, mask: ArrayLike) -> GaussianStats:
  """`GaussianStats` of features (h, w, C) where mask (h, w) is 1 (centred on their own mean)."""
  f, m = _flat(features, mask)
  count = jnp.sum(m)
  mean = jnp.sum(f * m[:, None], axis=0) / jnp.maximum(count, 1.0)
  return GaussianStats(count, mean, _masked_outer(f - mean, m))


def merge_gaussian_stats(a: GaussianStats, b: GaussianStats) -> GaussianStats:
  """The stats of two disjoint sets of positions together (Chan et al.'s pairwise update)."""
  count = a.count + b.count
  weight = b.count / jnp.maximum(count, 1.0)
  delta = b.mean - a.mean
  scatter = a.scatter + b.scatter + jnp.outer(delta, delta) * a.count * weight
  return GaussianStats(count, a.mean + delta * weight, scatter)


def gaussian_target_from_stats(stats: GaussianStats) -> GaussianTarget:
  """The `GaussianTarget` of the positions (as `gaussian_style_target` of all of them)."""
  cov = symmetrize(stats.scatter / stats.count)
  return GaussianTarget(stats.mean, cov, psd_sqrtm(cov))


class ErrorSums(NamedTuple):
  """total: () sum of the penalties; count: () how many entries were penalised."""

  total: jax.Array
  count: jax.Array


def squared_error_sums(features: ArrayLike, target: ArrayLike, mask: ArrayLike) -> ErrorSums:
  """Sum of `(features - target)**2` over the masked positions and all channels (h, w, C)."""
  f, m = _flat(features, mask)
  t = positions(as_float(target))
  return ErrorSums(jnp.sum(jnp.square(f - t) * m[:, None]), jnp.sum(m) * f.shape[-1])


def mean_from_sums(sums: ErrorSums) -> jax.Array:
  """`total / count`: `content_loss` (or `total_variation`) of the entries summed."""
  return sums.total / sums.count


def total_variation_sums(image: ArrayLike, mask: ArrayLike, *, kind: TVKind = 'l1') -> ErrorSums:
  """`total_variation`'s sums over the neighbour pairs whose first pixel is masked.

  A pair that crosses the window's last row or column is not in the window and not counted:
  with windows that overlap by at least one pixel, its owner window counts it.

  Args:
    image: (h, w, C) window of the image.
    mask: (h, w) 1 on the pixels this window owns.
    kind: 'l1' or 'l2', as for `total_variation`.
  """
  x = as_float(image)
  m = as_float(mask)[..., None]
  penalty = jnp.abs if kind == 'l1' else jnp.square
  total_variation(x[:2, :2], kind=kind)  # Checks `kind` and the shape.
  dx = penalty(x[:, 1:] - x[:, :-1]) * m[:, :-1]
  dy = penalty(x[1:] - x[:-1]) * m[:-1]
  channels = x.shape[-1]
  count = (jnp.sum(m[:, :-1]) + jnp.sum(m[:-1])) * channels
  return ErrorSums(jnp.sum(dx) + jnp.sum(dy), count)
