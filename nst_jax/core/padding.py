"""Padded images: a pair's own region inside a larger canvas, left out of the objective exactly.

Contents of different sizes share one batch (`nst_jax.run.buckets`) when each is padded to the
batch's largest height and width. Each pair's region, top-left aligned, travels as its guide
`VALID` (h, w, 1): 1 inside the region, 0 on the padding. With it, the objective is that of the
region alone, up to float rounding, whatever the padding holds:

- the network zeroes the padding before every conv (`vgg.VGG19`'s `valid`), so that the region's
  activations are those of the region run alone ('SAME' convolutions pad with zeros);
- every term is computed from its sums over the positions (the tiling contract of
  `nst_jax.core.terms`) with the region as the mask at each layer's resolution
  (`PaddedLoss`); total variation counts no pair of neighbours that crosses the region's border.

The padding then gets no gradient, so it never moves. Terms that are not sums over positions
(sliced Wasserstein, nearest neighbours, self-similarity) cannot leave the padding out:
`blocking_terms` names them.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from nst_jax.core import vgg
from nst_jax.core.terms import Features, LossTerm, tileable

# The guide that holds each pair's region: (..., h, w, 1), 1 inside it, 0 on the padding.
VALID = 'valid'
# The mask key under which total variation finds the region (its pairs must not cross it).
IMAGE_REGION = 'image_region'


def region_sizes(valid: jax.Array) -> jax.Array:
  """(..., 2) float32 height and width of the regions of `valid` masks (..., h, w, 1)."""
  inside = valid[..., 0] > 0.5
  return jnp.stack([inside[..., :, 0].sum(-1), inside[..., 0, :].sum(-1)], -1).astype(jnp.float32)


def region_masks(sizes: jax.Array, features: Features, layers: tuple[str, ...]) -> dict:
  """`{name: (h, w) float32}` each of `layers` (and 'image') masked to the region `sizes` (2,)."""
  masks = {}
  for name in ('image', *layers):
    stride = 1 if name == 'image' else vgg.layer_stride(name)
    masks[name] = vgg.region_mask(sizes, features[name].shape[:2], stride).astype(jnp.float32)
  masks[IMAGE_REGION] = masks['image']
  return masks


@dataclasses.dataclass(frozen=True)
class PaddedLoss:
  """A tileable loss (`terms.TileableLoss`) of ONE padded example, over its region only: its sums
  over the positions where the region's mask is 1, finished (`from_tile_sums`)."""

  loss: Any
  layers: tuple[str, ...]

  def __call__(self, features: Features, target: Any) -> jax.Array:
    sizes = region_sizes(features['guides'][VALID])
    masks = region_masks(sizes, features, self.layers)
    return self.loss.from_tile_sums(self.loss.tile_sums(features, masks, target), target)


def blocking_terms(terms: Mapping[str, LossTerm]) -> list[str]:
  """The names of `terms` that cannot leave the padding out (not sums over positions)."""
  return [name for name, term in terms.items() if not tileable(term)]


def padded_terms(terms: Mapping[str, LossTerm]) -> dict[str, LossTerm]:
  """`terms`, each over its pair's region only (`PaddedLoss`); all must be tileable."""
  blocked = blocking_terms(terms)
  if blocked:
    raise ValueError(f'loss term(s) {blocked} cannot leave padding out')
  return {
    name: term._replace(loss=PaddedLoss(term.loss, term.layers)) for name, term in terms.items()
  }
