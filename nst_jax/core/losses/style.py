"""Style targets and losses by kind: one entry point for the Gram, Gaussian and sliced losses."""

from typing import Literal

import jax
from jax.typing import ArrayLike

from nst_jax.core.losses.gaussian import (
  GaussianTarget,
  gaussian_style_target,
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
