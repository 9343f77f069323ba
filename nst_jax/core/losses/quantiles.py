"""Sorting and quantile functions along lines, for the sliced Wasserstein loss: NumPy's sort on a
CPU, weighted quantiles on a uniform grid of levels, and the weighted distance that regions use.

Every function takes L lines of values at once, (L, P), as the sliced loss projects its features
on L directions.
"""

import jax
import jax.numpy as jnp
import numpy as np

from nst_jax.core.masks import TINY_MASS


def _host_argsort(values: jax.Array) -> jax.Array:
  return jax.pure_callback(
    lambda v: np.argsort(v, axis=-1).astype(np.int32),
    jax.ShapeDtypeStruct(values.shape, jnp.int32),
    values,
    vmap_method='expand_dims',
  )


def argsort(values: jax.Array) -> jax.Array:
  """(..., P) -> int32 indices that sort `values` along the last axis; not differentiated.

  XLA:CPU sorts with a comparator, about ten times slower than NumPy's vectorised sort (1 s
  against 0.1 s for the 64 x 65536 projections of relu1_1 at 256 px), so on a CPU NumPy finds
  the order (a host callback); on accelerators `lax.sort` does.
  """
  return jax.lax.platform_dependent(
    jax.lax.stop_gradient(values),
    cpu=_host_argsort,
    default=lambda v: jnp.argsort(v, axis=-1).astype(jnp.int32),
  )


def sort(values: jax.Array) -> jax.Array:
  """`values` sorted along the last axis; the gradient flows back through the permutation."""
  return jnp.take_along_axis(values, argsort(values), axis=-1)


def levels(num: int) -> jax.Array:
  return (jnp.arange(num, dtype=jnp.float32) + 0.5) / num


def interpolate(position: jax.Array, values: jax.Array, num: int) -> jax.Array:
  """Piecewise-linear interpolation of each row's (position, value) points, positions
  ascending, at the levels `(j + 0.5) / num`; flat beyond the first and last point.

  `jnp.interp` in a vmap does the same, but its binary searches take twice as long on a CPU: as
  the levels are evenly spaced, the number of points at or below each level is a histogram of
  the points' level indices, summed.
  """
  lines, count = position.shape
  if count == 1:
    return jnp.broadcast_to(values, (lines, num))
  bins = jnp.clip(jnp.ceil(position * num - 0.5), 0, num).astype(jnp.int32)
  rows = jnp.broadcast_to(jnp.arange(lines)[:, None], bins.shape)
  counts = jnp.zeros((lines, num + 1), jnp.int32).at[rows, bins].add(1)
  upper = jnp.clip(jnp.cumsum(counts, axis=1)[:, :num], 1, count - 1)
  lower = upper - 1
  p0, p1 = (jnp.take_along_axis(position, i, axis=1) for i in (lower, upper))
  v0, v1 = (jnp.take_along_axis(values, i, axis=1) for i in (lower, upper))
  width = p1 - p0
  safe = jnp.where(width > 0, width, 1.0)
  t = jnp.clip(jnp.where(width > 0, (levels(num) - p0) / safe, 0.0), 0.0, 1.0)
  return v0 + t * (v1 - v0)


def weighted_quantiles(values: jax.Array, weights: jax.Array | None, num: int) -> jax.Array:
  """(L, P) projections with masses (P,) (None: uniform), or one set per region (R, P) ->
  quantiles at `levels(num)`: (L, num), or (R, L, num) per region."""
  lines, count = values.shape
  if weights is None:
    ordered = sort(values)
    if count == num:  # Equal counts: the sorted values are the quantiles (no interpolation).
      return ordered
    return interpolate(jnp.broadcast_to(levels(count), ordered.shape), ordered, num)
  per_region = weights.ndim == 2
  weights = weights if per_region else weights[None]
  valid = jnp.any(weights > 0, axis=0)
  # One sort for every region: samples without mass in any region (padding) sort last.
  keyed = jnp.where(valid, values, jnp.inf)
  order = argsort(keyed)
  ordered = jnp.take_along_axis(keyed, order, axis=1)
  index = jnp.broadcast_to(jnp.arange(count), order.shape)

  def one(w: jax.Array) -> jax.Array:
    masses = w[order]
    # Sample i holds the mass between cum_i - w_i and cum_i; it sits at the middle of it.
    position = jnp.cumsum(masses, axis=1) - 0.5 * masses
    # A sample without mass here repeats the last one with mass (the first, before any), so
    # that the interpolation runs between this region's samples only.
    has = masses > 0
    last = jax.lax.cummax(jnp.where(has, index, -1), axis=1)
    source = jnp.where(last < 0, jnp.argmax(has, axis=1, keepdims=True), last)
    return interpolate(
      jnp.take_along_axis(position, source, axis=1),
      jnp.take_along_axis(ordered, source, axis=1),
      num,
    )

  out = jax.vmap(one)(weights)
  return out if per_region else out[0]


def region_distance(
  projected: jax.Array, regions: jax.Array, expected: jax.Array, relative: bool
) -> jax.Array:
  """The sliced distance with regions (see `nst_jax.core.losses.sliced`): in region r, sample j
  of the sorted output carries mass `m_r(j) / M_r`, sits at the middle of its mass, level c_j,
  and is compared with the region's style quantile there; `sum_r sum_j m_r(j) (y_j - q_r(c_j))^2
  / (Q L)`.

  Args:
    projected: (L, Q) the output's projections.
    regions: (Q, R) each position's weight in each region.
    expected: (R, L, G) each region's style quantiles at the levels `(j + 0.5) / G`.
    relative: divide each region's value by the mean square of its quantiles.
  """
  lines, count = projected.shape
  order = argsort(projected)
  ours = jnp.take_along_axis(projected, order, axis=1)
  grid = expected.shape[-1]

  def one(weights: jax.Array, region_quantiles: jax.Array) -> jax.Array:
    masses = weights[order]
    mass = jnp.sum(weights)
    # The index of each sample's level c_j on the uniform grid: (c_j * G - 0.5), from the masses
    # in position units, so that equal masses give exact grid points.
    at = (jnp.cumsum(masses, axis=1) - 0.5 * masses) * (grid / jnp.maximum(mass, TINY_MASS)) - 0.5
    low = jnp.clip(jnp.floor(at), 0, grid - 1).astype(jnp.int32)
    high = jnp.minimum(low + 1, grid - 1)
    t = jnp.clip(at - low, 0.0, 1.0)
    q0, q1 = (jnp.take_along_axis(region_quantiles, i, axis=1) for i in (low, high))
    value = jnp.sum(masses * jnp.square(ours - (q0 + t * (q1 - q0)))) / (lines * count)
    if relative:
      value = value / jnp.maximum(jnp.mean(jnp.square(region_quantiles)), 1e-12)
    return value

  return jnp.sum(jax.vmap(one)(regions.T, expected))
