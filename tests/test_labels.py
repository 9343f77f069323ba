"""Tests for label maps (nst_jax.core.labels) and mask files (nst_jax.io.masks): colours, the
tolerance, colours that are not listed, JPEG noise at region edges, strength maps, and the
errors a user can cause."""

import numpy as np
import pytest
from PIL import Image

from nst_jax.core import labels
from nst_jax.errors import ConfigError, ImageError
from nst_jax.io import masks as mask_files

BLACK, WHITE, RED = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (1.0, 0.0, 0.0)


def _label_map(height=96, width=128):
  """Left half black, top right white, bottom right red; the truth as labels (red: -1)."""
  image = np.zeros((height, width, 3), np.float32)
  truth = np.zeros((height, width), np.int32)
  image[: height // 2, width // 2 :] = WHITE
  truth[: height // 2, width // 2 :] = 1
  image[height // 2 :, width // 2 :] = RED
  truth[height // 2 :, width // 2 :] = -1
  return image, truth


def _near_an_edge(truth, distance):
  """Pixels within `distance` of a pixel with another label."""
  near = np.zeros(truth.shape, bool)
  for dy in range(-distance, distance + 1):
    for dx in range(-distance, distance + 1):
      shifted = np.roll(truth, (dy, dx), axis=(0, 1))
      near |= shifted != truth
  return near


def test_parse_colors():
  np.testing.assert_allclose(
    labels.parse_colors(['#000000', 'ffffff', '#f80']), [BLACK, WHITE, (1.0, 0x88 / 255, 0.0)]
  )
  assert labels.format_color((1.0, 0.5, 0.0)) == '#ff8000'
  with pytest.raises(ConfigError, match="--mask_colors: 'blue' is not a colour like '#ff8800'"):
    labels.parse_colors(['blue'])
  with pytest.raises(ConfigError, match='#ffffff is listed twice'):
    labels.parse_colors(['#fff', '#ffffff'])


def test_colours_match_within_the_tolerance():
  image, truth = _label_map()
  colors = np.asarray([BLACK, WHITE], np.float32)
  found, matched = labels.match(image, colors)
  np.testing.assert_array_equal(found, truth)
  assert matched.tolist() == [96 * 64, 48 * 64]
  # A shade within 0.1 per channel is the colour; one 0.15 away, covering a quarter of the map,
  # is a region of its own that is not listed (content only).
  shaded = image.copy()
  shaded[:48, 64:] = 0.92
  np.testing.assert_array_equal(labels.match(shaded, colors)[0], truth)
  shaded[:48, 64:] = 0.85
  found, matched = labels.match(shaded, colors)
  assert (found[:48, 64:] == -1).all() and matched[1] == 0
  assert labels.match(shaded, colors, tolerance=0.2)[1][1] == 48 * 64


def test_jpeg_noise_at_edges_goes_to_the_nearest_region(tmp_path):
  image, truth = _label_map()
  path = tmp_path / 'labels.jpg'
  Image.fromarray((image * 255).astype(np.uint8)).save(path, quality=40)
  with Image.open(path) as jpeg:
    noisy = np.asarray(jpeg.convert('RGB'), np.float32) / 255.0
  colors = np.asarray([BLACK, WHITE], np.float32)
  strict = np.max(np.abs(noisy[..., None, :] - colors), axis=-1).min(-1) > 0.1
  assert strict[truth >= 0].sum() > 20  # The noise that a plain tolerance test misses.
  found, matched = labels.match(noisy, colors)
  wrong = found != truth
  # Interiors are exact; edge pixels go to a neighbouring region, none is lost to a seam.
  assert not wrong[~_near_an_edge(truth, 2)].any()
  assert wrong.mean() < 0.01
  assert matched.min() > 0


def test_strength_maps_and_main_colours():
  grey = np.broadcast_to(np.linspace(0, 1, 10, dtype=np.float32)[:, None, None], (10, 4, 3))
  assert labels.is_greyscale(grey)
  np.testing.assert_allclose(labels.strength(grey)[:, 0, 0], np.linspace(0, 1, 10), rtol=1e-6)
  image, _ = _label_map()
  assert not labels.is_greyscale(image)
  assert labels.main_colors(image) == '#000000 (50%), #ff0000 (25%), #ffffff (25%)'


def _save(path, image):
  Image.fromarray((np.asarray(image) * 255).astype(np.uint8)).save(path)
  return str(path)


def test_load_mask_resizes_and_names_every_problem(tmp_path):
  image, _ = _label_map()
  path = _save(tmp_path / 'labels.png', image)
  colors = np.asarray([BLACK, WHITE], np.float32)
  mask = mask_files.load_mask(path, (48, 64), colors=colors, label='content mask')
  assert mask.regions.shape == (48, 64, 2) and mask.picture.shape == (96, 128, 3)
  np.testing.assert_allclose(mask.regions[10, 10], [1, 0], atol=1e-6)
  np.testing.assert_allclose(mask.regions[10, 50], [0, 1], atol=1e-6)
  np.testing.assert_allclose(mask.regions[40, 50], [0, 0], atol=1e-6)  # Red: content only.
  with pytest.raises(ImageError, match=r"content mask '.*labels.png': 128x96 px does not have the"):
    mask_files.load_mask(path, (48, 48), colors=colors, label='content mask')
  green = np.asarray([BLACK, (0.0, 1.0, 0.0)], np.float32)
  with pytest.raises(ConfigError, match=r'#00ff00 matches no pixel of .*main colours are #000000'):
    mask_files.load_mask(path, (48, 64), colors=green)
  mask_files.load_mask(path, (48, 64), colors=green, required=[0])
  with pytest.raises(ConfigError, match='has colours .* name the regions with --mask_colors'):
    mask_files.load_mask(path, (48, 64), colors=None)
  ramp = np.broadcast_to(np.linspace(0, 1, 128, dtype=np.float32)[None, :, None], (96, 128, 3))
  strength = mask_files.load_mask(_save(tmp_path / 'ramp.png', ramp), (48, 64), colors=None)
  assert strength.regions.shape == (48, 64, 1) and strength.labels is None
  assert strength.regions[0, 0, 0] < 0.05 and strength.regions[0, -1, 0] > 0.95
