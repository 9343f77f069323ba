"""The built-in loss terms, and the names that config files use for terms.

`terms_from_config(config)` builds the terms that `config.terms` names (`{name: weight}`):
`content`, `style` and `tv` are built in; `register_term(name, builder)` adds your own, where
`builder(config) -> LossTerm` (its weight is then the config's).

`stylize` reuses its compiled programs when called again with terms that compare equal (weights
aside: they are arguments of the programs). The built-in terms compare by value, because their
functions are frozen dataclasses rather than closures; for your own, pass the same function
objects again (a new `lambda` each call means a new compilation).
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from nst_jax import losses
from nst_jax.errors import ConfigError
from nst_jax.losses import sums
from nst_jax.objective import Features, LossTerm


@dataclasses.dataclass(frozen=True)
class _ContentTarget:
  layers: tuple[str, ...]
  # Tiling (`nst_jax.tiles`): computed from each window's content features.
  per_window = True

  def __call__(self, content: Features, styles: Sequence[Features], blend: Sequence[float]) -> Any:
    del styles, blend
    return {name: content[name] for name in self.layers}


@dataclasses.dataclass(frozen=True)
class _LayerLoss:
  """`sum_l w_l * loss(features[l], target[l])` over the layers and weights `layer_weights`."""

  loss: Callable[[jax.Array, Any], jax.Array]
  layer_weights: tuple[tuple[str, float], ...]

  def __call__(self, features: Features, target: Any) -> jax.Array:
    return sum(w * self.loss(features[n], target[n]) for n, w in self.layer_weights)

  # Tiling (`nst_jax.tiles`): the content and style losses are functions of sums over positions.

  @property
  def tileable(self) -> bool:
    return self.loss in (losses.content_loss, losses.style_loss)

  def tile_sums(self, features: Features, masks: Mapping[str, jax.Array], target: Any) -> Any:
    """`{layer: sums}` over the positions where `masks[layer]` is 1 (see `losses.sums`)."""
    out = {}
    for name, _ in self.layer_weights:
      if self.loss is losses.content_loss:
        out[name] = sums.squared_error_sums(features[name], target[name], masks[name])
      elif isinstance(target[name], losses.GramTarget):
        out[name] = sums.gram_sums(features[name], masks[name])
      else:
        out[name] = sums.moment_sums(features[name], masks[name], target[name].mean)
    return out

  def from_tile_sums(self, totals: Any, target: Any) -> jax.Array:
    """The loss from sums over every position of the image."""
    value = jnp.zeros((), jnp.float32)
    for name, w in self.layer_weights:
      if self.loss is losses.content_loss:
        value += w * sums.mean_from_sums(totals[name])
      elif isinstance(target[name], losses.GramTarget):
        value += w * sums.gram_loss_from_sums(totals[name], target[name].gram)
      else:
        value += w * sums.gaussian_loss_from_sums(totals[name], target[name])
    return value


@dataclasses.dataclass(frozen=True)
class _StyleTarget:
  layers: tuple[str, ...]
  kind: losses.StyleKind

  def __call__(self, content: Features, styles: Sequence[Features], blend: Sequence[float]) -> Any:
    del content
    per_style = [{n: losses.style_target(s[n], self.kind) for n in self.layers} for s in styles]
    return losses.blend_style_targets(per_style, blend)

  # Tiling (`nst_jax.tiles`): a style image's statistics, accumulated window by window.

  def tile_stats(self, features: Features, masks: Mapping[str, jax.Array]) -> Any:
    if self.kind == 'gram':
      return {n: sums.gram_sums(features[n], masks[n]) for n in self.layers}
    return {n: sums.gaussian_stats(features[n], masks[n]) for n in self.layers}

  def merge_tile_stats(self, a: Any, b: Any) -> Any:
    if self.kind == 'gram':
      return jax.tree.map(jnp.add, a, b)
    return {n: sums.merge_gaussian_stats(a[n], b[n]) for n in self.layers}

  def from_tile_stats(self, per_style: Sequence[Any], blend: Sequence[float]) -> Any:
    if self.kind == 'gram':
      to_target = sums.gram_target_from_sums
    else:
      to_target = sums.gaussian_target_from_stats
    targets = [{n: to_target(s[n]) for n in self.layers} for s in per_style]
    return losses.blend_style_targets(targets, blend)


@dataclasses.dataclass(frozen=True)
class _TVLoss:
  kind: losses.TVKind

  def __call__(self, features: Features, target: Any) -> jax.Array:
    del target
    return losses.total_variation(features['image'], kind=self.kind)

  def tile_sums(self, features: Features, masks: Mapping[str, jax.Array], target: Any) -> Any:
    del target
    return sums.total_variation_sums(features['image'], masks['image'], kind=self.kind)

  def from_tile_sums(self, totals: Any, target: Any) -> jax.Array:
    del target
    return sums.mean_from_sums(totals)


def _positive(layer_weights: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
  return tuple((name, float(w)) for name, w in layer_weights.items() if w > 0)


def content_term(layer_weights: Mapping[str, float], weight: float = 1.0) -> LossTerm:
  """Feature MSE to the content image, summed over layers with `layer_weights`."""
  layer_weights = _positive(layer_weights)
  layers = tuple(name for name, _ in layer_weights)
  return LossTerm(
    _LayerLoss(losses.content_loss, layer_weights), weight, layers, _ContentTarget(layers)
  )


def style_term(
  layer_weights: Mapping[str, float], kind: losses.StyleKind = 'gram', weight: float = 1.0
) -> LossTerm:
  """Gram or Gaussian (mean/covariance W2) style loss to the blend of the style images."""
  layer_weights = _positive(layer_weights)
  layers = tuple(name for name, _ in layer_weights)
  return LossTerm(
    _LayerLoss(losses.style_loss, layer_weights), weight, layers, _StyleTarget(layers, kind)
  )


def tv_term(kind: losses.TVKind = 'l1', weight: float = 1.0) -> LossTerm:
  """Total variation of the image: the seed's 'denoising' term."""
  return LossTerm(_TVLoss(kind), weight)


TermBuilder = Callable[[ml_collections.ConfigDict], LossTerm]

_BUILDERS: dict[str, TermBuilder] = {
  'content': lambda c: content_term(c.content_layers),
  'style': lambda c: style_term(c.style_layers, c.style_loss),
  'tv': lambda c: tv_term(c.tv_kind),
}


def register_term(name: str, builder: TermBuilder) -> None:
  """Makes `name` usable in `config.terms`; `builder(config)` returns its `LossTerm`."""
  _BUILDERS[name] = builder


def unregister_term(name: str) -> None:
  """Forgets a term added with `register_term`; the built-in terms stay."""
  if name in ('content', 'style', 'tv'):
    raise ValueError(f'{name!r} is a built-in term and cannot be unregistered')
  _BUILDERS.pop(name, None)


def terms_from_config(config: ml_collections.ConfigDict) -> dict[str, LossTerm]:
  """The terms named in `config.terms` with a positive weight, in that order."""
  unknown = [name for name in config.terms if name not in _BUILDERS]
  if unknown:
    raise ConfigError(
      f'config.terms names unknown loss term(s) {", ".join(unknown)}; registered terms are: '
      f'{", ".join(_BUILDERS)} (add your own with nst_jax.register_term)'
    )
  return {
    name: _BUILDERS[name](config)._replace(weight=float(weight))
    for name, weight in config.terms.items()
    if weight > 0
  }
