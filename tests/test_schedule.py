"""Tests for nst_jax.run.schedule and nst_jax.core.resample: the one resizing rule, the sizes of
the scales and of the styles, and the save points."""

import jax
import numpy as np
import pytest
from small import small_config

import nst_jax
from nst_jax.app import cli
from nst_jax.core import resample
from nst_jax.io import images
from nst_jax.run import engine, schedule


def test_fit_size_keeps_the_aspect_ratio_within_a_side_or_a_box():
  assert resample.fit_size((40, 20), 10) == (10, 5)
  assert resample.fit_size((20, 40), 80) == (40, 80)
  assert resample.fit_size((1000, 3), 10) == (10, 1)  # At least one pixel.
  assert resample.fit_size((20, 40), (30, 30)) == (15, 30)
  assert resample.fit_size((40, 20), (30, 30)) == (30, 15)


def test_resize_is_float_and_antialiased():
  checker = (np.indices((32, 32)).sum(0) % 2).astype(np.float32)
  image = np.stack([checker, 1 - checker, np.full_like(checker, 12345 / 65535)], -1)
  small = np.asarray(resample.resize(image, (8, 4)))
  assert small.shape == (8, 4, 3) and small.dtype == np.float32
  assert 0.0 <= small.min() and small.max() <= 1.0
  np.testing.assert_allclose(small[..., :2], 0.5, atol=0.02)  # Averaged, not aliased.
  np.testing.assert_allclose(small[..., 2], 12345 / 65535, atol=1e-6)  # Not quantised.
  assert resample.resize(checker[..., None], (3, 5)).shape == (3, 5, 1)
  batch = np.stack([image, image[::-1]])
  assert resample.resize(batch, (8, 4)).shape == (2, 8, 4, 3)
  np.testing.assert_array_equal(resample.resize(image, (32, 32)), image)
  with pytest.raises(ValueError):
    resample.resize(image, (0, 4))


def test_scale_sizes_and_steps():
  config = small_config(
    'image_size=40', 'schedule.num_scales=3', 'schedule.scale_ratio=2.0', 'schedule.coarse_steps=5'
  )
  assert schedule.scale_sizes((32, 24), config) == [(10, 8), (20, 15), (40, 30)]
  assert schedule.steps_per_scale(config) == [5, 5, 6]
  config.style_image.scale = 0.5
  assert schedule.style_side((20, 15), config) == 10
  config.style_image.size = 64
  assert schedule.style_side((20, 15), config) == schedule.final_style_side(config) == 64


def _star_field(size: int) -> np.ndarray:
  """A high-frequency style: single bright pixels on black, where resampling filters differ."""
  rng = np.random.default_rng(3)
  image = np.zeros((size, size, 3), np.float32)
  stars = rng.integers(0, size, (size * size // 40, 2))
  image[stars[:, 0], stars[:, 1]] = rng.uniform(0.5, 1.0, (len(stars), 3))
  return image


def test_the_script_path_and_the_python_path_give_the_same_targets(tmp_path, random_network):
  """Files loaded as the scripts load them, or whole from Python: the same targets."""
  content_path, style_path = tmp_path / 'content.png', tmp_path / 'stars.png'
  y, x = np.mgrid[0:90, 0:120] / 90.0
  images.save_image(content_path, np.stack([x / 1.4, y, 0.5 + 0.4 * np.sin(20 * x * y)], -1))
  images.save_image(style_path, _star_field(150))
  config = small_config(
    'image_size=48', 'schedule.num_scales=2', 'schedule.scale_ratio=2.0', 'style_image.scale=0.8'
  )

  # As scripts/stylize.py does: contents fitted to image_size, styles to their final size.
  shape = cli.image_shape(str(content_path), 'content image', config.image_size)
  (content,) = cli.load_images([str(content_path)], 'content image', config.image_size)
  (style,) = cli.load_images([str(style_path)], 'style image', schedule.final_style_side(config))
  assert content.shape[:2] == shape == (36, 48) and style.shape[:2] == (38, 38)
  from_script = engine.prepare(content[None], [style], config, network=random_network)
  # From Python: the files' own pixels.
  whole = images.load_image(content_path)[None], [images.load_image(style_path)]
  from_python = engine.prepare(*whole, config, network=random_network)
  for scale in (0, 1):
    jax.tree.map(
      np.testing.assert_array_equal, from_script.targets(scale), from_python.targets(scale)
    )
  assert nst_jax.stylize(*whole, config, network=random_network).images.shape == (1, 36, 48, 3)


def test_save_points_round_to_chunks():
  config = nst_jax.default_config()
  config.schedule.num_steps, config.schedule.chunk_size = 100, 30
  # Chunk boundaries 30, 60, 90, 100: the first at or after each multiple of 50, not the end.
  assert schedule.save_points(config, 50) == [60]
  assert schedule.save_points(config, 30) == [30, 60, 90]
  assert schedule.save_points(config, 0) == []
  config.schedule.num_scales, config.schedule.coarse_steps = 2, 40
  config.schedule.num_steps, config.schedule.chunk_size = 40, 20
  assert schedule.save_points(config, 20) == [20, 40, 60]  # Counted over both scales.
