"""Tests for padded batches (nst_jax.run.buckets, nst_jax.core.padding): contents of different
sizes share a batch, and each result is what the pair gives alone."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from small import random_network, small_config

import nst_jax
from nst_jax.app import cli, session
from nst_jax.core import objective, padding
from nst_jax.core.terms import terms_from_config
from nst_jax.errors import ConfigError
from nst_jax.io import images
from nst_jax.run import buckets, engine
from nst_jax.run.targets import compute_targets


def _image(height, width, seed):
  return np.random.default_rng(seed).uniform(size=(height, width, 3)).astype(np.float32)


def test_padding_changes_no_loss_nor_gradient():
  """Every sum-based loss (content, Gram, Gaussian, TV) and its gradient, on an image padded with
  noise into a larger canvas, equal those of the image alone; the padding gets no gradient."""
  config = small_config('losses.gaussian.weight=1', 'losses.tv.weight=1')
  config.losses.gaussian.layers = {'relu2_1': 1.0}
  model, params = random_network()
  base = objective.Objective(model, tuple(terms_from_config(config).items()))
  padded = objective.Objective(model, tuple(padding.padded_terms(dict(base.terms)).items()))
  own, canvas = (13, 19), (16, 24)  # Odd sides: pooling drops a row and a column.
  image, content, style = _image(*own, 0), _image(*own, 1), _image(30, 30, 2)
  frames = buckets.Frames(((own, canvas),))
  noise = jnp.asarray(_image(*canvas, 3))

  def pad(x):
    return noise.at[: own[0], : own[1]].set(x)

  def targets_of(obj, x, guides):
    features = jax.tree.map(lambda f: f[0], obj.features(params, x[None], guides))
    style_features = jax.tree.map(lambda f: f[0], obj.features(params, style[None]))
    return compute_targets(dict(obj.terms), features, [style_features], [1.0])

  one = jax.tree.map(lambda g: g[0], frames.guides({}, 0))  # The first pair's region.
  weights = {name: 1.0 for name, _ in base.terms}

  @jax.jit
  def both(image):
    alone = targets_of(base, content, None)
    targets = targets_of(padded, pad(content), jax.tree.map(lambda g: g[None], one))
    grad = jax.value_and_grad(base, argnums=1, has_aux=True)
    padded_grad = jax.value_and_grad(
      lambda x: padded(params, x, targets, weights, guides=one), has_aux=True
    )
    return grad(params, image, alone, weights), padded_grad(pad(image))

  ((total, values), grad), ((padded_total, padded_values), padded_grad) = both(image)
  for name, value in values.items():
    np.testing.assert_allclose(padded_values[name], value, rtol=1e-4, err_msg=name)
  np.testing.assert_allclose(padded_total, total, rtol=1e-4)
  scale = np.abs(grad).max()
  np.testing.assert_allclose(padded_grad[: own[0], : own[1]], grad, rtol=0, atol=1e-4 * scale)
  grad = padded_grad
  assert not grad[own[0] :].any() and not grad[:, own[1] :].any()


def test_vgg_region_activations_equal_the_image_alone():
  model, params = random_network()
  image = _image(19, 26, 4)
  canvas = jnp.asarray(_image(23, 29, 5)).at[:19, :26].set(image)
  alone = model.apply(params, image[None], ('relu2_1',))['relu2_1'][0]
  padded = model.apply(params, canvas[None], ('relu2_1',), valid=jnp.array([[19, 26]]))
  np.testing.assert_allclose(padded['relu2_1'][0, :9, :13], alone, atol=1e-5)
  # Without `valid` the program has no masking in it (it is today's; checked against main's).
  plain = str(jax.make_jaxpr(lambda x: model.apply(params, x, ('relu2_1',)))(image[None]))
  assert 'iota' not in plain and 'mul' not in plain


@pytest.mark.slow
@pytest.mark.parametrize('optimizer, scales, checked', [('adam', 2, (0, 1)), ('lbfgs', 1, (0,))])
def test_contents_one_pixel_apart_give_the_images_of_each_run_alone(optimizer, scales, checked):
  """One batch of 30x32 and 31x32 contents (over two scales with Adam), normalised losses and TV:
  each result, at its own size, equals the pair run alone within float rounding (for L-BFGS, the
  padded one's)."""
  config = small_config(
    'schedule.num_steps=3', f'schedule.num_scales={scales}', f'optim.name={optimizer}'
  )
  config.normalize_losses, config.losses.tv.weight = True, 0.3
  network = random_network()
  contents, styles = [_image(30, 32, 6), _image(31, 32, 7)], [_image(40, 36, 8)]
  together = nst_jax.stylize(contents, styles, config, network=network).images
  assert [x.shape for x in together] == [(30, 32, 3), (31, 32, 3)]
  for b in checked:
    content = contents[b]
    alone = nst_jax.stylize(content[None], styles, config, network=network).images[0]
    np.testing.assert_allclose(together[b], alone, atol=2e-5)
    assert np.abs(together[b] - content).max() > 0.01  # It moved.


def test_unbucketable_inputs_give_one_clear_error():
  contents = [_image(24, 32, 0), _image(31, 32, 1)]
  config = small_config()
  with pytest.raises(ConfigError, match=r'sizes 24x32, 31x32 cannot share one batch: padding '):
    nst_jax.stylize(contents, [_image(32, 32, 2)], config, network=random_network())
  config.losses.sliced.weight = 1.0
  with pytest.raises(ConfigError, match=r"sizes 30x32, 31x32 .*loss term\(s\) 'sliced' cannot"):
    nst_jax.stylize([_image(30, 32, 0), contents[1]], [_image(32, 32, 2)], config)


def test_the_grid_of_two_sizes_runs_as_one_batch(tmp_path, monkeypatch, caplog):
  """The demo's case from the script's side: 170x256 and 171x256 contents, 2 styles: one batch
  of 4 pairs, each result saved at its own size. The stylization is faked (no compiling)."""
  monkeypatch.setattr(cli.weights, 'load_vgg19', lambda *args, **kwargs: None)
  paths = []
  for i, (h, w) in enumerate([(170, 256), (171, 256)]):
    paths.append(str(tmp_path / f'c{i}.png'))
    images.save_image(paths[-1], _image(h, w, i))
  styles = [str(tmp_path / f's{i}.png') for i in range(2)]
  for path in styles:
    images.save_image(path, _image(40, 40, 9))
  calls = []

  def fake(contents, styles_, config_, **kwargs):
    calls.append([c.shape for c in contents])
    count = len(contents)
    history = nst_jax.History(
      total=np.zeros((1, count)),
      evaluations=np.ones((1, count)),
      scale=np.zeros(1, int),
      term_steps=np.ones(1),
      terms={},
      term_totals=np.ones((1, count)),
      pair_steps=np.ones((1, count)),
    )
    return nst_jax.StylizeResult([np.asarray(c) * 0.5 for c in contents], history)

  monkeypatch.setattr(engine, 'stylize', fake)
  config = small_config()
  config.image_size = 256
  with caplog.at_level(logging.INFO):
    cli.style_grid_files(config, contents=paths, styles=styles, output=str(tmp_path / 'g.png'))
  assert calls == [[(170, 256, 3)] * 2 + [(171, 256, 3)] * 2]
  assert any('4 pair(s) in 1 batch(es)' in r.getMessage() for r in caplog.records)
  cell = images.load_image(tmp_path / 'grid_cells' / 'c0__s1.png')
  assert cell.shape == (170, 256, 3)
  # A term that cannot leave padding out splits them, and the log says why.
  caplog.clear()
  config.losses.nearest_neighbor.weight = 1.0
  with caplog.at_level(logging.INFO):
    assert len(session.group_by_size([(170, 256), (171, 256)], 0, config)) == 2
  assert "loss term(s) 'nearest_neighbor' cannot leave padding out" in caplog.text
