"""Self-similarity content loss (STROTSS: Kolkin, Salavon and Shakhnarovich, "Style Transfer by
Relaxed Optimal Transport and Self-Similarity", CVPR 2019), for ONE example.

The content is kept through how the image's positions relate to each other, not through their
feature values: for N sampled positions, the matrix of cosine distances between their feature
vectors, each column normalised to sum 1, should match the content's. A style changes colours
and textures, and so every feature value, but a sky stays unlike a face and like the rest of the
sky, so this loss leaves the style more room than feature reconstruction does.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nst_jax.core import terms
from nst_jax.core.losses.common import PRECISION, check_features, positions
from nst_jax.core.losses.content import ContentFeatures
from nst_jax.errors import ConfigError

# Column sums of the distance matrix are floored here, for samples that are all parallel.
_SUM_FLOOR = 1e-12
# |d| is smoothed below this fraction of an entry's typical size (1/N): at the content the
# differences are rounding noise, whose sign would otherwise make a full-size, random gradient.
_SMOOTHING = 0.01


def sample_positions(count: int, num_samples: int, key: ArrayLike | None) -> np.ndarray | jax.Array:
  """Indices of the positions to compare: all of them if `count <= num_samples`; else
  `num_samples` distinct ones drawn from `key`, or evenly spaced ones if `key` is None."""
  if num_samples < 2:
    raise ValueError(f'num_samples must be >= 2, got {num_samples}')
  if count <= num_samples:
    return np.arange(count)
  if key is None:
    return np.round(np.linspace(0, count - 1, num_samples)).astype(np.int32)
  key = jnp.asarray(key)
  if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.wrap_key_data(key)
  return jax.random.choice(key, count, (num_samples,), replace=False)


def _normalised_distances(f: jax.Array) -> jax.Array:
  """(N, C) -> (N, N) cosine distances, each column divided by its sum."""
  unit = f * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(f), axis=1, keepdims=True), 1e-12))
  distance = 1.0 - jnp.matmul(unit, unit.T, precision=PRECISION)
  return distance / jnp.maximum(jnp.sum(distance, axis=0, keepdims=True), _SUM_FLOOR)


def self_similarity_content_loss(
  features: ArrayLike,
  target: ArrayLike,
  *,
  key: ArrayLike | None = None,
  num_samples: int = 1024,
) -> jax.Array:
  """STROTSS's self-similarity content loss between the output's and the content's features.

  With `D_x[i, j] = 1 - cos(x_i, x_j)` over the N sampled positions, each column divided by its
  sum (a distribution over i), and `D_c` the same for the content at the same positions, the
  loss is `sum_ij |D_x - D_c| / N`: the mean over columns of the L1 distance between the two
  column distributions. `|d|` is smoothed to `sqrt(d^2 + delta^2) - delta` with `delta` 1% of
  an entry's typical size 1/N, so that the gradient is zero at the content (not the sign of
  rounding noise) and the same however the computation is batched. The cost is two (N, C) x
  (C, N) products; memory 4 * N^2 bytes per matrix (4 MB for N = 1024).

  Args:
    features: (H, W, C) activations of the image being optimised.
    target: (H, W, C) activations of the content image, same shape.
    key: PRNG key for the positions (pass a new key each step to resample them, as STROTSS
      does); None: evenly spaced positions. Unused when H*W <= num_samples (all are compared).
    num_samples: N >= 2, the most positions compared.

  Returns:
    Scalar in [0, 2]; 0 when the output's sampled features are positive multiples of the
    content's (the same self-similarity).

  Raises:
    ValueError: bad shapes, or num_samples < 2.
  """
  x, t = check_features(features), check_features(target, 'target')
  if x.shape != t.shape:
    raise ValueError(f'features shape {x.shape} and target shape {t.shape} differ')
  x, t = positions(x), positions(t)
  index = sample_positions(x.shape[0], num_samples, key)
  x, t = x[index], t[index]
  delta = _SMOOTHING / x.shape[0]
  difference = _normalised_distances(x) - _normalised_distances(t)
  return jnp.sum(jnp.sqrt(jnp.square(difference) + delta**2) - delta) / x.shape[0]


@dataclasses.dataclass(frozen=True)
class SelfSimilarityLayerLoss:
  """`self_similarity_content_loss` of one layer, with the layer's own key."""

  num_samples: int

  def __call__(self, features: jax.Array, target: jax.Array, key: Any) -> jax.Array:
    return self_similarity_content_loss(features, target, key=key, num_samples=self.num_samples)


def self_similarity_term(layers: Mapping[str, float], num_samples: int = 1024) -> terms.LossTerm:
  """STROTSS's self-similarity content loss on each layer, summed with the weights of `layers`;
  the `num_samples` positions per layer are redrawn at every step from the pair's step key."""
  if num_samples < 2:
    raise ConfigError(f'num_samples={num_samples!r} must be >= 2')
  loss = terms.per_layer(SelfSimilarityLayerLoss(int(num_samples)), layers)
  return terms.LossTerm(
    loss, layers=loss.layers, target=ContentFeatures(loss.layers), stochastic=True
  )


terms.register_loss(
  'self_similarity',
  self_similarity_term,
  built_in=True,
  layers=terms.CONTENT_LAYERS,
  num_samples=1024,
)
