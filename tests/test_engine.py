"""Tests for nst_jax.run.engine: stylize with the real weights: schedules, blends, seeds, inits,
colour control, guides, the objective's terms, optimizers and errors."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from small import small_config, small_pairs

import nst_jax
from nst_jax.core import color, colorspaces, resample, terms
from nst_jax.errors import ConfigError, ImageError, NonFiniteLossError
from nst_jax.lab import evaluation
from nst_jax.run import config as config_lib
from nst_jax.run import engine, inits

pytestmark = pytest.mark.weights
CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'


@pytest.fixture(scope='module')
def network(vgg19_params):
  return nst_jax.VGG19(pooling='avg'), vgg19_params


@pytest.fixture(scope='module')
def images():
  return small_pairs()


@pytest.mark.slow
@pytest.mark.parametrize('optimizer', ['lbfgs', 'adam'])
def test_loss_decreases_on_a_real_photo(vgg19_params, astronaut_64, optimizer):
  """Real weights, the default layers, a 64 px photograph and a generated style."""
  y, x = np.mgrid[0:64, 0:64] / 63.0
  style = np.stack([np.sin(12 * x + 3 * y) ** 2, 0.5 + 0.5 * np.cos(9 * y), 0.3 * x], -1)
  config = nst_jax.default_config()
  config.image_size = 64
  config.schedule.num_steps, config.schedule.chunk_size = 20, 10
  config.optim.name, config.optim.learning_rate = optimizer, 0.05
  config.init.kind = 'noise'
  result = nst_jax.stylize(
    astronaut_64[None], [style.astype(np.float32)], config, network=(nst_jax.VGG19(), vgg19_params)
  )
  total = result.history.total[:, 0]
  assert np.isfinite(total).all()
  # Normalised terms start near their weights' sum (about 2) and settle well above zero.
  assert total[-1] < 0.5 * total[0]
  steps_down = np.mean(np.diff(total) <= 1e-6 * total[:-1])
  assert steps_down >= (0.99 if optimizer == 'lbfgs' else 0.8), total


def test_multiscale_ema_and_output_size(network, images):
  contents, styles = images
  config = small_config(
    'image_size=40',
    'schedule.num_scales=2',
    'schedule.scale_ratio=2.0',
    'schedule.coarse_steps=2',
    'optim.ema_decay=0.5',
  )
  sizes = []
  result = nst_jax.stylize(
    contents[:, :, :24],
    styles,
    config,
    network=network,
    callback=lambda p: sizes.append(p.images.shape[1:3]),
  )
  assert sizes[0] == (20, 15) and sizes[-1] == (40, 30)
  assert result.images.shape == (2, 40, 30, 3)
  assert list(np.bincount(result.history.scale)) == [2, 6]
  assert 0.0 <= result.images.min() and result.images.max() <= 1.0


def test_style_weights_blend_and_select(network, images):
  contents, styles = images
  config = small_config('schedule.num_steps=2', 'schedule.chunk_size=2')
  first = nst_jax.stylize(contents[:1], styles[:1], config, network=network)
  selected = nst_jax.stylize(contents[:1], styles, config, style_weights=[1, 0], network=network)
  np.testing.assert_allclose(first.images, selected.images, atol=1e-6)
  blended = nst_jax.stylize(contents[:1], styles, config, style_weights=[1, 1], network=network)
  assert not np.allclose(first.images, blended.images, atol=1e-4)


def test_same_seed_same_result_and_noise_init(network, images):
  contents, styles = images
  config = small_config('init.kind=noise', 'schedule.num_steps=2', 'schedule.chunk_size=2')
  a = nst_jax.stylize(contents, styles, config, network=network)
  b = nst_jax.stylize(contents, styles, config, network=network)
  np.testing.assert_array_equal(a.images, b.images)
  config.seed = 1
  c = nst_jax.stylize(contents, styles, config, network=network)
  assert not np.allclose(a.images, c.images)


@pytest.mark.parametrize('init', ['style_colors', 'image'])
def test_other_inits(network, images, init):
  contents, styles = images
  config = small_config(
    f'init.kind={init}', 'schedule.num_steps=1', 'schedule.chunk_size=1', 'optim.learning_rate=1e-6'
  )
  start = np.full_like(contents, 0.25)
  result = nst_jax.stylize(contents, styles, config, init_images=start, network=network)
  if init == 'image':
    np.testing.assert_allclose(result.images, 0.25, atol=1e-3)
  else:  # Noise recoloured to the style's mean colour.
    np.testing.assert_allclose(result.images[1].mean((0, 1)), styles[1].mean((0, 1)), atol=0.05)


@pytest.mark.parametrize('mode', ['preserve_colors', 'match_style', 'luminance_only'])
def test_color_control(network, images, mode):
  contents, styles = images
  config = small_config(f'color_control={mode}', 'schedule.num_steps=2', 'schedule.chunk_size=2')
  result = nst_jax.stylize(contents, styles, config, network=network)
  assert result.images.shape == contents.shape
  if mode != 'match_style':  # The content's chroma (I, Q of YIQ) is kept.
    yiq = np.asarray(jax.vmap(colorspaces.rgb_to_yiq)(result.images))
    want = np.asarray(jax.vmap(colorspaces.rgb_to_yiq)(contents))
    inside = (result.images > 0.01).all(-1) & (result.images < 0.99).all(-1)
    np.testing.assert_allclose(yiq[..., 1:][inside], want[..., 1:][inside], atol=2e-3)


def test_nnst_color_control_puts_the_content_chroma_in_the_style_palette(network, images):
  contents, styles = images
  steps = ('schedule.num_steps=2', 'schedule.chunk_size=2')
  config = small_config('color_control=nnst', *steps)
  result = nst_jax.stylize(contents, styles, config, network=network)
  plain = nst_jax.stylize(contents, styles, small_config(*steps), network=network)
  for i in range(2):  # The palette of the style as it was used: fitted to 32 px.
    style = resample.resize(styles[i], resample.fit_size(styles[i].shape[:2], 32))
    expected = color.nnst_colors(plain.images[i], contents[i], color.style_palette([style]))
    np.testing.assert_allclose(result.images[i], expected, atol=1e-5)


def _guided_term() -> nst_jax.LossTerm:
  """Pulls the pixels where the pair's guide is 1 towards the mean guide of its style images;
  its target records what it was given."""

  def target(content, styles, blend):
    style = sum(w * s['guides']['mask'].mean() for s, w in zip(styles, blend, strict=True))
    return {'content': content['guides']['mask'].mean(), 'style': style}

  def loss(features, target):
    mask = features['guides']['mask'][..., 0]
    return jnp.mean(mask * jnp.square(features['image'].mean(-1) - target['style']))

  return nst_jax.LossTerm(loss, target=target)


def test_guides_reach_every_terms_target_and_loss(network, images):
  contents, styles = images
  mask = np.zeros((2, 32, 32, 1), np.float32)
  mask[:, :, 16:] = 1.0  # The right half.
  guides = {'mask': mask}
  style_guides = [
    {'mask': np.full((*s.shape[:2], 1), v, np.float32)}
    for s, v in zip(styles, (0.2, 0.8), strict=True)
  ]
  config = small_config('schedule.num_scales=2', 'schedule.scale_ratio=2.0', 'schedule.num_steps=2')
  options = dict(guides=guides, style_guides=style_guides, network=network)
  guided = {'guided': _guided_term()}
  prepared = engine.prepare(contents, styles, config, terms=guided, **options)
  assert prepared.guides_at(0)['mask'].shape == (2, 16, 16, 1)
  assert prepared.guides_at(1)['mask'].shape == (2, 32, 32, 1)
  for scale in (0, 1):
    targets = prepared.targets(scale)['guided']
    np.testing.assert_allclose(targets['content'], [0.5, 0.5], atol=1e-6)
    # Pair i uses style i; its guide went through the same resizing as the style.
    np.testing.assert_allclose(targets['style'], [0.2, 0.8], rtol=1e-5)
  config = small_config(
    'schedule.num_steps=10', 'schedule.chunk_size=5', 'optim.learning_rate=0.05'
  )
  result = nst_jax.stylize(contents, styles, config, terms=guided, **options)
  # The left half has no gradient: it stays; the right half moves towards its style's guide.
  np.testing.assert_allclose(result.images[:, :, :16], contents[:, :, :16], atol=1e-6)
  before = np.abs(contents.mean(-1)[:, :, 16:].mean((1, 2)) - [0.2, 0.8])
  after = np.abs(result.images.mean(-1)[:, :, 16:].mean((1, 2)) - [0.2, 0.8])
  assert (after < 0.5 * before).all(), (before, after)
  # Guides that no term reads change nothing.
  plain = small_config('schedule.num_steps=2', 'schedule.chunk_size=2')
  with_guides = nst_jax.stylize(contents, styles, plain, guides=guides, network=network)
  without = nst_jax.stylize(contents, styles, plain, network=network)
  np.testing.assert_array_equal(with_guides.images, without.images)


def test_bad_guides_are_clear_errors(network, images):
  contents, styles = images
  config = small_config()
  bad = {'mask': np.zeros((2, 16, 16, 1))}
  with pytest.raises(ImageError, match=r"guides\['mask'\] must be of shape \(2, 32, 32"):
    nst_jax.stylize(contents, styles, config, guides=bad, network=network)
  with pytest.raises(ImageError, match=r"guides\['mask'\] must be floats"):
    integers = {'mask': np.zeros((2, 32, 32, 1), np.uint8)}
    nst_jax.stylize(contents, styles, config, guides=integers, network=network)
  with pytest.raises(ImageError, match='guides must be a mapping'):
    nst_jax.stylize(contents, styles, config, guides=np.zeros((2, 32, 32, 1)), network=network)
  one = [{'mask': np.zeros((40, 40, 1))}]
  with pytest.raises(ConfigError, match='style_guides has 1 entries for 2 styles'):
    nst_jax.stylize(contents, styles, config, style_guides=one, network=network)
  with pytest.raises(ImageError, match=r"style_guides\[1\]\['mask'\] must be of shape"):
    nst_jax.stylize(contents, styles, config, style_guides=one * 2, network=network)


@pytest.mark.parametrize('optimizer', ['lbfgs', 'adam'])
def test_normalized_terms_divide_each_pairs_weights_by_its_reference_values(
  network, images, optimizer
):
  """Normalised losses: each pair's objective is sum_k w_k L_k / ref_k (objective module)."""
  contents, styles = images
  config = small_config(
    'normalize_losses=true',
    f'optim.name={optimizer}',
    'init.kind=noise',
    'schedule.num_steps=6',
    'optim.learning_rate=0.02',
  )
  chosen = {'content': 1.0, 'gram': 10.0, 'tv': 0.1}
  for name, weight in chosen.items():
    config.losses[name].weight = weight
  prepared = engine.prepare(contents, styles, config, network=network)
  state = prepared.start_state(0)
  weights = {name: np.asarray(w) for name, w in prepared.pair_weights(0, state).items()}
  evaluate = prepared.program.evaluate
  keys = prepared.program.step_keys(state)
  ones = jax.tree.map(np.ones_like, weights)
  stretched = np.stack([np.asarray(resample.resize(s, (32, 32))) for s in styles])
  at_content = evaluate(prepared.params, contents, state.targets, ones, keys, state.guides)[1]
  at_style = evaluate(prepared.params, stretched, state.targets, ones, keys, state.guides)[1]
  assert set(weights) == set(chosen)
  for name, weight in chosen.items():
    reference = np.maximum(at_content[name], at_style[name])
    np.testing.assert_allclose(weights[name], weight / reference, rtol=1e-4)
  result = prepared.run()
  total = result.history.total
  assert (total[-1] < 0.9 * total[0]).all()
  assert np.mean(np.diff(total, axis=0) <= 1e-4) >= 0.8


def test_custom_terms_from_python_and_by_name(network, images):
  contents, styles = images
  brightness = nst_jax.LossTerm(lambda f, t: (f['image'].mean() - 0.9) ** 2, weight=1e7)
  chosen = terms.terms_from_config(small_config())
  chosen['brightness'] = brightness
  del chosen['content']
  steps = ('schedule.num_steps=6', 'optim.learning_rate=0.05')
  config = small_config(*steps)
  result = nst_jax.stylize(contents, styles, config, terms=chosen, network=network)
  assert set(result.history.terms) == {'gram', 'brightness'}
  assert result.images.mean() > contents.mean() + 0.1

  nst_jax.register_loss('brightness', lambda: brightness)
  try:
    config = small_config(*steps)
    config.losses.brightness.weight = 1e7
    by_name = nst_jax.stylize(contents, styles, config, network=network)
    assert set(by_name.history.terms) == {'content', 'gram', 'brightness'}
  finally:
    nst_jax.unregister_loss('brightness')


def test_any_optax_optimizer(network, images):
  contents, styles = images
  result = nst_jax.stylize(
    contents,
    styles,
    small_config('schedule.num_steps=2', 'schedule.chunk_size=2'),
    optimizer=optax.sgd(1e-3),
    network=network,
  )
  assert result.history.total.shape == (2, 2)


def test_non_finite_loss_names_the_term_and_keeps_the_last_finite_image(network, images):
  contents, styles = images
  # Finite until the image gets brighter than it started, then NaN.
  start = float(contents[0].mean())
  explode = nst_jax.LossTerm(
    lambda f, t: jnp.where(f['image'].mean() > start + 1e-3, jnp.nan, -f['image'].mean()),
    weight=1.0,
  )
  config = small_config(
    'schedule.num_steps=30',
    'schedule.chunk_size=10',
    'optim.learning_rate=0.01',
    'devices.count=1',
  )
  with pytest.raises(NonFiniteLossError, match="'explode'") as error:
    nst_jax.stylize(contents[:1], styles[:1], config, terms={'explode': explode}, network=network)
  assert np.isfinite(error.value.images).all()
  assert error.value.images.mean() <= start + 1e-3
  history = error.value.history  # Up to the chunk that went non-finite, for the run record.
  assert history.term_steps[-1] == history.pair_steps.sum() and history.term_steps[-1] % 10 == 0
  assert not np.isfinite(history.terms['explode'][-1]).all()


def _set(config, field: str, value):
  """Sets the dotted `field` of `config` to `value`, adding it where it is new."""
  *parents, name = field.split('.')
  node = config
  for parent in parents:
    node = node[parent]
  with node.unlocked():
    node[name] = value


@pytest.mark.parametrize(
  'overrides, match',
  [
    ({'optim.name': 'sgdx'}, 'config.optim.name'),
    ({'schedule.num_steps': 0}, 'config.schedule.num_steps'),
    ({'image_size': -5}, 'config.image_size'),
    ({'losses.content.layers': {'relu9_1': 1.0}}, 'relu9_1'),
    ({'losses.content.weight': 0.0, 'losses.gram.weight': 0.0}, 'every weight is zero'),
    ({'losses.content.weight': -1.0}, r'config\.losses\.content\.weight=-1\.0 must be'),
    ({'losses.contnet': {'weight': 1.0}}, "no loss is registered as 'contnet'"),
    ({'losses.gram.kind': 'gaussian'}, "config.losses.gram has no option 'kind'"),
    ({'devices.count': 3}, 'cannot be split'),
    ({'devices.count': 64}, 'available'),
    ({'devices.pair_group_size': -1}, 'config.devices.pair_group_size'),
    # Fields of the flat config of nst_jax 0.1 name their new place.
    ({'num_steps': 10}, 'config.num_steps was renamed: use config.schedule.num_steps'),
    ({'style_loss': 'nearest'}, 'config.style_loss was renamed: use config.losses.NAME.weight'),
    ({'content_loss': 'cosine'}, 'config.content_loss was renamed'),
    ({'losses.sliced.num_directions': 0}, 'config.losses.sliced: num_directions=0'),
    ({'losses.self_similarity.num_samples': 1}, 'config.losses.self_similarity: num_samples=1'),
    ({'losses.nearest_neighbor.stride': 0}, 'config.losses.nearest_neighbor: stride=0'),
    (
      {'losses.nearest_neighbor.rematch_every': -2},
      'config.losses.nearest_neighbor: rematch_every=-2',
    ),
    ({'losses.nearest_neighbor.content_mix': 1.5}, 'config.losses.nearest_neighbor: content_mix'),
    ({'losses.nearest_neighbor.augment': 'mirror'}, 'config.losses.nearest_neighbor: augment'),
    ({'losses.nearest_neighbor.block_size': 0}, 'config.losses.nearest_neighbor: block_size=0'),
    (
      {'losses.nearest_neighbor.layers': {'relu1_1': -1.0}},
      'config.losses.nearest_neighbor: layers has a negative weight',
    ),
    ({'losses.tv.norm': 'l3'}, 'config.losses.tv'),
    ({'color_control': 'nnst2'}, 'config.color_control'),
  ],
)
def test_bad_settings_are_clear_errors_before_compiling(network, images, overrides, match):
  contents, styles = images
  config = small_config()
  for field, value in overrides.items():
    _set(config, field, value)
  with pytest.raises(ConfigError, match=match):
    nst_jax.stylize(contents, styles, config, network=network)


def test_bad_inputs(network, images):
  contents, styles = images
  config = small_config()
  with pytest.raises(ConfigError, match='style weights'):
    nst_jax.stylize(contents, styles, config, style_weights=[1, 1, 1], network=network)
  with pytest.raises(ImageError, match='contents'):
    nst_jax.stylize(contents[0], styles, config, network=network)
  config.losses.content.layers = {'relu5_1': 1.0}
  config.image_size = 16
  with pytest.raises(ImageError, match='too small'):
    nst_jax.stylize(contents[:, :, :4], styles, config, network=network)


@pytest.mark.slow
def test_the_seed_recipe_stylizes_from_noise(vgg19_params, astronaut_64):
  """configs/seed.py (normalised terms, noise start, TV) on a real photograph at 64 px: the
  content and the style terms both fall by a stated factor from the noise, and the result is
  balanced (most of the way from the photograph's style to the painting's, content kept)."""
  y, x = np.mgrid[0:64, 0:64] / 63.0
  style = np.stack([np.sin(12 * x + 3 * y) ** 2, 0.5 + 0.5 * np.cos(9 * y), 0.3 * x], -1)
  style = style.astype(np.float32)
  config = config_lib.from_file(CONFIGS / 'seed.py')
  config.image_size = 64
  config.schedule.num_steps, config.schedule.chunk_size = 200, 100
  network = (nst_jax.VGG19(), vgg19_params)
  result = nst_jax.stylize(astronaut_64[None], [style], config, network=network)
  evaluator = evaluation.Evaluator(astronaut_64[None], [style], network=network)
  noise = inits.initial_images(astronaut_64[None], None, None, (64, 64), config)
  start, end = evaluator(noise, as_saved=False).terms, evaluator(result.images).terms
  assert end['content'][0] < start['content'][0] / 2.5
  assert end['gram'][0] < start['gram'][0] / 2
  balance = evaluator.balance(result.images)
  assert balance['style'][0] < 0.5 and balance['content'][0] < 0.5, balance
