"""Style targets by kind, and blending several styles into one target."""

import functools
from collections.abc import Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nst_jax.core.losses.common import symmetrize
from nst_jax.core.losses.gaussian import (
  GaussianTarget,
  gaussian_style_target,
  psd_sqrtm,
  wasserstein2_style_loss,
)
from nst_jax.core.losses.gram import GramTarget, gram_style_loss, gram_style_target
from nst_jax.core.losses.sliced import (
  SlicedTarget,
  SortedProjections,
  sliced_style_target,
  sliced_wasserstein_style_loss,
)
from nst_jax.errors import ConfigError

StyleKind = Literal['gram', 'gaussian', 'sliced']
StyleTarget = GramTarget | GaussianTarget | SlicedTarget | SortedProjections


def style_target(features: ArrayLike, kind: StyleKind) -> StyleTarget:
  """Precomputes the style target of `kind` ('gram', 'gaussian' or 'sliced') for features
  (H, W, C). (The nearest-neighbour loss works on hypercolumns of several layers, not one layer:
  see `nearest_neighbor_target`.)

  Raises:
    ConfigError: if `kind` is not 'gram', 'gaussian' or 'sliced'.
  """
  if kind == 'gram':
    return gram_style_target(features)
  if kind == 'gaussian':
    return gaussian_style_target(features)
  if kind == 'sliced':
    return sliced_style_target(features)
  raise ConfigError(f"unknown style loss kind {kind!r}; expected 'gram', 'gaussian' or 'sliced'")


def style_loss(
  features: ArrayLike,
  target: StyleTarget,
  *,
  eps: float = 1e-6,
  key: ArrayLike | None = None,
  num_directions: int = 64,
) -> jax.Array:
  """The style loss that the type of `target` calls for.

  `gram_style_loss` for a `GramTarget`, `wasserstein2_style_loss` (with `eps`) for a
  `GaussianTarget`, `sliced_wasserstein_style_loss` (with `key` and `num_directions`) for a
  `SlicedTarget` or `SortedProjections`.

  Args:
    features: (H, W, C) activations of the image being optimised.
    target: a style target for C channels.
    eps: see `wasserstein2_style_loss`.
    key, num_directions: see `sliced_wasserstein_style_loss`.

  Returns:
    Scalar loss.
  """
  if isinstance(target, GramTarget):
    return gram_style_loss(features, target.gram)
  if isinstance(target, GaussianTarget):
    return wasserstein2_style_loss(features, *target, eps=eps)
  if isinstance(target, SlicedTarget | SortedProjections):
    return sliced_wasserstein_style_loss(features, target, key=key, num_directions=num_directions)
  raise TypeError(f'target must be a style target, got {type(target).__name__}')


def check_blend_weights(weights: ArrayLike, name: str = 'blend weights') -> np.ndarray:
  """`weights` (..., S) as float64; raises `ConfigError` naming `name` unless every row of S
  weights is finite, >= 0 and not all zero (only their ratios matter)."""
  w = np.asarray(weights, np.float64)
  if not np.isfinite(w).all() or (w < 0).any() or (w.sum(axis=-1) <= 0).any():
    raise ConfigError(f'{name} must be finite, >= 0 and not all zero, got {w.tolist()}')
  return w


def _is_target(x: Any) -> bool:
  return isinstance(x, GramTarget | GaussianTarget | SlicedTarget | SortedProjections)


def _blend_one(weights: np.ndarray, *targets: StyleTarget) -> StyleTarget:
  kinds = {type(t) for t in targets}
  if len(kinds) != 1 or not _is_target(targets[0]):
    names = sorted(type(t).__name__ for t in targets)
    raise ValueError(f'cannot blend targets of different or unknown types: {names}')
  w = [float(wi) for wi in weights]
  if isinstance(targets[0], GramTarget):
    return GramTarget(sum(wi * jnp.asarray(t.gram) for wi, t in zip(w, targets, strict=True)))
  if isinstance(targets[0], SlicedTarget):
    if len(targets) == 1:
      return targets[0]
    return SlicedTarget(
      jnp.concatenate([jnp.asarray(t.samples) for t in targets]),
      jnp.concatenate([wi * jnp.asarray(t.weights) for wi, t in zip(w, targets, strict=True)]),
    )
  if isinstance(targets[0], SortedProjections):
    raise ValueError(
      'cannot blend SortedProjections: blend the SlicedTargets, then call sorted_projections'
    )
  means = [jnp.asarray(t.mean) for t in targets]
  mean = sum(wi * m for wi, m in zip(w, means, strict=True))
  second = sum(
    wi * (jnp.asarray(t.cov) + jnp.outer(m, m)) for wi, t, m in zip(w, targets, means, strict=True)
  )
  cov = symmetrize(second - jnp.outer(mean, mean))
  return GaussianTarget(mean, cov, psd_sqrtm(cov))


def blend_style_targets(targets: Sequence[Any], weights: Sequence[float]) -> Any:
  """Blends several styles' statistics into one target, as the statistics of their mixture.

  Each element of `targets` is a `GramTarget`, a `GaussianTarget`, or a pytree of them with the
  same structure (e.g. a dict from layer name to target). With weights `w_i` normalised to sum 1:

  * Gram: `sum_i w_i G_i` (the Gram matrix is a second moment, so this is the mixture's).
  * Gaussian: mixture mean `m = sum_i w_i m_i`, covariance `sum_i w_i (S_i + m_i m_i^T) - m m^T`,
    and `cov_sqrt` recomputed from it.
  * Sliced: the samples of all styles together, style i's masses scaled by `w_i` (the mixture
    distribution itself; the sample counts add up, so targets of one batch must blend the same
    number of styles of the same padded sizes).

  So a 50/50 blend of two equal-size feature sets equals the statistics of their concatenation.

  Args:
    targets: N >= 1 targets (or pytrees of targets) of the same structure and shapes.
    weights: N concrete non-negative numbers, not all zero; only their ratios matter.

  Returns:
    One target (or pytree of targets) of the same structure.

  Raises:
    ConfigError: if the weights are not N finite non-negative numbers with a positive sum.
    ValueError: if the targets are empty, or differ in structure or type.
  """
  if len(targets) == 0:
    raise ValueError('blend_style_targets needs at least one target')
  w = check_blend_weights(weights)
  if w.shape != (len(targets),):
    raise ConfigError(f'need one blend weight per style target ({len(targets)}), got {w.shape}')
  structures = {jax.tree.structure(t, is_leaf=_is_target) for t in targets}
  if len(structures) != 1:
    raise ValueError(f'style targets differ in structure: {sorted(map(str, structures))}')
  return jax.tree.map(functools.partial(_blend_one, w / w.sum()), *targets, is_leaf=_is_target)
