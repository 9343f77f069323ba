"""Tests for nst_jax.io.torch_format, on files written here the way `torch.save` writes them.

torch is not needed: a `pickle.Pickler` subclass writes tensors as torch does, as calls of
`torch._utils._rebuild_tensor_v2` on storages pickled by persistent id, with stand-in `torch`
modules put in `sys.modules` only while it pickles (so that the globals get torch's names).
"""

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest
from torch_files import (
  MAGIC_NUMBER,
  STORAGE_NAMES,
  SYS_INFO,
  Storage,
  Tensor,
  legacy_file,
  tensor,
  zip_file,
)

from nst_jax.errors import WeightsError
from nst_jax.io.torch_format import load_torch_file

_WRITERS = {'legacy': legacy_file, 'zip': zip_file}
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
  shared = Storage('shared', base)
  return collections.OrderedDict(
    conv_W_q=tensor(rng.integers(0, 256, (4, 3, 3, 3), dtype=np.uint8), '0'),
    conv_W_table=tensor(rng.standard_normal(256).astype(np.float32), '1'),
    conv_b=tensor(rng.standard_normal(4).astype(np.float32), '2'),
    steps=tensor(np.array([7, -1, 2**40], np.int64), '3'),
    # Views of one storage: the transpose of a (4, 7) block from element 2, and a slice.
    transposed=Tensor(shared, 2, (7, 4), (1, 7)),
    sliced=Tensor(shared, 5, (10,), (1,)),
    scalar=Tensor(shared, 39, (), ()),
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
@pytest.mark.parametrize('dtype', sorted(STORAGE_NAMES, key=str))
def test_every_dtype(fmt, dtype):
  values = np.array([[0, 1, 0], [1, 1, 0]]).astype(dtype)
  arrays = load_torch_file(_WRITERS[fmt]({'x': tensor(values, 'k'), 'e': tensor(values[:0], 'e')}))
  assert arrays['x'].dtype == dtype
  np.testing.assert_array_equal(arrays['x'], values)
  assert arrays['e'].shape == (0, 3) and arrays['e'].dtype == dtype


def test_zip_folder_name_and_big_endian_data():
  values = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
  data = zip_file({'w': tensor(values, '0')}, archive='my_weights', byteorder='big')
  np.testing.assert_array_equal(load_torch_file(data)['w'], values)


def test_legacy_storage_view():
  root = np.arange(10, dtype=np.int32)
  view = Storage('root', root, view=('view', 3, 5))  # Elements 3..7 of the root.
  arrays = load_torch_file(legacy_file({'v': Tensor(view, 1, (2, 2), (2, 1))}))
  np.testing.assert_array_equal(arrays['v'], [[4, 5], [6, 7]])


def test_reads_paths_and_bytes(tmp_path):
  path = tmp_path / 'w.pth'
  path.write_bytes(zip_file({'b': tensor(np.ones(3, np.float32), '0')}))
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
  state = {'w': tensor(np.zeros(2, np.float32), '0'), 'evil': payload}
  for obj in (state, payload, {'w': Tensor(payload, 0, (1,), (1,))}):
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
  data = legacy_file({}, sys_info=_payloads(marker)['posix.system'])
  _load_fails(data, "refusing to load global 'posix.system'")
  assert not marker.exists()


def test_refusal_names_the_file(tmp_path):
  path = tmp_path / 'x.bin'
  path.write_bytes(legacy_file({'evil': _Call(os.system, 'true')}))
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
  data = legacy_file({'w': tensor(np.arange(4, dtype=np.float32), '0')})
  count_at = len(data) - 4 * 4 - 8  # The storage: its element count, then 4 float32s.
  assert data[count_at:] == struct.pack('<q', 4) + np.arange(4, dtype='<f4').tobytes()
  _load_fails(data[:-1], "truncated (storage '0' is short of data)")
  claims_5 = data[:count_at] + struct.pack('<q', 5) + data[count_at + 8 :]
  _load_fails(claims_5, "storage '0' holds 5 elements, expected 4")


def test_short_zip_storage():
  f = io.BytesIO()
  good = zipfile.ZipFile(io.BytesIO(zip_file({'w': tensor(np.arange(4.0), '0')})))
  with zipfile.ZipFile(f, 'w') as z:
    for name in good.namelist():
      z.writestr(name, good.read(name)[:-1] if name.endswith('data/0') else good.read(name))
  _load_fails(f.getvalue(), "'archive/data/0' does not hold 32 bytes")


@formats
def test_tensor_past_its_storage(fmt):
  storage = Storage('0', np.arange(6, dtype=np.float32))
  for offset, size, stride in [(0, (7,), (1,)), (5, (2,), (1,)), (0, (2, 3), (3, 2)), (6, (), ())]:
    data = _WRITERS[fmt]({'w': Tensor(storage, offset, size, stride)})
    _load_fails(data, "tensor 'w' extends past the end of its storage")


@formats
@pytest.mark.parametrize(
  'obj, problem',
  [
    ([1, 2], 'holds a list, not a dict of tensors'),
    (tensor(np.ones(2), '0'), 'holds a tensor, not a dict of tensors'),
    ({'w': 1.5}, "entry 'w' is a float, not a tensor"),
    ({'w': Storage('0', np.ones(2))}, "entry 'w' is a bare storage, not a tensor"),
    ({3: tensor(np.ones(2), '0')}, 'has a key of type int, not str'),
    ({'w': Tensor(Storage('0', np.ones(2)), -1, (1,), (1,))}, 'malformed tensor'),
  ],
)
def test_not_a_dict_of_tensors(fmt, obj, problem):
  _load_fails(_WRITERS[fmt](obj), problem)


def test_unknown_protocol_version():
  f = io.BytesIO()
  for header in (MAGIC_NUMBER, 1002, SYS_INFO, {}, []):
    pickle.dump(header, f, protocol=2)
  _load_fails(f.getvalue(), 'unsupported torch.save protocol version 1002')


@formats
def test_empty_dict(fmt):
  assert load_torch_file(_WRITERS[fmt](collections.OrderedDict())) == {}


@pytest.mark.parametrize(
  'pickled, problem',
  [
    # EMPTY_LIST, LONG_BINPUT 2**31 - 1: the C unpickler would first grow its memo to 32 GiB.
    (b'\x80\x02]r\xff\xff\xff\x7f.', 'memo index 2147483647 out of range'),
    # BINBYTES8 of 2**40 bytes: the C unpickler would allocate them before reading.
    (b'\x80\x04\x8e' + struct.pack('<Q', 2**40) + b'x.', 'but only 2 remain'),
  ],
)
def test_corrupt_pickle_is_refused_before_allocating(pickled, problem):
  f = io.BytesIO()
  with zipfile.ZipFile(f, 'w') as z:
    z.writestr('archive/data.pkl', pickled)
  _load_fails(f.getvalue(), 'truncated or corrupt pickle data', problem)


@formats
def test_corrupted_bytes_raise_only_weights_error(fmt):
  data = _WRITERS[fmt](_vgg_like_state())
  rng = np.random.default_rng(0)
  for _ in range(300):
    corrupted = bytearray(data)
    for pos in rng.integers(0, 1200, size=rng.integers(1, 4)):
      corrupted[pos] = rng.integers(0, 256)
    try:
      assert isinstance(load_torch_file(bytes(corrupted)), dict)
    except WeightsError as e:
      assert '\n' not in str(e)
