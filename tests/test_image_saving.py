"""Tests for saving images (nst_jax.io.images): round trips, formats, bad paths, atomic writes."""

import os

import numpy as np
import pytest
from PIL import Image

from nst_jax.errors import ImageError
from nst_jax.io import images


def _listing(folder):
  return sorted(p.name for p in folder.iterdir())


def test_save_png_round_trips_and_creates_folders(tmp_path):
  image = np.random.default_rng(2).random((7, 9, 3)).astype(np.float32)
  path = tmp_path / 'new' / 'nested' / 'out.png'
  assert images.save_image(path, image) is None
  np.testing.assert_allclose(images.load_image(path), image, atol=0.5 / 255 + 1e-6)
  assert _listing(path.parent) == ['out.png']
  umask = os.umask(0o022)
  os.umask(umask)
  assert path.stat().st_mode & 0o777 == 0o666 & ~umask
  clipped = np.array([[[-1.0, 0.5, 2.0]]], np.float32)
  images.save_image(path, clipped)
  np.testing.assert_array_equal(np.asarray(Image.open(path)), [[[0, 128, 255]]])


@pytest.mark.parametrize('extension', ['.jpg', '.jpeg', '.webp', '.bmp', '.tif', '.tiff', '.PNG'])
def test_save_other_formats(tmp_path, extension):
  image = np.full((6, 8, 3), [0.2, 0.4, 0.6], np.float32)
  path = tmp_path / f'out{extension}'
  images.save_image(path, image)
  np.testing.assert_allclose(images.load_image(path), image, atol=0.02)
  assert _listing(tmp_path) == [path.name]


def test_save_rejects_bad_paths_and_arrays(tmp_path):
  with pytest.raises(ImageError, match=r"^output image '.*out\.gif': unsupported output extension"):
    images.save_image(tmp_path / 'out.gif', np.zeros((2, 2, 3)), label='output image')
  with pytest.raises(ImageError, match='unsupported'):
    images.save_image(tmp_path / 'out', np.zeros((2, 2, 3)))
  (tmp_path / 'file').write_text('x')
  with pytest.raises(ImageError, match='folder'):
    images.save_image(tmp_path / 'file' / 'out.png', np.zeros((2, 2, 3)))
  with pytest.raises(ValueError, match='shape'):
    images.save_image(tmp_path / 'out.png', np.zeros((2, 2)))
  with pytest.raises(ValueError, match='NaN'):
    images.save_image(tmp_path / 'out.png', np.full((2, 2, 3), np.nan))
  assert _listing(tmp_path) == ['file']


def test_failed_save_leaves_no_temp_file_and_keeps_the_old_file(tmp_path, monkeypatch):
  path = tmp_path / 'out.png'
  images.save_image(path, np.zeros((3, 3, 3)))
  before = path.read_bytes()

  def failing_save(self, fp, *args, **kwargs):
    fp.write(b'partial data')
    raise OSError('disk full')

  monkeypatch.setattr(Image.Image, 'save', failing_save)
  with pytest.raises(
    ImageError, match=r"'.*out\.png': cannot write the image \(OSError: disk full\)"
  ):
    images.save_image(path, np.ones((3, 3, 3)))
  assert _listing(tmp_path) == ['out.png']
  assert path.read_bytes() == before

  def interrupted_save(self, fp, *args, **kwargs):
    raise KeyboardInterrupt

  monkeypatch.setattr(Image.Image, 'save', interrupted_save)
  with pytest.raises(KeyboardInterrupt):
    images.save_image(path, np.ones((3, 3, 3)))
  assert _listing(tmp_path) == ['out.png']


def test_check_writable(tmp_path):
  images.check_writable(tmp_path / 'a' / 'b' / 'out.jpg')
  assert _listing(tmp_path) == []  # Checks, creates nothing.
  with pytest.raises(ImageError, match=r"^'.*out\.xyz': unsupported output extension '\.xyz'"):
    images.check_writable(tmp_path / 'out.xyz')
  (tmp_path / 'file').write_text('x')
  with pytest.raises(ImageError, match='is a file'):
    images.check_writable(tmp_path / 'file' / 'sub' / 'out.png')
  (tmp_path / 'dir.png').mkdir()
  with pytest.raises(ImageError, match='is a folder'):
    images.check_writable(tmp_path / 'dir.png')


def test_check_writable_reports_a_folder_without_write_permission(tmp_path, monkeypatch):
  # Simulated, since the tests may run as root, who can write anywhere.
  monkeypatch.setattr(images.os, 'access', lambda path, mode: False)
  with pytest.raises(ImageError, match=r"^output image '.*out\.png': folder '.*' is not writable$"):
    images.check_writable(tmp_path / 'new' / 'out.png', label='output image')


@pytest.mark.skipif(os.name != 'posix' or os.geteuid() == 0, reason='root can write anywhere')
def test_check_writable_read_only_folder(tmp_path):
  folder = tmp_path / 'ro'
  folder.mkdir()
  folder.chmod(0o500)
  try:
    with pytest.raises(ImageError, match='not writable'):
      images.check_writable(folder / 'out.png', label='output image')
    with pytest.raises(ImageError):
      images.save_image(folder / 'out.png', np.zeros((2, 2, 3)))
  finally:
    folder.chmod(0o700)
