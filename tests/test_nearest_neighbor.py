"""Tests for nst_jax.core.losses.nearest_neighbor: the blocked search against a NumPy brute force,
zero at the style, invariance to the order of positions, hypercolumns, re-matching, finite
differences, vmap, and the search's memory bound."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nst_jax.core import losses


def _rows(seed, n, d=6, relu=True):
  x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
  return np.maximum(x, 0.0) + 0.01 if relu else x


def _np_nearest(queries, keys):
  """Brute force: argmax over keys of the centred cosine similarity."""
  q = queries - queries.mean(0)
  k = keys - keys.mean(0)
  q = q / np.linalg.norm(q, axis=1, keepdims=True)
  k = k / np.linalg.norm(k, axis=1, keepdims=True)
  return np.argmax(q @ k.T, axis=1)


def test_search_matches_numpy_and_does_not_depend_on_the_block_size():
  queries, keys = _rows(0, 37), _rows(1, 23)
  expected = _np_nearest(queries.astype(np.float64), keys.astype(np.float64))
  for block in (1, 5, 36, 37, 64, 1024):  # Divisors and not, one block, blocks of one.
    np.testing.assert_array_equal(
      losses.nearest_neighbors(queries, keys, block_size=block), expected
    )
  grid = losses.nearest_neighbors(queries[:36].reshape(6, 6, 6), keys, block_size=7)
  np.testing.assert_array_equal(grid, _np_nearest(queries[:36], keys))  # (h, w, D) queries.


def test_padding_is_never_chosen():
  queries, keys = _rows(0, 20), _rows(1, 10)
  padded = np.concatenate([keys, queries[:5]])  # The queries' own rows would win if allowed.
  valid = np.arange(15) < 10
  index = losses.nearest_neighbors(queries, padded, valid=valid, block_size=3)
  np.testing.assert_array_equal(index, _np_nearest(queries, keys))


def test_loss_is_zero_at_the_style_and_invariant_to_the_order_of_positions():
  style = _rows(1, 16)
  perm = np.random.default_rng(2).permutation(16)
  assert float(losses.nearest_neighbor_style_loss(style[perm], style)) < 1e-6
  x = _rows(3, 12)
  value = losses.nearest_neighbor_style_loss(x, style)
  assert value > 0.01
  xp = x[np.random.default_rng(4).permutation(12)]
  np.testing.assert_allclose(losses.nearest_neighbor_style_loss(xp, style), value, rtol=1e-5)
  np.testing.assert_allclose(losses.nearest_neighbor_style_loss(x, style[perm]), value, rtol=1e-5)
  np.testing.assert_allclose(
    losses.nearest_neighbor_style_loss(x.reshape(3, 4, 6), style.reshape(4, 4, 6), block_size=5),
    value,
    rtol=1e-5,
  )


def test_loss_matches_numpy_and_its_target():
  x, style = _rows(3, 12), _rows(1, 16)
  match = style[_np_nearest(x, style)]
  cos = np.sum(x * match, 1) / np.linalg.norm(x, axis=1) / np.linalg.norm(match, axis=1)
  np.testing.assert_allclose(
    losses.nearest_neighbor_style_loss(x, style), np.mean(1 - cos), rtol=1e-5
  )
  # A target found from the content: its matches are the content's neighbours.
  content = _rows(5, 12)
  target = losses.nearest_neighbor_target(content, style, block_size=5)
  np.testing.assert_allclose(target.matches, style[_np_nearest(content, style)])
  found = np.sum(x * target.matches, 1) / np.linalg.norm(x, axis=1)
  found = found / np.linalg.norm(target.matches, axis=1)
  np.testing.assert_allclose(
    losses.nearest_neighbor_style_loss(x, target), np.mean(1 - found), rtol=1e-5
  )


def test_rematch_searches_from_the_output_content_or_a_mix():
  x, content, style = _rows(3, 12), _rows(5, 12), _rows(1, 30)
  target = losses.nearest_neighbor_target(content, style)
  from_output = losses.rematch(target, x, content_mix=0.0, block_size=4)
  np.testing.assert_allclose(from_output.matches, style[_np_nearest(x, style)])
  from_content = losses.rematch(target, x, content_mix=1.0)
  np.testing.assert_allclose(from_content.matches, target.matches)
  mixed = losses.rematch(target, x, content_mix=0.25)
  np.testing.assert_allclose(mixed.matches, style[_np_nearest(0.75 * x + 0.25 * content, style)])
  with pytest.raises(ValueError, match='differ from the target'):
    losses.rematch(target, x[:5])


def test_hypercolumns_resample_scale_and_concatenate():
  rng = np.random.default_rng(0)
  features = {'a': rng.random((8, 8, 4)), 'b': rng.random((2, 2, 6)), 'c': rng.random((4, 4, 2))}
  columns = losses.hypercolumns(features, (('a', 1.0), ('b', 3.0), ('c', 2.0)), (4, 4))
  assert columns.shape == (4, 4, 12)
  np.testing.assert_allclose(columns[..., 10:], features['c'] * (2.0 / 2), rtol=1e-6)
  # Shrinking averages (antialiased): a constant layer stays constant, scaled by weight / width.
  flat = losses.hypercolumns({'a': np.full((8, 8, 4), 2.0)}, (('a', 1.0),), (4, 4))
  np.testing.assert_allclose(flat, 0.5, rtol=1e-6)
  assert losses.hypercolumn_grid((33, 18, 3), 4) == (8, 4)
  assert losses.hypercolumn_grid((3, 2, 3), 4) == (1, 1)


def test_gradient_matches_finite_differences():
  with jax.enable_x64(True):
    x = _rows(3, 10).astype(np.float64)
    target = losses.nearest_neighbor_target(_rows(5, 10), _rows(1, 14))
    check_grads(
      lambda f: losses.nearest_neighbor_style_loss(f, target), (x,), order=1, modes=('rev',)
    )
    # Searched here: the matches are constants, so the same gradient as with them fixed.
    style = _rows(1, 14).astype(np.float64)
    fixed = losses.nearest_neighbor_target(x, style)
    np.testing.assert_allclose(
      jax.grad(lambda f: losses.nearest_neighbor_style_loss(f, style))(x),
      jax.grad(lambda f: losses.nearest_neighbor_style_loss(f, fixed))(x),
      rtol=1e-10,
    )


def test_vmap_jit_equals_pair_by_pair():
  xs = np.stack([_rows(i, 12) for i in range(3)])
  styles = np.stack([_rows(10 + i, 20) for i in range(3)])
  contents = np.stack([_rows(20 + i, 12) for i in range(3)])
  targets = jax.jit(jax.vmap(lambda c, s: losses.nearest_neighbor_target(c, s, block_size=5)))(
    contents, styles
  )
  values = jax.jit(jax.vmap(losses.nearest_neighbor_style_loss))(xs, targets)
  for i in range(3):
    alone = losses.nearest_neighbor_target(contents[i], styles[i], block_size=5)
    np.testing.assert_allclose(targets.matches[i], alone.matches)
    np.testing.assert_allclose(
      values[i], losses.nearest_neighbor_style_loss(xs[i], alone), rtol=1e-6
    )


def test_search_memory_is_bounded_by_the_block():
  """XLA's own count of the search's temporary memory: one block of similarities, not N x M."""
  n, m, d = 4096, 4096, 8
  queries, keys = jnp.zeros((n, d)), jnp.zeros((m, d))

  def temp_bytes(block):
    search = jax.jit(lambda q, k: losses.nearest_neighbors(q, k, block_size=block))
    return search.lower(queries, keys).compile().memory_analysis().temp_size_in_bytes

  full = 4 * n * m  # 64 MiB of similarities at once.
  blocked = temp_bytes(256)
  bound = 4 * (m * d + 256 * m) + 4 * 2 * n * d + 4 * n  # The docstring's bound, plus the inputs.
  assert blocked <= 1.5 * bound < full / 4, (blocked, bound, full)


def test_bad_inputs_are_value_errors():
  x = _rows(0, 4)
  with pytest.raises(ValueError, match='channels'):
    losses.nearest_neighbors(x, _rows(1, 4, d=5))
  with pytest.raises(ValueError, match='block_size'):
    losses.nearest_neighbors(x, x, block_size=0)
  with pytest.raises(ValueError, match='valid'):
    losses.nearest_neighbors(x, x, valid=np.ones(3, bool))
  with pytest.raises(ValueError, match='hypercolumns'):
    losses.nearest_neighbor_style_loss(np.zeros((2, 2, 2, 2)), x)
  with pytest.raises(ValueError, match='stride'):
    losses.hypercolumn_grid((8, 8), 0)
