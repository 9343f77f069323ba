"""The objective of one example: network features, named loss terms, and their weighted total.

A `LossTerm` is pure: `loss(features, target)` is a scalar for ONE example, where `features` maps
VGG19 layer names to (h, w, c) activations of the image being optimised, plus `'image'` to the
image itself, (H, W, 3) in [0, 1], and `'key'` to a PRNG key that changes at every step (for
stochastic terms). Its `target` is computed once per (content, styles) pair and scale before
optimisation, by `target(content_features, style_features, style_weights)`, and, for terms with
a `refresh`, recomputed from the current image every `refresh_every` steps. A term with
`style_views` receives the features of rotated or mirrored copies of each style image too.

    terms = nst_jax.terms_from_config(config)
    del terms['tv']
    terms['brightness'] = nst_jax.LossTerm(
        loss=lambda features, target: (features['image'].mean() - 0.6) ** 2, weight=10.0)
    result = nst_jax.stylize(contents, styles, config, terms=terms)

The built-in terms, and naming terms in config files, are in `nst_jax.terms`. An `Objective`
runs the network and combines the terms' values in a weighted sum (`combine_terms`).

Normalised terms (`config.normalize_terms`): each pair's weight of a term is divided by the
term's *reference value* for that pair (`reference_values`): how far apart the pair's two inputs
are under that term, the larger of its values at the content photograph and at the style image
(stretched to the content's size). A content term is then measured against "none of the content
left" and a style term against "none of the style", so the weights are relative importances that
do not depend on the pair, the image size or the terms' units. (Dividing each term by a
stop-gradient of its own current value, as the seed's tutorial did, pulls hardest on whichever
term nears zero: results flip between the photograph and the texture from pair to pair.)
"""

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core import vgg
from nst_jax.core.losses.common import as_float
from nst_jax.errors import ConfigError

Features = Mapping[str, jax.Array]
TargetFn = Callable[[Features, Sequence[Features], Sequence[float]], Any]

# Views of a style image (H, W, 3) that a term's target can ask for (`LossTerm.style_views`):
# rotations by multiples of 90 degrees (counter-clockwise), and the same after a left-right flip.
STYLE_VIEWS: dict[str, Callable[[jax.Array], jax.Array]] = {
  'identity': lambda x: x,
  'rot90': lambda x: jnp.rot90(x, 1, axes=(0, 1)),
  'rot180': lambda x: jnp.rot90(x, 2, axes=(0, 1)),
  'rot270': lambda x: jnp.rot90(x, 3, axes=(0, 1)),
  'flip': lambda x: x[:, ::-1],
  'flip_rot90': lambda x: jnp.rot90(x[:, ::-1], 1, axes=(0, 1)),
  'flip_rot180': lambda x: jnp.rot90(x[:, ::-1], 2, axes=(0, 1)),
  'flip_rot270': lambda x: jnp.rot90(x[:, ::-1], 3, axes=(0, 1)),
}


class LossTerm(NamedTuple):
  """One named part of the objective.

  Attributes:
    loss: `(features, target) -> scalar` for one example; see the module docstring.
    weight: multiplies the loss (with `normalize_terms`, after dividing it by its reference
      value for the pair); must be >= 0.
    layers: VGG19 layers that `loss`, `target` and `refresh` read; the network runs up to the
      deepest.
    target: `(content_features, style_features, style_weights) -> pytree`, run once per pair
      and scale: content features as in `loss`, style features one mapping per style image
      (sizes may differ), and their blend weights (summing to 1). None gives a target of None.
    refresh: `(features, target) -> target`, the target recomputed from the features of the
      current image (the same pytree structure and shapes), e.g. nearest-neighbour matches.
    refresh_every: with `refresh`, run it after every this many steps (not at step 0).
    stochastic: the loss reads `features['key']`, so its value changes from step to step (a
      line search then never reuses its last evaluation).
    style_views: names from `STYLE_VIEWS`; if given, `target` receives these views of every
      style image instead of the image alone (style i's views next to each other), each with
      1/len(style_views) of its blend weight; include 'identity' to keep the image as it is.
      Style augmentation: the network sees, say, each rotated copy (its features are not a
      rotation of the original's).
  """

  loss: Callable[[Features, Any], jax.Array]
  weight: float = 1.0
  layers: tuple[str, ...] = ()
  target: TargetFn | None = None
  refresh: Callable[[Features, Any], Any] | None = None
  refresh_every: int = 0
  stochastic: bool = False
  style_views: tuple[str, ...] = ()


def layers_of(terms: Iterable[LossTerm]) -> tuple[str, ...]:
  """The layers any of `terms` reads, in network order; `ConfigError` for an unknown name."""
  used = {layer for term in terms for layer in term.layers}
  vgg.check_layer_names(sorted(used), 'the loss terms')
  return tuple(sorted(used, key=vgg.LAYER_NAMES.index))


def check_terms(terms: Mapping[str, LossTerm]) -> None:
  """Raises `ConfigError` if `terms` is empty or has a negative, all-zero or non-finite weight."""
  if not terms:
    raise ConfigError('the objective has no loss terms')
  for name, term in terms.items():
    if not isinstance(term, LossTerm):
      raise ConfigError(f'loss term {name!r} is a {type(term).__name__}, not a LossTerm')
    if not term.weight >= 0 or term.weight == float('inf'):
      raise ConfigError(f'loss term {name!r} has weight {term.weight}; it must be finite and >= 0')
    if term.refresh is not None and term.refresh_every < 1:
      raise ConfigError(f'loss term {name!r} has a refresh but refresh_every={term.refresh_every}')
    unknown = [v for v in term.style_views if v not in STYLE_VIEWS]
    if unknown:
      raise ConfigError(
        f'loss term {name!r} asks for unknown style views {unknown}; '
        f'known: {", ".join(STYLE_VIEWS)}'
      )
  if not any(term.weight > 0 for term in terms.values()):
    raise ConfigError('all loss term weights are zero')


def compute_targets(
  terms: Mapping[str, LossTerm],
  content: Features,
  styles: Sequence[Features],
  style_weights: Sequence[float],
  views: Mapping[str, Sequence[Features]] | None = None,
) -> dict[str, Any]:
  """Each term's target for one (content, styles) pair; blend weights are normalised here.

  `views[name]` holds the features of view `name` of each style, for terms with `style_views`.
  """
  total = sum(style_weights)
  blend = [w / total for w in style_weights]
  look = {'identity': styles, **(views or {})}
  targets = {}
  for name, term in terms.items():
    if term.target is None:
      targets[name] = None
      continue
    chosen, weights = styles, blend
    if term.style_views:
      count = len(term.style_views)
      chosen = [look[v][i] for i in range(len(styles)) for v in term.style_views]
      weights = [w / count for w in blend for _ in term.style_views]
    targets[name] = term.target(content, chosen, weights)
  return targets


def evaluate(
  terms: Mapping[str, LossTerm], features: Features, targets: Mapping[str, Any]
) -> dict[str, jax.Array]:
  """Each term's (unweighted) value for one example."""
  return {name: term.loss(features, targets[name]) for name, term in terms.items()}


def _check_names(values: Mapping[str, Any], weights: Mapping[str, Any]) -> None:
  if set(values) != set(weights):
    missing = sorted(set(values) - set(weights))
    extra = sorted(set(weights) - set(values))
    raise ValueError(f'loss weights do not match terms: missing {missing}, unexpected {extra}')


def combine_terms(values: Mapping[str, ArrayLike], weights: Mapping[str, ArrayLike]) -> jax.Array:
  """The weighted sum `sum_k weights[k] * values[k]` of scalar loss terms.

  Args:
    values: scalar loss terms by name, e.g. {'content': ..., 'style': ..., 'tv': ...}.
    weights: a weight for every name in `values`, no others.

  Raises:
    ValueError: if the names in `values` and `weights` differ, or a value is not a scalar.
  """
  _check_names(values, weights)
  total = jnp.zeros((), jnp.float32)
  for name in sorted(values):
    value = as_float(values[name])
    if value.ndim != 0:
      raise ValueError(f'loss term {name!r} must be a scalar, got shape {value.shape}')
    total = total + weights[name] * value
  return total


@dataclasses.dataclass(frozen=True)
class Objective:
  """The objective of one example: the network's features, each term's value, their total.

  Hashable (when its terms are), so that equal objectives share compiled programs. The terms'
  own weights are ignored: weights are passed in at each call, so that they can change without
  recompiling.

  Attributes:
    model: the feature network.
    terms: `((name, LossTerm), ...)`.
    gate: skip each term whose weight is 0 for this example (its value is then 0). For
      per-pair weights, where one batch runs different objectives: pair by pair (groups of
      one) the skipped terms cost nothing; vmapped, `lax.cond` computes them anyway.
  """

  model: vgg.VGG19
  terms: tuple[tuple[str, LossTerm], ...]
  gate: bool = False

  @property
  def layers(self) -> tuple[str, ...]:
    """The layers any term reads, in network order."""
    return layers_of(term for _, term in self.terms)

  def features(self, params: Any, images: jax.Array) -> dict[str, jax.Array]:
    """`{'image': images, layer: float32 activation}` for (N, H, W, 3) images in [0, 1]."""
    layers = self.layers
    out = self.model.apply(params, images, layers) if layers else {}
    return {'image': images, **{k: v.astype(jnp.float32) for k, v in out.items()}}

  @property
  def stochastic(self) -> bool:
    """Whether any term reads the per-step key, so that the objective changes at every step."""
    return any(term.stochastic for _, term in self.terms)

  @property
  def style_views(self) -> tuple[str, ...]:
    """The style views (other than the image itself) that any term's target needs."""
    views = {v for _, term in self.terms for v in term.style_views} - {'identity'}
    return tuple(v for v in STYLE_VIEWS if v in views)

  @property
  def refreshing(self) -> tuple[tuple[str, LossTerm], ...]:
    """The terms whose targets follow the image (see `LossTerm.refresh`)."""
    return tuple((name, term) for name, term in self.terms if term.refresh is not None)

  def example_features(self, params: Any, image: jax.Array, key: jax.Array | None = None):
    """`features(params, image[None])` for ONE image (H, W, 3), with `'key'` if given."""
    features = jax.tree.map(lambda x: x[0], self.features(params, image[None]))
    return features if key is None else {**features, 'key': key}

  def values(
    self,
    params: Any,
    image: jax.Array,
    targets: Mapping[str, Any],
    key: jax.Array | None = None,
    weights: Mapping[str, ArrayLike] | None = None,
  ) -> dict[str, Any]:
    """`{name: scalar}`: each term's unweighted value for one image (H, W, 3); with `gate`,
    0 for the terms whose weight in `weights` is 0."""
    features = self.example_features(params, image, key)
    if not self.gate or weights is None:
      return evaluate(dict(self.terms), features, targets)

    def gated(name: str, term: LossTerm) -> jax.Array:
      value = lambda: as_float(term.loss(features, targets[name])).astype(jnp.float32)  # noqa: E731
      return jax.lax.cond(weights[name] != 0, value, lambda: jnp.zeros((), jnp.float32))

    return {name: gated(name, term) for name, term in self.terms}

  def __call__(
    self,
    params: Any,
    image: jax.Array,
    targets: Mapping[str, Any],
    weights: Mapping[str, ArrayLike],
    key: jax.Array | None = None,
  ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """`(total, values)` for one image (H, W, 3): the combined objective and each term's value.

    `key` is this step's PRNG key for stochastic terms (`features['key']`).
    """
    values = self.values(params, image, targets, key, weights)
    return combine_terms(values, weights), values


def reference_values(
  at_content: Mapping[str, ArrayLike], at_style: Mapping[str, ArrayLike]
) -> dict[str, jax.Array]:
  """Each term's reference value: the larger of its values at the content photograph and at the
  style image (see the module docstring), 1 where both are 0.

  Args:
    at_content, at_style: `{name: (...)}` term values of the two inputs (any batch shape).
  """
  refs = {name: jnp.maximum(at_content[name], at_style[name]) for name in at_content}
  return {name: jnp.where(ref > 0, ref, 1.0) for name, ref in refs.items()}
