"""Position masks: guide images that weight the positions of every layer, and regions.

A mask is a guide image (`features['guides'][name]`, (H, W, K) in [0, 1] at the image's size)
whose channels weight the image's positions. The style losses read `REGIONS`: channel r is how
much each pixel belongs to region r (0 to 1), which is painted with its own style target; a pixel
in no region gets no style (content only). With one channel it is a strength map: how much style
goes where. Each style image's own `REGIONS` guide (Hs, Ws, R) says which of its pixels feed
region r's target: the style losses build one target per region (`region_blend`).

**From pixels to a layer** (`downsample`): a position of a layer of stride s stands for an s x s
cell of pixels (VGG's 2x2 poolings floor, so a layer has floor(H / s) rows and the last H mod s
pixel rows have no position of their own), and its weight is the mask's mean over that cell: a
box filter. Why this rule:

* It keeps each region's share of the image at every layer, so a region's share of the loss
  does not drift from layer to layer, and weights of regions that partition the image still sum
  to 1 at every position.
* It commutes with tiling: windows start on multiples of the deepest layer's stride
  (`nst_jax.run.tiles`), so a window's cells are the image's cells and the window's downsampled
  mask is the crop of the image's: tiled = untiled, to float rounding.
* A region never vanishes: any pixel of it gives its cell a positive weight at every layer.
  Gatys et al. (2017)'s "inside" mode instead keeps only the positions whose receptive field lies
  inside the region, then erodes them; relu5_1 sees 85 px beyond its 16 px cell, so at 256 px
  that removes every region narrower than about 190 px at that layer.

The price: a position near a region's edge sees the other region too (its receptive field
crosses the edge, about 45 px at relu4_2, 85 px at relu5_1), and its weight is only its cell's
share, so the statistics of a region include some of what surrounds it.

A guide that keeps positions out of every loss (padding, say) is read the same way:
`layer_mask(features, layer, name)` at each layer, `grid_mask` on a hypercolumn grid; the
tileable losses already take such weights (`losses.sums`).
"""

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core import vgg

# The guide of the style losses' regions, (H, W, R) in [0, 1]; see the module docstring.
REGIONS = 'regions'
# Divisions by a region's mass use at least this, so that an empty region gives zeros, not NaN.
TINY_MASS = 1e-12


def downsample(mask: ArrayLike, stride: int, size: tuple[int, int]) -> jax.Array:
  """The mean of `mask` over each `stride` x `stride` cell: its weights at a layer of `stride`.

  Args:
    mask: (H, W, K) weights of the pixels.
    stride: the layer's stride (1: the mask itself).
    size: (h, w) of the layer, `floor(H / stride)` by `floor(W / stride)` (pixels past the last
      whole cell are left out), or 1 on a side shorter than one cell (its mean).

  Returns:
    (h, w, K) float32.
  """
  m = jnp.asarray(mask, jnp.float32)
  if m.ndim != 3:
    raise ValueError(f'expected a mask (H, W, K), got shape {m.shape}')
  h, w = size
  if stride == 1 and (h, w) == m.shape[:2]:
    return m
  cell_h = stride if h * stride <= m.shape[0] else m.shape[0]
  cell_w = stride if w * stride <= m.shape[1] else m.shape[1]
  if h * cell_h > m.shape[0] or w * cell_w > m.shape[1]:
    raise ValueError(f'a mask of {m.shape[:2]} has no {size} cells of {stride} px')
  cells = m[: h * cell_h, : w * cell_w].reshape(h, cell_h, w, cell_w, m.shape[-1])
  return jnp.mean(cells, axis=(1, 3))


def guide(features: Mapping[str, Any], name: str = REGIONS) -> jax.Array | None:
  """`features['guides'][name]` (H, W, K) at the image's size, or None without it."""
  guides = features.get('guides') or {}
  return guides.get(name)


def layer_mask(features: Mapping[str, Any], layer: str, name: str = REGIONS) -> jax.Array | None:
  """The guide `name` at the grid of `features[layer]` (`downsample`): (h, w, K), or None."""
  mask = guide(features, name)
  if mask is None:
    return None
  stride = 1 if layer == 'image' else vgg.layer_stride(layer)
  return downsample(mask, stride, features[layer].shape[:2])


def grid_mask(
  features: Mapping[str, Any], stride: int, grid: tuple[int, int], name: str = REGIONS
) -> jax.Array | None:
  """The guide `name` on a grid of one position per `stride` pixels (hypercolumns), or None."""
  mask = guide(features, name)
  return None if mask is None else downsample(mask, stride, grid)


def region_count(features: Mapping[str, Any]) -> int | None:
  """R, the number of regions of the image's `REGIONS` guide, or None without one."""
  mask = guide(features)
  return None if mask is None else int(mask.shape[-1])


def masses(mask: jax.Array) -> jax.Array:
  """(h, w, R) weights -> (R,) each region's mass: how many positions' worth it holds."""
  return jnp.sum(mask, axis=(0, 1))


def check_style_regions(style_count: int | None, count: int | None) -> None:
  """Raises `ValueError` unless a style image's `REGIONS` guide has `count` channels, the
  content's region count (with content regions, every style says which of its pixels feed each
  region; without, no style has regions). Counts are None without a guide."""
  if style_count == count:
    return
  if style_count is None:
    raise ValueError(
      f"the content has {count} regions but a style image has no '{REGIONS}' guide: give each "
      'style one, (Hs, Ws, R), saying which of its pixels feed each region'
    )
  if count is None:
    raise ValueError(f"a style image has a '{REGIONS}' guide but the content has none")
  raise ValueError(f'a style has {style_count} regions in its guide; the content has {count}')


def region_blend(blend: Sequence[float], style_masses: jax.Array) -> jax.Array:
  """Each region's blend weights of the styles, (S, R): style s's weight `blend[s]` in every
  region where it has positions (mass > 0), normalised to sum 1 over the styles of each region
  (all 0 for a region that no style feeds).

  A region's target is then the mixture of the styles that feed it, each in the proportion of
  the blend: with one-hot style guides (style r feeds region r) each region gets its own style.

  Args:
    blend: S blend weights (concrete or traced).
    style_masses: (S, R) each style's mass in each region.
  """
  w = jnp.asarray(blend, jnp.float32)[:, None] * (style_masses > 0)
  return w / jnp.maximum(jnp.sum(w, axis=0, keepdims=True), TINY_MASS)
