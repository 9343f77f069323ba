"""Tests for nst_jax.core.terms and the terms of nst_jax.core.losses: built-in terms compare by
value (so compiled programs are reused), evaluate, and are named in configs (`config.losses`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from small import small_config, small_pairs

import nst_jax
from nst_jax import losses
from nst_jax.core import terms
from nst_jax.run import config as config_lib


def test_terms_built_twice_from_a_config_are_equal():
  config = nst_jax.default_config()
  first, second = terms.terms_from_config(config), terms.terms_from_config(config)
  assert first == second
  assert hash(tuple(first.items())) == hash(tuple(second.items()))
  config.losses.gram.layers = {'relu1_1': 1.0}
  assert terms.terms_from_config(config)['gram'] != first['gram']
  gram, gaussian = (f({'relu1_1': 1.0}) for f in (losses.gram_term, losses.gaussian_term))
  assert gram != gaussian


def test_built_in_terms_evaluate():
  rng = np.random.default_rng(0)
  content = {'relu1_1': jnp.asarray(rng.uniform(size=(4, 4, 2)), jnp.float32)}
  image = jnp.asarray(rng.uniform(size=(4, 4, 3)), jnp.float32)
  features = {'relu1_1': content['relu1_1'] + 1.0, 'image': image}
  term = losses.content_term({'relu1_1': 2.0, 'relu2_1': 0.0})
  assert term.layers == ('relu1_1',) and term.weight == 1.0
  target = term.target(content, [], [])
  np.testing.assert_allclose(term.loss(features, target), 2.0, rtol=1e-6)
  style = losses.gram_term({'relu1_1': 1.0})
  style_target = style.target(content, [content, features], [0.5, 0.5])
  assert style.loss(content, style_target) > 0
  tv = losses.tv_term('l2')
  assert tv.loss(features, None) > 0 and tv.target is None


def test_registered_losses_are_named_in_configs_and_can_be_forgotten():
  brightness = nst_jax.LossTerm(lambda f, t: f['image'].mean())
  config = nst_jax.default_config()
  config.losses.gram.weight = 0.0
  config.losses.brightness = {'weight': 2.0}
  with pytest.raises(nst_jax.ConfigError, match="no loss is registered as 'brightness'"):
    terms.terms_from_config(config)
  nst_jax.register_loss('brightness', lambda: brightness)
  try:
    assert 'brightness' in terms.registered_losses()
    built = terms.terms_from_config(config)
    assert built['brightness'].weight == 2.0 and set(built) == {'content', 'brightness'}
  finally:
    nst_jax.unregister_loss('brightness')
  with pytest.raises(nst_jax.ConfigError, match='no loss is registered'):
    terms.terms_from_config(config)
  with pytest.raises(ValueError, match='built-in'):
    nst_jax.unregister_loss('gram')


def test_build_loss_gives_the_entrys_weight_and_checks_it():
  term = terms.build_loss('tv', {'weight': 0.5, 'norm': 'l2'})
  assert term == losses.tv_term('l2')._replace(weight=0.5)
  with pytest.raises(nst_jax.ConfigError, match=r'config\.losses\.tv\.weight=-1'):
    terms.build_loss('tv', {'weight': -1, 'norm': 'l2'})
  with pytest.raises(nst_jax.ConfigError, match=r"config\.losses\.tv: .*'l3'"):
    terms.build_loss('tv', {'weight': 1.0, 'norm': 'l3'})


def test_terms_from_config_builds_every_loss_and_keeps_the_weighted_ones():
  config = nst_jax.default_config()
  config.losses.tv.weight = 0.25
  built = terms.terms_from_config(config)
  assert list(built) == ['content', 'gram', 'tv']  # In config.losses' order.
  assert {name: t.weight for name, t in built.items()} == {
    'content': 1.0,
    'gram': 1.0,
    'tv': 0.25,
  }
  config.losses.nearest_neighbor.stride = 0  # Left out (weight 0), but still checked.
  with pytest.raises(nst_jax.ConfigError, match=r'config\.losses\.nearest_neighbor: stride=0'):
    terms.terms_from_config(config)


def test_tileable_follows_the_tiling_contract():
  assert terms.tileable(losses.content_term({'relu1_1': 1.0}))
  assert terms.tileable(losses.gram_term({'relu1_1': 1.0}))
  assert terms.tileable(losses.gaussian_term({'relu1_1': 1.0}))
  assert terms.tileable(losses.tv_term())
  assert not terms.tileable(losses.sliced_term({'relu1_1': 1.0}))
  assert not terms.tileable(losses.nearest_neighbor_term({'relu1_1': 1.0}))
  assert not terms.tileable(losses.self_similarity_term({'relu1_1': 1.0}))
  assert not terms.tileable(nst_jax.LossTerm(lambda f, t: f['image'].mean()))


def test_per_layer_sums_the_weighted_layers_and_drops_zero_weights():
  rng = np.random.default_rng(0)
  features = {n: jnp.asarray(rng.random((4, 4, 2)), jnp.float32) for n in ('relu1_1', 'relu2_1')}
  mean = lambda x, target, key: jnp.mean(x) - target  # noqa: E731
  loss = terms.per_layer(mean, {'relu1_1': 2.0, 'relu2_1': 0.5, 'relu3_1': 0.0})
  assert type(loss) is terms.PerLayer and loss.layers == ('relu1_1', 'relu2_1')
  target = {'relu1_1': 0.1, 'relu2_1': 0.2}
  expected = 2 * (features['relu1_1'].mean() - 0.1) + 0.5 * (features['relu2_1'].mean() - 0.2)
  np.testing.assert_allclose(loss(features, target), expected, rtol=1e-6)
  gram = losses.gram_term({'relu1_1': 1.0})
  assert isinstance(gram.loss, terms.TileablePerLayer)
  with pytest.raises(nst_jax.ConfigError, match='negative weight'):
    terms.per_layer(mean, {'relu1_1': -1.0})
  with pytest.raises(nst_jax.ConfigError, match='unknown'):
    terms.per_layer(mean, {'relu9_9': 1.0})


# --- The sliced Wasserstein, nearest-neighbour and self-similarity losses (issue 11) ------------

SHALLOW = {'relu1_1': 1.0, 'relu2_1': 1.0}  # The random test network stops after block 2.


def _issue11_config(*overrides):
  """`small_config` with the nearest-neighbour loss's layers within the random network's."""
  config = small_config(*overrides)
  config.losses.nearest_neighbor.layers = {'relu1_1': 1.0, 'relu1_2': 1.0, 'relu2_1': 1.0}
  return config


def test_new_losses_are_named_entries_and_terms():
  config = nst_jax.default_config()
  config.losses.gram.weight = 0.0
  config.losses.sliced.weight = 1.0
  config.losses.nearest_neighbor.weight = 2.0
  config.losses.self_similarity.weight = 3.0
  built = terms.terms_from_config(config)
  assert set(built) == {'content', 'sliced', 'nearest_neighbor', 'self_similarity'}
  assert built == terms.terms_from_config(config)  # Equal settings, equal terms: one program.
  assert hash(tuple(built.items())) == hash(tuple(terms.terms_from_config(config).items()))
  # The entry's options are the builder's arguments, its defaults the builder's own.
  assert built['sliced'] == losses.sliced_term(config.losses.sliced.layers)
  assert built['nearest_neighbor'] == losses.nearest_neighbor_term(
    config.losses.nearest_neighbor.layers
  )._replace(weight=2.0)
  assert built['sliced'].stochastic and built['self_similarity'].stochastic
  assert built['nearest_neighbor'].layers == tuple(config.losses.nearest_neighbor.layers)
  assert built['nearest_neighbor'].refresh is None and built['nearest_neighbor'].style_views == ()
  config.losses.sliced.fixed_directions = True
  config.losses.nearest_neighbor.rematch_every = 10
  config.losses.nearest_neighbor.augment = 'rotations'
  built = terms.terms_from_config(config)
  assert not built['sliced'].stochastic
  assert built['nearest_neighbor'].refresh_every == 10
  assert built['nearest_neighbor'].style_views == ('identity', 'rot90', 'rot180', 'rot270')
  assert built['self_similarity'] == losses.self_similarity_term(
    config.losses.self_similarity.layers
  )._replace(weight=3.0)
  for name in ('sliced', 'nearest_neighbor', 'self_similarity'):
    with pytest.raises(ValueError, match='built-in'):
      nst_jax.unregister_loss(name)


def test_sliced_seed_sets_the_fixed_directions():
  config = nst_jax.default_config()
  config.losses.sliced.fixed_directions = True
  first = terms.build_loss('sliced', config.losses.sliced)
  config.losses.sliced.seed = 1
  assert terms.build_loss('sliced', config.losses.sliced) != first
  config.seed = 5  # The run's seed is not the directions'.
  config.losses.sliced.seed = 0
  assert terms.build_loss('sliced', config.losses.sliced) == first


def test_sliced_target_pads_each_style_and_blends_by_weight():
  rng = np.random.default_rng(0)
  content = {'relu1_1': jnp.asarray(rng.random((4, 4, 3)), jnp.float32)}
  wide = {'relu1_1': jnp.asarray(rng.random((2, 5, 3)), jnp.float32)}
  square = {'relu1_1': jnp.asarray(rng.random((5, 5, 3)), jnp.float32)}
  term = losses.sliced_term({'relu1_1': 1.0})
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
  fixed = losses.sliced_term({'relu1_1': 1.0}, num_directions=8, fixed_directions=True)
  target = fixed.target(content, [wide], [1.0])['relu1_1']
  assert target.quantiles.shape == (8, 16)  # Sorted at the output's 16 positions.


def test_nearest_neighbor_blend_needs_equal_weights():
  rng = np.random.default_rng(0)
  make = lambda: {  # noqa: E731
    'image': jnp.zeros((8, 8, 3)),
    'relu1_1': jnp.asarray(rng.random((8, 8, 3)), jnp.float32),
  }
  term = losses.nearest_neighbor_term({'relu1_1': 1.0}, stride=2)
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


# Each loss in place of the Gram loss (or, for self-similarity, of the content loss), with the
# small config's layers; `ISSUE11_LOSS[name]` is the term's name.
ISSUE11_CONFIGS = {
  'sliced': (
    'losses.gram.weight=0',
    'losses.sliced.weight=1e-2',
    "losses.sliced.layers={'relu1_1': 0.5, 'relu2_1': 0.5}",
    'losses.sliced.num_directions=8',
  ),
  'sliced_fixed': (
    'losses.gram.weight=0',
    'losses.sliced.weight=1e-2',
    "losses.sliced.layers={'relu1_1': 0.5, 'relu2_1': 0.5}",
    'losses.sliced.num_directions=8',
    'losses.sliced.fixed_directions=true',
  ),
  'nearest_neighbor': (
    'losses.gram.weight=0',
    'losses.nearest_neighbor.weight=1e-2',
    'losses.nearest_neighbor.rematch_every=2',
    'losses.nearest_neighbor.augment=rotations',
    'losses.nearest_neighbor.block_size=7',
  ),
  # From noise: at the content its gradient is rounding noise, and Adam's first steps move each
  # pixel by the learning rate whatever the size of its gradient, so the runs would part.
  'self_similarity': (
    'losses.content.weight=0',
    'losses.gram.weight=1e-2',
    'losses.self_similarity.weight=1',
    "losses.self_similarity.layers={'relu2_1': 1.0}",
    'losses.self_similarity.num_samples=16',
    'init.kind=noise',
  ),
}


@pytest.mark.parametrize('name', ISSUE11_CONFIGS)
def test_vmapped_equals_pair_by_pair_and_sharded_equals_unsharded(random_network, name):
  """Four pairs (styles of two aspect ratios, one blend): vmapped on one device, pair by pair,
  and sharded over four devices give the same images."""
  contents, styles = small_pairs()
  contents = np.concatenate([contents, contents[::-1]])
  weights = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], np.float32)
  config = _issue11_config(
    'schedule.num_steps=4',
    'schedule.chunk_size=2',
    'devices.pair_group_size=4',
    *ISSUE11_CONFIGS[name],
  )
  vmapped = _run(random_network, config, contents, styles, style_weights=weights)
  config.devices.pair_group_size = 1
  by_pair = _run(random_network, config, contents, styles, style_weights=weights)
  config.devices.count, config.devices.pair_group_size = 4, 0
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
  config = _issue11_config('schedule.num_steps=3', 'schedule.chunk_size=3', *ISSUE11_CONFIGS[name])
  a, b = _run(random_network, config), _run(random_network, config)
  np.testing.assert_array_equal(a.images, b.images)
  config.seed = 1
  c = _run(random_network, config)
  assert not np.allclose(a.history.total, c.history.total, rtol=1e-6)


def test_styles_of_different_sizes_in_one_batch_need_the_same_count(random_network):
  """Padded targets let styles of different aspect ratios share a batch; a blend of two styles
  next to a single style cannot, and says so."""
  config = _issue11_config(
    'schedule.num_steps=1', 'schedule.chunk_size=1', *ISSUE11_CONFIGS['sliced']
  )
  weights = np.array([[1, 0], [1, 1]], np.float32)
  with pytest.raises(nst_jax.ConfigError, match="loss term 'sliced'.*differ in shape"):
    _run(random_network, config, style_weights=weights)


# Each loss alone, with its own default layers; the term is named after the loss.
REAL = {
  'sliced': ('sliced', ()),
  'sliced_fixed': ('sliced', ('losses.sliced.fixed_directions=true',)),
  'nearest_neighbor': (
    'nearest_neighbor',
    ('losses.nearest_neighbor.rematch_every=4', 'losses.nearest_neighbor.augment=rotations'),
  ),
  'self_similarity': ('self_similarity', ('init.kind=noise',)),
}


@pytest.mark.slow
@pytest.mark.parametrize('name', REAL)
def test_each_loss_decreases_in_a_real_run(vgg19_params, astronaut_64, name):
  """64 px, the real weights, Adam: the term alone falls over 12 steps."""
  loss, overrides = REAL[name]
  config = nst_jax.default_config()
  config.image_size = 64
  config.schedule.num_steps, config.schedule.chunk_size = 12, 4
  config.optim.name = 'adam'
  config.devices.count = 1
  config.losses.content.weight = config.losses.gram.weight = 0.0
  config.losses[loss].weight = 1.0
  for override in overrides:
    config_lib.apply_override(config, override)
  style = np.asarray(astronaut_64[::-1, ::-1, ::-1])  # Another image: flipped, channels swapped.
  network = (nst_jax.VGG19(), vgg19_params)
  result = nst_jax.stylize(astronaut_64[None], [style], config, network=network)
  assert set(result.history.terms) == {loss}
  values = result.history.terms[loss][:, 0]
  assert values[-1] < 0.8 * values[0], values
  assert np.isfinite(result.images).all()
