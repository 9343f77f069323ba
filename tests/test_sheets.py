"""Tests for nst_jax.app.sheets: fitting cells without distortion, the grid layout, text labels
and the comparison sheet."""

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


def test_text_image_is_dark_text_centred_on_white():
  label = sheets.text_image('gram', (32, 80), 14)
  assert label.shape == (32, 80, 3) and label.dtype == np.float32
  dark = label.mean(axis=-1) < 0.5
  rows, columns = np.nonzero(dark)
  assert len(rows) > 0 and label.max() == 1.0
  assert abs((rows.min() + rows.max()) / 2 - 15.5) <= 3  # Centred.
  assert abs((columns.min() + columns.max()) / 2 - 39.5) <= 3
  # A label too long for its width shrinks to fit it.
  long = sheets.text_image('nearest_neighbor and more', (32, 60), 30)
  columns = np.nonzero(long.mean(axis=-1) < 0.5)[1]
  assert columns.min() > 0 and columns.max() < 59
  assert sheets.font(12) is not None


def test_sheet_has_a_header_row_and_a_row_per_content():
  rng = np.random.default_rng(0)
  style = rng.random((20, 30, 3)).astype(np.float32)
  contents = [rng.random((24, 16, 3)).astype(np.float32) for _ in range(2)]
  cells = [[c * 0.5, c] for c in contents]
  sheet = sheets.compose_sheet(style, contents, cells, ['gram', 'nearest_neighbor'], gutter=4)
  header = max(32, 24 // 3)
  assert sheet.shape == (4 + header + 4 + 2 * (24 + 4), 4 + 3 * (16 + 4), 3)
  np.testing.assert_allclose(
    sheet[4 + header + 4 : 4 + header + 4 + 24, 4 + 20 : 4 + 36], cells[0][0]
  )
  assert sheet[4 : 4 + header, 4 + 40 : 4 + 56].min() < 0.5  # Some dark text in the label.
