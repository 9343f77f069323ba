"""Tests for nst_jax.core.objective: combining terms, their reference values, and the Objective."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nst_jax
from nst_jax import losses
from nst_jax.core import objective, terms
from nst_jax.run import targets as targets_lib


def test_combine_terms_is_the_weighted_sum():
  values = {'content': jnp.array(2.0), 'gram': jnp.array(3.0)}
  total = objective.combine_terms(values, {'content': 0.5, 'gram': 4.0})
  np.testing.assert_allclose(total, 13.0)


def test_reference_values_are_the_larger_distance_between_the_inputs():
  refs = objective.reference_values(
    {'content': jnp.array([0.0, 0.0]), 'gram': jnp.array([4.0, 0.0])},
    {'content': jnp.array([3.0, 0.0]), 'gram': jnp.array([0.5, 0.0])},
  )
  np.testing.assert_allclose(refs['content'], [3.0, 1.0])  # 1 where both inputs agree.
  np.testing.assert_allclose(refs['gram'], [4.0, 1.0])


def test_combine_terms_rejects_mismatched_names():
  with pytest.raises(ValueError, match="missing \\['tv'\\], unexpected \\['gram'\\]"):
    objective.combine_terms({'content': 1.0, 'tv': 2.0}, {'content': 1.0, 'gram': 1.0})


def test_objective_reads_the_network_and_combines_its_terms():
  model = nst_jax.VGG19()
  params = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)), ('relu2_1',))
  chosen = {'gram': losses.gram_term({'relu1_1': 1.0}), 'tv': losses.tv_term()}
  assert terms.layers_of(chosen.values()) == ('relu1_1',)
  plain = objective.Objective(model, tuple(chosen.items()))
  assert plain == objective.Objective(model, tuple(chosen.items()))
  image = jax.random.uniform(jax.random.key(1), (16, 16, 3))
  style = jax.random.uniform(jax.random.key(2), (16, 16, 3))
  style_features = jax.tree.map(lambda x: x[0], plain.features(params, style[None]))
  targets = targets_lib.compute_targets(chosen, {}, [style_features], [1.0])
  weights = {'gram': 2.0, 'tv': 3.0}
  total, values = plain(params, image, targets, weights)
  np.testing.assert_allclose(total, 2 * values['gram'] + 3 * values['tv'], rtol=1e-6)
  # The style image is its own target: its style term is zero.
  np.testing.assert_allclose(plain.values(params, style, targets)['gram'], 0.0, atol=1e-3)
