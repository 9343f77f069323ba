"""Tests for nst_jax.objective: built-in terms compare by value, so compiled programs are reused."""

import jax.numpy as jnp
import numpy as np

import nst_jax
from nst_jax import objective


def test_terms_built_twice_from_a_config_are_equal():
  config = nst_jax.default_config()
  first, second = objective.terms_from_config(config), objective.terms_from_config(config)
  assert first == second
  assert hash(tuple(first.items())) == hash(tuple(second.items()))
  config.style_layers = {'relu1_1': 1.0}
  assert objective.terms_from_config(config)['style'] != first['style']
  gram, gaussian = (objective.style_term({'relu1_1': 1.0}, kind) for kind in ('gram', 'gaussian'))
  assert gram != gaussian


def test_built_in_terms_evaluate():
  rng = np.random.default_rng(0)
  content = {'relu1_1': jnp.asarray(rng.uniform(size=(4, 4, 2)), jnp.float32)}
  image = jnp.asarray(rng.uniform(size=(4, 4, 3)), jnp.float32)
  features = {'relu1_1': content['relu1_1'] + 1.0, 'image': image}
  term = objective.content_term({'relu1_1': 2.0, 'relu2_1': 0.0})
  assert term.layers == ('relu1_1',)
  target = term.target(content, [], [])
  np.testing.assert_allclose(term.loss(features, target), 2.0, rtol=1e-6)
  style = objective.style_term({'relu1_1': 1.0})
  style_target = style.target(content, [content, features], [0.5, 0.5])
  assert style.loss(content, style_target) > 0
  tv = objective.tv_term('l2')
  assert tv.loss(features, None) > 0 and tv.target is None
