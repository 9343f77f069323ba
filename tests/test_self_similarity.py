"""Tests for nst_jax.core.losses.self_similarity: a NumPy reference, zero at the content, seeded
sampling, finite differences, vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nst_jax.core import losses


def _features(seed, h=3, w=4, c=5):
  return (
    np.maximum(np.random.default_rng(seed).normal(size=(h, w, c)), 0.0).astype(np.float32) + 0.05
  )


def _np_self_similarity(x, t):
  def normalised(f):
    f = f.reshape(-1, f.shape[-1])
    unit = f / np.linalg.norm(f, axis=1, keepdims=True)
    d = 1 - unit @ unit.T
    return d / d.sum(0, keepdims=True)

  n = x.shape[0] * x.shape[1]
  delta = 0.01 / n
  return (np.sqrt((normalised(x) - normalised(t)) ** 2 + delta**2) - delta).sum() / n


def test_matches_numpy_when_every_position_is_compared():
  x, t = _features(0), _features(1)
  np.testing.assert_allclose(
    losses.self_similarity_content_loss(x, t), _np_self_similarity(x, t), rtol=1e-5
  )


def test_zero_at_the_content_and_for_rescaled_features():
  t = _features(1, 6, 6)
  assert (
    float(losses.self_similarity_content_loss(t, t, key=jax.random.key(0), num_samples=8)) < 1e-6
  )
  # Each position's features scaled by its own positive factor: the same cosines.
  scale = np.random.default_rng(2).uniform(0.5, 3.0, size=(6, 6, 1)).astype(np.float32)
  assert float(losses.self_similarity_content_loss(t * scale, t)) < 1e-5
  assert float(losses.self_similarity_content_loss(_features(3, 6, 6), t)) > 0.05


def test_sampling_is_seeded():
  x, t = _features(0, 8, 8), _features(1, 8, 8)
  loss = lambda key: losses.self_similarity_content_loss(x, t, key=key, num_samples=10)  # noqa: E731
  a, b, c = loss(jax.random.key(0)), loss(jax.random.key(0)), loss(jax.random.key(1))
  assert a == b and a != c
  index = np.asarray(losses.self_similarity.sample_positions(64, 10, jax.random.key(0)))
  assert len(set(index.tolist())) == 10 and index.max() < 64  # Distinct positions.
  # Without a key: evenly spaced positions, the same as comparing those positions alone.
  spaced = losses.self_similarity.sample_positions(64, 10, None)
  flat_x, flat_t = x.reshape(64, 1, 5)[spaced], t.reshape(64, 1, 5)[spaced]
  np.testing.assert_allclose(
    losses.self_similarity_content_loss(x, t, num_samples=10),
    _np_self_similarity(flat_x, flat_t),
    rtol=1e-5,
  )


def test_gradient_vanishes_at_the_content():
  """Features rescaled per position have the content's cosines, up to rounding: the gradient is
  (nearly) zero, not the sign of the rounding noise (which a plain |d| would give)."""
  t = _features(1, 6, 6)
  scale = np.random.default_rng(2).uniform(0.5, 3.0, size=(6, 6, 1)).astype(np.float32)
  loss = lambda f: losses.self_similarity_content_loss(f, t, num_samples=20)  # noqa: E731
  moved = _features(3, 6, 6)
  assert np.abs(jax.grad(loss)(t * scale)).max() < 1e-3 * np.abs(jax.grad(loss)(moved)).max()


def test_gradient_matches_finite_differences():
  with jax.enable_x64(True):
    x, t = _features(0).astype(np.float64), _features(1).astype(np.float64)
    key = jax.random.key(0)
    check_grads(
      lambda f: losses.self_similarity_content_loss(f, t, key=key, num_samples=6),
      (x,),
      order=1,
      modes=('rev',),
      eps=1e-5,
    )


def test_vmap_jit_equals_pair_by_pair():
  xs = np.stack([_features(i, 5, 5) for i in range(3)])
  ts = np.stack([_features(10 + i, 5, 5) for i in range(3)])
  keys = jax.random.split(jax.random.key(0), 3)
  fn = lambda x, t, k: losses.self_similarity_content_loss(x, t, key=k, num_samples=9)  # noqa: E731
  values, grads = jax.jit(jax.vmap(jax.value_and_grad(fn)))(xs, ts, keys)
  for i in range(3):
    value, grad = jax.value_and_grad(fn)(xs[i], ts[i], keys[i])
    np.testing.assert_allclose(values[i], value, rtol=1e-5)
    np.testing.assert_allclose(grads[i], grad, rtol=1e-4, atol=1e-7)


def test_bad_inputs_are_value_errors():
  x = _features(0)
  with pytest.raises(ValueError, match='differ'):
    losses.self_similarity_content_loss(x, _features(1, 4, 3))
  with pytest.raises(ValueError, match='num_samples'):
    losses.self_similarity_content_loss(x, x, num_samples=1)
  with pytest.raises(ValueError, match='3-D'):
    losses.self_similarity_content_loss(jnp.zeros((4, 5)), jnp.zeros((4, 5)))
