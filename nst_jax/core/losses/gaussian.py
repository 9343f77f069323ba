"""Gaussian (mean and covariance) style statistics and their closed-form Wasserstein-2 distance,
for ONE example's features (H, W, C)."""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

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
