"""Total variation: the seed's "denoising" smoothness term, for ONE image, and its term."""

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core import terms
from nst_jax.core.losses.common import as_float
from nst_jax.core.losses.sums import ErrorSums, mean_from_sums
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


def total_variation_sums(
  image: ArrayLike, mask: ArrayLike, *, kind: TVKind = 'l1', region: ArrayLike | None = None
) -> ErrorSums:
  """`total_variation`'s sums over the neighbour pairs whose first pixel is masked.

  A pair that crosses the window's last row or column is not in the window and not counted:
  with windows that overlap by at least one pixel, its owner window counts it.

  Args:
    image: (h, w, C) window of the image.
    mask: (h, w) 1 on the pixels this window owns.
    kind: 'l1' or 'l2', as for `total_variation`.
    region: (h, w) 1 on the image's own pixels, 0 on padding (`nst_jax.core.padding`), or None:
      a pair whose second pixel is padding is not counted either.
  """
  x = as_float(image)
  m = as_float(mask)[..., None]
  penalty = jnp.abs if kind == 'l1' else jnp.square
  total_variation(x[:2, :2], kind=kind)  # Checks `kind` and the shape.
  mx, my = m[:, :-1], m[:-1]
  if region is not None:
    r = as_float(region)[..., None]
    mx, my = mx * r[:, 1:], my * r[1:]
  dx = penalty(x[:, 1:] - x[:, :-1]) * mx
  dy = penalty(x[1:] - x[:-1]) * my
  channels = x.shape[-1]
  count = (jnp.sum(mx) + jnp.sum(my)) * channels
  return ErrorSums(jnp.sum(dx) + jnp.sum(dy), count)


@dataclasses.dataclass(frozen=True)
class TotalVariationLoss:
  """`total_variation` of the image (`features['image']`); tileable."""

  norm: TVKind

  def __call__(self, features: terms.Features, target: Any) -> jax.Array:
    del target
    return total_variation(features['image'], kind=self.norm)

  def tile_sums(self, features: terms.Features, masks: Mapping[str, jax.Array], target) -> Any:
    del target
    region = masks.get('image_region')  # Padded images' own pixels (`core.padding`).
    return total_variation_sums(features['image'], masks['image'], kind=self.norm, region=region)

  def from_tile_sums(self, totals: ErrorSums, target: Any) -> jax.Array:
    del target
    return mean_from_sums(totals)


def tv_term(norm: TVKind = 'l1') -> terms.LossTerm:
  """Total variation of the image: the seed's 'denoising' term, 'l1' or 'l2' (`norm`)."""
  if norm not in ('l1', 'l2'):
    raise ConfigError(f"norm={norm!r} is not 'l1' or 'l2'")
  return terms.LossTerm(TotalVariationLoss(norm))


terms.register_loss('tv', tv_term, built_in=True, norm='l1')
