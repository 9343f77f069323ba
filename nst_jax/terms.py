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
import ml_collections

from nst_jax import losses
from nst_jax.errors import ConfigError
from nst_jax.objective import Features, LossTerm


@dataclasses.dataclass(frozen=True)
class _ContentTarget:
  layers: tuple[str, ...]

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


@dataclasses.dataclass(frozen=True)
class _StyleTarget:
  layers: tuple[str, ...]
  kind: losses.StyleKind

  def __call__(self, content: Features, styles: Sequence[Features], blend: Sequence[float]) -> Any:
    del content
    per_style = [{n: losses.style_target(s[n], self.kind) for n in self.layers} for s in styles]
    return losses.blend_style_targets(per_style, blend)


@dataclasses.dataclass(frozen=True)
class _TVLoss:
  kind: losses.TVKind

  def __call__(self, features: Features, target: Any) -> jax.Array:
    del target
    return losses.total_variation(features['image'], kind=self.kind)


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
