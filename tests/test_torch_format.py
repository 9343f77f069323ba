"""Tests for nst_jax.torch_format, on files written here the way `torch.save` writes them.

torch is not needed: a `pickle.Pickler` subclass writes tensors as torch does, as calls of
`torch._utils._rebuild_tensor_v2` on storages pickled by persistent id, with stand-in `torch`
modules put in `sys.modules` only while it pickles (so that the globals get torch's names).
"""

import collections
import contextlib
import io
import os
import pickle
import struct
import sys
import types
import zipfile

import ml_dtypes
import numpy as np
import pytest

from nst_jax.errors import WeightsError
from nst_jax.torch_format import load_torch_file

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
_SYS_INFO = {
  'protocol_version': _PROTOCOL_VERSION,
  'little_endian': True,
  'type_sizes': {'short': 2, 'int': 4, 'long': 8},
}
_STORAGE_NAMES = {
  np.dtype(np.float64): 'DoubleStorage',
  np.dtype(np.float32): 'FloatStorage',
  np.dtype(np.float16): 'HalfStorage',
  np.dtype(ml_dtypes.bfloat16): 'BFloat16Storage',
  np.dtype(np.int64): 'LongStorage',
  np.dtype(np.int32): 'IntStorage',
  np.dtype(np.int16): 'ShortStorage',
  np.dtype(np.int8): 'CharStorage',
  np.dtype(np.uint8): 'ByteStorage',
  np.dtype(np.bool_): 'BoolStorage',
}
# Stand-ins for torch's storage types and tensor rebuild function, pickled under torch's names.
_STORAGE_TYPES = {name: type(name, (), {'__module__': 'torch'}) for name in _STORAGE_NAMES.values()}


def _rebuild_tensor_v2(*args):
  raise AssertionError('only ever pickled')


_rebuild_tensor_v2.__module__ = 'torch._utils'


@contextlib.contextmanager
def _torch_names():
  """Puts stand-in `torch` and `torch._utils` modules in `sys.modules` for the duration."""
  torch = types.ModuleType('torch')
  vars(torch).update(_STORAGE_TYPES)
  torch._utils = types.ModuleType('torch._utils')
  torch._utils._rebuild_tensor_v2 = _rebuild_tensor_v2
  stand_ins = {'torch': torch, 'torch._utils': torch._utils}
  saved = {name: sys.modules.get(name) for name in stand_ins}
  sys.modules.update(stand_ins)
  try:
    yield
  finally:
    for name, module in saved.items():
      if module is None:
        del sys.modules[name]
      else:
        sys.modules[name] = module


class _Storage:
  """A storage: the 1-D `data`, pickled by reference under `key` (a legacy `view` optional)."""

  def __init__(self, key, data, view=None):
    self.key, self.data, self.view = key, np.ascontiguousarray(data).ravel(), view


class _Tensor:
  """Pickles as torch pickles a tensor; `offset`, `size` and `stride` count elements."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

  def __reduce__(self):
    args = (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())
    return _rebuild_tensor_v2, args


def _tensor(array, key):
  """A contiguous tensor holding `array`, with a storage of its own."""
  array = np.asarray(array)
  stride = tuple(s // array.itemsize for s in np.ascontiguousarray(array).strides)
  return _Tensor(_Storage(key, array), 0, array.shape, stride)


class _TorchPickler(pickle.Pickler):
  """Pickles storages by persistent id, as `torch.save` does, and collects them by key."""

  def __init__(self, file, legacy):
    super().__init__(file, protocol=2)
    self.legacy = legacy
    self.storages = {}

  def persistent_id(self, obj):
    if not isinstance(obj, _Storage):
      return None
    self.storages[obj.key] = obj
    storage_type = _STORAGE_TYPES[_STORAGE_NAMES[obj.data.dtype]]
    pid = ('storage', storage_type, obj.key, 'cpu', obj.data.size)
    return pid + (obj.view,) if self.legacy else pid


def _raw(data, byteorder='little'):
  words = data.view(f'u{data.dtype.itemsize}')
  return words.astype(words.dtype.newbyteorder('<' if byteorder == 'little' else '>')).tobytes()


def _legacy_file(obj, sys_info=_SYS_INFO):
  """`obj` as `torch.save(obj, f, _use_new_zipfile_serialization=False)` writes it."""
  f = io.BytesIO()
  with _torch_names():
    for header in (_MAGIC_NUMBER, _PROTOCOL_VERSION, sys_info):
      pickle.dump(header, f, protocol=2)
    pickler = _TorchPickler(f, legacy=True)
    pickler.dump(obj)
  keys = sorted(pickler.storages)
  pickle.dump(keys, f, protocol=2)
  for key in keys:
    data = pickler.storages[key].data
    f.write(struct.pack('<q', data.size) + _raw(data))
  return f.getvalue()


def _zip_file(obj, archive='archive', byteorder='little'):
  """`obj` as `torch.save(obj, f)` writes it, in a folder named `archive` of a zip archive."""
  pickled = io.BytesIO()
  with _torch_names():
    pickler = _TorchPickler(pickled, legacy=False)
    pickler.dump(obj)
  f = io.BytesIO()
  with zipfile.ZipFile(f, 'w') as z:
    z.writestr(f'{archive}/data.pkl', pickled.getvalue())
    z.writestr(f'{archive}/byteorder', byteorder)
    for key in sorted(pickler.storages):
      z.writestr(f'{archive}/data/{key}', _raw(pickler.storages[key].data, byteorder))
    z.writestr(f'{archive}/version', '3\n')
  return f.getvalue()


_WRITERS = {'legacy': _legacy_file, 'zip': _zip_file}
formats = pytest.mark.parametrize('fmt', sorted(_WRITERS))


def _load_fails(data, *fragments):
  """Checks that loading `data` raises a one-line `WeightsError` containing `fragments`."""
  with pytest.raises(WeightsError) as info:
    load_torch_file(data)
  message = str(info.value)
  assert '\n' not in message
  for fragment in ('weights file <bytes>: ', *fragments):
    assert fragment in message
  return message


def _vgg_like_state():
  rng = np.random.default_rng(0)
  base = np.arange(40, dtype=np.float32)
  shared = _Storage('shared', base)
  return collections.OrderedDict(
    conv_W_q=_tensor(rng.integers(0, 256, (4, 3, 3, 3), dtype=np.uint8), '0'),
    conv_W_table=_tensor(rng.standard_normal(256).astype(np.float32), '1'),
    conv_b=_tensor(rng.standard_normal(4).astype(np.float32), '2'),
    steps=_tensor(np.array([7, -1, 2**40], np.int64), '3'),
    # Views of one storage: the transpose of a (4, 7) block from element 2, and a slice.
    transposed=_Tensor(shared, 2, (7, 4), (1, 7)),
    sliced=_Tensor(shared, 5, (10,), (1,)),
    scalar=_Tensor(shared, 39, (), ()),
  )


@formats
def test_round_trip(fmt):
  state = _vgg_like_state()
  arrays = load_torch_file(_WRITERS[fmt](state))

  assert list(arrays) == list(state)
  for key in ('conv_W_q', 'conv_W_table', 'conv_b', 'steps'):
    expected = state[key].storage.data.reshape(state[key].size)
    assert arrays[key].dtype == expected.dtype
    np.testing.assert_array_equal(arrays[key], expected)
  base = np.arange(40, dtype=np.float32)
  np.testing.assert_array_equal(arrays['transposed'], base[2:30].reshape(4, 7).T)
  np.testing.assert_array_equal(arrays['sliced'], base[5:15])
  assert arrays['scalar'].shape == () and arrays['scalar'] == 39
  for array in arrays.values():
    assert array.flags.c_contiguous and array.flags.writeable


@formats
@pytest.mark.parametrize('dtype', sorted(_STORAGE_NAMES, key=str))
def test_every_dtype(fmt, dtype):
  values = np.array([[0, 1, 0], [1, 1, 0]]).astype(dtype)
  arrays = load_torch_file(
    _WRITERS[fmt]({'x': _tensor(values, 'k'), 'e': _tensor(values[:0], 'e')})
  )
  assert arrays['x'].dtype == dtype
  np.testing.assert_array_equal(arrays['x'], values)
  assert arrays['e'].shape == (0, 3) and arrays['e'].dtype == dtype


def test_zip_folder_name_and_big_endian_data():
  values = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
  data = _zip_file({'w': _tensor(values, '0')}, archive='my_weights', byteorder='big')
  np.testing.assert_array_equal(load_torch_file(data)['w'], values)


def test_legacy_storage_view():
  root = np.arange(10, dtype=np.int32)
  view = _Storage('root', root, view=('view', 3, 5))  # Elements 3..7 of the root.
  arrays = load_torch_file(_legacy_file({'v': _Tensor(view, 1, (2, 2), (2, 1))}))
  np.testing.assert_array_equal(arrays['v'], [[4, 5], [6, 7]])


def test_reads_paths_and_bytes(tmp_path):
  path = tmp_path / 'w.pth'
  path.write_bytes(_zip_file({'b': _tensor(np.ones(3, np.float32), '0')}))
  for source in (str(path), path, path.read_bytes()):
    np.testing.assert_array_equal(load_torch_file(source)['b'], np.ones(3))


class _Call:
  """Pickles as a call of `func` on `args`: what a malicious file uses to run code."""

  def __init__(self, func, *args):
    self.func, self.args = func, args

  def __reduce__(self):
    return self.func, self.args


def _payloads(marker):
  """Calls that would create `marker`, keyed by the global they name in a protocol-2 pickle."""
  code = f'open({str(marker)!r}, "w").close()'
  return {
    'posix.system': _Call(os.system, f'touch {marker}'),
    '__builtin__.eval': _Call(eval, code),  # Protocol 2 writes `builtins` as `__builtin__`.
    '__builtin__.exec': _Call(exec, code),
  }


@formats
@pytest.mark.parametrize('global_name', ['posix.system', '__builtin__.eval', '__builtin__.exec'])
def test_refuses_code_execution(fmt, global_name, tmp_path):
  marker = tmp_path / 'pwned'
  payload = _payloads(marker)[global_name]
  state = {'w': _tensor(np.zeros(2, np.float32), '0'), 'evil': payload}
  for obj in (state, payload, {'w': _Tensor(payload, 0, (1,), (1,))}):
    message = _load_fails(_WRITERS[fmt](obj), f"refusing to load global '{global_name}'")
    assert message.endswith('(not a tensor or dict)')
  assert not marker.exists()


@pytest.mark.parametrize('protocol', [0, 4, 5])
def test_refuses_code_in_any_pickle_protocol(protocol, tmp_path):
  marker = tmp_path / 'pwned'
  f = io.BytesIO()
  with zipfile.ZipFile(f, 'w') as z:
    z.writestr(
      'archive/data.pkl', pickle.dumps(_Call(eval, f'open({str(marker)!r}, "w")'), protocol)
    )
  _load_fails(f.getvalue(), 'builtin', ".eval' (not a tensor or dict)")
  assert not marker.exists()


def test_refuses_code_in_legacy_header(tmp_path):
  marker = tmp_path / 'pwned'
  data = _legacy_file({}, sys_info=_payloads(marker)['posix.system'])
  _load_fails(data, "refusing to load global 'posix.system'")
  assert not marker.exists()


def test_refusal_names_the_file(tmp_path):
  path = tmp_path / 'x.bin'
  path.write_bytes(_legacy_file({'evil': _Call(os.system, 'true')}))
  with pytest.raises(WeightsError, match=rf"^weights file {path}: refusing .*'posix\.system'"):
    load_torch_file(path)


@formats
def test_truncated_file(fmt):
  data = _WRITERS[fmt](_vgg_like_state())
  for length in (1, 3, 20, 60, len(data) // 2, len(data) - 300, len(data) - 1):
    _load_fails(data[:length])


@pytest.mark.parametrize(
  'data, problem',
  [
    (b'', 'not a torch.save file'),
    (b'hello, world', 'not a torch.save file'),
    (np.random.default_rng(0).bytes(1000), ''),
    (b'\x80\x02' + bytes(range(256)), 'truncated or corrupt header'),
    (b'PK\x03\x04' + bytes(100), 'truncated or corrupt zip archive'),
    (pickle.dumps({'w': [1.0, 2.0]}, protocol=2), 'not a torch.save file (bad magic number)'),
  ],
  ids=['empty', 'text', 'random', 'bad-pickle', 'bad-zip', 'plain-pickle'],
)
def test_garbage(data, problem):
  _load_fails(data, problem)


def test_zip_without_data_pkl():
  f = io.BytesIO()
  with zipfile.ZipFile(f, 'w') as z:
    z.writestr('archive/weights.npy', b'1234')
  _load_fails(f.getvalue(), 'not a torch.save file')


def test_missing_file(tmp_path):
  with pytest.raises(WeightsError, match='cannot read it'):
    load_torch_file(tmp_path / 'absent.pth')


def test_short_legacy_storage():
  data = _legacy_file({'w': _tensor(np.arange(4, dtype=np.float32), '0')})
  count_at = len(data) - 4 * 4 - 8  # The storage: its element count, then 4 float32s.
  assert data[count_at:] == struct.pack('<q', 4) + np.arange(4, dtype='<f4').tobytes()
  _load_fails(data[:-1], "truncated (storage '0' is short of data)")
  claims_5 = data[:count_at] + struct.pack('<q', 5) + data[count_at + 8 :]
  _load_fails(claims_5, "storage '0' holds 5 elements, expected 4")


def test_short_zip_storage():
  f = io.BytesIO()
  good = zipfile.ZipFile(io.BytesIO(_zip_file({'w': _tensor(np.arange(4.0), '0')})))
  with zipfile.ZipFile(f, 'w') as z:
    for name in good.namelist():
      z.writestr(name, good.read(name)[:-1] if name.endswith('data/0') else good.read(name))
  _load_fails(f.getvalue(), "'archive/data/0' does not hold 32 bytes")


@formats
def test_tensor_past_its_storage(fmt):
  storage = _Storage('0', np.arange(6, dtype=np.float32))
  for offset, size, stride in [(0, (7,), (1,)), (5, (2,), (1,)), (0, (2, 3), (3, 2)), (6, (), ())]:
    data = _WRITERS[fmt]({'w': _Tensor(storage, offset, size, stride)})
    _load_fails(data, "tensor 'w' extends past the end of its storage")


@formats
@pytest.mark.parametrize(
  'obj, problem',
  [
    ([1, 2], 'holds a list, not a dict of tensors'),
    (_tensor(np.ones(2), '0'), 'holds a tensor, not a dict of tensors'),
    ({'w': 1.5}, "entry 'w' is a float, not a tensor"),
    ({'w': _Storage('0', np.ones(2))}, "entry 'w' is a bare storage, not a tensor"),
    ({3: _tensor(np.ones(2), '0')}, 'has a key of type int, not str'),
    ({'w': _Tensor(_Storage('0', np.ones(2)), -1, (1,), (1,))}, 'malformed tensor'),
  ],
)
def test_not_a_dict_of_tensors(fmt, obj, problem):
  _load_fails(_WRITERS[fmt](obj), problem)


def test_unknown_protocol_version():
  f = io.BytesIO()
  for header in (_MAGIC_NUMBER, 1002, _SYS_INFO, {}, []):
    pickle.dump(header, f, protocol=2)
  _load_fails(f.getvalue(), 'unsupported torch.save protocol version 1002')


@formats
def test_empty_dict(fmt):
  assert load_torch_file(_WRITERS[fmt](collections.OrderedDict())) == {}
