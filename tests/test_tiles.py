"""Tests for nst_jax.run.tiles: tiled objectives equal whole-image ones with exact margins (one
window or many, any offsets, with guides), stay within the stated bound with smaller margins, and
name the terms that cannot be tiled."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from small import small_config, small_pairs

import nst_jax
from nst_jax.core import objective, resample, terms, vgg
from nst_jax.core.losses import sums
from nst_jax.run import targets as targets_lib
from nst_jax.run import tiles


def _weights(style_loss: str) -> dict[str, float]:
  return {'content': 1.0, style_loss: 1e-3, 'tv': 0.1}


def _config(style_loss: str, *overrides: str):
  """`small_config` with `style_loss` (on the small config's layers) in place of the Gram loss,
  and a TV term: the terms and weights of `_weights(style_loss)`."""
  config = small_config(*overrides)
  config.losses.gram.weight = 0.0
  for name, weight in _weights(style_loss).items():
    config.losses[name].weight = weight
  config.losses[style_loss].layers = {'relu1_1': 0.5, 'relu2_1': 0.5}
  return config


def _objective(model, config):
  chosen = terms.terms_from_config(config)
  unweighted = tuple((name, term._replace(weight=1.0)) for name, term in chosen.items())
  return objective.Objective(model, unweighted)


def _targets(obj, params, content, style):
  features = jax.jit(obj.features)
  one = lambda x: jax.tree.map(lambda a: a[0], features(params, x[None]))  # noqa: E731
  return targets_lib.compute_targets(dict(obj.terms), one(content), [one(style)], [1.0])


def _value_and_grad(obj, params, image, targets, weights, key=None):
  f = jax.value_and_grad(lambda x, p, t, k: obj(p, x, t, weights, k)[0])
  return jax.jit(f)(image, params, targets, key)


def _inputs(shape=(48, 40)):
  rng = np.random.default_rng(0)
  image, content = (jnp.asarray(rng.uniform(size=(*shape, 3)), jnp.float32) for _ in range(2))
  style = jnp.asarray(rng.uniform(size=(36, 44, 3)), jnp.float32)
  return image, content, style


def _relative(a, b):
  return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


# One window covering the image, or 16 windows.
@pytest.mark.parametrize(
  ('style_loss', 'tile_size'), [('gram', 64), ('gram', 24), ('gaussian', 24)]
)
def test_exact_margins_give_the_untiled_value_and_gradient(random_network, style_loss, tile_size):
  model, params = random_network
  config = _config(style_loss)
  weights = _weights(style_loss)
  base = _objective(model, config)
  assert {name for name, _ in base.terms} == set(weights)
  image, content, style = _inputs()
  value, grad = _value_and_grad(
    base, params, image, _targets(base, params, content, style), weights
  )
  tiling = tiles.make_tiling(tile_size, -1, base.layers)
  assert tiling.exact and tiling.windows((48, 40)) == (1 if tile_size == 64 else 16)
  tiled = tiles.tile_objective(base, tiling)
  targets = _targets(tiled, params, content, style)
  for seed in range(2):
    t_value, t_grad = _value_and_grad(tiled, params, image, targets, weights, jax.random.key(seed))
    np.testing.assert_allclose(t_value, value, rtol=1e-5)
    assert _relative(t_grad, grad) < tiles.EXACT_ERROR_BOUND


class _GuidedLoss:
  """The mean of guide * image over the pixels: a sum over positions, so tileable."""

  def __call__(self, features, target):
    return jnp.mean(features['guides']['mask'] * features['image'])

  def tile_sums(self, features, masks, target):
    mask = masks['image'][..., None]
    values = features['guides']['mask'] * features['image'] * mask
    return sums.ErrorSums(jnp.sum(values), jnp.sum(mask) * features['image'].shape[-1])

  def from_tile_sums(self, totals, target):
    return sums.mean_from_sums(totals)


def test_guides_are_cut_into_windows_with_the_image(random_network):
  model, params = random_network
  guided = nst_jax.LossTerm(_GuidedLoss())
  assert terms.tileable(guided)
  chosen = {**terms.terms_from_config(_config('gram')), 'guided': guided}
  base = objective.Objective(model, tuple((n, t._replace(weight=1.0)) for n, t in chosen.items()))
  weights = {**_weights('gram'), 'guided': 10.0}
  image, content, style = _inputs()
  mask = jnp.asarray(np.random.default_rng(1).uniform(size=(48, 40, 1)), jnp.float32)
  guides = {'mask': mask}

  def value_and_grad(obj, targets, key=None):
    f = jax.value_and_grad(lambda x, t, k: obj(params, x, t, weights, k, guides)[0])
    return jax.jit(f)(image, targets, key)

  value, grad = value_and_grad(base, _targets(base, params, content, style))
  tiled = tiles.tile_objective(base, tiles.make_tiling(24, -1, base.layers))
  t_value, t_grad = value_and_grad(
    tiled, _targets(tiled, params, content, style), jax.random.key(0)
  )
  np.testing.assert_allclose(t_value, value, rtol=1e-5)
  assert _relative(t_grad, grad) < tiles.EXACT_ERROR_BOUND
  np.testing.assert_allclose(
    tiled.values(params, image, _targets(tiled, params, content, style), guides=guides)['guided'],
    jnp.mean(mask * image),
    rtol=1e-5,
  )


def test_windows_cores_partition_the_image_at_every_layer():
  layers = ('relu1_1', 'relu2_1', 'relu3_1')
  shape = (75, 61)
  for margin in (-1, 8):
    tiling = tiles.make_tiling(48, margin, layers)
    assert tiling.windows(shape) > 4
    for seed in range(2):
      offsets = tiles.core_offsets(tiling, shape, jax.random.key(seed))
      windows = tiles.window_grid(tiling, shape, offsets)
      size = tuple(tiling.axis(n)[0] for n in shape)
      count = {name: 0 for name in ('image', *layers)}
      for i in range(windows.start.shape[0]):
        window = jax.tree.map(lambda w, i=i: w[i], windows)
        assert np.all(np.asarray(window.start) % tiling.align == 0)
        for name, mask in tiles.core_masks(window, shape, size, list(count)).items():
          count[name] = count[name] + np.asarray(mask).sum()
      for name, total in count.items():
        stride = 1 if name == 'image' else vgg.layer_stride(name)
        rows, cols = (tiles.feature_rows(n, stride) for n in shape)
        assert total == rows * cols, (margin, name)


@pytest.mark.parametrize('optimizer', ['adam', 'lbfgs'])
def test_tiled_stylization_equals_untiled(random_network, optimizer):
  """Whole runs, L-BFGS's line search included, through the custom VJP: 4 windows of 32 px."""
  contents, styles = small_pairs()
  contents = np.asarray(resample.resize(contents, (64, 64)))
  config = small_config(
    'image_size=64', f'optim.name={optimizer}', 'schedule.num_steps=4', 'schedule.chunk_size=4'
  )
  whole = nst_jax.stylize(contents, styles, config, network=random_network)
  config.memory.tile_size = 32
  tiled = nst_jax.stylize(contents, styles, config, network=random_network)
  np.testing.assert_allclose(tiled.images, whole.images, atol=1e-4)
  np.testing.assert_allclose(tiled.history.total, whole.history.total, rtol=1e-4)


@pytest.mark.weights
@pytest.mark.slow
@pytest.mark.parametrize(
  ('style_loss', 'tile_size', 'margin'), [('gram', 128, 16), ('gaussian', 96, 32)]
)
def test_small_margins_stay_within_the_stated_bound(
  vgg19_params, astronaut_64, style_loss, tile_size, margin
):
  """The default layers through relu5_1 (exact margin 96 px) with a 16 or a 32 px margin."""
  size = 192
  image = jnp.asarray(resample.resize(astronaut_64, (size, size)))
  content = jnp.clip(image + 0.05 * jnp.sin(jnp.arange(size))[:, None, None], 0, 1)
  style = jnp.asarray(resample.resize(astronaut_64[::-1, :, ::-1], (size, size)))
  config = nst_jax.default_config()
  config.losses.gram.weight = 0.0
  config.losses[style_loss].weight = 5e-4 if style_loss == 'gram' else 50.0
  weights = {'content': 1.0, style_loss: config.losses[style_loss].weight}
  base = _objective(vgg.VGG19(), config)
  value, grad = _value_and_grad(
    base, vgg19_params, image, _targets(base, vgg19_params, content, style), weights
  )
  tiling = tiles.make_tiling(tile_size, margin, base.layers)
  assert not tiling.exact and tiling.windows((size, size)) >= 9
  tiled = tiles.tile_objective(base, tiling)
  assert tiled.stochastic  # Inexact: L-BFGS must not reuse last step's evaluation.
  targets = _targets(tiled, vgg19_params, content, style)
  _, t_grad = _value_and_grad(tiled, vgg19_params, image, targets, weights, jax.random.key(1))
  error = _relative(t_grad, grad)
  assert 0 < error <= tiles.gradient_error_bound(tiling), (margin, error)


def test_terms_that_are_not_sums_over_positions_are_named(random_network):
  contents, styles = small_pairs()
  mean = nst_jax.LossTerm(loss=lambda f, t: jnp.mean(f['relu1_1']), layers=('relu1_1',))
  gram = nst_jax.losses.gram_term({'relu1_1': 1.0})
  assert terms.tileable(gram)
  per_layer = terms.per_layer(lambda f, t, k: jnp.mean(f), {'relu1_1': 1.0})
  gram = gram._replace(loss=per_layer)  # A layer loss that is not a sum over positions.
  chosen = {**terms.terms_from_config(small_config()), 'gram': gram, 'brightness': mean}
  with pytest.raises(nst_jax.ConfigError, match=r"'gram' \(<lambda>\).*'brightness'.*tile_size"):
    nst_jax.stylize(
      contents, styles, small_config('memory.tile_size=32'), terms=chosen, network=random_network
    )
  with pytest.raises(nst_jax.ConfigError, match=r"'sliced' \(SlicedLayerLoss\)"):
    tiles.check_tileable({'sliced': nst_jax.losses.sliced_term({'relu1_1': 1.0})})


def test_tile_size_must_leave_a_core():
  with pytest.raises(nst_jax.ConfigError, match='tile_size=200.*at least 208'):
    tiles.make_tiling(200, -1, ('relu5_1',))
  assert tiles.exact_margin(('relu4_2',)) == 48 and tiles.exact_margin(('relu5_1',)) == 96
