"""Reading mask files: colour-coded label maps and greyscale strength maps, as region weights.

`load_mask` reads a mask for an image (a content or a style): it checks that the mask has the
image's aspect ratio, turns its colours into regions at the file's own resolution
(`nst_jax.core.labels`: colours matched within a tolerance, robust to JPEG noise at the edges),
and resizes the region weights to the image's size by the one resampling rule. Every problem is
one line naming the file.
"""

import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from nst_jax.core import labels, resample
from nst_jax.errors import ConfigError, ImageError
from nst_jax.io import images


class Mask(NamedTuple):
  """A mask file, read.

  Attributes:
    regions: (h, w, R) float32 in [0, 1], each region's weights at the image's size.
    picture: (H, W, 3) the file as read (RGB in [0, 1], its own size).
    labels: (H, W) int32 each pixel's region (-1: none), or None for a strength map.
  """

  regions: np.ndarray
  picture: np.ndarray
  labels: np.ndarray | None


def check_aspect(mask_shape: tuple[int, int], size: tuple[int, int], where: str, image: str):
  """Raises `ImageError` unless a mask of `mask_shape` (H, W) fits the image's `size` (h, w)
  exactly (the same aspect ratio, to the pixel at that size)."""
  if resample.fit_size(mask_shape, size) != tuple(size):
    raise ImageError(
      f'{where}: {mask_shape[1]}x{mask_shape[0]} px does not have the aspect ratio of its '
      f"{image} ({size[1]}x{size[0]} px at this size); a mask must have its image's shape"
    )


def load_mask(
  path: str | os.PathLike,
  size: tuple[int, int],
  *,
  colors: np.ndarray | None,
  tolerance: float = labels.DEFAULT_TOLERANCE,
  required: Sequence[int] | None = None,
  label: str = 'mask',
  image: str = 'image',
) -> Mask:
  """Reads a mask for an image whose size is `size` (h, w).

  Args:
    path: the mask file: a label map whose colours are `colors`, or, with `colors` None, a
      greyscale strength map (white: full style, black: content only).
    size: (h, w) of the image the mask is for, after fitting.
    colors: (R, 3) the listed colours in [0, 1] (`labels.parse_colors`), or None.
    tolerance: the largest difference per channel of a pixel that matches a colour.
    required: the regions that must have pixels (default all): a colour with none is an error.
    label: what the mask is, e.g. 'content mask'; starts error messages.
    image: what the mask is for, e.g. 'content image', for the aspect-ratio message.

  Raises:
    ImageError: the file cannot be read, or its aspect ratio is not the image's.
    ConfigError: a required colour matches no pixel, or a colour map with no `colors`.
  """
  where = f'{label} {os.fsdecode(path)!r}'
  picture = images.load_image(path, label=label)
  check_aspect(picture.shape[:2], size, where, image)
  if colors is None:
    if not labels.is_greyscale(picture, tolerance):
      raise ConfigError(
        f'{where} has colours ({labels.main_colors(picture, tolerance)}): name the regions with '
        '--mask_colors, or give a greyscale strength map'
      )
    regions, found = labels.strength(picture), None
  else:
    found, matched = labels.match(picture, colors, tolerance)
    for r in range(len(colors)) if required is None else required:
      if not matched[r]:
        raise ConfigError(
          f'--mask_colors: {labels.format_color(colors[r])} matches no pixel of {where} (within '
          f'+-{tolerance:g} per channel); its main colours are '
          f'{labels.main_colors(picture, tolerance)}'
        )
    regions = labels.one_hot(found, len(colors))
  return Mask(np.asarray(resample.resize(regions, size)), picture, found)
