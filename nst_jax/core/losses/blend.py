"""Blending several styles into one target, and the per-layer style statistics of a blend.

A style target type blends itself: `TargetType.blend(weights, targets)` returns the statistics
of the mixture (see each type's docstring). `blend_style_targets` applies that leaf by leaf to
pytrees of targets, and `LayerStatistics` is the target of the per-layer style losses (Gram and
Gaussian): each style's statistics at each layer, blended.
"""

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np
from jax.typing import ArrayLike

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


class LayerStatisticsFn(Protocol):
  """One layer's style statistics: the target of one style, and how windows add up."""

  def __call__(self, features: jax.Array) -> Any: ...

  def tile_stats(self, features: jax.Array, mask: jax.Array) -> Any: ...

  def merge_tile_stats(self, a: Any, b: Any) -> Any: ...

  def from_tile_stats(self, stats: Any) -> Any: ...


@dataclasses.dataclass(frozen=True)
class LayerStatistics:
  """The target of a per-layer style loss: `{layer: statistics}` of the blend of the styles.

  `statistics(features (h, w, c))` is one style's target at one layer; the styles' targets are
  blended with `blend_style_targets`. Tileable (`TileableTarget`): the statistics of a style
  image add up window by window.
  """

  statistics: LayerStatisticsFn
  layers: tuple[str, ...]

  def __call__(self, content: Features, styles: Sequence[Features], blend: Sequence[float]) -> Any:
    del content
    per_style = [{n: self.statistics(s[n]) for n in self.layers} for s in styles]
    return blend_style_targets(per_style, blend)

  def tile_stats(self, features: Features, masks: Mapping[str, jax.Array]) -> Any:
    return {n: self.statistics.tile_stats(features[n], masks[n]) for n in self.layers}

  def merge_tile_stats(self, a: Any, b: Any) -> Any:
    return {n: self.statistics.merge_tile_stats(a[n], b[n]) for n in self.layers}

  def from_tile_stats(self, per_style: Sequence[Any], blend: Sequence[float]) -> Any:
    targets = [{n: self.statistics.from_tile_stats(s[n]) for n in self.layers} for s in per_style]
    return blend_style_targets(targets, blend)
