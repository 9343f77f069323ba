"""Tests for nst_jax.core.vgg: layer names and shapes, truncation, pooling, preprocessing, and the
real weights against an independent NumPy implementation of VGG19."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax.core import vgg

BGR_MEAN = np.array([103.939, 116.779, 123.68])


@pytest.fixture(scope='module')
def random_variables():
  return vgg.VGG19().init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), ('pool5',))


def test_layer_names_follow_the_literature():
  assert len(vgg.LAYER_NAMES) == 16 * 2 + 5
  assert vgg.LAYER_NAMES[:5] == ('conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1')
  assert vgg.LAYER_NAMES[-3:] == ('conv5_4', 'relu5_4', 'pool5')
  assert len(vgg.CONV_NAMES) == 16


def test_every_layer_has_the_expected_shape(random_variables):
  images = jnp.full((2, 37, 64, 3), 0.5)
  out = vgg.VGG19().apply(random_variables, images, vgg.LAYER_NAMES)
  assert list(out) == list(vgg.LAYER_NAMES)
  for name, activation in out.items():
    stride = vgg.layer_stride(name)
    channels = vgg.BLOCK_CHANNELS[int(name[4]) - 1][0]  # conv1_1, relu1_1, pool1: block 1.
    # Each pooling floors the size: 37 -> 18 -> 9 -> 4 -> 2 -> 1.
    height = 37
    for _ in range(int(np.log2(stride))):
      height //= 2
    assert activation.shape == (2, height, 64 // stride, channels), name


def test_computes_only_up_to_the_deepest_layer(random_variables):
  images = jnp.zeros((1, 32, 32, 3))
  model = vgg.VGG19()
  jaxpr = jax.make_jaxpr(lambda x: model.apply(random_variables, x, ('relu2_1',)))(images)
  assert str(jaxpr).count('conv_general_dilated') == 3
  out = model.apply(random_variables, images, ('relu2_1', 'conv1_1'))
  assert set(out) == {'relu2_1', 'conv1_1'}


def test_unknown_layer_is_a_value_error_listing_valid_names(random_variables):
  with pytest.raises(ValueError, match=r"'relu9_9'.*conv1_1.*pool5"):
    vgg.VGG19().apply(random_variables, jnp.zeros((1, 32, 32, 3)), ('relu9_9',))


def test_max_and_avg_pooling():
  x = jnp.arange(2 * 5 * 4 * 3, dtype=jnp.float32).reshape(2, 5, 4, 3)
  ref_max = np.asarray(x)[:, :4].reshape(2, 2, 2, 2, 2, 3).max(axis=(2, 4))
  ref_avg = np.asarray(x)[:, :4].reshape(2, 2, 2, 2, 2, 3).mean(axis=(2, 4))
  np.testing.assert_allclose(vgg.pool2x2(x, 'max'), ref_max)
  np.testing.assert_allclose(vgg.pool2x2(x, 'avg'), ref_avg)
  with pytest.raises(ValueError, match='pooling'):
    vgg.pool2x2(x, 'min')


def test_pooling_choice_changes_deeper_layers_only(random_variables):
  images = jax.random.uniform(jax.random.key(1), (1, 16, 16, 3))
  a = vgg.VGG19(pooling='max').apply(random_variables, images, ('relu1_2', 'relu2_1'))
  b = vgg.VGG19(pooling='avg').apply(random_variables, images, ('relu1_2', 'relu2_1'))
  np.testing.assert_array_equal(a['relu1_2'], b['relu1_2'])
  assert not np.allclose(a['relu2_1'], b['relu2_1'])


def test_preprocessing_modes():
  rgb = jnp.array([[0.2, 0.5, 1.0]])
  np.testing.assert_allclose(
    vgg.preprocess(rgb, 'caffe'), [[255.0 - 103.939, 127.5 - 116.779, 51.0 - 123.68]], rtol=1e-6
  )
  np.testing.assert_allclose(
    vgg.preprocess(rgb, 'torch'),
    [[(0.2 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (1.0 - 0.406) / 0.225]],
    rtol=1e-6,
  )
  with pytest.raises(ValueError, match='preprocessing'):
    vgg.preprocess(rgb, 'tf')


def test_preprocessing_is_applied_inside_the_module(random_variables):
  images = jax.random.uniform(jax.random.key(2), (1, 8, 8, 3))
  caffe = vgg.VGG19(preprocessing='caffe').apply(random_variables, images, ('conv1_1',))
  torch = vgg.VGG19(preprocessing='torch').apply(random_variables, images, ('conv1_1',))
  kernel = np.asarray(random_variables['params']['conv1_1']['kernel'])
  bias = np.asarray(random_variables['params']['conv1_1']['bias'])
  x = np.asarray(images[0])[..., ::-1] * 255.0 - BGR_MEAN
  np.testing.assert_allclose(
    caffe['conv1_1'][0], _np_conv3x3(x, kernel, bias), rtol=1e-4, atol=1e-3
  )
  assert not np.allclose(caffe['conv1_1'], torch['conv1_1'])


def _np_conv3x3(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
  """3x3 'same' convolution (cross-correlation) of (H, W, Cin) by HWIO `kernel`, in float64."""
  h, w, _ = x.shape
  padded = np.pad(x.astype(np.float64), ((1, 1), (1, 1), (0, 0)))
  out = np.zeros((h, w, kernel.shape[-1]))
  for dy in range(3):
    for dx in range(3):
      out += padded[dy : dy + h, dx : dx + w] @ kernel[dy, dx].astype(np.float64)
  return out + bias


def _np_vgg19_relus(image: np.ndarray, params) -> dict[str, np.ndarray]:
  """Every relu activation of VGG19 for one (H, W, 3) RGB image in [0, 1], in plain NumPy."""
  x = image[..., ::-1].astype(np.float64) * 255.0 - BGR_MEAN
  out = {}
  for block, channels in enumerate(vgg.BLOCK_CHANNELS, start=1):
    for i in range(1, len(channels) + 1):
      layer = params['params'][f'conv{block}_{i}']
      x = np.maximum(_np_conv3x3(x, np.asarray(layer['kernel']), np.asarray(layer['bias'])), 0.0)
      out[f'relu{block}_{i}'] = x
    h, w, c = x.shape
    x = x[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
  return out


@pytest.mark.weights
def test_real_weights_match_an_independent_numpy_vgg19(vgg19_params, astronaut_64):
  reference = _np_vgg19_relus(astronaut_64, vgg19_params)
  ours = vgg.VGG19().apply(vgg19_params, astronaut_64[None], tuple(reference))
  for name, expected in reference.items():
    actual = np.asarray(ours[name][0], np.float64)
    relative = np.linalg.norm(actual - expected) / np.linalg.norm(expected)
    assert relative < 1e-4, (name, relative)
    assert np.abs(actual - expected).max() < 1e-4 * np.abs(expected).max(), name


@pytest.mark.weights
def test_real_weights_see_the_photograph(vgg19_params, astronaut_64):
  """Pretrained features respond to content: a photo and its shuffled pixels differ deeply."""
  rng = np.random.default_rng(0)
  shuffled = rng.permutation(astronaut_64.reshape(-1, 3)).reshape(astronaut_64.shape)
  out = vgg.VGG19().apply(vgg19_params, np.stack([astronaut_64, shuffled]), ('relu4_2',))
  a, b = np.asarray(out['relu4_2'])
  assert np.linalg.norm(a - b) > 0.5 * np.linalg.norm(a)


def test_hand_written_conv_vjp_matches_autodiff_of_lax_conv():
  """`conv3x3`'s custom VJP against autodiff of the plain convolution, and finite differences.

  A `jax.custom_vjp` defines reverse mode only, so forward mode fails through it;
  `VGG19(fast_conv_grad=False)` uses plain convolutions, which allow it.
  """
  from jax.test_util import check_grads

  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 5, 6, 3)))
  kernel = jnp.asarray(rng.normal(size=(3, 3, 3, 4)))
  g = jnp.asarray(rng.normal(size=(2, 5, 6, 4)))

  def plain(x, k):
    return jax.lax.conv_general_dilated(
      x, k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
    )

  ours = jax.vjp(vgg.conv3x3, x, kernel)[1](g)
  theirs = jax.vjp(plain, x, kernel)[1](g)
  for a, b in zip(ours, theirs, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  with jax.enable_x64(True):
    check_grads(
      vgg.conv3x3, (x.astype(jnp.float64), kernel.astype(jnp.float64)), order=1, modes=('rev',)
    )
  with pytest.raises(TypeError):  # Forward mode is not defined for a custom VJP.
    jax.jvp(lambda x: vgg.conv3x3(x, kernel), (x,), (x,))


def test_plain_convs_allow_forward_mode(random_variables):
  images = jnp.full((1, 16, 16, 3), 0.5)
  tangent = jnp.ones_like(images)
  fast, plain = vgg.VGG19(), vgg.VGG19(fast_conv_grad=False)
  np.testing.assert_allclose(
    fast.apply(random_variables, images, ('relu2_1',))['relu2_1'],
    plain.apply(random_variables, images, ('relu2_1',))['relu2_1'],
    rtol=1e-5,
  )
  _, out = jax.jvp(
    lambda x: plain.apply(random_variables, x, ('relu2_1',))['relu2_1'], (images,), (tangent,)
  )
  assert out.shape == (1, 8, 8, 128) and np.isfinite(out).all()


DEEP = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu4_2', 'relu5_1')


def _weighted_sum(model, variables, images):
  """A scalar reading every layer of `DEEP`, with a different weight per layer."""
  out = model.apply(variables, images, DEEP)
  return sum((k + 1.0) * jnp.mean(jnp.square(out[name])) for k, name in enumerate(DEEP))


def test_remat_gives_the_same_values_and_gradients(random_variables):
  images = jax.random.uniform(jax.random.key(4), (2, 48, 40, 3))

  def value_and_grad(remat):
    model = vgg.VGG19(remat=remat)
    f = jax.value_and_grad(lambda p, x: _weighted_sum(model, p, x), argnums=1)
    return jax.jit(f)(random_variables, images)

  value, grad = value_and_grad('none')
  for remat in vgg.REMAT_POLICIES[1:]:
    r_value, r_grad = value_and_grad(remat)
    np.testing.assert_allclose(r_value, value, rtol=1e-6, err_msg=remat)
    np.testing.assert_allclose(r_grad, grad, rtol=1e-5, atol=1e-6 * np.abs(grad).max())


def test_remat_lowers_the_compiled_peak_memory():
  """XLA's own buffer assignment: the recomputation is not merged back into the forward pass."""
  layers = ('relu1_1', 'relu2_1', 'relu3_1')
  variables = vgg.VGG19().init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), layers)
  temp = {}
  for remat in ('none', 'blocks_1_3'):
    model = vgg.VGG19(remat=remat)

    def loss(p, x, m=model):
      return sum(jnp.sum(a**2) for a in m.apply(p, x, layers).values())

    compiled = jax.jit(jax.grad(loss, argnums=1)).lower(variables, jnp.zeros((1, 128, 128, 3)))
    temp[remat] = compiled.compile().memory_analysis().temp_size_in_bytes
  assert temp['blocks_1_3'] < 0.85 * temp['none'], temp


def test_unknown_remat_policy_is_a_config_error(random_variables):
  with pytest.raises(ValueError, match="remat policy 'some'"):
    vgg.VGG19(remat='some').apply(random_variables, jnp.zeros((1, 8, 8, 3)), ('relu1_1',))


def test_receptive_radius():
  # Two 3x3 convs see 2 px, pool1 adds 1; at stride 2, two convs add 4, and so on.
  assert [vgg.receptive_radius(n) for n in ('conv1_1', 'relu1_2', 'pool1', 'relu2_2')] == [
    1,
    2,
    3,
    7,
  ]
  assert vgg.receptive_radius('relu5_1') == 85
