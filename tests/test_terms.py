"""Tests for nst_jax.terms: built-in terms compare by value (so compiled programs are reused),
evaluate, and are named in configs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from small import small_config, small_pairs

import nst_jax
from nst_jax.core import terms


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


# --- The terms of issue 11: sliced Wasserstein, nearest neighbours, self-similarity ------------

SHALLOW = {'relu1_1': 1.0, 'relu2_1': 1.0}  # The random test network stops after block 2.


def _issue11_config(**overrides):
  config = small_config(**overrides)
  config.nn_layers = {'relu1_1': 1.0, 'relu1_2': 1.0, 'relu2_1': 1.0}
  return config


def test_new_losses_are_style_and_content_choices_and_named_terms():
  config = nst_jax.default_config()
  config.style_loss = 'sliced'
  config.terms = {'content': 1.0, 'style': 1.0, 'nearest_neighbor': 2.0, 'self_similarity': 3.0}
  built = terms.terms_from_config(config)
  assert built == terms.terms_from_config(config)  # Equal settings, equal terms: one program.
  assert hash(tuple(built.items())) == hash(tuple(terms.terms_from_config(config).items()))
  assert built['style']._replace(weight=1.0) == terms.terms_from_config(
    _with(config, terms={'sliced': 1.0})
  )['sliced']._replace(weight=1.0)
  assert built['style'].stochastic and built['self_similarity'].stochastic
  assert built['nearest_neighbor'].layers == tuple(config.nn_layers)
  assert built['nearest_neighbor'].refresh is None and built['nearest_neighbor'].style_views == ()
  config.sliced_fixed_directions = True
  config.nn_rematch_every, config.nn_augment = 10, 'rotations'
  config.content_loss = 'self_similarity'
  built = terms.terms_from_config(config)
  assert not built['style'].stochastic
  assert built['nearest_neighbor'].refresh_every == 10
  assert built['nearest_neighbor'].style_views == ('identity', 'rot90', 'rot180', 'rot270')
  assert built['content']._replace(weight=1.0) == built['self_similarity']._replace(weight=1.0)
  config.style_loss = 'nearest_neighbor'
  assert terms.terms_from_config(config)['style'].layers == tuple(config.nn_layers)
  for name in ('sliced', 'nearest_neighbor', 'self_similarity'):
    with pytest.raises(ValueError, match='built-in'):
      terms.unregister_term(name)


def _with(config, **fields):
  copy = config.copy_and_resolve_references()
  copy.update(fields)
  return copy


def test_sliced_target_pads_each_style_and_blends_by_weight():
  rng = np.random.default_rng(0)
  content = {'relu1_1': jnp.asarray(rng.random((4, 4, 3)), jnp.float32)}
  wide = {'relu1_1': jnp.asarray(rng.random((2, 5, 3)), jnp.float32)}
  square = {'relu1_1': jnp.asarray(rng.random((5, 5, 3)), jnp.float32)}
  term = terms.sliced_term({'relu1_1': 1.0})
  one = term.target(content, [wide], [1.0])['relu1_1']
  assert one.samples.shape == (25, 3)  # Padded to 5 x 5, the shape the square style has.
  np.testing.assert_allclose(one.weights[:10], 0.1) and np.testing.assert_allclose(
    one.weights[10:], 0
  )
  blend = term.target(content, [wide, square], [0.25, 0.75])['relu1_1']
  np.testing.assert_allclose(blend.weights[:10], 0.025, rtol=1e-6)
  np.testing.assert_allclose(blend.weights[25:], 0.75 / 25, rtol=1e-6)
  features = {**content, 'key': jax.random.key(0)}
  assert float(term.loss(features, {'relu1_1': one})) > 0
  fixed = terms.sliced_term({'relu1_1': 1.0}, num_directions=8, fixed_directions=True)
  target = fixed.target(content, [wide], [1.0])['relu1_1']
  assert target.quantiles.shape == (8, 16)  # Sorted at the output's 16 positions.


def test_nearest_neighbor_blend_needs_equal_weights():
  rng = np.random.default_rng(0)
  make = lambda: {  # noqa: E731
    'image': jnp.zeros((8, 8, 3)),
    'relu1_1': jnp.asarray(rng.random((8, 8, 3)), jnp.float32),
  }
  term = terms.nearest_neighbor_term({'relu1_1': 1.0}, stride=2)
  target = term.target(make(), [make(), make()], [0.5, 0.5])
  assert target.style.shape == (32, 3) and target.matches.shape == (16, 3)
  with pytest.raises(nst_jax.ConfigError, match='equal blend weights'):
    term.target(make(), [make(), make()], [0.3, 0.7])


def _run(network, config, contents=None, styles=None, **options):
  c, s = small_pairs()
  return nst_jax.stylize(
    c if contents is None else contents,
    s if styles is None else styles,
    config,
    network=network,
    **options,
  )


ISSUE11_CONFIGS = {
  'sliced': dict(style_loss='sliced', sliced_directions=8),
  'sliced_fixed': dict(style_loss='sliced', sliced_directions=8, sliced_fixed_directions=True),
  'nearest_neighbor': dict(
    style_loss='nearest_neighbor', nn_rematch_every=2, nn_augment='rotations', nn_block_size=7
  ),
  # From noise: at the content its gradient is rounding noise, and Adam's first steps move each
  # pixel by the learning rate whatever the size of its gradient, so the runs would part.
  'self_similarity': dict(content_loss='self_similarity', self_similarity_samples=16, init='noise'),
}


@pytest.mark.parametrize('name', ISSUE11_CONFIGS)
def test_vmapped_equals_pair_by_pair_and_sharded_equals_unsharded(random_network, name):
  """Four pairs (styles of two aspect ratios, one blend): vmapped on one device, pair by pair,
  and sharded over four devices give the same images."""
  contents, styles = small_pairs()
  contents = np.concatenate([contents, contents[::-1]])
  weights = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], np.float32)
  config = _issue11_config(num_steps=4, chunk_size=2, pair_group_size=4, **ISSUE11_CONFIGS[name])
  config.terms = {'content': 1.0, 'style': 1e-2}
  vmapped = _run(random_network, config, contents, styles, style_weights=weights)
  config.pair_group_size = 1
  by_pair = _run(random_network, config, contents, styles, style_weights=weights)
  config.num_devices, config.pair_group_size = 4, 0
  sharded = _run(random_network, config, contents, styles, style_weights=weights)
  assert not np.allclose(vmapped.images, contents, atol=1e-3)  # It did something.
  # Sorting, nearest neighbours and L1 distances have gradients that jump at ties (dead ReLU
  # positions project to exactly 0, say), and rounding in another batch layout can break a tie
  # the other way: a few pixels may part by a fraction of a step, the rest agree.
  for other in (by_pair, sharded):
    np.testing.assert_allclose(other.images, vmapped.images, atol=1e-3)
    assert np.mean(np.abs(other.images - vmapped.images) > 1e-4) < 0.01
    np.testing.assert_allclose(other.history.total, vmapped.history.total, rtol=1e-3)


@pytest.mark.parametrize('name', ['sliced', 'self_similarity'])
def test_seeded_stochastic_runs_repeat(random_network, name):
  config = _issue11_config(num_steps=3, chunk_size=3, **ISSUE11_CONFIGS[name])
  config.terms = {'content': 1.0, 'style': 1e-2}
  a, b = _run(random_network, config), _run(random_network, config)
  np.testing.assert_array_equal(a.images, b.images)
  config.seed = 1
  c = _run(random_network, config)
  assert not np.allclose(a.history.total, c.history.total, rtol=1e-6)


def test_styles_of_different_sizes_in_one_batch_need_the_same_count(random_network):
  """Padded targets let styles of different aspect ratios share a batch; a blend of two styles
  next to a single style cannot, and says so."""
  config = _issue11_config(num_steps=1, chunk_size=1, **ISSUE11_CONFIGS['sliced'])
  weights = np.array([[1, 0], [1, 1]], np.float32)
  with pytest.raises(nst_jax.ConfigError, match="loss term 'style'.*differ in shape"):
    _run(random_network, config, style_weights=weights)


REAL = {
  'sliced': (dict(style_loss='sliced'), {'style': 1.0}),
  'sliced_fixed': (dict(style_loss='sliced', sliced_fixed_directions=True), {'style': 1.0}),
  'nearest_neighbor': (
    dict(style_loss='nearest_neighbor', nn_rematch_every=4, nn_augment='rotations'),
    {'style': 1.0},
  ),
  'self_similarity': (dict(content_loss='self_similarity', init='noise'), {'content': 1.0}),
}


@pytest.mark.slow
@pytest.mark.parametrize('name', REAL)
def test_each_loss_decreases_in_a_real_run(vgg19_params, astronaut_64, name):
  """64 px, the real weights, Adam: the term alone falls over 12 steps."""
  fields, weights = REAL[name]
  config = nst_jax.default_config()
  config.update(dict(image_size=64, num_steps=12, chunk_size=4, optimizer='adam', num_devices=1))
  config.update(fields)
  config.terms = weights
  style = np.asarray(astronaut_64[::-1, ::-1, ::-1])  # Another image: flipped, channels swapped.
  network = (nst_jax.VGG19(), vgg19_params)
  result = nst_jax.stylize(astronaut_64[None], [style], config, network=network)
  values = result.history.terms[next(iter(weights))][:, 0]
  assert values[-1] < 0.8 * values[0], values
  assert np.isfinite(result.images).all()
