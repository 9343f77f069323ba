"""Tests for nst_jax.grid: fitting cells without distortion, and the grid layout."""

import numpy as np

from nst_jax.app import sheets


def test_fit_and_pad_never_distorts():
  image = np.zeros((20, 40, 3), np.float32)
  out = sheets.fit_and_pad(image, (30, 30))
  assert out.shape == (30, 30, 3)
  dark = out.mean(axis=-1) < 0.5
  rows, columns = np.nonzero(dark)
  assert columns.min() == 0 and columns.max() == 29
  assert rows.max() - rows.min() + 1 == 15  # 20x40 scaled by 0.75, centred on white.
  assert out[0].min() == 1.0 and out[-1].min() == 1.0


def test_compose_grid_layout():
  cell, gutter = (10, 12), 2
  red, green, blue = (np.zeros((10, 12, 3), np.float32) for _ in range(3))
  red[..., 0] = green[..., 1] = blue[..., 2] = 1.0
  results = [[red, None], [green, blue]]
  sheet = sheets.compose_grid(results, [red, green], [blue, blue], cell, gutter)
  assert sheet.shape == (gutter + 3 * (10 + gutter), gutter + 3 * (12 + gutter), 3)

  def at(row, column):
    top, left = gutter + row * (10 + gutter), gutter + column * (12 + gutter)
    return sheet[top : top + 10, left : left + 12]

  assert at(0, 0).min() == 1.0  # Blank corner.
  np.testing.assert_array_equal(at(0, 1), blue)  # Style headers.
  np.testing.assert_array_equal(at(2, 0), green)  # Content headers.
  np.testing.assert_array_equal(at(1, 1), red)
  assert at(1, 2).min() == 1.0  # A missing cell stays blank.
  np.testing.assert_array_equal(at(2, 2), blue)
  assert sheet[:gutter].min() == 1.0 and sheet[:, :gutter].min() == 1.0  # White gutters.
