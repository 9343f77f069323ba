"""Tests for nst_jax.terms: built-in terms compare by value (so compiled programs are reused),
evaluate, and are named in configs."""

import jax.numpy as jnp
import numpy as np
import pytest

import nst_jax
from nst_jax import terms


def test_terms_built_twice_from_a_config_are_equal():
  config = nst_jax.default_config()
  first, second = terms.terms_from_config(config), terms.terms_from_config(config)
  assert first == second
  assert hash(tuple(first.items())) == hash(tuple(second.items()))
  config.style_layers = {'relu1_1': 1.0}
  assert terms.terms_from_config(config)['style'] != first['style']
  gram, gaussian = (terms.style_term({'relu1_1': 1.0}, kind) for kind in ('gram', 'gaussian'))
  assert gram != gaussian


def test_built_in_terms_evaluate():
  rng = np.random.default_rng(0)
  content = {'relu1_1': jnp.asarray(rng.uniform(size=(4, 4, 2)), jnp.float32)}
  image = jnp.asarray(rng.uniform(size=(4, 4, 3)), jnp.float32)
  features = {'relu1_1': content['relu1_1'] + 1.0, 'image': image}
  term = terms.content_term({'relu1_1': 2.0, 'relu2_1': 0.0})
  assert term.layers == ('relu1_1',)
  target = term.target(content, [], [])
  np.testing.assert_allclose(term.loss(features, target), 2.0, rtol=1e-6)
  style = terms.style_term({'relu1_1': 1.0})
  style_target = style.target(content, [content, features], [0.5, 0.5])
  assert style.loss(content, style_target) > 0
  tv = terms.tv_term('l2')
  assert tv.loss(features, None) > 0 and tv.target is None


def test_registered_terms_are_named_in_configs_and_can_be_forgotten():
  brightness = nst_jax.LossTerm(lambda f, t: f['image'].mean(), weight=1.0)
  config = nst_jax.default_config()
  config.terms = {'content': 1.0, 'brightness': 2.0}
  with pytest.raises(nst_jax.ConfigError, match='unknown loss term.*brightness'):
    terms.terms_from_config(config)
  terms.register_term('brightness', lambda config: brightness)
  try:
    built = terms.terms_from_config(config)
    assert built['brightness'].weight == 2.0 and set(built) == {'content', 'brightness'}
  finally:
    terms.unregister_term('brightness')
  with pytest.raises(nst_jax.ConfigError, match='unknown loss term'):
    terms.terms_from_config(config)
  with pytest.raises(ValueError, match='built-in'):
    terms.unregister_term('style')
