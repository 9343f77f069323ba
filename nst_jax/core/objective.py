"""The objective of one example: network features, named loss terms, and their weighted total.

An `Objective` runs the network on an image and combines its terms' values (`nst_jax.core.terms`)
in a weighted sum (`combine_terms`). Each pair's guide images (`'guides'`, `{name: (H, W, C)}`
in [0, 1]) travel with the image: the objective puts them into the features every term reads.

    terms = nst_jax.terms_from_config(config)
    del terms['tv']
    terms['brightness'] = nst_jax.LossTerm(
        loss=lambda features, target: (features['image'].mean() - 0.6) ** 2, weight=10.0)
    result = nst_jax.stylize(contents, styles, config, terms=terms)

Normalised losses (`config.normalize_losses`): each pair's weight of a term is divided by the
term's *reference value* for that pair (`reference_values`): how far apart the pair's two inputs
are under that term, the larger of its values at the content photograph and at the style image
(stretched to the content's size). A content term is then measured against "none of the content
left" and a style term against "none of the style", so the weights are relative importances that
do not depend on the pair, the image size or the terms' units. (Dividing each term by a
stop-gradient of its own current value, as the seed's tutorial did, pulls hardest on whichever
term nears zero: results flip between the photograph and the texture from pair to pair.)
"""

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core import padding, vgg
from nst_jax.core.losses.common import as_float
from nst_jax.core.terms import STYLE_VIEWS, Features, Guides, LossTerm, layers_of


@functools.partial(jax.jit, static_argnums=(0, 3))
def _network_features(
  model: vgg.VGG19, params: Any, images: jax.Array, layers: tuple, valid: jax.Array | None
) -> dict:
  """`model`'s activations at `layers`, cast to float32; `valid`: `VGG19`'s padded regions.

  A jitted function of its own, so that the network is traced once per program, however many
  times the program evaluates the objective (an L-BFGS chunk does four times): tracing and
  lowering take most of a warm start's time. XLA inlines it into the calling program, whose
  compiled code is the same.
  """
  extra = {} if valid is None else {'valid': valid}
  out = model.apply(params, images, layers, **extra)
  return {k: v.astype(jnp.float32) for k, v in out.items()}


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
    values: scalar loss terms by name, e.g. {'content': ..., 'gram': ..., 'tv': ...}.
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

  def features(self, params: Any, images: jax.Array, guides: Guides | None = None) -> dict:
    """`{'image': images, layer: float32 activation}` for (N, H, W, 3) images in [0, 1], and
    `'guides'` (`{name: (N, H, W, C)}`) if there are any."""
    layers = self.layers
    # Padded pairs (`nst_jax.core.padding`): the network leaves each one's padding out.
    padded = padding.VALID in (guides or {})
    valid = padding.region_sizes(guides[padding.VALID]) if padded else None
    out = _network_features(self.model, params, images, layers, valid) if layers else {}
    features = {'image': images, **out}
    return {**features, 'guides': guides} if guides else features

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

  def example_features(
    self,
    params: Any,
    image: jax.Array,
    key: jax.Array | None = None,
    guides: Guides | None = None,
  ):
    """`features(params, image[None])` for ONE image (H, W, 3), with `'key'` and `'guides'`
    (`{name: (H, W, C)}`) if given."""
    batch_guides = jax.tree.map(lambda g: g[None], guides) if guides else None
    features = jax.tree.map(lambda x: x[0], self.features(params, image[None], batch_guides))
    return features if key is None else {**features, 'key': key}

  def values(
    self,
    params: Any,
    image: jax.Array,
    targets: Mapping[str, Any],
    key: jax.Array | None = None,
    weights: Mapping[str, ArrayLike] | None = None,
    guides: Guides | None = None,
  ) -> dict[str, Any]:
    """`{name: scalar}`: each term's unweighted value for one image (H, W, 3) with its guides
    (`{name: (H, W, C)}`) if any; with `gate`, 0 for the terms whose weight in `weights` is 0."""
    features = self.example_features(params, image, key, guides)
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
    guides: Guides | None = None,
  ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """`(total, values)` for one image (H, W, 3): the combined objective and each term's value.

    `key` is this step's PRNG key for stochastic terms (`features['key']`), `guides` the pair's
    guide images `{name: (H, W, C)}` at the image's size (`features['guides']`).
    """
    values = self.values(params, image, targets, key, weights, guides)
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
