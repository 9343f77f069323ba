"""Tests for nst_jax.objective: combining terms, plainly or log-normalised, and the Objective."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nst_jax
from nst_jax import losses, objective, terms


def _features(seed, h=3, w=4, c=5):
  return np.random.default_rng(seed).normal(size=(h, w, c))


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


def test_combine_terms_is_the_weighted_sum():
  values = {'content': jnp.array(2.0), 'style': jnp.array(3.0)}
  total = objective.combine_terms(values, {'content': 0.5, 'style': 4.0})
  np.testing.assert_allclose(total, 13.0)


def test_log_combine_terms_has_the_seeds_normalised_gradient(x64):
  """The gradient of sum w log L is the seed's sum w grad(L) / L, whose value is sum w."""
  weights = {'content': 1.0, 'style': 1e3, 'tv': 0.1}
  x, y, image = _features(0), _features(1), np.random.default_rng(2).uniform(size=(3, 4, 3))
  target = losses.gaussian_style_target(y)
  fns = {
    'content': lambda p: losses.content_loss(p['content'], y),
    'style': lambda p: losses.wasserstein2_style_loss(p['style'], *target),
    'tv': lambda p: losses.total_variation(p['tv']),
  }
  params = {'content': jnp.asarray(x), 'style': jnp.asarray(x), 'tv': jnp.asarray(image)}

  def total(p):
    return objective.log_combine_terms({k: f(p) for k, f in fns.items()}, weights, eps=0.0)

  value, grads = jax.value_and_grad(total)(params)
  logs = sum(w * np.log(float(fns[k](params))) for k, w in weights.items())
  np.testing.assert_allclose(value, logs, rtol=1e-6)
  for name, fn in fns.items():
    term_value, term_grad = jax.value_and_grad(fn)(params)
    np.testing.assert_allclose(
      grads[name], weights[name] * term_grad[name] / term_value, rtol=1e-6, atol=1e-12
    )


def test_log_combine_terms_zero_term_is_finite():
  total, grad = jax.value_and_grad(
    lambda v: objective.log_combine_terms({'a': v * 0.0, 'b': v}, {'a': 1.0, 'b': 2.0})
  )(jnp.array(5.0))
  assert np.isfinite(total) and np.isfinite(grad)


@pytest.mark.parametrize('combine', [objective.combine_terms, objective.log_combine_terms])
def test_combinations_reject_mismatched_names(combine):
  with pytest.raises(ValueError, match="missing \\['tv'\\], unexpected \\['style'\\]"):
    combine({'content': 1.0, 'tv': 2.0}, {'content': 1.0, 'style': 1.0})


def test_objective_reads_the_network_and_combines_its_terms():
  model = nst_jax.VGG19()
  params = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)), ('relu2_1',))
  chosen = {'style': terms.style_term({'relu1_1': 1.0}), 'tv': terms.tv_term()}
  assert objective.layers_of(chosen.values()) == ('relu1_1',)
  plain = objective.Objective(model, tuple(chosen.items()))
  normalised = objective.Objective(model, tuple(chosen.items()), normalize=True)
  assert plain == objective.Objective(model, tuple(chosen.items())) and plain != normalised
  image = jax.random.uniform(jax.random.key(1), (16, 16, 3))
  style = jax.random.uniform(jax.random.key(2), (16, 16, 3))
  style_features = jax.tree.map(lambda x: x[0], plain.features(params, style[None]))
  targets = objective.compute_targets(chosen, {}, [style_features], [1.0])
  weights = {'style': 2.0, 'tv': 3.0}
  total, values = plain(params, image, targets, weights)
  np.testing.assert_allclose(total, 2 * values['style'] + 3 * values['tv'], rtol=1e-6)
  log_total, _ = normalised(params, image, targets, weights)
  expected = 2 * np.log(values['style'] + 1e-8) + 3 * np.log(values['tv'] + 1e-8)
  np.testing.assert_allclose(log_total, expected, rtol=1e-5)
  # The style image is its own target: its style term is zero.
  np.testing.assert_allclose(plain.values(params, style, targets)['style'], 0.0, atol=1e-3)
