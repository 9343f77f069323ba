"""Tests for nst_jax.io.paths: where inputs are found and outputs go, checked before a run."""

import os
import pathlib

import numpy as np
import pytest

from nst_jax.errors import ConfigError, ImageError
from nst_jax.io import images, paths


def _write(path, height, width, seed=0):
  rng = np.random.default_rng(seed)
  images.save_image(path, rng.uniform(size=(height, width, 3)).astype(np.float32))
  return str(path)


def test_output_paths(tmp_path):
  contents = ['in/a.jpg', 'other/b.png']
  assert paths.output_paths(str(tmp_path / 'out.png'), ['a.jpg']) == [tmp_path / 'out.png']
  assert paths.output_paths('res/', contents) == [
    pathlib.Path('res/a.png'),
    pathlib.Path('res/b.png'),
  ]
  assert paths.output_paths('res', contents)[1] == pathlib.Path('res/b.png')
  assert paths.output_paths(str(tmp_path), contents)[0] == tmp_path / 'a.png'  # Existing folder.
  assert paths.output_paths('o/{content}_{index}.jpg', contents) == [
    pathlib.Path('o/a_0.jpg'),
    pathlib.Path('o/b_1.jpg'),
  ]
  with pytest.raises(
    ConfigError, match="names one file but there are 2 content images.*'o/{content}.png'"
  ):
    paths.output_paths('o/out.png', contents)
  with pytest.raises(ConfigError, match="'x/a.jpg' and 'y/a.png' would both be written"):
    paths.output_paths('res/', ['x/a.jpg', 'y/a.png'])
  with pytest.raises(ConfigError, match='bad pattern'):
    paths.output_paths('o/{name}.png', contents)


def test_content_paths_and_dir(tmp_path):
  for name in ('b.png', 'a.jpg', 'notes.txt'):
    (tmp_path / name).write_bytes(b'x')
  assert paths.content_paths(['c.png'], str(tmp_path)) == [
    'c.png',
    str(tmp_path / 'a.jpg'),
    str(tmp_path / 'b.png'),
  ]
  with pytest.raises(ConfigError, match='no content image'):
    paths.content_paths([], None)
  with pytest.raises(ImageError, match='folder not found'):
    paths.content_paths([], str(tmp_path / 'missing'))
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(ImageError, match='no image files'):
    paths.content_paths([], str(empty))


def test_check_not_inputs_resolves_paths_and_links(tmp_path):
  source = _write(tmp_path / 'a.png', 8, 8)
  link = tmp_path / 'link.png'
  os.symlink(source, link)
  os.link(source, tmp_path / 'hard.png')
  paths.check_not_inputs([tmp_path / 'out.png'], [source])
  for output in (source, str(tmp_path / '.' / 'a.png'), link, tmp_path / 'hard.png'):
    with pytest.raises(ConfigError, match='would overwrite the input image'):
      paths.check_not_inputs([output], [source])


def test_check_folder_writable(tmp_path):
  paths.check_folder_writable(tmp_path / 'new' / 'deeper', '--workdir')
  (tmp_path / 'file').write_text('x')
  with pytest.raises(ConfigError, match='is a file, not a folder'):
    paths.check_folder_writable(tmp_path / 'file', '--workdir')
  with pytest.raises(ConfigError, match='cannot create it'):
    paths.check_folder_writable(tmp_path / 'file' / 'sub', '--workdir')


def test_grid_cell_names_must_not_collide():
  cells = paths.grid_cell_paths('out/grid.png', ['a/x.jpg', 'b.png'], ['s.jpg'])
  assert cells == [
    [pathlib.Path('out/grid_cells/x__s.png')],
    [pathlib.Path('out/grid_cells/b__s.png')],
  ]
  with pytest.raises(ConfigError, match='same name'):
    paths.grid_cell_paths('grid.png', ['a/x.jpg', 'b/x.png'], ['s.jpg'])
