"""Gaussian (mean and covariance) style statistics and their closed-form Wasserstein-2 distance,
for ONE example's features (H, W, C), and its term.

Regions (`nst_jax.core.masks`): masked first and second moments, the Gaussian counterpart of
Gatys et al.'s guided Gram matrices (CVPR 2017). Region r's mean and covariance are those of the
features weighted by its weights m_r at the layer, `mu_r = sum_p m_r(p) f_p / sum_p m_r(p)` and
`S_r = sum_p m_r(p) (f_p - mu_r)(f_p - mu_r)^T / sum_p m_r(p)`, against the moments of the style
pixels that feed region r (a mixture, for several styles). The loss is
`sum_r (sum_p m_r(p) / P) * W2^2_r / C`, each region weighted by its share of the P positions
(`region_loss`). The moments are summed about one shift for all regions (the mean of the
regions' target means), so that the regions share one centred copy of the features.
"""

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core import terms
from nst_jax.core.losses import sums
from nst_jax.core.losses.blend import LayerStatistics, StyleStatistics
from nst_jax.core.losses.common import (
  PRECISION,
  as_float,
  check_features,
  check_square,
  positions,
  symmetrize,
)


class GaussianTarget(NamedTuple):
  """Gaussian-fit style statistics of one style image at one layer.

  Attributes:
    mean: (C,) mean feature vector over the H*W positions.
    cov: (C, C) symmetric PSD population covariance over the positions.
    cov_sqrt: (C, C) symmetric PSD square root of `cov`, precomputed so that each optimisation
      step needs only one eigendecomposition.
  """

  mean: jax.Array
  cov: jax.Array
  cov_sqrt: jax.Array

  @classmethod
  def blend(cls, weights: Sequence[float], targets: Sequence['GaussianTarget']) -> 'GaussianTarget':
    """The mixture's moments: mean `m = sum_i w_i m_i`, covariance `sum_i w_i (S_i + m_i m_i^T)
    - m m^T`, and `cov_sqrt` recomputed from it."""
    pairs = list(zip(weights, targets, strict=True))
    means = [jnp.asarray(t.mean) for t in targets]
    mean = sum(w * m for (w, _), m in zip(pairs, means, strict=True))
    second = sum(
      w * (jnp.asarray(t.cov) + jnp.outer(m, m)) for (w, t), m in zip(pairs, means, strict=True)
    )
    cov = symmetrize(second - jnp.outer(mean, mean))
    return cls(mean, cov, psd_sqrtm(cov))


def mean_and_covariance(features: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Mean and population covariance of the feature vectors over the H*W positions.

  Args:
    features: (H, W, C) activations of one layer for one image.

  Returns:
    `(mean, cov)`: mean (C,), and cov (C, C) symmetric PSD, `sum_p (f_p - mean)(f_p - mean)^T /
    (H*W)` (divided by H*W, not H*W - 1).

  Raises:
    ValueError: if `features` is not 3-D or is empty.
  """
  f = positions(check_features(features))
  mean = jnp.mean(f, axis=0)
  centred = f - mean
  cov = jnp.matmul(centred.T, centred, precision=PRECISION) / f.shape[0]
  return mean, symmetrize(cov)


def psd_sqrtm(m: jax.Array) -> jax.Array:
  """Symmetric PSD square root `V diag(sqrt(max(lam, 0))) V^T` of a symmetric matrix."""
  lam, v = jnp.linalg.eigh(symmetrize(m))
  root = (v * jnp.sqrt(jnp.maximum(lam, 0.0))) @ v.T
  return symmetrize(root)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _trace_sqrtm(m: jax.Array, eps: float) -> jax.Array:
  lam = jnp.linalg.eigvalsh(m)
  return jnp.sum(jnp.sqrt(jnp.maximum(lam, 0.0)))


def _trace_sqrtm_fwd(m: jax.Array, eps: float) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
  lam, v = jnp.linalg.eigh(m)
  return jnp.sum(jnp.sqrt(jnp.maximum(lam, 0.0))), (lam, v)


def _trace_sqrtm_bwd(
  eps: float, residuals: tuple[jax.Array, jax.Array], g: jax.Array
) -> tuple[jax.Array]:
  lam, v = residuals
  # Relative floor (absolute below 1) keeps the gradient finite on (numerically) zero eigenvalues,
  # whose true derivative d sqrt(lam) / d lam is infinite.
  floor = eps * jnp.maximum(lam[-1], 1.0)
  inv_sqrt = 1.0 / jnp.sqrt(jnp.maximum(lam, floor))
  return (0.5 * g * (v * inv_sqrt) @ v.T,)


_trace_sqrtm.defvjp(_trace_sqrtm_fwd, _trace_sqrtm_bwd)


def trace_sqrtm(m: ArrayLike, *, eps: float = 1e-6) -> jax.Array:
  """Trace of the PSD square root of a symmetric PSD matrix, with a finite gradient.

  The value is `sum(sqrt(max(lam, 0)))` over the eigenvalues `lam` of `m` (one `eigh`). The
  gradient is a custom VJP, `0.5 * V diag(1 / sqrt(max(lam, floor))) V^T` with
  `floor = eps * max(lam_max, 1)`: the exact gradient `0.5 * m^{-1/2}` where `m` is well
  conditioned, and finite (instead of NaN/inf from differentiating `eigh`) where `m` is singular,
  e.g. the covariance of ReLU features with dead channels or fewer positions than channels.
  Only reverse mode is defined.

  Args:
    m: (C, C) symmetric PSD matrix (only its lower triangle is read by `eigh`; pass a symmetric
      matrix).
    eps: relative floor on the eigenvalues used in the gradient (not in the value).

  Returns:
    Scalar >= 0, `tr(m^{1/2})`.

  Raises:
    ValueError: if `m` is not square 2-D.
  """
  return _trace_sqrtm(check_square(m, 'm'), float(eps))


def gaussian_style_target(features: ArrayLike) -> GaussianTarget:
  """Precomputes the Gaussian style target (mean, cov, cov_sqrt) of features (H, W, C).

  Args:
    features: (H, W, C) activations of the style image at one layer.

  Returns:
    `GaussianTarget` with mean (C,), cov (C, C) and its PSD square root cov_sqrt (C, C).
  """
  mean, cov = mean_and_covariance(features)
  return GaussianTarget(mean, cov, psd_sqrtm(cov))


def wasserstein2_style_loss(
  features: ArrayLike,
  target_mean: ArrayLike,
  target_cov: ArrayLike,
  target_cov_sqrt: ArrayLike | None = None,
  *,
  eps: float = 1e-6,
) -> jax.Array:
  """Squared Wasserstein-2 distance between Gaussian fits of features and style, per channel.

  With `(m, S)` = `mean_and_covariance(features)` and `(m_t, S_t)` the target,

    W2^2 = ||m - m_t||^2 + tr(S) + tr(S_t) - 2 tr((S_t^{1/2} S S_t^{1/2})^{1/2}),

  and the loss is `W2^2 / C`: the average per channel, so that layers with different channel
  counts contribute comparably (the value scales as features**2, and not with image size). One
  `eigh` runs per call when `target_cov_sqrt` is given (see `gaussian_style_target`); the gradient
  is finite even for rank-deficient covariances (see `trace_sqrtm`). Rounding can make the value
  slightly negative (about -1e-6 * tr(S) / C in float32) when the distributions coincide.

  Args:
    features: (H, W, C) activations of the image being optimised.
    target_mean: (C,) mean of the style features.
    target_cov: (C, C) covariance of the style features.
    target_cov_sqrt: (C, C) PSD square root of `target_cov`; computed here (one more `eigh`) if
      None. `wasserstein2_style_loss(features, *gaussian_target)` passes all three.
    eps: relative eigenvalue floor for the gradient of the trace term, see `trace_sqrtm`.

  Returns:
    Scalar, `W2^2 / C` (>= 0 up to rounding).

  Raises:
    ValueError: if `features` is not 3-D or a target has the wrong shape.
  """
  x = check_features(features)
  c = x.shape[-1]
  t_mean = as_float(target_mean)
  if t_mean.shape != (c,):
    raise ValueError(f'target_mean must have shape ({c},), got {t_mean.shape}')
  t_cov = check_square(target_cov, 'target_cov', c)
  if target_cov_sqrt is None:
    t_root = psd_sqrtm(t_cov)
  else:
    t_root = check_square(target_cov_sqrt, 'target_cov_sqrt', c)
  mean, cov = mean_and_covariance(x)
  return wasserstein2_from_moments(mean, cov, GaussianTarget(t_mean, t_cov, t_root), eps=eps)


def wasserstein2_from_moments(
  mean: jax.Array, cov: jax.Array, target: GaussianTarget, *, eps: float = 1e-6
) -> jax.Array:
  """`wasserstein2_style_loss` from the features' mean (C,) and covariance (C, C) (for example
  combined from tiles, see `nst_jax.core.losses.sums`) against a full `GaussianTarget`."""
  t_mean, t_cov, t_root = target
  inner = jnp.matmul(jnp.matmul(t_root, cov, precision=PRECISION), t_root, precision=PRECISION)
  w2 = (
    jnp.sum(jnp.square(mean - t_mean))
    + jnp.trace(cov)
    + jnp.trace(t_cov)
    - 2.0 * _trace_sqrtm(symmetrize(inner), float(eps))
  )
  return w2 / mean.shape[-1]


# --- Sums over positions, for tiles --------------------------------------------------------------


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
  f, m = sums.flat_positions(features, mask)
  centred = f - as_float(shift)
  return MomentSums(
    jnp.sum(centred * m[:, None], axis=0), sums.masked_outer(centred, m), jnp.sum(m)
  )


def moments_from_sums(moments: MomentSums, shift: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """`(mean (C,), population covariance (C, C))` of the positions summed."""
  count = sums.safe_count(moments.count)
  offset = moments.first / count
  cov = moments.second / count - jnp.outer(offset, offset)
  return as_float(shift) + offset, symmetrize(cov)


def gaussian_loss_from_sums(
  moments: MomentSums, target: GaussianTarget, *, eps: float = 1e-6
) -> jax.Array:
  """`wasserstein2_style_loss` of the positions summed; the moments are about `target.mean`."""
  mean, cov = moments_from_sums(moments, target.mean)
  return wasserstein2_from_moments(mean, cov, target, eps=eps)


class GaussianStats(NamedTuple):
  """count (), mean (C,) and scatter `sum (f - mean)(f - mean)^T` (C, C) of some positions."""

  count: jax.Array
  mean: jax.Array
  scatter: jax.Array


def gaussian_stats(features: ArrayLike, mask: ArrayLike) -> GaussianStats:
  """`GaussianStats` of features (h, w, C) where mask (h, w) is 1 (centred on their own mean)."""
  f, m = sums.flat_positions(features, mask)
  count = jnp.sum(m)
  mean = jnp.sum(f * m[:, None], axis=0) / sums.safe_count(count)
  return GaussianStats(count, mean, sums.masked_outer(f - mean, m))


def merge_gaussian_stats(a: GaussianStats, b: GaussianStats) -> GaussianStats:
  """The stats of two disjoint sets of positions together (Chan et al.'s pairwise update)."""
  count = a.count + b.count
  weight = b.count / sums.safe_count(count)
  delta = b.mean - a.mean
  scatter = a.scatter + b.scatter + jnp.outer(delta, delta) * a.count * weight
  return GaussianStats(count, a.mean + delta * weight, scatter)


def gaussian_target_from_stats(stats: GaussianStats) -> GaussianTarget:
  """The `GaussianTarget` of the positions (as `gaussian_style_target` of all of them)."""
  cov = symmetrize(stats.scatter / sums.safe_count(stats.count))
  return GaussianTarget(stats.mean, cov, psd_sqrtm(cov))


# --- The term ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GaussianLayerLoss(sums.WholeImageRegions):
  """`wasserstein2_style_loss` of one layer against its `GaussianTarget`; tileable; with regions,
  masked moments (see the module docstring)."""

  def __call__(self, features: jax.Array, target: GaussianTarget, key: Any = None) -> jax.Array:
    return wasserstein2_style_loss(features, *target)

  def tile_sums(
    self, features: jax.Array, mask: jax.Array, target: GaussianTarget, regions: Any = None
  ) -> MomentSums | sums.RegionSums:
    if regions is None:
      return moment_sums(features, mask, target.mean)
    shift = jnp.mean(target.mean, axis=0)
    return sums.region_sums(lambda m: moment_sums(features, m, shift), mask, regions)

  def from_tile_sums(
    self, totals: MomentSums | sums.RegionSums, target: GaussianTarget
  ) -> jax.Array:
    if not isinstance(totals, sums.RegionSums):
      return gaussian_loss_from_sums(totals, target)
    shift = jnp.mean(target.mean, axis=0)

    def one(moments: MomentSums, region_target: GaussianTarget) -> jax.Array:
      return wasserstein2_from_moments(*moments_from_sums(moments, shift), region_target)

    return sums.region_loss(one, totals, target)


GAUSSIAN_STATISTICS = StyleStatistics(
  whole=gaussian_style_target,
  tile_stats=gaussian_stats,
  merge_tile_stats=merge_gaussian_stats,
  from_tile_stats=gaussian_target_from_stats,
)


def gaussian_term(layers: Mapping[str, float]) -> terms.LossTerm:
  """The mean/covariance style term: `wasserstein2_style_loss` on each layer, summed with the
  weights of `layers`, against the Gaussian fits of the blend of the styles."""
  loss = terms.per_layer(GaussianLayerLoss(), layers)
  target = LayerStatistics(GAUSSIAN_STATISTICS, loss.layers)
  return terms.LossTerm(loss, layers=loss.layers, target=target)


terms.register_loss('gaussian', gaussian_term, built_in=True, layers=terms.STYLE_LAYERS)
