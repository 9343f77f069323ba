"""Tests for nst_jax.io.files: atomic writes and the writable-folder check."""

import os

import pytest

from nst_jax.io import files


def test_atomic_write_replaces_or_leaves_the_old_file(tmp_path):
  path = tmp_path / 'out.json'
  files.atomic_write(path, lambda f: f.write(b'old'))
  assert path.read_bytes() == b'old'

  def fails_with(error):
    def write(f):
      f.write(b'partial')
      raise error

    return write

  for error in (OSError('disk full'), KeyboardInterrupt()):
    with pytest.raises(type(error)):
      files.atomic_write(path, fails_with(error))
    assert os.listdir(tmp_path) == ['out.json'] and path.read_bytes() == b'old'
  files.atomic_write(path, lambda f: f.write(b'new'))
  assert path.read_bytes() == b'new'


def test_folder_problem(tmp_path, monkeypatch):
  assert files.folder_problem(tmp_path / 'new' / 'deeper') is None
  (tmp_path / 'file').write_text('x')
  assert files.folder_problem(tmp_path / 'file' / 'sub') == (
    f'cannot create the folder, {str(tmp_path / "file")!r} is a file'
  )
  os.symlink(tmp_path / 'missing', tmp_path / 'link')
  assert 'is a broken link' in files.folder_problem(tmp_path / 'link' / 'sub', 'it')
  monkeypatch.setattr(os, 'access', lambda path, mode: False)
  assert files.folder_problem(tmp_path) == f'folder {str(tmp_path)!r} is not writable'
