"""Blending several styles into one target, and the per-layer style statistics of a blend.

A style target type blends itself: `TargetType.blend(weights, targets)` returns the statistics
of the mixture (see each type's docstring). `blend_style_targets` applies that leaf by leaf to
pytrees of targets, and `LayerStatistics` is the target of the per-layer style losses (Gram and
Gaussian): each style's statistics at each layer, blended. With regions (`nst_jax.core.masks`)
it holds one target per region (leaves with a leading axis R): each style's statistics over the
pixels its region guide gives to region r, blended region by region (`blend_regions`).
"""

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nst_jax.core import masks
from nst_jax.core.losses.sums import RegionSums, map_regions, region_sums
from nst_jax.core.terms import Features
from nst_jax.errors import ConfigError


@runtime_checkable
class Blendable(Protocol):
  """A style target type that knows the statistics of a mixture of styles."""

  @classmethod
  def blend(cls, weights: Sequence[float], targets: Sequence[Any]) -> Any:
    """The mixture's target, from targets of this type and weights summing to 1."""


def check_blend_weights(weights: ArrayLike, name: str = 'blend weights') -> np.ndarray:
  """`weights` (..., S) as float64; raises `ConfigError` naming `name` unless every row of S
  weights is finite, >= 0 and not all zero (only their ratios matter)."""
  w = np.asarray(weights, np.float64)
  if not np.isfinite(w).all() or (w < 0).any() or (w.sum(axis=-1) <= 0).any():
    raise ConfigError(f'{name} must be finite, >= 0 and not all zero, got {w.tolist()}')
  return w


def _blend_one(weights: np.ndarray, *targets: Any) -> Any:
  kinds = {type(t) for t in targets}
  if len(kinds) != 1 or not isinstance(targets[0], Blendable):
    names = sorted(type(t).__name__ for t in targets)
    raise ValueError(f'cannot blend targets of different or unknown types: {names}')
  return type(targets[0]).blend([float(wi) for wi in weights], targets)


def blend_style_targets(targets: Sequence[Any], weights: Sequence[float]) -> Any:
  """Blends several styles' statistics into one target, as the statistics of their mixture.

  Each element of `targets` is a style target (`GramTarget`, `GaussianTarget`, `SlicedTarget`),
  or a pytree of them with the same structure (e.g. a dict from layer name to target). With
  weights `w_i` normalised to sum 1:

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
  is_target = lambda x: isinstance(x, Blendable)  # noqa: E731
  structures = {jax.tree.structure(t, is_leaf=is_target) for t in targets}
  if len(structures) != 1:
    raise ValueError(f'style targets differ in structure: {sorted(map(str, structures))}')
  return jax.tree.map(functools.partial(_blend_one, w / w.sum()), *targets, is_leaf=is_target)


@dataclasses.dataclass(frozen=True)
class StyleStatistics:
  """One layer's style statistics as pure functions: one style's target from a whole feature map,
  and the same target from windows whose sums add up.

  Attributes:
    whole: features (h, w, C) -> the target.
    tile_stats: features (h, w, C) and a mask (h, w) of weights in [0, 1] -> the window's sums.
    merge_tile_stats: two windows' sums -> the sums of both.
    from_tile_stats: the sums over the whole image -> the target (as `whole` gives it).
    region_tile_stats: optional, features, a mask and regions (h, w, R) -> `RegionSums` of all
      regions at once (in place of `tile_stats` region by region, which `region_sums` does).
  """

  whole: Callable[[jax.Array], Any]
  tile_stats: Callable[[jax.Array, jax.Array], Any]
  merge_tile_stats: Callable[[Any, Any], Any]
  from_tile_stats: Callable[[Any], Any]
  region_tile_stats: Callable[[jax.Array, jax.Array, jax.Array], RegionSums] | None = None


def blend_regions(targets: Sequence[Any], blend: Sequence[float], style_masses: jax.Array) -> Any:
  """Region by region, the blend of the styles that feed each region (`masks.region_blend`).

  Args:
    targets: S targets of one type, each with leaves stacked per region (leading axis R).
    blend: S blend weights (summing to 1).
    style_masses: (S, R) each style's mass in each region.
  """
  if len(targets) == 1:
    return targets[0]
  weights = masks.region_blend(blend, style_masses)
  kind = type(targets[0])
  return map_regions(lambda w, *ts: kind.blend(list(w), ts), weights.T, *targets)


@dataclasses.dataclass(frozen=True)
class LayerStatistics:
  """The target of a per-layer style loss: `{layer: statistics}` of the blend of the styles.

  `statistics.whole(features (h, w, c))` is one style's target at one layer; the styles' targets are
  blended with `blend_style_targets`. Tileable (`TileableTarget`): the statistics of a style
  image add up window by window. With regions, each style's statistics are summed per region
  (`sums.RegionSums`) and blended region by region. A `PerStyleTarget`: each style image's
  statistics are computed from it alone.
  """

  statistics: StyleStatistics
  layers: tuple[str, ...]

  def __call__(self, content: Features, styles: Sequence[Features], blend: Sequence[float]) -> Any:
    return self.from_style_statistics(content, [self.style_statistics(s) for s in styles], blend)

  def style_statistics(self, style: Features) -> Any:
    """`{layer: target}` of one style image alone, or with a regions guide `{layer: RegionSums}`
    (its sums in each region)."""
    if masks.region_count(style) is None:
      return {n: self.statistics.whole(style[n]) for n in self.layers}
    whole = {n: jnp.ones(style[n].shape[:2]) for n in self.layers}  # One window: all of it.
    return self.tile_stats(style, whole)

  def from_style_statistics(
    self, content: Features, per_style: Sequence[Any], blend: Sequence[float]
  ) -> Any:
    count = masks.region_count(content)
    for s in per_style:
      found = s[self.layers[0]]
      masks.check_style_regions(
        found.mass.shape[0] if isinstance(found, RegionSums) else None, count
      )
    if count is None:
      return blend_style_targets(per_style, blend)
    return self.from_tile_stats(per_style, blend)

  def tile_stats(self, features: Features, masks_: Mapping[str, jax.Array]) -> Any:
    if masks.region_count(features) is None:
      return {n: self.statistics.tile_stats(features[n], masks_[n]) for n in self.layers}
    together = self.statistics.region_tile_stats
    if together is not None:
      return {
        n: together(features[n], masks_[n], masks.layer_mask(features, n)) for n in self.layers
      }
    return {
      n: region_sums(
        lambda m, n=n: self.statistics.tile_stats(features[n], m),
        masks_[n],
        masks.layer_mask(features, n),
      )
      for n in self.layers
    }

  def merge_tile_stats(self, a: Any, b: Any) -> Any:
    merge = self.statistics.merge_tile_stats
    out = {}
    for n in self.layers:
      if isinstance(a[n], RegionSums):
        per_region = jax.vmap(merge)(a[n].per_region, b[n].per_region)
        out[n] = RegionSums(per_region, a[n].mass + b[n].mass, a[n].positions + b[n].positions)
      else:
        out[n] = merge(a[n], b[n])
    return out

  def from_tile_stats(self, per_style: Sequence[Any], blend: Sequence[float]) -> Any:
    finish = self.statistics.from_tile_stats
    if not isinstance(per_style[0][self.layers[0]], RegionSums):
      targets = [{n: finish(s[n]) for n in self.layers} for s in per_style]
      return blend_style_targets(targets, blend)
    blend = [w / sum(blend) for w in blend]
    return {
      n: blend_regions(
        [map_regions(finish, s[n].per_region) for s in per_style],
        blend,
        jnp.stack([s[n].mass for s in per_style]),
      )
      for n in self.layers
    }
