"""Sums over masked positions: what the losses that are functions of such sums share.

The Gram, Gaussian (W2), content and total-variation losses of ONE example are functions of sums
over the positions of a feature map (or of the image): the sum of `f f^T` and the position count
for Gram matrices, the first and second moments for Gaussian fits, the squared error for content,
the neighbour differences for total variation. Each loss module has its `*_sums` functions, which
take a window of features (h, w, C) and a `mask` (h, w) of the positions the window owns, and its
`*_from_sums`: adding the sums of windows whose masks partition the image and applying
`*_from_sums` to the totals gives the loss of the whole image, up to float rounding.
`nst_jax.run.tiles` builds tiled objectives on this. A mask of weights in [0, 1] weighs each
position instead: the same sums, finished, are the loss of the weighted positions.

Regions (`nst_jax.core.masks`): a loss that paints each region with its own target keeps its sums
per region (`RegionSums`, from `region_sums`: the sums over the positions weighted by the mask
times region r's weights, stacked), and its value is `region_loss`: each region's loss, weighted
by its share of the positions. So a region gets the same pull per position as the whole image
would without regions, whatever its size, and one region that covers the whole image gives
exactly the loss without regions.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core.losses.common import PRECISION, as_float, positions
from nst_jax.core.masks import TINY_MASS


def flat_positions(features: ArrayLike, mask: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """(h, w, C) features and an (h, w) mask -> `(f (h*w, C), m (h*w,))`."""
  f = as_float(features)
  m = as_float(mask)
  if f.ndim != 3 or m.shape != f.shape[:2]:
    raise ValueError(f'expected features (h, w, C) and mask (h, w), got {f.shape} and {m.shape}')
  return positions(f), m.reshape(-1)


# Positions per block of `masked_outers`, as bytes of one (block, C) float32 temporary.
_BLOCK_BYTES = 4 * 2**20


def _block_size(f: jax.Array) -> int:
  return min(f.shape[0], max(1, _BLOCK_BYTES // (4 * f.shape[1])))


def _sum_blocks(fn: Callable[[jax.Array, jax.Array], jax.Array], f: jax.Array, weights: jax.Array):
  """`sum_b fn(f[b], weights[b])` over consecutive blocks b of the positions (P, ...), in a loop:
  XLA schedules independent blocks side by side, each with its temporaries, so only a loop keeps
  the temporaries to one block."""
  size = _block_size(f)
  full = f.shape[0] // size

  def add(i, total):
    return total + fn(*(jax.lax.dynamic_slice_in_dim(x, i * size, size) for x in (f, weights)))

  shape = jax.eval_shape(fn, f[:size], weights[:size])
  total = jax.lax.fori_loop(0, full, add, jnp.zeros(shape.shape, shape.dtype))
  return total + fn(f[full * size :], weights[full * size :]) if full * size < f.shape[0] else total


def _map_blocks(fn: Callable[[jax.Array, jax.Array], jax.Array], f: jax.Array, weights: jax.Array):
  """`fn(f[b], weights[b])` (block, C) for consecutive blocks b, concatenated: (P, C), in a loop
  as `_sum_blocks`."""
  size = _block_size(f)
  full = f.shape[0] // size

  def put(i, out):
    block = fn(*(jax.lax.dynamic_slice_in_dim(x, i * size, size) for x in (f, weights)))
    return jax.lax.dynamic_update_slice_in_dim(out, block, i * size, 0)

  out = jax.lax.fori_loop(0, full, put, jnp.zeros_like(f))
  if full * size < f.shape[0]:
    out = out.at[full * size :].set(fn(f[full * size :], weights[full * size :]))
  return out


@jax.custom_vjp
def masked_outers(f: jax.Array, weights: jax.Array) -> jax.Array:
  """`sum_p w_pr f_p f_p^T` for each column r of weights (P, R): (R, C, C).

  Summed over blocks of positions (`_BLOCK_BYTES`), forwards and backwards, so that R regions
  add block-sized temporaries, not R weighted copies of f and of its gradient.
  """
  r, c = weights.shape[1], f.shape[1]

  def block(f_b: jax.Array, w_b: jax.Array) -> jax.Array:
    # One (C, P) x (P, R*C) matmul for all regions: wider, so faster than R narrow ones.
    weighted = (w_b[:, :, None] * f_b[:, None, :]).reshape(-1, r * c)
    return jnp.matmul(f_b.T, weighted, precision=PRECISION).reshape(c, r, c)

  return jnp.swapaxes(_sum_blocks(block, f, weights), 0, 1)


def _masked_outers_fwd(f, weights):
  return masked_outers(f, weights), (f, weights)


def _masked_outers_bwd(residuals, g):
  f, weights = residuals
  r, c = g.shape[:2]
  # (C, R*C): every region's symmetric gradient side by side, for one matmul per block.
  side_by_side = jnp.swapaxes(g + jnp.swapaxes(g, 1, 2), 0, 1).reshape(c, r * c)

  def block(f_b: jax.Array, w_b: jax.Array) -> jax.Array:
    by_region = jnp.matmul(f_b, side_by_side, precision=PRECISION).reshape(-1, r, c)
    return jnp.einsum('pr,prd->pd', w_b, by_region)

  return _map_blocks(block, f, weights), jnp.zeros_like(weights)


masked_outers.defvjp(_masked_outers_fwd, _masked_outers_bwd)


@jax.custom_vjp
def masked_outer(f: jax.Array, m: jax.Array) -> jax.Array:
  """`sum_p m_p f_p f_p^T` for f (P, C), m (P,); its gradient is one matmul (as the Gram loss's).

  One einsum, not `masked_outers`' loop of blocks: faster for one mask (a tile's window, a
  Gaussian region; 1.0-1.3x on a CPU), at the cost of one weighted copy of f.
  """
  return jnp.einsum('pc,pd->cd', f * m[:, None], f, precision=PRECISION)


def _masked_outer_fwd(f, m):
  return masked_outer(f, m), (f, m)


def _masked_outer_bwd(residuals, g):
  f, m = residuals
  d_f = m[:, None] * jnp.matmul(f, g + g.T, precision=PRECISION)
  return d_f, jnp.zeros_like(m)


masked_outer.defvjp(_masked_outer_fwd, _masked_outer_bwd)


class ErrorSums(NamedTuple):
  """total: () sum of the penalties; count: () how many entries were penalised."""

  total: jax.Array
  count: jax.Array


def mean_from_sums(sums: ErrorSums) -> jax.Array:
  """`total / count`: `content_loss` (or `total_variation`) of the entries summed."""
  return sums.total / sums.count


def safe_count(count: jax.Array) -> jax.Array:
  """`count`, at least `TINY_MASS`: an empty region's statistics are zeros, not NaN."""
  return jnp.maximum(count, TINY_MASS)


class RegionSums(NamedTuple):
  """A loss's sums kept per region.

  Attributes:
    per_region: the loss's own sums over each region's weighted positions, each leaf with a
      leading axis R.
    mass: (R,) each region's weight summed over the positions: how many positions it holds.
    positions: () how many positions were summed (the window's core, or the whole image).
  """

  per_region: Any
  mass: jax.Array
  positions: jax.Array


def region_sums(
  sums_of: Callable[[jax.Array], Any], mask: ArrayLike, regions: ArrayLike
) -> RegionSums:
  """`sums_of(mask * regions[..., r])` for each region r, stacked.

  Args:
    sums_of: the loss's sums over the positions weighted by an (h, w) mask.
    mask: (h, w) the positions summed (a window's core; ones for the whole image).
    regions: (h, w, R) each position's weight in each region.
  """
  m, weights = as_float(mask), as_float(regions)
  if weights.ndim != 3 or weights.shape[:2] != m.shape:
    raise ValueError(f'expected regions (h, w, R) for a mask {m.shape}, got {weights.shape}')
  # One region at a time: each keeps one (P, C) temporary, not R of them.
  per_region = [sums_of(m * weights[..., r]) for r in range(weights.shape[-1])]
  return RegionSums(
    jax.tree.map(lambda *xs: jnp.stack(xs), *per_region),
    jnp.sum(m[..., None] * weights, axis=(0, 1)),
    jnp.sum(m),
  )


def map_regions(fn: Callable[..., Any], *trees: Any) -> Any:
  """`fn` applied to each region's slice of `trees` (leaves with a leading axis R), stacked.

  `jax.vmap(fn)`, unrolled: XLA:CPU deadlocks when two batched LAPACK calls (a vmapped `eigh`)
  run at once on a small thread pool (each waits for pool threads the other holds; seen on 2
  cores), and R is small.
  """
  count = jax.tree.leaves(trees)[0].shape[0]
  outs = [fn(*jax.tree.map(lambda x, r=r: x[r], trees)) for r in range(count)]
  return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)


def region_loss(loss_of: Callable[[Any, Any], jax.Array], totals: RegionSums, target: Any) -> Any:
  """`sum_r (mass_r / positions) * loss_of(sums_r, target_r)`: each region's loss from its sums
  and its own target (`target`'s leaves have a leading axis R), weighted by its share."""
  values = map_regions(loss_of, totals.per_region, target)
  return jnp.sum(totals.mass / safe_count(totals.positions) * values)


class WholeImageRegions:
  """`region_loss` for a layer loss with region-aware `tile_sums`/`from_tile_sums`: the sums over
  every position of the layer, by region, finished."""

  def region_loss(self, features: jax.Array, regions: jax.Array, target: Any, key=None):
    ones = jnp.ones(features.shape[:2], jnp.float32)
    return self.from_tile_sums(self.tile_sums(features, ones, target, regions), target)
