"""Loss terms: what one named part of the objective is, how losses are registered by name, and
the per-layer combinator and tiling contract that the built-in losses share.

A `LossTerm` is pure: `loss(features, target)` is a scalar for ONE example, where `features`
maps VGG19 layer names to (h, w, c) activations of the image being optimised, plus `'image'` to
the image itself, (H, W, 3) in [0, 1], `'key'` to a PRNG key that changes at every step (for
stochastic terms) and, when the pairs have guide images, `'guides'` to the pair's guides: named
images `{name: (H, W, C)}` in [0, 1] at the image's size (masks, a video's previous frame). Its
`target` is computed once per (content, styles) pair and scale before optimisation, by
`target(content_features, style_features, style_weights)`, where each features mapping holds
that image's `'guides'` too, if any. The style losses honour the `'regions'` guide
(`nst_jax.core.masks`): `per_layer` hands each layer's region weights to a `RegionLayerLoss`.

Config files name losses: `config.losses.<name>` holds the loss's `weight` (0 leaves it out) and
its options, and `terms_from_config(config)` calls the builder registered under `<name>` with
those options. Each built-in loss registers itself in its own module of `nst_jax.core.losses`;
`register_loss(name, builder, **defaults)` adds yours, and `default_config()` then holds an entry
for it with its defaults and weight 0.

`stylize` reuses its compiled programs when called again with terms that compare equal (weights
aside: they are arguments of the programs). The built-in terms compare by value, because their
functions are frozen dataclasses rather than closures; for your own, pass the same function
objects again (a new `lambda` each call means a new compilation).
"""

import copy
import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from nst_jax.core import masks, vgg
from nst_jax.errors import ConfigError

Features = Mapping[str, Any]
# Guide images by name, each (..., H, W, C) in [0, 1]: they travel with their image (resized,
# sharded and tiled with it) into `features['guides']`. Empty: no guides.
Guides = Mapping[str, jax.Array]
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
    weight: multiplies the loss (with `config.normalize_losses`, after dividing it by its
      reference value for the pair); must be >= 0.
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


def layers_of(terms: Sequence[LossTerm] | Any) -> tuple[str, ...]:
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


@runtime_checkable
class PerStyleTarget(Protocol):
  """A target that reads each style image only through statistics of that image alone (Gram
  matrices, moments): `nst_jax.run.targets` computes them once per style image, so that its
  feature maps are freed at once and shared styles are reduced once per batch."""

  def style_statistics(self, style: Features) -> Any:
    """The statistics of one style image's features (and its guides)."""

  def from_style_statistics(
    self, content: Features, per_style: Sequence[Any], blend: Sequence[float]
  ) -> Any:
    """The target, from the content's features and each style's `style_statistics`;
    `target(content, styles, blend)` is this of the styles' statistics."""


# --- The tiling contract (`nst_jax.run.tiles`) ---------------------------------------------------
# A term can run window by window when its loss is a function of sums over positions, and its
# target is either built from sums over a style image's windows or from each window's content.


@runtime_checkable
class TileableLoss(Protocol):
  """A loss that is a function of sums over the positions of the image (`losses.sums`)."""

  def tile_sums(self, features: Features, masks: Mapping[str, jax.Array], target: Any) -> Any:
    """The sums over the positions of one window where `masks[layer]` (h, w) is 1."""

  def from_tile_sums(self, totals: Any, target: Any) -> jax.Array:
    """The loss, from the sums added over every window of the image (`target` is None for a
    term with a `WindowTarget`: each window had its own)."""


@runtime_checkable
class TileableTarget(Protocol):
  """A target built from statistics that add up over a style image's windows."""

  def tile_stats(self, features: Features, masks: Mapping[str, jax.Array]) -> Any:
    """One window's statistics of one style image, where `masks[layer]` is 1."""

  def merge_tile_stats(self, a: Any, b: Any) -> Any:
    """The statistics of two disjoint sets of positions together."""

  def from_tile_stats(self, per_style: Sequence[Any], blend: Sequence[float]) -> Any:
    """The target, from each style's whole-image statistics and the blend weights."""


@runtime_checkable
class WindowTarget(Protocol):
  """A target that each window computes from the content's features in that window."""

  def from_window(self, content: Features) -> Any:
    """The target of one window, from the content features of the same window."""


@runtime_checkable
class TileableLayerLoss(Protocol):
  """`PerLayer`'s loss of one layer, as a function of sums over positions. One that is also a
  `RegionLayerLoss` takes `regions=` (h, w, R) and returns `losses.sums.RegionSums` then."""

  def tile_sums(self, features: jax.Array, mask: jax.Array, target: Any) -> Any: ...

  def from_tile_sums(self, totals: Any, target: Any) -> jax.Array: ...


@runtime_checkable
class RegionLayerLoss(Protocol):
  """`PerLayer`'s loss of one layer that paints each region with its own target."""

  def region_loss(
    self, features: jax.Array, regions: jax.Array, target: Any, key: jax.Array | None
  ) -> jax.Array:
    """The loss of features (h, w, C) whose positions have weights `regions` (h, w, R) in each
    region, against `target` (one per region: leaves with a leading axis R)."""


def tileable(term: LossTerm) -> bool:
  """Whether `term` can be computed window by window (see the contract above)."""
  target_ok = term.target is None or isinstance(term.target, TileableTarget | WindowTarget)
  return isinstance(term.loss, TileableLoss) and target_ok and term.refresh is None


def reads_regions(term: LossTerm) -> bool:
  """Whether `term`'s loss paints each region (`masks.REGIONS`) with its own target: its
  `reads_regions` attribute (`PerLayer` of a `RegionLayerLoss`, the nearest-neighbour loss)."""
  return bool(getattr(term.loss, 'reads_regions', False))


# --- One combinator for the per-layer losses -----------------------------------------------------

LayerWeights = tuple[tuple[str, float], ...]
# The layers and weights that the built-in losses start from (Gatys et al.'s).
CONTENT_LAYERS = {'relu4_2': 1.0}
STYLE_LAYERS = {name: 0.2 for name in ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1')}


def positive_layers(layers: Mapping[str, float]) -> LayerWeights:
  """`((layer, weight), ...)` of the layers with a positive weight, in the given order.

  Raises:
    ConfigError: an unknown layer name, a negative weight, or weights that are all zero.
  """
  weights = {name: float(w) for name, w in dict(layers).items()}
  vgg.check_layer_names(weights, 'layers')
  if any(w < 0 for w in weights.values()):
    raise ConfigError(f'layers has a negative weight: {weights}')
  if weights and not any(w > 0 for w in weights.values()):
    raise ConfigError(f'layers weights are all zero: {weights}')
  return tuple((name, w) for name, w in weights.items() if w > 0)


def layer_key(key: jax.Array | None, name: str) -> jax.Array | None:
  """`key` folded with the layer's index, so that layers draw independently."""
  return None if key is None else jax.random.fold_in(key, vgg.LAYER_NAMES.index(name))


@dataclasses.dataclass(frozen=True)
class PerLayer:
  """`sum_l w_l * loss(features[l], target[l], key_l)` over `layer_weights`.

  `loss(features (h, w, c), target, key)` is one layer's loss; `key_l` is the step's key folded
  with the layer (None without one), for stochastic losses. Build with `per_layer`, which gives
  a `TileablePerLayer` for a `TileableLayerLoss`.
  """

  loss: Callable[[jax.Array, Any, jax.Array | None], jax.Array]
  layer_weights: LayerWeights

  @property
  def layers(self) -> tuple[str, ...]:
    return tuple(name for name, _ in self.layer_weights)

  @property
  def reads_regions(self) -> bool:
    """Whether the layer loss honours the `'regions'` guide (`RegionLayerLoss`)."""
    return isinstance(self.loss, RegionLayerLoss)

  def regions(self, features: Features, name: str) -> jax.Array | None:
    """The region weights (h, w, R) at layer `name` that the layer loss reads, or None."""
    return masks.layer_mask(features, name) if self.reads_regions else None

  def __call__(self, features: Features, target: Any) -> jax.Array:
    key = features.get('key')
    total = 0.0
    for n, w in self.layer_weights:
      regions = self.regions(features, n)
      if regions is None:
        total += w * self.loss(features[n], target[n], layer_key(key, n))
      else:
        total += w * self.loss.region_loss(features[n], regions, target[n], layer_key(key, n))
    return total


@dataclasses.dataclass(frozen=True)
class TileablePerLayer(PerLayer):
  """A `PerLayer` whose layer loss is a function of sums over positions: so is the sum."""

  def tile_sums(self, features: Features, masks: Mapping[str, jax.Array], target: Any) -> Any:
    sums = {}
    for n, _ in self.layer_weights:
      regions = self.regions(features, n)
      extra = {} if regions is None else {'regions': regions}
      sums[n] = self.loss.tile_sums(features[n], masks[n], target[n], **extra)
    return sums

  def from_tile_sums(self, totals: Any, target: Any) -> jax.Array:
    # `target` is None for a `WindowTarget` term: it has no whole-image target.
    value = jnp.zeros((), jnp.float32)
    for n, w in self.layer_weights:
      value += w * self.loss.from_tile_sums(totals[n], None if target is None else target[n])
    return value


def per_layer(loss: Any, layer_weights: Mapping[str, float]) -> PerLayer:
  """The layer-weighted sum of `loss` over the layers with a positive weight."""
  kind = TileablePerLayer if isinstance(loss, TileableLayerLoss) else PerLayer
  return kind(loss, positive_layers(layer_weights))


# --- Losses by name: the registry that config files use -----------------------------------------

LossBuilder = Callable[..., LossTerm]


class _Registered(NamedTuple):
  builder: LossBuilder
  defaults: dict[str, Any]
  built_in: bool


_REGISTRY: dict[str, _Registered] = {}


def register_loss(
  name: str, builder: LossBuilder, *, built_in: bool = False, **defaults: Any
) -> None:
  """Makes `config.losses.<name>` build a term: `builder(**options)` returns its `LossTerm`,
  where the options are the entry's fields but `weight` (the term's weight is the entry's).

  `defaults` are the options' default values, which `default_config()` puts in its entry (with
  `weight` 0 unless given). `built_in` marks nst_jax's own losses, which stay registered.
  """
  if not name.isidentifier():
    raise ValueError(f'loss name {name!r} must be a Python identifier (it is a config field)')
  _REGISTRY[name] = _Registered(builder, {'weight': 0.0, **defaults}, built_in)


def unregister_loss(name: str) -> None:
  """Forgets a loss added with `register_loss`; the built-in losses stay."""
  if name in _REGISTRY and _REGISTRY[name].built_in:
    raise ValueError(f'{name!r} is a built-in loss and cannot be unregistered')
  _REGISTRY.pop(name, None)


def registered_losses() -> dict[str, dict[str, Any]]:
  """`{name: default options}` of every registered loss, built-in ones first (fresh copies: no
  two entries share a `layers` mapping)."""
  ordered = sorted(_REGISTRY.items(), key=lambda item: not item[1].built_in)
  return {name: copy.deepcopy(entry.defaults) for name, entry in ordered}


def build_loss(name: str, options: Mapping[str, Any]) -> LossTerm:
  """The term of `config.losses.<name>` = `options` (its `weight` and the builder's options).

  Raises:
    ConfigError: `name` is not registered, or an option is unknown or invalid (naming it).
  """
  if name not in _REGISTRY:
    raise ConfigError(
      f'config.losses.{name}: no loss is registered as {name!r}; registered losses are: '
      f'{", ".join(_REGISTRY)} (add your own with nst_jax.register_loss)'
    )
  options = dict(options)
  weight = options.pop('weight', 0.0)
  builder = _REGISTRY[name].builder
  accepted = inspect.signature(builder).parameters
  takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
  unknown = sorted(set(options) - set(accepted)) if not takes_any else []
  if unknown:
    known = ', '.join(['weight', *accepted])
    raise ConfigError(
      f'config.losses.{name} has no option {unknown[0]!r}; its options are: {known}'
    )
  if not isinstance(weight, int | float) or not weight >= 0 or weight == float('inf'):
    raise ConfigError(f'config.losses.{name}.weight={weight!r} must be a finite number >= 0')
  try:
    term = builder(**options)
  except ConfigError as e:
    raise ConfigError(f'config.losses.{name}: {e}') from None
  return term._replace(weight=float(weight))


def terms_from_config(config: Any) -> dict[str, LossTerm]:
  """The terms of `config.losses` with a positive weight, in that order (each one built, and so
  checked, whatever its weight)."""
  built = {name: build_loss(name, options) for name, options in config.losses.items()}
  return {name: term for name, term in built.items() if term.weight > 0}


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
  """Raises `ConfigError` `'<name>=<value> must be > 0'` (or >= 0) for a builder's option."""
  if not (value > 0 or (allow_zero and value == 0)):
    raise ConfigError(f'{name}={value!r} must be {">= 0" if allow_zero else "> 0"}')
