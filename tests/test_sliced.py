"""Tests for nst_jax.core.losses.sliced: NumPy references, zero at the style, invariance to the
order of positions, blends and padding, finite differences, vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nst_jax.core import losses


def _features(seed, h=3, w=4, c=5):
  return np.random.default_rng(seed).normal(size=(h, w, c)).astype(np.float32)


def _permute(x, seed):
  h, w, c = x.shape
  return x.reshape(-1, c)[np.random.default_rng(seed).permutation(h * w)].reshape(h, w, c)


def _np_sliced(x, y, directions):
  """NumPy: sorted projections, the style's interpolated at the output's levels (j + 0.5) / Q."""
  px = np.sort(x.reshape(-1, x.shape[-1]) @ directions, axis=0)
  py = np.sort(y.reshape(-1, y.shape[-1]) @ directions, axis=0)
  q, p = px.shape[0], py.shape[0]
  levels, positions = (np.arange(q) + 0.5) / q, (np.arange(p) + 0.5) / p
  expected = np.stack([np.interp(levels, positions, py[:, i]) for i in range(py.shape[1])], 1)
  return np.mean((px - expected) ** 2)


KEY = jax.random.key(3)


@pytest.mark.parametrize('style_shape', [(3, 4), (2, 7), (5, 5)])  # Equal, then other counts.
def test_matches_numpy(style_shape):
  x, y = _features(0), _features(1, *style_shape)
  directions = np.asarray(losses.random_directions(KEY, 5, 16), np.float64)
  np.testing.assert_allclose(np.linalg.norm(directions, axis=0), 1.0, rtol=1e-6)
  expected = _np_sliced(x.astype(np.float64), y.astype(np.float64), directions)
  value = losses.sliced_wasserstein_style_loss(x, y, key=KEY, num_directions=16)
  np.testing.assert_allclose(value, expected, rtol=1e-4)
  # Fixed directions: the style's projections sorted once, the same value.
  fixed = losses.sorted_projections(y, directions, num_positions=12)
  np.testing.assert_allclose(losses.sliced_wasserstein_style_loss(x, fixed), expected, rtol=1e-4)
  np.testing.assert_allclose(losses.style_loss(x, fixed), expected, rtol=1e-4)


def test_zero_at_the_style_in_any_order():
  y = _features(1, 4, 4)
  for target in (y, losses.sliced_style_target(y), losses.sliced_style_target(y, pad_to=30)):
    value = losses.sliced_wasserstein_style_loss(_permute(y, 2), target, key=KEY)
    assert abs(float(value)) < 1e-9
  fixed = losses.sorted_projections(y, losses.random_directions(KEY, 5, 8), 16)
  assert abs(float(losses.sliced_wasserstein_style_loss(_permute(y, 3), fixed))) < 1e-9


def test_invariant_to_permuting_positions():
  x, y = _features(0, 4, 3), _features(1, 2, 5)
  value = losses.sliced_wasserstein_style_loss(x, y, key=KEY)
  assert value > 0.1
  for a, b in ((_permute(x, 5), y), (x, _permute(y, 6)), (_permute(x, 7), _permute(y, 8))):
    np.testing.assert_allclose(
      losses.sliced_wasserstein_style_loss(a, b, key=KEY), value, rtol=1e-5
    )


def test_padding_changes_nothing():
  x, y = _features(0), _features(1, 2, 7)
  plain = losses.sliced_wasserstein_style_loss(x, y, key=KEY)
  padded = losses.sliced_style_target(y, pad_to=49)
  assert padded.samples.shape == (49, 5) and float(padded.weights.sum()) == pytest.approx(1.0)
  np.testing.assert_allclose(
    losses.sliced_wasserstein_style_loss(x, padded, key=KEY), plain, rtol=1e-5
  )


def test_blend_is_the_mixture():
  """A 50/50 blend of two equal-size styles is their concatenation; 1/0 is the first style."""
  x, y, z = _features(0), _features(1, 3, 2), _features(2, 2, 3)
  a, b = losses.style_target(y, 'sliced'), losses.style_target(z, 'sliced')
  both = np.concatenate([y.reshape(-1, 5), z.reshape(-1, 5)])[:, None]
  half = losses.blend_style_targets([a, b], [1.0, 1.0])
  np.testing.assert_allclose(
    losses.style_loss(x, half, key=KEY),
    losses.sliced_wasserstein_style_loss(x, both, key=KEY),
    rtol=1e-5,
  )
  first = losses.blend_style_targets([a, losses.sliced_style_target(z, pad_to=9)], [1.0, 0.0])
  np.testing.assert_allclose(
    losses.sliced_wasserstein_style_loss(x, first, key=KEY),
    losses.sliced_wasserstein_style_loss(x, y, key=KEY),
    rtol=1e-5,
  )
  # Unequal weights: each sample holds its mass (1/18 for y's, 2/18 for z's) and sits at the
  # middle of it in the mixture's cumulative distribution; NumPy interpolates the same way.
  thirds = losses.blend_style_targets([a, b], [1.0, 2.0])
  samples = np.concatenate([y.reshape(-1, 5), z.reshape(-1, 5)])
  masses = np.concatenate([np.full(6, 1 / 18), np.full(6, 2 / 18)])
  directions = np.asarray(losses.random_directions(KEY, 5, 64), np.float64)
  levels = (np.arange(12) + 0.5) / 12
  quantiles = []
  for p in (samples @ directions).T:
    order = np.argsort(p)
    middle = np.cumsum(masses[order]) - masses[order] / 2
    quantiles.append(np.interp(levels, middle, p[order]))
  ours = np.sort(x.reshape(-1, 5) @ directions, axis=0).T
  np.testing.assert_allclose(
    losses.sliced_wasserstein_style_loss(x, thirds, key=KEY),
    np.mean((ours - np.stack(quantiles)) ** 2),
    rtol=1e-4,
  )
  with pytest.raises(ValueError, match='SortedProjections'):
    fixed = losses.sorted_projections(y, directions, 12)
    losses.blend_style_targets([fixed, fixed], [1.0, 1.0])


def test_relative_divides_by_the_style_second_moment():
  x, y = _features(0), _features(1, 2, 7)
  directions = losses.random_directions(KEY, 5, 16)
  fixed = losses.sorted_projections(y, directions, 12)
  plain = losses.sliced_wasserstein_style_loss(x, fixed)
  scale = np.mean(np.asarray(fixed.quantiles) ** 2)
  np.testing.assert_allclose(
    losses.sliced_wasserstein_style_loss(x, fixed, relative=True), plain / scale, rtol=1e-5
  )
  # Scale-free: features and style scaled together give the same value.
  np.testing.assert_allclose(
    losses.sliced_wasserstein_style_loss(100 * x, 100 * y, key=KEY, relative=True),
    losses.sliced_wasserstein_style_loss(x, y, key=KEY, relative=True),
    rtol=1e-4,
  )


def test_keys_redraw_the_directions_and_repeat():
  x, y = _features(0), _features(1)
  a = losses.sliced_wasserstein_style_loss(x, y, key=jax.random.key(0))
  b = losses.sliced_wasserstein_style_loss(x, y, key=jax.random.key(0))
  c = losses.sliced_wasserstein_style_loss(x, y, key=jax.random.key(1))
  assert a == b and a != c
  raw = losses.sliced_wasserstein_style_loss(x, y, key=jax.random.key_data(jax.random.key(0)))
  assert raw == a  # Raw key data draws the same directions as the typed key.


def test_gradient_matches_finite_differences():
  with jax.enable_x64(True):
    x, y = _features(0).astype(np.float64), _features(1, 2, 5).astype(np.float64)
    for target in (y, losses.sorted_projections(y, losses.random_directions(KEY, 5, 4), 12)):
      check_grads(
        lambda f, t=target: losses.sliced_wasserstein_style_loss(f, t, key=KEY, num_directions=4),
        (x,),
        order=1,
        modes=('rev',),
        eps=1e-4,
      )


def test_vmap_jit_equals_pair_by_pair():
  xs = np.stack([_features(i) for i in range(3)])
  targets = [losses.sliced_style_target(_features(10 + i, 3, 3), pad_to=16) for i in range(3)]
  stacked = jax.tree.map(lambda *t: jnp.stack(t), *targets)
  keys = jax.random.split(KEY, 3)
  fn = jax.jit(
    jax.vmap(jax.value_and_grad(lambda x, t, k: losses.sliced_wasserstein_style_loss(x, t, key=k)))
  )
  values, grads = fn(xs, stacked, keys)
  for i in range(3):
    value, grad = jax.value_and_grad(
      lambda x, i=i: losses.sliced_wasserstein_style_loss(x, targets[i], key=keys[i])
    )(xs[i])
    np.testing.assert_allclose(values[i], value, rtol=1e-5)
    np.testing.assert_allclose(grads[i], grad, rtol=1e-4, atol=1e-6)


def test_bad_inputs_are_value_errors():
  x = _features(0)
  with pytest.raises(ValueError, match='needs a key'):
    losses.sliced_wasserstein_style_loss(x, x)
  with pytest.raises(ValueError, match='style samples'):
    losses.sliced_wasserstein_style_loss(x, _features(1, c=4), key=KEY)
  with pytest.raises(ValueError, match='SortedProjections'):
    fixed = losses.sorted_projections(x, losses.random_directions(KEY, 5, 3), 7)
    losses.sliced_wasserstein_style_loss(x, fixed)
  with pytest.raises(ValueError, match='pad_to'):
    losses.sliced_style_target(x, pad_to=5)
  with pytest.raises(ValueError, match='num_directions'):
    losses.random_directions(KEY, 5, 0)
