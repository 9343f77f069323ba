"""Keeping the content: feature reconstruction, for ONE example, and its term."""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core import terms
from nst_jax.core.losses.common import as_float, check_features, positions
from nst_jax.core.losses.sums import ErrorSums, flat_positions, mean_from_sums


def content_loss(features: ArrayLike, target: ArrayLike) -> jax.Array:
  """Mean squared error between two feature maps.

  Args:
    features: (H, W, C) activations of the image being optimised.
    target: (H, W, C) activations of the content image, same shape.

  Returns:
    Scalar >= 0, the mean over all H*W*C entries of `(features - target)**2`.

  Raises:
    ValueError: if either input is not 3-D, or the shapes differ.
  """
  x = check_features(features)
  t = check_features(target, 'target')
  if x.shape != t.shape:
    raise ValueError(f'features shape {x.shape} and target shape {t.shape} differ')
  return jnp.mean(jnp.square(x - t))


def squared_error_sums(features: ArrayLike, target: ArrayLike, mask: ArrayLike) -> ErrorSums:
  """Sum of `(features - target)**2` over the masked positions and all channels (h, w, C)."""
  f, m = flat_positions(features, mask)
  t = positions(as_float(target))
  return ErrorSums(jnp.sum(jnp.square(f - t) * m[:, None]), jnp.sum(m) * f.shape[-1])


@dataclasses.dataclass(frozen=True)
class ContentLayerLoss:
  """`content_loss` of one layer against the content's features there; tileable."""

  def __call__(self, features: jax.Array, target: jax.Array, key: Any = None) -> jax.Array:
    return content_loss(features, target)

  def tile_sums(self, features: jax.Array, mask: jax.Array, target: jax.Array) -> ErrorSums:
    return squared_error_sums(features, target, mask)

  def from_tile_sums(self, totals: ErrorSums, target: Any) -> jax.Array:
    return mean_from_sums(totals)


@dataclasses.dataclass(frozen=True)
class ContentFeatures:
  """The target of a content term: the content's own features at `layers`. In tiles, each
  window computes it from the content's pixels in that window (a `WindowTarget`)."""

  layers: tuple[str, ...]

  def __call__(self, content: terms.Features, styles: Sequence[terms.Features], blend) -> Any:
    del styles, blend
    return {name: content[name] for name in self.layers}

  def from_window(self, content: terms.Features) -> Any:
    return self(content, (), ())


def content_term(layers: Mapping[str, float]) -> terms.LossTerm:
  """Gatys et al.'s content term: `content_loss` to the content's features on each layer,
  summed with the weights of `layers` (`{layer: weight}`)."""
  loss = terms.per_layer(ContentLayerLoss(), layers)
  return terms.LossTerm(loss, layers=loss.layers, target=ContentFeatures(loss.layers))


terms.register_loss('content', content_term, built_in=True, layers=terms.CONTENT_LAYERS)
