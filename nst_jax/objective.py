"""The objective as a mapping of named, weighted loss terms that users can add, remove or replace.

A `LossTerm` is pure: `loss(features, target)` is a scalar for ONE example, where `features` maps
VGG19 layer names to (h, w, c) activations of the image being optimised, plus `'image'` to the
image itself, (H, W, 3) in [0, 1]. Its `target` is computed once per (content, styles) pair
before optimisation, by `target(content_features, style_features, style_weights)`.

    terms = objective.terms_from_config(config)
    del terms['tv']
    terms['brightness'] = objective.LossTerm(
        loss=lambda features, target: (features['image'].mean() - 0.6) ** 2, weight=10.0)
    result = nst_jax.stylize(contents, styles, config, terms=terms)

Terms can also be named in `config.terms` (`{name: weight}`) once registered with
`register_term(name, builder)`, where `builder(config) -> LossTerm` (its weight is then the
config's).

`stylize` reuses its compiled programs when called again with terms that compare equal (weights
aside: they are arguments of the programs). The built-in terms compare by value; for your own,
pass the same function objects again (a new `lambda` each call means a new compilation).
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import ml_collections

from nst_jax import losses
from nst_jax.errors import ConfigError

Features = Mapping[str, jax.Array]
TargetFn = Callable[[Features, Sequence[Features], Sequence[float]], Any]


class LossTerm(NamedTuple):
  """One named part of the objective.

  Attributes:
    loss: `(features, target) -> scalar` for one example; see the module docstring.
    weight: multiplies the loss (or, with `normalize_terms`, is the term's share of the
      gradient); must be >= 0.
    layers: VGG19 layers that `loss` and `target` read; the network runs up to the deepest.
    target: `(content_features, style_features, style_weights) -> pytree`, run once per pair:
      content features as in `loss`, style features one mapping per style image (sizes may
      differ), and their blend weights (summing to 1). None gives a target of None.
  """

  loss: Callable[[Features, Any], jax.Array]
  weight: float = 1.0
  layers: tuple[str, ...] = ()
  target: TargetFn | None = None


# The built-in terms' functions are frozen dataclasses rather than closures, so that terms built
# twice from the same settings compare equal and `stylize` reuses its compiled programs.


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


def registered_terms() -> tuple[str, ...]:
  return tuple(_BUILDERS)


def terms_from_config(config: ml_collections.ConfigDict) -> dict[str, LossTerm]:
  """The terms named in `config.terms` with a positive weight, in that order."""
  unknown = [name for name in config.terms if name not in _BUILDERS]
  if unknown:
    raise ConfigError(
      f'config.terms names unknown loss term(s) {", ".join(unknown)}; registered terms are: '
      f'{", ".join(_BUILDERS)} (add your own with nst_jax.objective.register_term)'
    )
  return {
    name: _BUILDERS[name](config)._replace(weight=float(weight))
    for name, weight in config.terms.items()
    if weight > 0
  }


def check_terms(terms: Mapping[str, LossTerm]) -> None:
  """Raises `ConfigError` if `terms` is empty or has a negative, all-zero or non-finite weight."""
  if not terms:
    raise ConfigError('the objective has no loss terms')
  for name, term in terms.items():
    if not isinstance(term, LossTerm):
      raise ConfigError(f'loss term {name!r} is a {type(term).__name__}, not a LossTerm')
    if not term.weight >= 0 or term.weight == float('inf'):
      raise ConfigError(f'loss term {name!r} has weight {term.weight}; it must be finite and >= 0')
  if not any(term.weight > 0 for term in terms.values()):
    raise ConfigError('all loss term weights are zero')


def compute_targets(
  terms: Mapping[str, LossTerm],
  content: Features,
  styles: Sequence[Features],
  style_weights: Sequence[float],
) -> dict[str, Any]:
  """Each term's target for one (content, styles) pair; blend weights are normalised here."""
  total = sum(style_weights)
  blend = [w / total for w in style_weights]
  return {
    name: None if term.target is None else term.target(content, styles, blend)
    for name, term in terms.items()
  }


def evaluate(
  terms: Mapping[str, LossTerm], features: Features, targets: Mapping[str, Any]
) -> dict[str, jax.Array]:
  """Each term's (unweighted) value for one example."""
  return {name: term.loss(features, targets[name]) for name, term in terms.items()}
