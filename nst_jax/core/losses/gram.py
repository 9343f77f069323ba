"""Gatys et al.'s Gram-matrix style loss, for ONE example's features (H, W, C), and its term.

Regions (`nst_jax.core.masks`): the guided Gram matrices of Gatys et al., "Controlling Perceptual
Factors in Neural Style Transfer" (CVPR 2017, their `GramMSEGuided`). Region r's Gram matrix is
`G_r = sum_p m_r(p) f_p f_p^T / sum_p m_r(p)`, with m_r the region's weights at the layer (the
box rule of `masks.downsample`), against its own target: the Gram matrix of the style pixels
that feed region r, computed the same way from the style's region guide. Dividing by the mask's
sum makes a region's statistics independent of its area. The loss is
`sum_r (sum_p m_r(p) / P) * mean((G_r - T_r)**2)`, each region weighted by its share of the P
positions (`sums.region_loss`): a position gets the same pull as without regions, and one region
of all ones is exactly the plain loss. Gatys et al. multiply the features by the guide, which
weighs soft masks by m**2; weighing by m keeps `G_r` the second moment of a weighted
distribution, as the Gaussian and sliced losses read their regions.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core import terms
from nst_jax.core.losses.blend import LayerStatistics, StyleStatistics
from nst_jax.core.losses.common import PRECISION, as_float, check_features, check_square, positions
from nst_jax.core.losses.sums import (
  RegionSums,
  WholeImageRegions,
  flat_positions,
  masked_outer,
  masked_outers,
  region_loss,
  safe_count,
)


class GramTarget(NamedTuple):
  """Gram-matrix style statistics of one style image at one layer.

  Attributes:
    gram: (C, C) symmetric PSD, `gram_matrix` of the style features.
  """

  gram: jax.Array

  @classmethod
  def blend(cls, weights: Sequence[float], targets: Sequence['GramTarget']) -> 'GramTarget':
    """The mixture's Gram matrix `sum_i w_i G_i` (a second moment mixes linearly)."""
    return cls(sum(w * jnp.asarray(t.gram) for w, t in zip(weights, targets, strict=True)))


def gram_matrix(features: ArrayLike) -> jax.Array:
  """Gram matrix of one example's features, normalised by the number of positions.

  Args:
    features: (H, W, C) activations of one layer for one image.

  Returns:
    (C, C) symmetric PSD matrix `F^T F / (H*W)`, where F is `features` reshaped to (H*W, C): the
    uncentred second moment of the feature vectors, independent of the image size.

  Raises:
    ValueError: if `features` is not 3-D or is empty.
  """
  f = positions(check_features(features))
  return _gram(f)


def _gram(f: jax.Array) -> jax.Array:
  """(P, C) -> (C, C) `f^T f / P`, contracting the positions in place (no transposed copy)."""
  return jnp.einsum('pc,pd->cd', f, f, precision=PRECISION) / f.shape[0]


def gram_style_loss(features: ArrayLike, target_gram: ArrayLike) -> jax.Array:
  """Gatys et al.'s style loss: mean squared difference of Gram matrices.

  Normalisation: the Gram matrix is divided by H*W and the loss averages over the C*C entries, so
  the value does not grow with image size or channel count (it scales as features**4).

  Args:
    features: (H, W, C) activations of the image being optimised.
    target_gram: (C, C) Gram matrix of the style features, e.g. `GramTarget.gram`.

  Returns:
    Scalar >= 0, `mean((gram_matrix(features) - target_gram)**2)`.

  Raises:
    ValueError: if `features` is not 3-D or `target_gram` is not (C, C).
  """
  x = check_features(features)
  t = check_square(target_gram, 'target_gram', x.shape[-1])
  return _gram_loss(positions(x), t)


@jax.custom_vjp
def _gram_loss(f: jax.Array, target: jax.Array) -> jax.Array:
  """`mean((gram(f) - target)**2)` for f (P, C), with a one-matmul gradient.

  d loss / d f = f (D + D^T) / P, with D = d loss / d gram = 2 (gram - target) / C^2: one
  (P, C) x (C, C) product, where autodiff of the Gram matrix makes two products and transposes
  at full resolution (relu1_1: P = 65536 at 256 px).
  """
  return jnp.mean(jnp.square(_gram(f) - target))


def _gram_loss_fwd(f, target):
  diff = _gram(f) - target
  return jnp.mean(jnp.square(diff)), (f, diff)


def _gram_loss_bwd(residuals, g):
  f, diff = residuals
  d_gram = (2.0 / diff.size) * g * diff
  d_f = jnp.matmul(f, (d_gram + d_gram.T) / f.shape[0], precision=PRECISION)
  return d_f, -d_gram


_gram_loss.defvjp(_gram_loss_fwd, _gram_loss_bwd)


def gram_style_target(features: ArrayLike) -> GramTarget:
  """Precomputes the Gram style target of one style image's features, shape (H, W, C)."""
  return GramTarget(gram_matrix(features))


# --- Sums over positions, for tiles --------------------------------------------------------------


class GramSums(NamedTuple):
  """outer: (C, C) sum of f f^T over the masked positions; count: () how many there are."""

  outer: jax.Array
  count: jax.Array


def gram_sums(features: ArrayLike, mask: ArrayLike) -> GramSums:
  """The sums a Gram matrix needs, over the positions of features (h, w, C) where mask is 1."""
  f, m = flat_positions(features, mask)
  return GramSums(masked_outer(f, m), jnp.sum(m))


def gram_region_sums(features: ArrayLike, mask: ArrayLike, regions: ArrayLike) -> RegionSums:
  """`gram_sums` of each region (regions (h, w, R) of weights, times mask) at once: all regions'
  outer products in one custom VJP (`masked_outers`), summed block by block, so that regions
  add no weighted copy of the features, forwards or backwards."""
  f, m = flat_positions(features, mask)
  weights = m[:, None] * as_float(regions).reshape(m.shape[0], -1)
  mass = jnp.sum(weights, axis=0)
  return RegionSums(GramSums(masked_outers(f, weights), mass), mass, jnp.sum(m))


def gram_target_from_sums(sums: GramSums) -> GramTarget:
  """The `GramTarget` of the positions summed (as `gram_style_target` of all of them; zeros for
  none)."""
  return GramTarget(sums.outer / safe_count(sums.count))


def gram_loss_from_sums(sums: GramSums, target_gram: ArrayLike) -> jax.Array:
  """`gram_style_loss` of the positions summed: `mean((outer / count - target_gram)**2)`."""
  return jnp.mean(jnp.square(sums.outer / safe_count(sums.count) - as_float(target_gram)))


# --- The term ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GramLayerLoss(WholeImageRegions):
  """`gram_style_loss` of one layer against its `GramTarget`; tileable; with regions, guided
  Gram matrices (see the module docstring)."""

  def __call__(self, features: jax.Array, target: GramTarget, key: Any = None) -> jax.Array:
    return gram_style_loss(features, target.gram)

  def tile_sums(
    self, features: jax.Array, mask: jax.Array, target: GramTarget, regions: Any = None
  ) -> GramSums | RegionSums:
    return (
      gram_sums(features, mask) if regions is None else gram_region_sums(features, mask, regions)
    )

  def from_tile_sums(self, totals: GramSums | RegionSums, target: GramTarget) -> jax.Array:
    if isinstance(totals, RegionSums):
      return region_loss(lambda s, t: gram_loss_from_sums(s, t.gram), totals, target)
    return gram_loss_from_sums(totals, target.gram)


GRAM_STATISTICS = StyleStatistics(
  whole=gram_style_target,
  tile_stats=gram_sums,
  merge_tile_stats=lambda a, b: jax.tree.map(jnp.add, a, b),
  from_tile_stats=gram_target_from_sums,
  region_tile_stats=gram_region_sums,
)


def gram_term(layers: Mapping[str, float]) -> terms.LossTerm:
  """Gatys et al.'s style term: `gram_style_loss` on each layer, summed with the weights of
  `layers` (`{layer: weight}`), against the Gram matrices of the blend of the styles."""
  loss = terms.per_layer(GramLayerLoss(), layers)
  return terms.LossTerm(
    loss, layers=loss.layers, target=LayerStatistics(GRAM_STATISTICS, loss.layers)
  )


terms.register_loss('gram', gram_term, built_in=True, layers=terms.STYLE_LAYERS)
