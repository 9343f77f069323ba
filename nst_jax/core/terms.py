"""The built-in loss terms, and the names that config files use for terms.

`terms_from_config(config)` builds the terms that `config.terms` names (`{name: weight}`):
`content` (`config.content_loss`: feature MSE or STROTSS self-similarity), `style`
(`config.style_loss`: Gram, Gaussian, sliced Wasserstein or nearest neighbours) and `tv` are
built in, and so are `sliced`, `nearest_neighbor` and `self_similarity`, the same losses as terms
of their own, so that one objective can combine several (each reads the same config fields as
when it is the `style` or `content` term). `register_term(name, builder)` adds your own, where
`builder(config) -> LossTerm` (its weight is then the config's).

`stylize` reuses its compiled programs when called again with terms that compare equal (weights
aside: they are arguments of the programs). The built-in terms compare by value, because their
functions are frozen dataclasses rather than closures; for your own, pass the same function
objects again (a new `lambda` each call means a new compilation).
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import ml_collections

from nst_jax.core import losses, objective, vgg
from nst_jax.core.losses import sums
from nst_jax.core.objective import Features, LossTerm
from nst_jax.errors import ConfigError

ContentKind = Literal['mse', 'self_similarity']
StyleLossKind = Literal['gram', 'gaussian', 'sliced', 'nearest_neighbor']
# Style views that `config.nn_augment` adds to the nearest-neighbour search (NNST: rotations).
AUGMENTATIONS: dict[str, tuple[str, ...]] = {
  'none': (),
  'rotations': ('identity', 'rot90', 'rot180', 'rot270'),
  'flips_rotations': tuple(objective.STYLE_VIEWS),
}


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


def content_term(
  layer_weights: Mapping[str, float],
  weight: float = 1.0,
  kind: ContentKind = 'mse',
  num_samples: int = 1024,
) -> LossTerm:
  """The content loss, summed over layers with `layer_weights`: feature MSE to the content
  image (`kind='mse'`), or `self_similarity_term` (`kind='self_similarity'`, `num_samples`)."""
  if kind == 'self_similarity':
    return self_similarity_term(layer_weights, num_samples, weight)
  if kind != 'mse':
    raise ConfigError(f"unknown content loss {kind!r}; expected 'mse' or 'self_similarity'")
  layer_weights = _positive(layer_weights)
  layers = tuple(name for name, _ in layer_weights)
  return LossTerm(
    _LayerLoss(losses.content_loss, layer_weights), weight, layers, _ContentTarget(layers)
  )


def style_term(
  layer_weights: Mapping[str, float], kind: StyleLossKind = 'gram', weight: float = 1.0
) -> LossTerm:
  """The style loss of `kind` to the blend of the style images: 'gram', 'gaussian' (mean and
  covariance W2), or, with their default settings, 'sliced' (`sliced_term`) and
  'nearest_neighbor' (`nearest_neighbor_term`, whose hypercolumns take `layer_weights`)."""
  if kind == 'sliced':
    return sliced_term(layer_weights, weight=weight)
  if kind == 'nearest_neighbor':
    return nearest_neighbor_term(layer_weights, weight=weight)
  layer_weights = _positive(layer_weights)
  layers = tuple(name for name, _ in layer_weights)
  return LossTerm(
    _LayerLoss(losses.style_loss, layer_weights), weight, layers, _StyleTarget(layers, kind)
  )


def tv_term(kind: losses.TVKind = 'l1', weight: float = 1.0) -> LossTerm:
  """Total variation of the image: the seed's 'denoising' term."""
  return LossTerm(_TVLoss(kind), weight)


def _layer_key(key: jax.Array | None, name: str) -> jax.Array | None:
  """`key` folded with the layer's index, so that layers draw independently."""
  return None if key is None else jax.random.fold_in(key, vgg.LAYER_NAMES.index(name))


@dataclasses.dataclass(frozen=True)
class _SlicedTarget:
  """Per layer: the blended style samples (padded to the square of their longest side, which all
  styles fitted to one size share), or with `seed`, their sorted projections on directions drawn
  once from it."""

  layers: tuple[str, ...]
  num_directions: int
  seed: int | None

  def __call__(self, content: Features, styles: Sequence[Features], blend: Sequence[float]) -> Any:
    targets = {}
    for name in self.layers:
      per_style = [
        losses.sliced_style_target(
          s[name], pad_to=None if self.seed is not None else _square(s[name])
        )
        for s in styles
      ]
      pooled = losses.blend_style_targets(per_style, blend)
      if self.seed is not None:
        key = _layer_key(jax.random.key(self.seed), name)
        directions = losses.random_directions(key, content[name].shape[-1], self.num_directions)
        count = content[name].shape[0] * content[name].shape[1]
        pooled = losses.sorted_projections(pooled, directions, count)
      targets[name] = pooled
    return targets


def _square(features: jax.Array) -> int:
  return max(features.shape[:2]) ** 2


@dataclasses.dataclass(frozen=True)
class _SlicedLoss:
  layer_weights: tuple[tuple[str, float], ...]
  num_directions: int
  relative: bool = False

  def __call__(self, features: Features, target: Any) -> jax.Array:
    key = features.get('key')
    return sum(
      w
      * losses.sliced_wasserstein_style_loss(
        features[n],
        target[n],
        key=_layer_key(key, n),
        num_directions=self.num_directions,
        relative=self.relative,
      )
      for n, w in self.layer_weights
    )


def sliced_term(
  layer_weights: Mapping[str, float],
  num_directions: int = 64,
  fixed_directions: bool = False,
  seed: int = 0,
  weight: float = 1.0,
  relative: bool = False,
) -> LossTerm:
  """Sliced Wasserstein style loss on each layer, summed with `layer_weights`.

  Directions are drawn anew at every step from the pair's step key (a stochastic term), or, with
  `fixed_directions`, once from `seed` (the same for every pair), with the style's projections
  sorted in the target. A blend pools the styles' samples, each weighted by its blend weight.
  With `relative`, each layer's loss is divided by the style's second moment along the
  directions (see `sliced_wasserstein_style_loss`).
  """
  layer_weights = _positive(layer_weights)
  layers = tuple(name for name, _ in layer_weights)
  return LossTerm(
    _SlicedLoss(layer_weights, int(num_directions), bool(relative)),
    weight,
    layers,
    _SlicedTarget(layers, int(num_directions), int(seed) if fixed_directions else None),
    stochastic=not fixed_directions,
  )


@dataclasses.dataclass(frozen=True)
class _NearestNeighborTarget:
  """The style's hypercolumns (each style padded to the square of its grid's longest side) and
  the matches of the content's hypercolumns among them."""

  layer_weights: tuple[tuple[str, float], ...]
  stride: int
  block_size: int

  def __call__(self, content: Features, styles: Sequence[Features], blend: Sequence[float]) -> Any:
    if max(blend) - min(blend) > 1e-6 * max(blend):
      raise ConfigError(
        'the nearest-neighbour loss searches all styles of a blend alike and cannot weight them; '
        f'give the styles equal blend weights (got {list(blend)})'
      )
    grid = losses.hypercolumn_grid(content['image'].shape, self.stride)
    ours = losses.hypercolumns(content, self.layer_weights, grid)
    parts, valid = [], []
    for s in styles:
      style_grid = losses.hypercolumn_grid(s['image'].shape, self.stride)
      h = losses.hypercolumns(s, self.layer_weights, style_grid)
      h = h.reshape(-1, h.shape[-1])
      size = max(style_grid) ** 2
      parts.append(jnp.pad(h, ((0, size - h.shape[0]), (0, 0))))
      valid.append(jnp.arange(size) < h.shape[0])
    return losses.nearest_neighbor_target(
      ours, jnp.concatenate(parts), valid=jnp.concatenate(valid), block_size=self.block_size
    )


@dataclasses.dataclass(frozen=True)
class _NearestNeighborLoss:
  layer_weights: tuple[tuple[str, float], ...]
  stride: int

  def __call__(self, features: Features, target: Any) -> jax.Array:
    grid = losses.hypercolumn_grid(features['image'].shape, self.stride)
    return losses.nearest_neighbor_style_loss(
      losses.hypercolumns(features, self.layer_weights, grid), target
    )


@dataclasses.dataclass(frozen=True)
class _NearestNeighborRefresh:
  layer_weights: tuple[tuple[str, float], ...]
  stride: int
  content_mix: float
  block_size: int

  def __call__(self, features: Features, target: Any) -> Any:
    grid = losses.hypercolumn_grid(features['image'].shape, self.stride)
    output = losses.hypercolumns(features, self.layer_weights, grid)
    return losses.rematch(target, output, content_mix=self.content_mix, block_size=self.block_size)


def nearest_neighbor_term(
  layer_weights: Mapping[str, float],
  stride: int = 4,
  rematch_every: int = 0,
  content_mix: float = 0.75,
  augment: str = 'none',
  block_size: int = 1024,
  weight: float = 1.0,
) -> LossTerm:
  """Nearest-neighbour hypercolumn matching (after NNST) on the layers of `layer_weights`.

  Hypercolumns are sampled every `stride` pixels. Each scale starts from the content's matches;
  with `rematch_every` > 0 they are searched again every that many steps from
  `(1 - content_mix) * output + content_mix * content`. `augment` ('none', 'rotations' or
  'flips_rotations') adds rotated (and mirrored) copies of each style to the search. A blend
  searches all its styles (their weights must be equal); `block_size` bounds the search's memory.
  """
  if augment not in AUGMENTATIONS:
    raise ConfigError(
      f'unknown style augmentation {augment!r}; expected one of {list(AUGMENTATIONS)}'
    )
  layer_weights = _positive(layer_weights)
  layers = tuple(name for name, _ in layer_weights)
  refresh = None
  if rematch_every > 0 and content_mix < 1:
    refresh = _NearestNeighborRefresh(
      layer_weights, int(stride), float(content_mix), int(block_size)
    )
  return LossTerm(
    _NearestNeighborLoss(layer_weights, int(stride)),
    weight,
    layers,
    _NearestNeighborTarget(layer_weights, int(stride), int(block_size)),
    refresh=refresh,
    refresh_every=int(rematch_every) if refresh is not None else 0,
    style_views=AUGMENTATIONS[augment],
  )


@dataclasses.dataclass(frozen=True)
class _SelfSimilarityLoss:
  layer_weights: tuple[tuple[str, float], ...]
  num_samples: int

  def __call__(self, features: Features, target: Any) -> jax.Array:
    key = features.get('key')
    return sum(
      w
      * losses.self_similarity_content_loss(
        features[n], target[n], key=_layer_key(key, n), num_samples=self.num_samples
      )
      for n, w in self.layer_weights
    )


def self_similarity_term(
  layer_weights: Mapping[str, float], num_samples: int = 1024, weight: float = 1.0
) -> LossTerm:
  """STROTSS's self-similarity content loss on each layer, summed with `layer_weights`; the
  `num_samples` positions per layer are redrawn at every step from the pair's step key."""
  layer_weights = _positive(layer_weights)
  layers = tuple(name for name, _ in layer_weights)
  return LossTerm(
    _SelfSimilarityLoss(layer_weights, int(num_samples)),
    weight,
    layers,
    _ContentTarget(layers),
    stochastic=True,
  )


TermBuilder = Callable[[ml_collections.ConfigDict], LossTerm]


def _sliced_from_config(c: ml_collections.ConfigDict) -> LossTerm:
  return sliced_term(
    c.style_layers,
    c.sliced_directions,
    c.sliced_fixed_directions,
    c.seed,
    relative=c.sliced_relative,
  )


def _nearest_neighbor_from_config(c: ml_collections.ConfigDict) -> LossTerm:
  return nearest_neighbor_term(
    c.nn_layers, c.nn_stride, c.nn_rematch_every, c.nn_content_mix, c.nn_augment, c.nn_block_size
  )


def _style_from_config(c: ml_collections.ConfigDict) -> LossTerm:
  if c.style_loss == 'sliced':
    return _sliced_from_config(c)
  if c.style_loss == 'nearest_neighbor':
    return _nearest_neighbor_from_config(c)
  return style_term(c.style_layers, c.style_loss)


_BUILDERS: dict[str, TermBuilder] = {
  'content': lambda c: content_term(
    c.content_layers, kind=c.content_loss, num_samples=c.self_similarity_samples
  ),
  'style': _style_from_config,
  'tv': lambda c: tv_term(c.tv_kind),
  'sliced': _sliced_from_config,
  'nearest_neighbor': _nearest_neighbor_from_config,
  'self_similarity': lambda c: self_similarity_term(c.content_layers, c.self_similarity_samples),
}
BUILT_IN_TERMS = tuple(_BUILDERS)


def register_term(name: str, builder: TermBuilder) -> None:
  """Makes `name` usable in `config.terms`; `builder(config)` returns its `LossTerm`."""
  _BUILDERS[name] = builder


def unregister_term(name: str) -> None:
  """Forgets a term added with `register_term`; the built-in terms stay."""
  if name in BUILT_IN_TERMS:
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
