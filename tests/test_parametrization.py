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


@pytest.mark.parametrize('kind', ['pixels', 'pyramid'])
def test_parametrizations_encode_decode_and_project_to_the_unit_range(kind):
  p = parametrization.Parametrization(kind, coarsest=4)
  image = jax.random.uniform(jax.random.key(1), (20, 24, 3))
  variables = p.encode(image)
  np.testing.assert_allclose(p.decode(variables), image, atol=1e-6)
  pushed = jax.tree.map(lambda x: x + 0.3, variables)
  projected = p.decode(p.project(pushed))
  assert float(projected.min()) >= -1e-6 and float(projected.max()) <= 1 + 1e-6
  np.testing.assert_allclose(projected, jnp.clip(p.decode(pushed), 0, 1), atol=1e-6)
  with pytest.raises(ValueError, match='parametrization'):
    parametrization.Parametrization('wavelets')
