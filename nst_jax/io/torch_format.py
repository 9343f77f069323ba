"""A small, safe reader of `torch.save` files that does not need torch.

`torch.save` writes a pickle whose tensors refer to raw storages kept outside the pickle, in one of
two containers:

* the zip format (torch >= 1.6): `<archive>/data.pkl` holds the pickle, whose persistent ids are
  `('storage', storage_type, key, location, numel)`; the raw bytes of storage `key` are the record
  `<archive>/data/<key>`, in the byte order named by `<archive>/byteorder` (little if absent);
* the legacy format: the pickles of a magic number, a protocol version and a dict of system
  information, then the main pickle, whose persistent ids are
  `('storage', storage_type, root_key, location, numel, view_metadata)`, then a pickle of the list
  of storage keys, then for each key in that order an 8-byte little-endian element count followed
  by the raw little-endian bytes.

In both, a tensor is pickled as a call of `torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...)` and `storage_type` is a global such as `torch.FloatStorage`.

Unpickling runs whatever callables a file names, so this reader resolves only an explicit
allow-list of globals (`collections.OrderedDict`, the tensor rebuild functions and the storage
types), each mapped to a harmless stand-in defined here; any other global (`os.system`,
`builtins.eval`, ...) is refused with `WeightsError` before it can run. Each pickle's opcodes are
checked before it is run, so that a corrupt length or memo index cannot make the unpickler allocate
gigabytes. Tensors are rebuilt with NumPy after unpickling, with every offset, size and stride
checked against the storage.
"""

import collections
import io
import math
import os
import pickle
import pickletools
import struct
import sys
import zipfile
from typing import Any, NamedTuple

import ml_dtypes
import numpy as np

from nst_jax.errors import WeightsError

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001

# Storage types by the name torch pickles them under, with the element type of their data.
_STORAGE_DTYPES: dict[str, np.dtype] = {
  'DoubleStorage': np.dtype(np.float64),
  'FloatStorage': np.dtype(np.float32),
  'HalfStorage': np.dtype(np.float16),
  'BFloat16Storage': np.dtype(ml_dtypes.bfloat16),
  'LongStorage': np.dtype(np.int64),
  'IntStorage': np.dtype(np.int32),
  'ShortStorage': np.dtype(np.int16),
  'CharStorage': np.dtype(np.int8),
  'ByteStorage': np.dtype(np.uint8),
  'BoolStorage': np.dtype(np.bool_),
  'UntypedStorage': np.dtype(np.uint8),
}
# Modules the storage types may be named from: `torch.cuda` in files saved from a GPU by old
# torch versions, `torch.storage` for `UntypedStorage`.
_STORAGE_MODULES = frozenset({'torch', 'torch.cuda', 'torch.storage'})

# A tensor may hold more elements than its storage only by repeating them (zero or overlapping
# strides, as `expand` makes); such a tensor is materialised only up to this size.
_MAX_EXPANDED_BYTES = 1 << 30

# The stand-ins below are named tuples: a pickle can neither call them nor change them (BUILD
# fails on them), so what `_Unpickler` checked when it made one still holds when it is used.


class _StorageType(NamedTuple):
  """Stands in for a storage type global such as `torch.FloatStorage`."""

  name: str


class _StorageRef(NamedTuple):
  """A storage as a tensor sees it: `size` elements from `offset` of the root storage `key`."""

  key: str
  type_name: str
  offset: int
  size: int


class _TensorRef(NamedTuple):
  """A tensor still to be read: its storage, offset into it, size and stride (in elements)."""

  storage: _StorageRef
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]


def load_torch_file(source: str | os.PathLike | bytes) -> dict[str, np.ndarray]:
  """Reads a `torch.save`d (ordered) dict of tensors into NumPy arrays, keyed as in the file.

  Both the zip format of torch >= 1.6 and the legacy format are read; torch is not imported, and
  no code named in the file is run.

  Args:
    source: path of the file, or its contents as bytes.

  Returns:
    A dict with the file's keys, in the file's order, each mapped to a C-contiguous array of the
    tensor's shape and element type (`ml_dtypes.bfloat16` for bfloat16 tensors).

  Raises:
    WeightsError: the file cannot be read, is not a `torch.save` file, is truncated or corrupt,
      names a global other than a tensor or dict type, or holds something other than a dict of
      tensors. The message is one line naming the file.
  """
  if isinstance(source, (bytes, bytearray, memoryview)):
    name, data = '<bytes>', bytes(source)
  else:
    name = os.fspath(source)
    try:
      with open(name, 'rb') as f:
        data = f.read()
    except OSError as e:
      raise _error(name, f'cannot read it ({e.strerror or e})') from e
  if data[:4] == b'PK\x03\x04':
    obj, storages = _load_zip(data, name)
  elif data[:1] == b'\x80':
    obj, storages = _load_legacy(data, name)
  else:
    raise _error(name, 'not a torch.save file (neither a zip archive nor a pickle)')
  return _to_arrays(obj, storages, name)


def _error(name: str, problem: str) -> WeightsError:
  return WeightsError(f'weights file {name}: {problem}')


def _short(text: Any, limit: int = 80) -> str:
  """`text` as printable one-line text of at most about `limit` characters."""
  text = str(text)
  if not text.isprintable():
    text = ascii(text)[1:-1]
  return text if len(text) <= limit else text[: limit - 3] + '...'


class _Unpickler(pickle.Unpickler):
  """An unpickler that resolves only the globals a dict of tensors needs.

  With `storage_format` None (the legacy format's small header pickles) it resolves no global and
  no persistent id at all. With 'legacy' or 'zip' it also resolves `collections.OrderedDict`, the
  tensor rebuild functions and the storage types, and records in `roots` the type name and element
  count of each storage the pickle refers to.
  """

  def __init__(self, file: io.BytesIO, name: str, storage_format: str | None = None):
    # torch.load decodes Python 2 strings as UTF-8; do the same.
    super().__init__(file, encoding='utf-8')
    self._name = name
    self._format = storage_format
    self.roots: dict[str, tuple[str, int]] = {}

  def find_class(self, module: str, name: str) -> Any:
    if self._format is not None:
      if module == 'collections' and name == 'OrderedDict':
        return collections.OrderedDict
      if module == 'torch._utils':
        rebuild = {
          '_rebuild_tensor_v2': self._rebuild_tensor_v2,
          '_rebuild_tensor': self._rebuild_tensor,
          '_rebuild_parameter': self._rebuild_parameter,
        }.get(name)
        if rebuild is not None:
          return rebuild
      if module in _STORAGE_MODULES and name in _STORAGE_DTYPES:
        return _StorageType(name)
    raise _error(
      self._name, f"refusing to load global '{_short(f'{module}.{name}')}' (not a tensor or dict)"
    )

  def persistent_load(self, pid: Any) -> _StorageRef:
    if self._format is None:
      raise _error(self._name, 'unexpected storage reference in the file header')
    typename = pid[0] if isinstance(pid, tuple) and pid else None
    if isinstance(typename, bytes):
      typename = typename.decode('ascii', 'replace')
    if typename == 'module':
      raise _error(self._name, 'refusing to load a pickled torch.nn.Module (not a tensor or dict)')
    expected_len = 6 if self._format == 'legacy' else 5
    if typename != 'storage' or len(pid) != expected_len:
      raise _error(self._name, f'unknown persistent id {_short(repr(pid))}')
    storage_type, key, _, numel = pid[1:5]
    if type(storage_type) is not _StorageType or type(key) is not str or not _is_count(numel):
      raise _error(self._name, f'malformed storage reference {_short(repr(pid))}')
    root = (storage_type.name, numel)
    if self.roots.setdefault(key, root) != root:
      raise _error(self._name, f'storage {_short(key)!r} is referred to with different types')
    view = pid[5] if self._format == 'legacy' else None
    if view is None:
      return _StorageRef(key, storage_type.name, 0, numel)
    # A view of the root storage, written by torch < 0.4: (view_key, offset, size) in elements.
    if not (isinstance(view, tuple) and len(view) == 3 and all(map(_is_count, view[1:]))):
      raise _error(self._name, f'malformed storage view {_short(repr(view))}')
    _, offset, size = view
    if offset + size > numel:
      raise _error(self._name, f'storage view of {_short(key)!r} extends past its end')
    return _StorageRef(key, storage_type.name, offset, size)

  def _rebuild_tensor_v2(
    self,
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
  ) -> _TensorRef:
    del requires_grad, backward_hooks, metadata  # Autograd state; meaningless here.
    return self._rebuild_tensor(storage, storage_offset, size, stride)

  def _rebuild_tensor(
    self, storage: Any, storage_offset: Any, size: Any, stride: Any
  ) -> _TensorRef:
    if (
      type(storage) is not _StorageRef
      or not _is_count(storage_offset)
      or not isinstance(size, (tuple, list))
      or not isinstance(stride, (tuple, list))
      or len(size) != len(stride)
      or not all(map(_is_count, size))
      or not all(map(_is_count, stride))
    ):
      raise _error(self._name, 'malformed tensor (bad storage, offset, size or stride)')
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))

  def _rebuild_parameter(self, data: Any, requires_grad: Any, backward_hooks: Any) -> _TensorRef:
    del requires_grad, backward_hooks
    if type(data) is not _TensorRef:
      raise _error(self._name, 'malformed torch.nn.Parameter (its data is not a tensor)')
    return data


def _is_count(value: Any) -> bool:
  return type(value) is int and value >= 0


def _unpickle(unpickler: _Unpickler, f: io.BytesIO, name: str, what: str) -> Any:
  """Runs `unpickler` on the pickle at `f`'s position, turning failures into `WeightsError`.

  The pickle's opcodes are walked first without running them: the C unpickler trusts the lengths
  and memo indices it reads, so a corrupt file could make it allocate (and for the memo, zero)
  gigabytes before it noticed. `pickletools` checks lengths against the data actually there.
  """
  start = f.tell()
  try:
    for count, (opcode, arg, _) in enumerate(pickletools.genops(f)):
      if opcode.name in ('PUT', 'BINPUT', 'LONG_BINPUT') and not 0 <= arg <= count:
        raise ValueError(f'memo index {arg} out of range')
    f.seek(start)
    return unpickler.load()
  except WeightsError:
    raise
  except Exception as e:  # A corrupt pickle can raise almost anything.
    raise _error(name, f'truncated or corrupt {what} ({type(e).__name__}: {_short(e)})') from e


def _storage_array(raw: bytes | memoryview, type_name: str, byteorder: str) -> np.ndarray:
  """The elements of a storage from its raw bytes, as a read-only 1-D array in native order."""
  dtype = _STORAGE_DTYPES[type_name]
  if dtype == np.bool_:
    return np.frombuffer(raw, np.uint8) != 0
  if dtype.itemsize > 1 and byteorder != sys.byteorder:
    return np.frombuffer(raw, np.dtype(f'u{dtype.itemsize}')).byteswap().view(dtype)
  return np.frombuffer(raw, dtype)


def _load_legacy(data: bytes, name: str) -> tuple[Any, dict[str, np.ndarray]]:
  f = io.BytesIO(data)
  magic = _unpickle(_Unpickler(f, name), f, name, 'header')
  if type(magic) is not int or magic != _MAGIC_NUMBER:
    raise _error(name, 'not a torch.save file (bad magic number)')
  version = _unpickle(_Unpickler(f, name), f, name, 'header')
  if version != _PROTOCOL_VERSION:
    raise _error(name, f'unsupported torch.save protocol version {_short(repr(version))}')
  _unpickle(_Unpickler(f, name), f, name, 'header')  # System info; the data is little-endian.
  unpickler = _Unpickler(f, name, 'legacy')
  obj = _unpickle(unpickler, f, name, 'pickle data')
  keys = _unpickle(_Unpickler(f, name), f, name, 'storage list')
  if (
    not isinstance(keys, list)
    or not all(type(key) is str for key in keys)
    or sorted(keys) != sorted(unpickler.roots)
  ):
    raise _error(name, 'the storage list does not match the storages the tensors use')
  storages = {}
  pos = f.tell()
  for key in keys:
    type_name, numel = unpickler.roots[key]
    if pos + 8 > len(data):
      raise _error(name, f'truncated (storage {_short(key)!r} is missing)')
    (count,) = struct.unpack_from('<q', data, pos)
    if count != numel:
      raise _error(name, f'storage {_short(key)!r} holds {count} elements, expected {numel}')
    nbytes = numel * _STORAGE_DTYPES[type_name].itemsize
    pos += 8
    if pos + nbytes > len(data):
      raise _error(name, f'truncated (storage {_short(key)!r} is short of data)')
    storages[key] = _storage_array(memoryview(data)[pos : pos + nbytes], type_name, 'little')
    pos += nbytes
  return obj, storages


def _load_zip(data: bytes, name: str) -> tuple[Any, dict[str, np.ndarray]]:
  try:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
      return _read_archive(archive, name)
  except WeightsError:
    raise
  except Exception as e:  # BadZipFile, a bad CRC, zlib.error, EOFError, ...
    raise _error(name, f'truncated or corrupt zip archive ({type(e).__name__}: {_short(e)})') from e


def _read_archive(archive: zipfile.ZipFile, name: str) -> tuple[Any, dict[str, np.ndarray]]:
  records = archive.namelist()
  # The records all lie in one folder, whose name varies (the saved file's stem, or 'archive').
  pickles = [r for r in records if r.count('/') == 1 and r.endswith('/data.pkl')]
  if any(r.count('/') == 1 and r.endswith('/constants.pkl') for r in records):
    raise _error(name, 'a TorchScript archive (torch.jit.save), not a torch.save file')
  if len(pickles) != 1:
    raise _error(name, 'a zip archive without a single <archive>/data.pkl, not a torch.save file')
  prefix = pickles[0][: -len('data.pkl')]
  pickled = io.BytesIO(archive.read(pickles[0]))
  unpickler = _Unpickler(pickled, name, 'zip')
  obj = _unpickle(unpickler, pickled, name, 'pickle data')
  byteorder = 'little'
  if prefix + 'byteorder' in records:
    byteorder = archive.read(prefix + 'byteorder').decode('ascii', 'replace')
    if byteorder not in ('little', 'big'):
      raise _error(name, f'unknown byte order {_short(repr(byteorder))}')
  storages = {}
  for key, (type_name, numel) in unpickler.roots.items():
    record = f'{prefix}data/{key}'
    if record not in records:
      raise _error(name, f'storage record {_short(record)!r} is missing')
    nbytes = numel * _STORAGE_DTYPES[type_name].itemsize
    if archive.getinfo(record).file_size != nbytes:
      raise _error(name, f'storage record {_short(record)!r} does not hold {nbytes} bytes')
    storages[key] = _storage_array(archive.read(record), type_name, byteorder)
  return obj, storages


def _describe(obj: Any) -> str:
  return {_TensorRef: 'tensor', _StorageRef: 'bare storage'}.get(type(obj), type(obj).__name__)


def _to_arrays(obj: Any, storages: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
  if not isinstance(obj, dict):
    raise _error(name, f'holds a {_describe(obj)}, not a dict of tensors')
  arrays = {}
  for key, value in obj.items():
    if type(key) is not str:
      raise _error(name, f'has a key of type {type(key).__name__}, not str')
    if type(value) is not _TensorRef:
      raise _error(name, f'entry {_short(key)!r} is a {_describe(value)}, not a tensor')
    arrays[key] = _materialize(value, storages, name, key)
  return arrays


def _materialize(
  tensor: _TensorRef, storages: dict[str, np.ndarray], name: str, key: str
) -> np.ndarray:
  """Copies `tensor` out of its storage, after checking that it lies within the storage."""
  ref = tensor.storage
  elements = storages[ref.key][ref.offset : ref.offset + ref.size]
  numel = math.prod(tensor.size)
  if numel == 0:
    return np.zeros(tensor.size, elements.dtype)
  last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride, strict=True))
  if len(elements) != ref.size or last >= ref.size:
    raise _error(name, f'tensor {_short(key)!r} extends past the end of its storage')
  if numel > ref.size and numel * elements.dtype.itemsize > _MAX_EXPANDED_BYTES:
    raise _error(name, f'tensor {_short(key)!r} repeats its storage to an implausible size')
  view = np.lib.stride_tricks.as_strided(
    elements[tensor.offset :],
    shape=tensor.size,
    strides=[s * elements.dtype.itemsize for s in tensor.stride],
    writeable=False,
  )
  return np.array(view, order='C')
