"""Writes files the way `torch.save` does, without torch, for tests of the weights readers.

A `pickle.Pickler` subclass writes tensors as torch does, as calls of
`torch._utils._rebuild_tensor_v2` on storages pickled by persistent id, with stand-in `torch`
modules put in `sys.modules` only while it pickles (so that the globals get torch's names).
"""

import collections
import contextlib
import io
import pickle
import struct
import sys
import types
import zipfile

import ml_dtypes
import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
SYS_INFO = {
  'protocol_version': PROTOCOL_VERSION,
  'little_endian': True,
  'type_sizes': {'short': 2, 'int': 4, 'long': 8},
}
STORAGE_NAMES = {
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
STORAGE_TYPES = {name: type(name, (), {'__module__': 'torch'}) for name in STORAGE_NAMES.values()}


def _rebuild_tensor_v2(*args):
  raise AssertionError('only ever pickled')


_rebuild_tensor_v2.__module__ = 'torch._utils'


@contextlib.contextmanager
def torch_names():
  """Puts stand-in `torch` and `torch._utils` modules in `sys.modules` for the duration."""
  torch = types.ModuleType('torch')
  vars(torch).update(STORAGE_TYPES)
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


class Storage:
  """A storage: the 1-D `data`, pickled by reference under `key` (a legacy `view` optional)."""

  def __init__(self, key, data, view=None):
    self.key, self.data, self.view = key, np.ascontiguousarray(data).ravel(), view


class Tensor:
  """Pickles as torch pickles a tensor; `offset`, `size` and `stride` count elements."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

  def __reduce__(self):
    args = (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())
    return _rebuild_tensor_v2, args


def tensor(array, key):
  """A contiguous tensor holding `array`, with a storage of its own."""
  array = np.asarray(array)
  stride = tuple(s // array.itemsize for s in np.ascontiguousarray(array).strides)
  return Tensor(Storage(key, array), 0, array.shape, stride)


class TorchPickler(pickle.Pickler):
  """Pickles storages by persistent id, as `torch.save` does, and collects them by key."""

  def __init__(self, file, legacy):
    super().__init__(file, protocol=2)
    self.legacy = legacy
    self.storages = {}

  def persistent_id(self, obj):
    if not isinstance(obj, Storage):
      return None
    self.storages[obj.key] = obj
    storage_type = STORAGE_TYPES[STORAGE_NAMES[obj.data.dtype]]
    pid = ('storage', storage_type, obj.key, 'cpu', obj.data.size)
    return pid + (obj.view,) if self.legacy else pid


def raw_bytes(data, byteorder='little'):
  words = data.view(f'u{data.dtype.itemsize}')
  return words.astype(words.dtype.newbyteorder('<' if byteorder == 'little' else '>')).tobytes()


def legacy_file(obj, sys_info=SYS_INFO):
  """`obj` as `torch.save(obj, f, _use_new_zipfile_serialization=False)` writes it."""
  f = io.BytesIO()
  with torch_names():
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, sys_info):
      pickle.dump(header, f, protocol=2)
    pickler = TorchPickler(f, legacy=True)
    pickler.dump(obj)
  keys = sorted(pickler.storages)
  pickle.dump(keys, f, protocol=2)
  for key in keys:
    data = pickler.storages[key].data
    f.write(struct.pack('<q', data.size) + raw_bytes(data))
  return f.getvalue()


def zip_file(obj, archive='archive', byteorder='little'):
  """`obj` as `torch.save(obj, f)` writes it, in a folder named `archive` of a zip archive."""
  pickled = io.BytesIO()
  with torch_names():
    pickler = TorchPickler(pickled, legacy=False)
    pickler.dump(obj)
  f = io.BytesIO()
  with zipfile.ZipFile(f, 'w') as z:
    z.writestr(f'{archive}/data.pkl', pickled.getvalue())
    z.writestr(f'{archive}/byteorder', byteorder)
    for key in sorted(pickler.storages):
      z.writestr(f'{archive}/data/{key}', raw_bytes(pickler.storages[key].data, byteorder))
    z.writestr(f'{archive}/version', '3\n')
  return f.getvalue()
