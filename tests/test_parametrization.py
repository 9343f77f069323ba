"""Tests for nst_jax.core.parametrization: the Laplacian pyramid reconstructs exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax.core import parametrization


@pytest.mark.parametrize('shape, levels', [((32, 32, 3), 3), ((37, 50, 3), 4), ((5, 9, 1), 1)])
def test_pyramid_round_trips_exactly(shape, levels):
  image = jax.random.uniform(jax.random.key(0), shape)
  pyramid = parametrization.laplacian_pyramid(image, levels)
  assert len(pyramid) == levels and pyramid[0].shape == shape
  for finer, coarser in zip(pyramid, pyramid[1:], strict=False):
    assert coarser.shape[:2] == (-(-finer.shape[0] // 2), -(-finer.shape[1] // 2))
  np.testing.assert_allclose(parametrization.reconstruct(pyramid), image, atol=1e-6)
  with pytest.raises(ValueError, match='at least one level'):
    parametrization.laplacian_pyramid(image, 0)


def test_pyramid_levels_stop_near_the_coarsest_size():
  assert parametrization.pyramid_levels((256, 256)) == 5  # 256, 128, 64, 32, 16.
  assert parametrization.pyramid_levels((20, 300)) == 1
  assert parametrization.pyramid_levels((64, 48), coarsest=8) == 3  # 48, 24, 12.


@pytest.mark.parametrize(
  ('kind', 'level_scale'), [('pixels', 1.0), ('pyramid', 1.0), ('pyramid', 2.0), ('sigmoid', 1.0)]
)
def test_parametrizations_encode_decode_and_project_to_the_unit_range(kind, level_scale):
  p = parametrization.Parametrization(kind, coarsest=4, level_scale=level_scale)
  image = jax.random.uniform(jax.random.key(1), (20, 24, 3), minval=0.01, maxval=0.99)
  variables = p.encode(image)
  np.testing.assert_allclose(p.decode(variables), image, atol=1e-5)
  pushed = jax.tree.map(lambda x: x + 0.3, variables)
  projected = p.decode(p.project(pushed))
  assert float(projected.min()) >= -1e-6 and float(projected.max()) <= 1 + 1e-6
  if kind != 'sigmoid':  # A sigmoid's image never leaves (0, 1): nothing to clip.
    np.testing.assert_allclose(projected, jnp.clip(p.decode(pushed), 0, 1), atol=1e-6)
  with pytest.raises(ValueError, match='parametrization'):
    parametrization.Parametrization('wavelets')


def test_the_level_scale_multiplies_each_levels_gradient():
  plain = parametrization.Parametrization('pyramid', coarsest=4)
  scaled = parametrization.Parametrization('pyramid', coarsest=4, level_scale=3.0)
  image = jax.random.uniform(jax.random.key(2), (16, 16, 3))
  weights = jax.random.normal(jax.random.key(3), image.shape)
  loss = lambda p: lambda v: jnp.sum(weights * p.decode(v))  # noqa: E731
  g_plain = jax.grad(loss(plain))(plain.encode(image))
  g_scaled = jax.grad(loss(scaled))(scaled.encode(image))
  assert len(g_plain) == 3
  for k, (a, b) in enumerate(zip(g_plain, g_scaled, strict=True)):
    np.testing.assert_allclose(b, 3.0**k * a, rtol=1e-5, atol=1e-6)


def test_sigmoid_keeps_black_and_white_finite():
  p = parametrization.Parametrization('sigmoid')
  image = jnp.asarray([[[0.0, 1.0, 0.5]]])
  variables = p.encode(image)
  assert np.isfinite(variables).all()
  np.testing.assert_allclose(p.decode(variables), image, atol=1 / 255)
