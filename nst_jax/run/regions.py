"""Regions: which style paints which part of each content, settled and checked before a run.

A batch's regions are the contents' `'regions'` guide (B, H, W, R) in [0, 1] (`nst_jax.core.masks`):
channel r is region r, and a pixel in no region keeps the content only. Each style image's own
`'regions'` guide (Hs, Ws, R) says which of its pixels feed each region's target. `style_guides`
gives every style that has none the guide of the rule below (`assign_styles`), which the
command-line tools also use with the style masks they read:

* one region (R = 1, a strength map): every style of a pair's blend feeds it;
* each pair uses one style: that style feeds every region (STROTSS's region pairs, with a style
  mask: region r from the style's own region r);
* each pair uses the same R > 1 styles, all of them: style r feeds region r alone.

`check_region_sizes` then stops a run whose style regions are too small for the losses that read
them, before anything is compiled.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from nst_jax.core import masks, resample, vgg
from nst_jax.core.terms import LossTerm, layers_of, reads_regions
from nst_jax.errors import ConfigError
from nst_jax.run import schedule

REGIONS = masks.REGIONS
# Each region of a style needs at least this many positions at the deepest layer of each loss
# that reads it: half a cell (of 16 x 16 px at relu5_1), so that some position is mostly its.
MIN_POSITIONS = 0.5


def assign_styles(
  count: int,
  blend: np.ndarray,
  shapes: Sequence[tuple[int, int]],
  own: Sequence[np.ndarray | None] | None = None,
) -> list[np.ndarray]:
  """Each style's regions guide (Hs, Ws, R) by the rule of the module docstring.

  Args:
    count: R, the contents' regions.
    blend: (B, S) each pair's blend weights; a pair uses the styles with a positive one.
    shapes: each style image's (Hs, Ws).
    own: each style's own region map (Hs, Ws, R) from its style mask (channel r: its pixels of
      region r), or None for all of its pixels in every region.

  Raises:
    ConfigError: the pairs' styles fit none of the rule's cases.
  """
  own = list(own) if own is not None else [None] * len(shapes)
  used = np.asarray(blend) > 0
  per_pair = used.sum(axis=1)
  full = [
    np.ones((*shape, count), np.float32) if m is None else m
    for m, shape in zip(own, shapes, strict=True)
  ]
  if count == 1 or (per_pair == 1).all():
    return full
  if len(shapes) == count and used.all():
    one_hot = []
    for s, regions in enumerate(full):
      guide = np.zeros_like(regions)
      guide[..., s] = regions[..., s]
      one_hot.append(guide)
    return one_hot
  raise ConfigError(
    f'{count} regions but pairs that use {sorted(set(per_pair.tolist()))} style(s): with several '
    'regions, every pair uses either one style (it paints every region) or all the styles, one '
    'per region (style i paints region i)'
  )


def settle(
  guides: Mapping[str, Any],
  style_guides: Sequence[Mapping[str, Any]] | None,
  shapes: Sequence[tuple[int, int]],
  blend: np.ndarray,
  style_weights: Any,
) -> tuple[np.ndarray, list[dict[str, Any]] | None]:
  """`(blend, style_guides)` of a batch with regions: with R > 1 regions and no `style_weights`
  every pair uses every style; each style gets a regions guide (its own, or `assign_styles`'s).
  Both unchanged without regions.

  Raises:
    ConfigError: region counts that differ, style regions without content regions.
  """
  given = [dict(g) for g in style_guides] if style_guides is not None else None
  if REGIONS not in guides:
    if given and any(REGIONS in g for g in given):
      raise ConfigError(
        f"style_guides have '{REGIONS}' but the contents have none: give the contents' regions "
        f"as guides={{'{REGIONS}': (B, H, W, R)}}"
      )
    return blend, given
  count = int(guides[REGIONS].shape[-1])
  if style_weights is None and count > 1:
    blend = np.ones_like(blend)
  given = given if given is not None else [{} for _ in shapes]
  defaults = assign_styles(count, blend, shapes)
  for s, (guide, default) in enumerate(zip(given, defaults, strict=True)):
    if REGIONS not in guide:
      guide[REGIONS] = default
    elif guide[REGIONS].shape[-1] != count:
      raise ConfigError(
        f"style_guides[{s}]['{REGIONS}'] has {guide[REGIONS].shape[-1]} regions; the contents "
        f'have {count}'
      )
  return blend, given


def check(
  terms: Mapping[str, LossTerm],
  guides: Mapping[str, Any],
  style_guides: Sequence[Mapping[str, Any]] | None,
  blend: np.ndarray,
  sizes: Sequence[tuple[int, int]],
  config: ml_collections.ConfigDict,
) -> None:
  """`check_served` and `check_region_sizes` of a batch with regions (nothing without)."""
  if REGIONS not in guides:
    return
  style_regions = [np.asarray(g[REGIONS]) for g in style_guides]
  check_served(np.asarray(guides[REGIONS]), style_regions, blend)
  check_region_sizes(terms, style_regions, sizes, config)


def check_served(content_regions: np.ndarray, style_regions: Sequence[np.ndarray], blend) -> None:
  """Raises `ConfigError` if some pair has pixels in a region that none of its styles feeds.

  Args:
    content_regions: (B, H, W, R) the pairs' regions.
    style_regions: each style's regions guide (Hs, Ws, R).
    blend: (B, S) blend weights.
  """
  has = np.asarray(content_regions).max(axis=(1, 2)) > 0
  fed = np.stack([np.asarray(g).max(axis=(0, 1)) > 0 for g in style_regions])
  for b, row in enumerate(np.asarray(blend) > 0):
    missing = np.flatnonzero(has[b] & ~fed[row].any(axis=0))
    if missing.size:
      raise ConfigError(
        f'pair {b} has pixels in region {int(missing[0])}, but none of its styles has pixels in '
        'that region (its style guide is 0 there)'
      )


def check_region_sizes(
  terms: Mapping[str, LossTerm],
  style_regions: Sequence[np.ndarray],
  content_sizes: Sequence[tuple[int, int]],
  config: ml_collections.ConfigDict,
  style_names: Sequence[str] | None = None,
  region_names: Sequence[str] | None = None,
) -> None:
  """Raises `ConfigError` if a style region is too small for a loss that reads it.

  Every region a style feeds needs `MIN_POSITIONS` at the deepest layer of every loss that reads
  regions, at every scale (the style resized as `stylize` resizes it).

  Args:
    terms: the objective's terms.
    style_regions: each style's regions guide (Hs, Ws, R) at its fitted size.
    content_sizes: (h, w) of each scale of the contents.
    style_names, region_names: what the message calls them (default 'style i', 'region r').
  """
  readers = {name: layers_of([t])[-1] for name, t in terms.items() if reads_regions(t) and t.layers}
  if not readers:
    return
  for s, guide in enumerate(style_regions):
    guide = np.asarray(guide, np.float32)
    fed = guide.max(axis=(0, 1)) > 0
    for k, size in enumerate(content_sizes):
      shape = resample.fit_size(guide.shape[:2], schedule.style_side(size, config))
      scaled = resample.resize(guide, shape)
      for name, layer in readers.items():
        stride = vgg.layer_stride(layer)
        cells = tuple(max(1, n // stride) for n in shape)
        held = np.asarray(masks.masses(masks.downsample(scaled, stride, cells)))
        for r in np.flatnonzero(fed & (held < MIN_POSITIONS)):
          style = style_names[s] if style_names else f'style {s}'
          region = region_names[r] if region_names else f'region {r}'
          raise ConfigError(
            f'{style}: its pixels of {region} make {held[r]:.2f} positions at {layer} (loss '
            f'{name!r}) when the style is {shape[1]}x{shape[0]} px at scale {k + 1} of '
            f'{len(content_sizes)}; the loss needs at least {MIN_POSITIONS:g} (of a {stride}x'
            f'{stride} px cell): give that region more pixels, or raise config.style_image.scale'
          )
