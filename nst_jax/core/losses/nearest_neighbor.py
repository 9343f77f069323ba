"""Nearest-neighbour style loss (after NNST: Kolkin et al., "Neural Neighbor Style Transfer",
2022), for ONE example.

Features of several layers, resampled to one grid and concatenated, form *hypercolumns*: one
vector per grid position, describing the image around it at every scale. Each output position's
target is the style hypercolumn nearest to a query (the output's own hypercolumn, the content's,
or a mix) under the centred cosine distance, and the loss pulls the output's hypercolumn towards
it: the mean of `1 - cos`. The search is the expensive part, so it runs rarely (once per scale,
and again every K steps if asked), and in blocks of query positions, so that its peak memory is
bounded whatever the sizes (see `nearest_neighbors`).

Regions (`nst_jax.core.masks`; NNST's "doodle" guidance and STROTSS's region pairs): an output
position in region r searches only the style hypercolumns of region r; the distance to any other
region is +inf. On the hypercolumn grid (the box rule of `masks.downsample` at `stride`), an
output position belongs to the region where its weight is largest and counts in the loss with
that weight (a strength map's grey level; 0 outside every region: content only), and a style
hypercolumn belongs to every region where its weight is at least one half. The loss is
`sum_p w_p (1 - cos(x_p, t_p)) / N`, which one region of ones makes the plain mean.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core import masks, terms
from nst_jax.core.losses.common import PRECISION, as_float
from nst_jax.errors import ConfigError

# Squared norms are floored here before the square root (as NNST does), so that a position whose
# features are all zero has a finite cosine (0) and gradient.
_NORM_FLOOR = 1e-8


class NearestNeighborTarget(NamedTuple):
  """The nearest-neighbour target of one example.

  Attributes:
    matches: (N, D) for each of the N output grid positions (row-major), the style hypercolumn
      it is pulled towards.
    style: (M, D) the style hypercolumns searched, kept for re-matching (rows where `valid` is
      False are padding).
    valid: (M,) bool, which rows of `style` are real.
    content: (N, D) the content's hypercolumns, for queries that mix content and output.
    regions, weights, style_regions: with regions (else None), (N,) int32 each output
      position's region (-1: none) and (N,) its weight in the loss; (M, R) bool the regions that
      each style hypercolumn serves.
  """

  matches: jax.Array
  style: jax.Array
  valid: jax.Array
  content: jax.Array
  regions: jax.Array | None = None
  weights: jax.Array | None = None
  style_regions: jax.Array | None = None


def hypercolumn_grid(image_shape: Sequence[int], stride: int) -> tuple[int, int]:
  """(h, w) of the hypercolumn grid of an image (H, W, ...): one position per `stride` pixels."""
  if stride < 1:
    raise ValueError(f'stride must be >= 1, got {stride}')
  return max(1, image_shape[0] // stride), max(1, image_shape[1] // stride)


def hypercolumns(
  features: Mapping[str, ArrayLike],
  layer_weights: Sequence[tuple[str, float]],
  grid: tuple[int, int],
) -> jax.Array:
  """Several layers' features resampled to one grid and concatenated.

  Each layer is resized to `grid` with a linear filter (antialiased when shrinking) and scaled
  by `weight / channels`, so that wide layers do not dominate the cosine by their width alone
  (NNST divides by the channel count too).

  Args:
    features: `{layer: (h_l, w_l, C_l)}` activations of one image.
    layer_weights: `((layer, weight), ...)`, weights > 0.
    grid: (h, w) of the result.

  Returns:
    (h, w, D) with D = sum of C_l.
  """
  if not layer_weights:
    raise ValueError('hypercolumns need at least one layer')
  parts = []
  for name, weight in layer_weights:
    f = as_float(features[name])
    if f.ndim != 3:
      raise ValueError(f'features[{name!r}] must be (H, W, C), got shape {f.shape}')
    if f.shape[:2] != tuple(grid):
      f = jax.image.resize(f, (*grid, f.shape[2]), 'linear')
    parts.append(f * (float(weight) / f.shape[2]))
  return jnp.concatenate(parts, axis=-1)


def _rows(x: ArrayLike, name: str) -> jax.Array:
  x = as_float(x)
  if x.ndim == 3:
    x = x.reshape(-1, x.shape[-1])
  if x.ndim != 2 or 0 in x.shape:
    raise ValueError(f'{name} must be (N, D) or (h, w, D) hypercolumns, got shape {x.shape}')
  return x


def _normalize(x: jax.Array) -> jax.Array:
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=-1, keepdims=True), _NORM_FLOOR))


def nearest_neighbors(
  queries: ArrayLike,
  keys: ArrayLike,
  *,
  valid: ArrayLike | None = None,
  block_size: int = 1024,
  query_regions: ArrayLike | None = None,
  key_regions: ArrayLike | None = None,
) -> jax.Array:
  """For each query, the index of its nearest key under the centred cosine distance.

  Queries are centred by their own mean and keys by theirs (over the valid keys), as in NNST:
  the distance then compares how each vector differs from its image's average, not the common
  offset of all ReLU features (with regions, by the mean of the keys of the query's region). The
  search runs over blocks of `block_size` queries, one after another, each against all keys:
  besides its inputs it holds the normalised keys and one block's similarities, about
  `4 * (M * D + block_size * M)` bytes for M keys of D channels (float32), whatever the number N
  of queries; without blocks it would need `4 * N * M`.

  Args:
    queries: (N, D) or (h, w, D).
    keys: (M, D) or (h', w', D).
    valid: (M,) bool, False for keys that must never be chosen (padding); None: all valid.
    block_size: queries per block, >= 1. The result does not depend on it.
    query_regions, key_regions: (N,) int each query's region (-1: any) and (M, R) bool the
      regions each key serves: a query in region r searches only keys that serve r (all valid
      keys if none does). None: no regions.

  Returns:
    (N,) int32 indices into the keys (row-major for a grid).
  """
  q, k = _rows(queries, 'queries'), _rows(keys, 'keys')
  if q.shape[1] != k.shape[1]:
    raise ValueError(f'queries have {q.shape[1]} channels but keys have {k.shape[1]}')
  if block_size < 1:
    raise ValueError(f'block_size must be >= 1, got {block_size}')
  mask = jnp.ones(k.shape[0], bool) if valid is None else jnp.asarray(valid, bool)
  if mask.shape != k.shape[:1]:
    raise ValueError(f'valid must have shape ({k.shape[0]},), got {mask.shape}')
  q = _normalize(q - jnp.mean(q, axis=0))
  count = q.shape[0]
  block = min(block_size, count)
  blocks = -(-count // block)
  q = jnp.pad(q, ((0, blocks * block - count), (0, 0))).reshape(blocks, block, -1)
  if query_regions is not None:
    regions = jnp.pad(jnp.asarray(query_regions, jnp.int32), (0, blocks * block - count))
    search = _region_search(k, mask, jnp.asarray(key_regions, bool))
    return jax.lax.map(search, (q, regions.reshape(blocks, block))).reshape(-1)[:count]
  key_mean = jnp.sum(jnp.where(mask[:, None], k, 0.0), axis=0) / jnp.maximum(jnp.sum(mask), 1)
  k = _normalize(k - key_mean)

  def search(qb: jax.Array) -> jax.Array:
    similarity = jnp.matmul(qb, k.T, precision=PRECISION)
    return jnp.argmax(jnp.where(mask, similarity, -jnp.inf), axis=1).astype(jnp.int32)

  return jax.lax.map(search, q).reshape(-1)[:count]


def _region_search(keys: jax.Array, valid: jax.Array, serves: jax.Array):
  """The search of one block of (normalised queries, their regions) among the keys of each
  query's region, the keys centred by the mean of that region's keys (so that a region's matches
  do not depend on the keys of another): `cos = (q.k - q.mu_r) / |k - mu_r|`."""
  serves = serves & valid[:, None]
  members = serves.astype(keys.dtype)
  means = jnp.matmul(members.T, keys, precision=PRECISION)
  means = means / jnp.maximum(jnp.sum(members, axis=0), 1.0)[:, None]
  # |k - mu_r|^2 for every key and region, without an (R, M, D) array.
  cross = jnp.matmul(means, keys.T, precision=PRECISION)
  squares = jnp.sum(jnp.square(keys), 1)[None] - 2 * cross + jnp.sum(jnp.square(means), 1)[:, None]
  inverse_norms = jax.lax.rsqrt(jnp.maximum(squares, _NORM_FLOOR))

  def search(block_queries: tuple[jax.Array, jax.Array]) -> jax.Array:
    qb, rb = block_queries
    r = jnp.maximum(rb, 0)
    offsets = jnp.take_along_axis(jnp.matmul(qb, means.T, precision=PRECISION), r[:, None], 1)
    similarity = (jnp.matmul(qb, keys.T, precision=PRECISION) - offsets) * inverse_norms[r]
    allowed = jnp.where(rb[:, None] >= 0, serves.T[r], valid)
    allowed = jnp.where(jnp.any(allowed, axis=1, keepdims=True), allowed, valid)
    return jnp.argmax(jnp.where(allowed, similarity, -jnp.inf), axis=1).astype(jnp.int32)

  return search


def nearest_neighbor_target(
  content: ArrayLike,
  style: ArrayLike,
  *,
  valid: ArrayLike | None = None,
  block_size: int = 1024,
  regions: ArrayLike | None = None,
  style_regions: ArrayLike | None = None,
) -> NearestNeighborTarget:
  """Matches each content hypercolumn to its nearest style hypercolumn (the first target).

  Args:
    content: (h, w, D) or (N, D) content hypercolumns, on the output's grid.
    style: (M, D) or (h', w', D) style hypercolumns.
    valid: (M,) bool, see `nearest_neighbors`.
    block_size: see `nearest_neighbors`.
    regions: (N, R) or (h, w, R) each output position's weight in each region, or None.
    style_regions: (M, R) each style hypercolumn's weight in each region (with `regions`).

  Returns:
    A `NearestNeighborTarget` whose matches are found from the content.
  """
  c, s = _rows(content, 'content'), _rows(style, 'style')
  mask = jnp.ones(s.shape[0], bool) if valid is None else jnp.asarray(valid, bool)
  target = NearestNeighborTarget(s, s, mask, c)
  if regions is not None:
    weights = _rows(regions, 'regions')
    best = jnp.max(weights, axis=1)
    target = target._replace(
      regions=jnp.where(best > 0, jnp.argmax(weights, axis=1), -1).astype(jnp.int32),
      weights=best,
      style_regions=_rows(style_regions, 'style_regions') >= 0.5,
    )
  regions = {'query_regions': target.regions, 'key_regions': target.style_regions}
  index = nearest_neighbors(c, s, valid=mask, block_size=block_size, **regions)
  return target._replace(matches=s[index])


def rematch(
  target: NearestNeighborTarget,
  output: ArrayLike,
  *,
  content_mix: float = 0.0,
  block_size: int = 1024,
) -> NearestNeighborTarget:
  """The target with its matches searched again from the current output.

  Args:
    target: the current target.
    output: (h, w, D) or (N, D) the output's hypercolumns now.
    content_mix: in [0, 1]: the query is `(1 - content_mix) * output + content_mix * content`
      (NNST searches from 0.25 output + 0.75 content).
    block_size: see `nearest_neighbors`.

  Returns:
    The target with new `matches`.
  """
  x = jax.lax.stop_gradient(_rows(output, 'output'))
  if x.shape != target.content.shape:
    raise ValueError(f'output hypercolumns {x.shape} differ from the target {target.content.shape}')
  query = (1.0 - content_mix) * x + content_mix * target.content
  regions = {'query_regions': target.regions, 'key_regions': target.style_regions}
  index = nearest_neighbors(
    query, target.style, valid=target.valid, block_size=block_size, **regions
  )
  return target._replace(matches=target.style[index])


def nearest_neighbor_style_loss(
  features: ArrayLike,
  target: NearestNeighborTarget | ArrayLike,
  *,
  block_size: int = 1024,
) -> jax.Array:
  """Mean cosine distance from each output hypercolumn to its nearest style hypercolumn.

  `mean_p (1 - cos(x_p, t_p))` over the N output positions p, where t_p is `target.matches[p]`
  for a `NearestNeighborTarget`, or, for style hypercolumns given as an array, the one nearest
  to x_p (searched now, from a stop-gradient of the output; see `nearest_neighbors` for its
  memory). The matches are constants: the gradient pulls each x_p towards its t_p.

  Args:
    features: (h, w, D) or (N, D) the output's hypercolumns (see `hypercolumns`).
    target: a `NearestNeighborTarget` for N positions, or style hypercolumns (M, D) or
      (h', w', D).
    block_size: queries per block of the search, when it runs here.

  Returns:
    Scalar in [0, 2]; 0 when each output hypercolumn is (a positive multiple of) its match, e.g.
    when the output's hypercolumns are the style's in any order. With a target's region
    `weights`, `sum_p w_p (1 - cos) / N`.
  """
  x = _rows(features, 'features')
  if isinstance(target, NearestNeighborTarget):
    matches = as_float(target.matches)
  else:
    style = _rows(target, 'style')
    if style.shape[1] != x.shape[1]:
      raise ValueError(f'features have {x.shape[1]} channels but the style has {style.shape[1]}')
    index = nearest_neighbors(jax.lax.stop_gradient(x), style, block_size=block_size)
    matches = style[index]
  if matches.shape != x.shape:
    raise ValueError(f'matches have shape {matches.shape}, the features {x.shape}')
  cosine = jnp.sum(_normalize(x) * _normalize(jax.lax.stop_gradient(matches)), axis=-1)
  if isinstance(target, NearestNeighborTarget) and target.weights is not None:
    return jnp.sum(target.weights * (1.0 - cosine)) / x.shape[0]
  return jnp.mean(1.0 - cosine)


# --- The term ------------------------------------------------------------------------------------

# NNST's hypercolumn layers (its VGG16 relu1_1 .. relu4_3), by the same names in VGG19.
HYPERCOLUMN_LAYERS = {
  name: 1.0
  for name in (
    'relu1_1',
    'relu1_2',
    'relu2_1',
    'relu2_2',
    'relu3_1',
    'relu3_2',
    'relu3_3',
    'relu4_1',
    'relu4_2',
    'relu4_3',
  )
}
# Style views that `augment` adds to the search (NNST: rotations).
AUGMENTATIONS: dict[str, tuple[str, ...]] = {
  'none': (),
  'rotations': ('identity', 'rot90', 'rot180', 'rot270'),
  'flips_rotations': tuple(terms.STYLE_VIEWS),
}


@dataclasses.dataclass(frozen=True)
class NearestNeighborStyleTarget:
  """The style's hypercolumns (each style padded to the square of its grid's longest side) and
  the matches of the content's hypercolumns among them."""

  layer_weights: terms.LayerWeights
  stride: int
  block_size: int

  def __call__(self, content: terms.Features, styles: Sequence[terms.Features], blend) -> Any:
    if max(blend) - min(blend) > 1e-6 * max(blend):
      raise ConfigError(
        'the nearest-neighbour loss searches all styles of a blend alike and cannot weight them; '
        f'give the styles equal blend weights (got {list(blend)})'
      )
    grid = hypercolumn_grid(content['image'].shape, self.stride)
    ours = hypercolumns(content, self.layer_weights, grid)
    count = masks.region_count(content)
    parts, valid, serves = [], [], []
    for s in styles:
      style_grid = hypercolumn_grid(s['image'].shape, self.stride)
      h = hypercolumns(s, self.layer_weights, style_grid)
      h = h.reshape(-1, h.shape[-1])
      size = max(style_grid) ** 2
      parts.append(jnp.pad(h, ((0, size - h.shape[0]), (0, 0))))
      valid.append(jnp.arange(size) < h.shape[0])
      if count is not None:
        masks.check_style_regions(masks.region_count(s), count)
        regions = masks.grid_mask(s, self.stride, style_grid).reshape(-1, count)
        serves.append(jnp.pad(regions, ((0, size - h.shape[0]), (0, 0))))
    regions = {}
    if count is not None:
      content_regions = masks.grid_mask(content, self.stride, grid)
      regions = {'regions': content_regions, 'style_regions': jnp.concatenate(serves)}
    keys, valid = jnp.concatenate(parts), jnp.concatenate(valid)
    return nearest_neighbor_target(ours, keys, valid=valid, block_size=self.block_size, **regions)


@dataclasses.dataclass(frozen=True)
class NearestNeighborLoss:
  """`nearest_neighbor_style_loss` of the image's hypercolumns (regions: see the module)."""

  layer_weights: terms.LayerWeights
  stride: int
  reads_regions: ClassVar[bool] = True

  def __call__(self, features: terms.Features, target: NearestNeighborTarget) -> jax.Array:
    grid = hypercolumn_grid(features['image'].shape, self.stride)
    return nearest_neighbor_style_loss(hypercolumns(features, self.layer_weights, grid), target)


@dataclasses.dataclass(frozen=True)
class NearestNeighborRefresh:
  """The matches searched again from the current image's hypercolumns (see `rematch`)."""

  layer_weights: terms.LayerWeights
  stride: int
  content_mix: float
  block_size: int

  def __call__(self, features: terms.Features, target: NearestNeighborTarget) -> Any:
    grid = hypercolumn_grid(features['image'].shape, self.stride)
    output = hypercolumns(features, self.layer_weights, grid)
    return rematch(target, output, content_mix=self.content_mix, block_size=self.block_size)


def nearest_neighbor_term(
  layers: Mapping[str, float],
  stride: int = 4,
  rematch_every: int = 0,
  content_mix: float = 0.75,
  augment: str = 'none',
  block_size: int = 1024,
) -> terms.LossTerm:
  """Nearest-neighbour hypercolumn matching (after NNST) on `layers` (`{layer: weight}`).

  Hypercolumns are sampled every `stride` pixels. Each scale starts from the content's matches;
  with `rematch_every` > 0 they are searched again every that many steps from
  `(1 - content_mix) * output + content_mix * content`. `augment` ('none', 'rotations' or
  'flips_rotations') adds rotated (and mirrored) copies of each style to the search. A blend
  searches all its styles (their weights must be equal); `block_size` bounds the search's memory.
  """
  if augment not in AUGMENTATIONS:
    raise ConfigError(f'augment={augment!r} is not one of: {", ".join(AUGMENTATIONS)}')
  terms.check_positive('stride', stride)
  terms.check_positive('block_size', block_size)
  terms.check_positive('rematch_every', rematch_every, allow_zero=True)
  if not 0 <= content_mix <= 1:
    raise ConfigError(f'content_mix={content_mix!r} must be in [0, 1]')
  layer_weights = terms.positive_layers(layers)
  if not layer_weights:
    raise ConfigError('layers has no layer with a positive weight')
  refresh = None
  if rematch_every > 0 and content_mix < 1:
    refresh = NearestNeighborRefresh(
      layer_weights, int(stride), float(content_mix), int(block_size)
    )
  return terms.LossTerm(
    NearestNeighborLoss(layer_weights, int(stride)),
    layers=tuple(name for name, _ in layer_weights),
    target=NearestNeighborStyleTarget(layer_weights, int(stride), int(block_size)),
    refresh=refresh,
    refresh_every=int(rematch_every) if refresh is not None else 0,
    style_views=AUGMENTATIONS[augment],
  )


terms.register_loss(
  'nearest_neighbor',
  nearest_neighbor_term,
  built_in=True,
  layers=HYPERCOLUMN_LAYERS,
  stride=4,
  rematch_every=0,
  content_mix=0.75,
  augment='none',
  block_size=1024,
)
