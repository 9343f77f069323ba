"""Sliced Wasserstein style loss (Heitz et al., CVPR 2021), for ONE example's features (H, W, C).

The feature vectors of the output and of the style, one per position, are projected on L random
unit directions; along each direction the two sets of projections are sorted and compared value
by value. That is the exact optimal-transport (Wasserstein-2) distance between the 1-D
distributions along each direction, so, averaged over directions, the loss sees the whole
feature distribution (every moment, not only the first two that the Gaussian loss sees).

Two targets, whichever makes each step cheaper:

* `SlicedTarget`: the style's feature vectors (and their weights). Directions are drawn anew at
  every step from a key, so over the run the loss sees many more than L directions; each step
  projects and sorts both sets.
* `SortedProjections`: directions fixed for the run, and the style's projections on them already
  sorted and resampled to the output's number of positions: each step projects and sorts the
  output only.

When the output and the style have different numbers of positions (or the style is a weighted
blend, or padded), the style's quantile function is interpolated linearly at the output's
quantile levels `(j + 0.5) / Q`: with Q positions each carrying mass 1/Q, sample j of the sorted
output sits at that level.

Regions (`nst_jax.core.masks`; STROTSS's region pairs, Kolkin et al. 2019, which match the
output's features in region r with the style's features in the style's region r): along each
direction, the distribution of the output's projections weighted by region r's weights m_r(p)
is compared with that of the style's projections weighted by its region guide (a target holds
one weight vector per region). Shapes stay static under `vmap`: every position stays in every
region's sums, with its weight. The output is sorted once; in region r its sample j carries mass
`m_r(j) / M_r` and sits at the middle of its mass, level `c_j`, where it is compared with the
style's region-r quantile at `c_j` (the style's quantiles are kept on the uniform levels
`(j + 0.5) / Q`, so reading them at `c_j` is one linear interpolation). The loss is
`sum_r sum_j m_r(j) (y_j - q_r(c_j))^2 / (Q L)`: each region's weighted mean, weighted by its share
`M_r / Q` of the positions; one region of ones is exactly the plain loss.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core import masks, terms
from nst_jax.core.losses import quantiles
from nst_jax.core.losses.blend import blend_style_targets
from nst_jax.core.losses.common import PRECISION, as_float, check_features, positions
from nst_jax.core.masks import TINY_MASS


class SlicedTarget(NamedTuple):
  """A style's feature vectors at one layer, for directions drawn at every step.

  Attributes:
    samples: (P, C) feature vectors, one per style position (rows with zero weight are padding).
    weights: (P,) their probability masses, >= 0 and summing to 1. Uniform 1/P for one style;
      a blend scales each style's masses by its blend weight; padding has mass 0. With regions,
      (R, P): one distribution over the samples per region.
  """

  samples: jax.Array
  weights: jax.Array

  @classmethod
  def blend(cls, weights: Sequence[float], targets: Sequence['SlicedTarget']) -> 'SlicedTarget':
    """The mixture itself: every style's samples, style i's masses scaled by `w_i`."""
    if len(targets) == 1:
      return targets[0]
    return cls(
      jnp.concatenate([jnp.asarray(t.samples) for t in targets]),
      jnp.concatenate([w * jnp.asarray(t.weights) for w, t in zip(weights, targets, strict=True)]),
    )


class SortedProjections(NamedTuple):
  """Fixed directions and the style's sorted projections on them, for one layer.

  Attributes:
    directions: (C, L) unit vectors, one per column.
    quantiles: (L, Q) the style's quantiles along each direction at levels `(j + 0.5) / Q`,
      ascending in j; Q is the number of output positions the loss will be given. With regions,
      (R, L, Q): each region's.
  """

  directions: jax.Array
  quantiles: jax.Array

  @classmethod
  def blend(cls, weights: Sequence[float], targets: Sequence[Any]) -> 'SortedProjections':
    raise ValueError(
      'cannot blend SortedProjections: blend the SlicedTargets, then call sorted_projections'
    )


def random_directions(key: ArrayLike, channels: int, num_directions: int) -> jax.Array:
  """`num_directions` independent uniformly random unit vectors in R^channels.

  Args:
    key: a PRNG key (typed or raw uint32 data).
    channels: C >= 1.
    num_directions: L >= 1.

  Returns:
    (C, L) float32, each column of unit length (normalised Gaussian draws).
  """
  if channels < 1 or num_directions < 1:
    raise ValueError(
      f'need channels >= 1 and num_directions >= 1, got {channels} and {num_directions}'
    )
  key = jnp.asarray(key)
  if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.wrap_key_data(key)
  d = jax.random.normal(key, (channels, num_directions), jnp.float32)
  return d / jnp.linalg.norm(d, axis=0, keepdims=True)


def sliced_style_target(features: ArrayLike, *, pad_to: int | None = None) -> SlicedTarget:
  """The style's feature vectors with uniform weights, optionally padded to `pad_to` rows.

  Padding gives every style in a batch one shape (a style grid, say, whose styles differ in
  aspect ratio): pad to the square of the longest feature side, which all styles fitted to the
  same longest side share. Padded rows have weight 0 and change nothing but the cost.

  Args:
    features: (H, W, C) activations of the style image at one layer.
    pad_to: total rows P >= H*W, or None for H*W.

  Returns:
    `SlicedTarget(samples (P, C), weights (P,))`.
  """
  f = positions(check_features(features))
  count = f.shape[0]
  size = count if pad_to is None else int(pad_to)
  if size < count:
    raise ValueError(f'pad_to={pad_to} is smaller than the {count} positions of the features')
  weights = jnp.full((count,), 1.0 / count, jnp.float32)
  pad = size - count
  return SlicedTarget(
    jnp.pad(f, ((0, pad), (0, 0))), jnp.pad(weights, (0, pad)).astype(jnp.float32)
  )


def sorted_projections(
  target: SlicedTarget | ArrayLike, directions: ArrayLike, num_positions: int
) -> SortedProjections:
  """Pre-sorts a style's projections on fixed directions, at the output's quantile levels.

  Args:
    target: a `SlicedTarget`, or style features (H', W', C).
    directions: (C, L) unit vectors (see `random_directions`).
    num_positions: Q, the number of positions (H*W) of the features the loss will be given.

  Returns:
    `SortedProjections(directions (C, L), quantiles (L, Q))`; (R, L, Q) for a target with
    weights per region.
  """
  if not isinstance(target, SlicedTarget):
    target = sliced_style_target(target)
  samples = as_float(target.samples)
  d = as_float(directions)
  if d.ndim != 2 or d.shape[0] != samples.shape[1]:
    raise ValueError(f'directions must be ({samples.shape[1]}, L), got shape {d.shape}')
  if num_positions < 1:
    raise ValueError(f'num_positions must be >= 1, got {num_positions}')
  projected = jnp.matmul(samples, d, precision=PRECISION).T
  return SortedProjections(
    d, quantiles.weighted_quantiles(projected, as_float(target.weights), num_positions)
  )


def sliced_wasserstein_style_loss(
  features: ArrayLike,
  target: SlicedTarget | SortedProjections | ArrayLike,
  *,
  key: ArrayLike | None = None,
  num_directions: int = 64,
  relative: bool = False,
  regions: ArrayLike | None = None,
) -> jax.Array:
  """Sliced Wasserstein-2 distance between the output's and the style's feature distributions.

  Along each unit direction theta, the Q output projections `<f_p, theta>`, sorted, are compared
  with the style's quantiles at levels `(j + 0.5) / Q` (its own sorted projections when it also
  has Q positions and uniform weights, else interpolated); the loss is the mean of the squared
  differences over the Q positions and L directions. It is zero when the output's feature vectors
  are the style's in any spatial order, and it scales as features**2 (like the Gaussian loss,
  about W2^2 / C for isotropic features). Its cost per call is one (Q, C) x (C, L) product and a
  sort of Q*L values, plus the same for the style when its directions are drawn here.

  Args:
    features: (H, W, C) activations of the image being optimised; Q = H*W.
    target: `SortedProjections` (fixed directions: `key` and `num_directions` are unused), or
      the style as a `SlicedTarget` or features (H', W', C), projected on `num_directions`
      directions drawn from `key`.
    key: PRNG key for the directions; required unless `target` is `SortedProjections`. Pass a
      new key at every step (e.g. `fold_in(key, step)`) to redraw them.
    num_directions: L >= 1.
    relative: divide by the mean square of the style's quantiles (its second moment along the
      directions): a scale-free value, 0 at the style and of order 1 for unrelated features,
      so that layers whose activations differ by orders of magnitude weigh alike (with
      regions, each region's value by its own quantiles').
    regions: (H, W, R) each position's weight in each region, against a target with one set of
      weights (or quantiles) per region; see the module docstring. None: no regions.

  Returns:
    Scalar >= 0.

  Raises:
    ValueError: bad shapes, or no `key` for a target that needs one.
  """
  x = positions(check_features(features))
  lead = () if regions is None else (as_float(regions).shape[-1],)
  if isinstance(target, SortedProjections):
    d, expected = as_float(target.directions), as_float(target.quantiles)
    if d.ndim != 2 or d.shape[0] != x.shape[1] or expected.shape != (*lead, d.shape[1], x.shape[0]):
      raise ValueError(
        f'SortedProjections for ({x.shape[1]}, L) directions and {(*lead, "L", x.shape[0])} '
        f'quantiles expected, got {d.shape} and {expected.shape}'
      )
  else:
    if key is None:
      raise ValueError('sliced_wasserstein_style_loss needs a key to draw its directions')
    if not isinstance(target, SlicedTarget):
      target = sliced_style_target(target)
    samples, weights = as_float(target.samples), as_float(target.weights)
    if (
      samples.ndim != 2
      or samples.shape[1] != x.shape[1]
      or weights.shape != (*lead, samples.shape[0])
    ):
      raise ValueError(
        f'style samples must be (P, {x.shape[1]}) with weights {(*lead, "P")}, got '
        f'{samples.shape} and {weights.shape}'
      )
    d = random_directions(key, x.shape[1], num_directions)
    projected = jnp.matmul(samples, d, precision=PRECISION).T
    expected = quantiles.weighted_quantiles(projected, weights, x.shape[0])
  projected = jnp.matmul(x, d, precision=PRECISION).T
  if regions is not None:
    weights = as_float(regions).reshape(x.shape[0], -1)
    return quantiles.region_distance(projected, weights, expected, relative)
  ours = quantiles.sort(projected)
  value = jnp.mean(jnp.square(ours - expected))
  if relative:
    value = value / jnp.maximum(jnp.mean(jnp.square(expected)), 1e-12)
  return value


# --- The term ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SlicedLayerLoss:
  """`sliced_wasserstein_style_loss` of one layer, with the layer's own key; with regions, the
  regional distance (see the module docstring)."""

  num_directions: int
  relative: bool = False

  def __call__(self, features: jax.Array, target: Any, key: jax.Array | None) -> jax.Array:
    return self.region_loss(features, None, target, key)

  def region_loss(self, features, regions, target: Any, key: jax.Array | None) -> jax.Array:
    return sliced_wasserstein_style_loss(
      features,
      target,
      key=key,
      num_directions=self.num_directions,
      relative=self.relative,
      regions=regions,
    )


def _region_samples(styles, name: str, blend, count: int, pad: bool) -> SlicedTarget:
  """The styles' samples at layer `name`, with one distribution over them for each of `count`
  regions: style s's positions weighted by its region guide, normalised, times its blend weight
  in that region."""
  samples, weights, style_masses = [], [], []
  for s in styles:
    masks.check_style_regions(masks.region_count(s), count)
    target = sliced_style_target(s[name], pad_to=_square(s[name]) if pad else None)
    regions = masks.layer_mask(s, name).reshape(-1, count).T
    mass = jnp.sum(regions, axis=1, keepdims=True)
    padding = target.samples.shape[0] - regions.shape[1]
    samples.append(target.samples)
    weights.append(jnp.pad(regions / jnp.maximum(mass, TINY_MASS), ((0, 0), (0, padding))))
    style_masses.append(mass[:, 0])
  shares = masks.region_blend(blend, jnp.stack(style_masses))
  return SlicedTarget(
    jnp.concatenate(samples),
    jnp.concatenate([w * share[:, None] for w, share in zip(weights, shares, strict=True)], 1),
  )


@dataclasses.dataclass(frozen=True)
class SlicedStyleTarget:
  """Per layer: the blended style samples (padded to the square of their longest side, which all
  styles fitted to one size share), or with `seed`, their sorted projections on directions drawn
  once from it. With regions, one distribution over the samples per region."""

  layers: tuple[str, ...]
  num_directions: int
  seed: int | None

  def __call__(self, content: terms.Features, styles: Sequence[terms.Features], blend) -> Any:
    targets = {}
    regions = masks.region_count(content)
    for name in self.layers:
      if regions is not None:
        pooled = _region_samples(styles, name, blend, regions, pad=self.seed is None)
      else:
        per_style = [
          sliced_style_target(s[name], pad_to=None if self.seed is not None else _square(s[name]))
          for s in styles
        ]
        pooled = blend_style_targets(per_style, blend)
      if self.seed is not None:
        key = terms.layer_key(jax.random.key(self.seed), name)
        directions = random_directions(key, content[name].shape[-1], self.num_directions)
        count = content[name].shape[0] * content[name].shape[1]
        pooled = sorted_projections(pooled, directions, count)
      targets[name] = pooled
    return targets


def _square(features: jax.Array) -> int:
  return max(features.shape[:2]) ** 2


def sliced_term(
  layers: Mapping[str, float],
  num_directions: int = 64,
  fixed_directions: bool = False,
  relative: bool = False,
  seed: int = 0,
) -> terms.LossTerm:
  """Sliced Wasserstein style loss on each layer, summed with the weights of `layers`.

  Directions are drawn anew at every step from the pair's step key (a stochastic term), or, with
  `fixed_directions`, once from `seed` (the same for every pair), with the style's projections
  sorted in the target. A blend pools the styles' samples, each weighted by its blend weight.
  With `relative`, each layer's loss is divided by the style's second moment along the
  directions (see `sliced_wasserstein_style_loss`), so that layers weigh alike.
  """
  terms.check_positive('num_directions', num_directions)
  loss = terms.per_layer(SlicedLayerLoss(int(num_directions), bool(relative)), layers)
  target = SlicedStyleTarget(
    loss.layers, int(num_directions), int(seed) if fixed_directions else None
  )
  return terms.LossTerm(loss, layers=loss.layers, target=target, stochastic=not fixed_directions)


terms.register_loss(
  'sliced',
  sliced_term,
  built_in=True,
  layers=terms.STYLE_LAYERS,
  num_directions=64,
  fixed_directions=False,
  relative=False,
  seed=0,
)
