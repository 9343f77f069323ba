"""Style grids: cells fitted into equal boxes, composed with row and column headers."""

from collections.abc import Sequence

import numpy as np

from nst_jax.core import resample


def fit_and_pad(image: np.ndarray, size: tuple[int, int], fill: float = 1.0) -> np.ndarray:
  """Scales `image` to fit inside `size` = (H, W), keeping its aspect ratio, centred on `fill`."""
  height, width = size
  fitted = resample.fit_size(image.shape[:2], size)
  image = np.asarray(resample.resize(image, fitted))
  out = np.full((height, width, 3), fill, np.float32)
  top, left = (height - fitted[0]) // 2, (width - fitted[1]) // 2
  out[top : top + fitted[0], left : left + fitted[1]] = image
  return out


def compose_grid(
  cells: Sequence[Sequence[np.ndarray | None]],
  row_headers: Sequence[np.ndarray],
  column_headers: Sequence[np.ndarray],
  cell_size: tuple[int, int],
  gutter: int = 8,
) -> np.ndarray:
  """A white sheet: a blank corner, column headers on top, row headers on the left, cells.

  Every image is fitted into `cell_size` (H, W) without distortion; cells that are None stay
  blank. The sheet is `gutter + (len(columns) + 1) * (W + gutter)` pixels wide and
  `gutter + (len(rows) + 1) * (H + gutter)` high.
  """
  height, width = cell_size
  rows, columns = len(row_headers), len(column_headers)
  sheet = np.ones(
    (gutter + (rows + 1) * (height + gutter), gutter + (columns + 1) * (width + gutter), 3),
    np.float32,
  )

  def place(row: int, column: int, image: np.ndarray | None) -> None:
    if image is None:
      return
    top, left = gutter + row * (height + gutter), gutter + column * (width + gutter)
    sheet[top : top + height, left : left + width] = fit_and_pad(image, cell_size)

  for j, header in enumerate(column_headers):
    place(0, j + 1, header)
  for i, header in enumerate(row_headers):
    place(i + 1, 0, header)
    for j in range(columns):
      place(i + 1, j + 1, cells[i][j])
  return sheet
