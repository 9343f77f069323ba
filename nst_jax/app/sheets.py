"""Image sheets: style grids, comparison sheets and text labels, fitted into equal cells."""

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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


def font(size: int) -> Any:
  try:
    return ImageFont.load_default(size=size)
  except (TypeError, OSError, ImportError):  # Pillow without FreeType: the bitmap font.
    return ImageFont.load_default()


def text_image(text: str, size: tuple[int, int], font_size: int) -> np.ndarray:
  """`text` in black, centred on a white (H, W, 3) float image, shrunk to fit its width."""
  canvas = Image.new('RGB', (size[1], size[0]), 'white')
  draw = ImageDraw.Draw(canvas)
  face = font(font_size)
  while font_size > 6 and draw.textbbox((0, 0), text, font=face)[2] > 0.95 * size[1]:
    font_size -= 1
    face = font(font_size)
  left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
  draw.text(
    ((size[1] - right + left) / 2 - left, (size[0] - bottom + top) / 2 - top),
    text,
    fill='black',
    font=face,
  )
  return np.asarray(canvas, np.float32) / 255.0


def compose_sheet(
  style: np.ndarray,
  contents: Sequence[np.ndarray],
  cells: Sequence[Sequence[np.ndarray]],
  labels: Sequence[str],
  gutter: int = 8,
) -> np.ndarray:
  """A white sheet: a header row (the style, then each column's label), then for each content a
  row with the content and its results, each fitted into a cell as large as the largest image."""
  height = max(im.shape[0] for row in cells for im in row)
  width = max(im.shape[1] for row in cells for im in row)
  header = max(32, height // 3)
  columns = [
    fit_and_pad(style, (header, width)),
    *(text_image(label, (header, width), max(12, header // 3)) for label in labels),
  ]
  rows = [columns]
  for content, row in zip(contents, cells, strict=True):
    rows.append([fit_and_pad(im, (height, width)) for im in (content, *row)])
  sheet_rows = []
  for row in rows:
    h = row[0].shape[0]
    strip = np.ones((h, gutter + len(row) * (width + gutter), 3), np.float32)
    for j, im in enumerate(row):
      strip[:, gutter + j * (width + gutter) : gutter + j * (width + gutter) + width] = im
    sheet_rows += [np.ones((gutter, strip.shape[1], 3), np.float32), strip]
  sheet_rows.append(np.ones((gutter, sheet_rows[-1].shape[1], 3), np.float32))
  return np.concatenate(sheet_rows)


def regions_sheet(
  image: np.ndarray, picture: np.ndarray, regions: np.ndarray, colors: np.ndarray | None
) -> np.ndarray:
  """What a mask did, for a person to check: three titled panels of `image`'s size.

  'as read': the mask file (`picture`), resized; 'regions': each region painted in its colour
  (a strength map in grey), content-only pixels as light grey checks; 'on the image': the
  regions over the image, content-only pixels dimmed to grey.

  Args:
    image: (h, w, 3) the content (or style) image.
    picture: (H, W, 3) the mask as read.
    regions: (h, w, R) the region weights at the image's size.
    colors: (R, 3) each region's colour, or None for a strength map.
  """
  h, w = image.shape[:2]
  weights = np.clip(np.asarray(regions, np.float32), 0.0, 1.0)
  if colors is None:
    painted = np.repeat(weights[..., :1], 3, axis=-1)
    coverage = weights[..., 0]
  else:
    painted = weights @ np.asarray(colors, np.float32)
    coverage = np.clip(weights.sum(axis=-1), 0.0, 1.0)
  y, x = np.mgrid[0:h, 0:w]
  checks = np.where(((y // 8 + x // 8) % 2)[..., None] == 0, 0.85, 0.7).astype(np.float32)
  shown = painted + (1.0 - coverage[..., None]) * checks
  grey = np.repeat(np.mean(image, axis=-1, keepdims=True), 3, axis=-1)
  overlay = coverage[..., None] * (0.5 * image + 0.5 * painted) + (1.0 - coverage[..., None]) * (
    0.35 + 0.4 * grey
  )
  if colors is None:  # A strength map: the image, fading to grey where there is less style.
    overlay = coverage[..., None] * image + (1.0 - coverage[..., None]) * (0.35 + 0.4 * grey)
  panels = [fit_and_pad(picture, (h, w)), shown, overlay]
  titles = ['as read', 'regions' if colors is not None else 'strength', 'on the image']
  header = max(20, h // 10)
  gutter = 4
  sheet = np.ones((header + h + 2 * gutter, gutter + 3 * (w + gutter), 3), np.float32)
  for j, (panel, title) in enumerate(zip(panels, titles, strict=True)):
    left = gutter + j * (w + gutter)
    sheet[gutter : gutter + header, left : left + w] = text_image(title, (header, w), header // 2)
    sheet[gutter + header : gutter + header + h, left : left + w] = np.clip(panel, 0.0, 1.0)
  return sheet
