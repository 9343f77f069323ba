"""Tests for nst_jax.app.cli (the scripts' commands), in process and without compiling.

The scripts themselves run end to end in tests/test_scripts.py.
"""

import json

import numpy as np
import pytest
from PIL import Image

import nst_jax
from nst_jax.app import cli, script
from nst_jax.app.workdir import Workdir
from nst_jax.errors import ConfigError, ImageError, NonFiniteLossError, StylizeInterrupted
from nst_jax.io import images
from nst_jax.run import engine


def _write(path, height, width, seed=0):
  rng = np.random.default_rng(seed)
  images.save_image(path, rng.uniform(size=(height, width, 3)).astype(np.float32))
  return str(path)


def test_parse_style_weights():
  assert cli.parse_style_weights(None, 2) is None
  np.testing.assert_allclose(cli.parse_style_weights(['0.7', '0.3'], 2), [0.7, 0.3])
  with pytest.raises(ConfigError, match='has 1 value.*names 2 style'):
    cli.parse_style_weights(['1'], 2)
  with pytest.raises(ConfigError, match="'x' is not a number"):
    cli.parse_style_weights(['x'], 1)
  with pytest.raises(ConfigError, match='not all zero'):
    cli.parse_style_weights(['0', '0'], 2)
  with pytest.raises(ConfigError, match='>= 0'):
    cli.parse_style_weights(['-1', '2'], 2)


def test_image_shape_matches_loading(tmp_path):
  for height, width in ((40, 60), (61, 17), (32, 32)):
    path = _write(tmp_path / f'{height}x{width}.png', height, width)
    loaded = images.load_image(path, max_side=32)
    assert cli.image_shape(path, 'content image', 32) == loaded.shape[:2]
  # EXIF rotation swaps the sides.
  rotated = tmp_path / 'rotated.jpg'
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.new('RGB', (60, 40)).save(rotated, exif=exif)
  assert cli.image_shape(str(rotated), 'c', 30) == images.load_image(rotated, max_side=30).shape[:2]
  with pytest.raises(ImageError, match="content image '.*missing.png': file not found"):
    cli.image_shape(str(tmp_path / 'missing.png'), 'content image', 32)


def test_group_by_size_keeps_order_and_limits_batches():
  shapes = [(32, 32), (21, 32), (32, 32), (21, 32), (32, 32)]
  assert cli.group_by_size(shapes) == [((32, 32), [0, 2, 4]), ((21, 32), [1, 3])]
  assert cli.group_by_size(shapes, batch_size=2) == [
    ((32, 32), [0, 2]),
    ((32, 32), [4]),
    ((21, 32), [1, 3]),
  ]


@pytest.fixture
def small_inputs(tmp_path, monkeypatch):
  monkeypatch.setattr(cli.weights, 'load_vgg19', lambda *args, **kwargs: None)
  contents = [_write(tmp_path / f'c{i}.png', 20, 30, seed=i) for i in range(2)]
  style = _write(tmp_path / 'style.png', 24, 24, seed=9)
  config = nst_jax.default_config()
  config.image_size = 24
  config.schedule.num_steps, config.schedule.chunk_size = 4, 2
  return contents, style, config


def test_interrupt_saves_current_images_and_says_how_to_resume(small_inputs, tmp_path, monkeypatch):
  contents, style, config = small_inputs

  def interrupted(contents_, styles, config_, **kwargs):
    raise StylizeInterrupted(np.full((len(contents_), 16, 24, 3), 0.5, np.float32), 0, 2)

  monkeypatch.setattr(engine, 'stylize', interrupted)
  with pytest.raises(script.Interrupted) as info:
    cli.stylize_files(
      config,
      contents=contents,
      styles=[style],
      output=str(tmp_path / 'out/'),
      workdir=Workdir(str(tmp_path / 'wd'), checkpoint_every=-1),  # No checkpoints.
    )
  saved = [tmp_path / 'out' / f'c{i}.interrupted.png' for i in range(2)]
  assert all(p.exists() for p in saved)
  message = str(info.value)
  assert f'--init_image {saved[0]},{saved[1]}' in message and 'at step 2 of 4' in message
  assert json.loads((tmp_path / 'wd' / 'run.json').read_text())['status'] == 'interrupted'
  assert not (tmp_path / 'out' / 'c0.png').exists()
  # With checkpoints in the workdir (the default), running again resumes exactly.
  with pytest.raises(script.Interrupted) as info:
    cli.stylize_files(
      config,
      contents=contents,
      styles=[style],
      output=str(tmp_path / 'out/'),
      workdir=str(tmp_path / 'wd'),
    )
  assert 'run the same command again to resume exactly (--restart starts over)' in str(info.value)


def test_non_finite_saves_last_finite_images(small_inputs, tmp_path, monkeypatch):
  contents, style, config = small_inputs

  def failing(contents_, styles, config_, **kwargs):
    images_ = np.full((len(contents_), 16, 24, 3), 0.25, np.float32)
    raise NonFiniteLossError("loss term 'style' became non-finite", images=images_)

  monkeypatch.setattr(engine, 'stylize', failing)
  with pytest.raises(NonFiniteLossError, match='saved to .*last_finite.png'):
    cli.style_grid_files(config, contents=contents, styles=[style], output=str(tmp_path / 'g.png'))
  with Image.open(tmp_path / 'g.last_finite.png') as grid:
    assert grid.size == (8 + 2 * (24 + 8), 8 + 3 * (16 + 8))
  assert not (tmp_path / 'g.png').exists()
