"""The coarse-to-fine schedule: the size and steps of each scale, and the style images' size.

Images are resized by the one rule of `nst_jax.core.resample`.
"""

from collections.abc import Sequence
from typing import Any

import ml_collections

from nst_jax.core import vgg
from nst_jax.core.resample import fit_size
from nst_jax.errors import ImageError


def scale_sizes(shape: tuple[int, int], config: ml_collections.ConfigDict) -> list[tuple[int, int]]:
  """(height, width) of each scale, coarsest first; the last has longest side `image_size`."""
  return [
    fit_size(shape, round(config.image_size / config.schedule.scale_ratio**k))
    for k in reversed(range(config.schedule.num_scales))
  ]


def steps_per_scale(config: ml_collections.ConfigDict) -> list[int]:
  """Optimizer steps at each scale, coarsest first."""
  coarse = config.schedule.coarse_steps or config.schedule.num_steps
  return [coarse] * (config.schedule.num_scales - 1) + [config.schedule.num_steps]


def style_side(content_size: tuple[int, int], config: ml_collections.ConfigDict) -> int:
  """Longest side of the style images for content of `content_size` (height, width)."""
  return max(1, round(config.style_image.size or config.style_image.scale * max(content_size)))


def final_style_side(config: ml_collections.ConfigDict) -> int:
  """Longest side of the style images at the final scale, where the content's is `image_size`."""
  return style_side((config.image_size, config.image_size), config)


def save_points(config: ml_collections.ConfigDict, save_every: int) -> list[int]:
  """Steps (counted over all scales) after which `--save_every N` writes intermediate images.

  Images exist only between compiled chunks of `config.schedule.chunk_size` steps, so an image is
  written at the first chunk boundary at or after each multiple of N (not after the last step:
  that is the output itself).
  """
  if save_every <= 0:
    return []
  boundaries, offset = [], 0
  for steps in steps_per_scale(config):
    boundaries += [
      offset + min(c * config.schedule.chunk_size, steps)
      for c in range(1, 1 + -(-steps // config.schedule.chunk_size))
    ]
    offset += steps
  points, previous = [], 0
  for b in boundaries[:-1]:
    if b // save_every > previous // save_every:
      points.append(b)
    previous = b
  return points


def check_sizes(
  sizes: Sequence[tuple[int, int]],
  styles: Sequence[Any],
  layers: Sequence[str],
  config: ml_collections.ConfigDict,
) -> None:
  """Raises `ImageError` where the contents at a scale of `sizes`, or a style image (H, W, 3)
  fitted to it, are smaller than the deepest of `layers` (in network order) needs."""
  if not layers:
    return
  stride = vgg.layer_stride(layers[-1])
  smallest = min(min(size) for size in sizes)
  if smallest < stride:
    raise ImageError(
      f'the image is {smallest} px on its short side at the coarsest scale, too small for '
      f'layer {layers[-1]} (needs at least {stride} px); raise config.image_size'
    )
  for i, style in enumerate(styles):
    for size in sizes:
      shape = fit_size(style.shape[:2], style_side(size, config))
      if min(shape) < stride:
        raise ImageError(
          f'style image {i} is {min(shape)} px on its short side at {size[0]}x{size[1]}, too '
          f'small for layer {layers[-1]} (needs at least {stride} px); raise '
          'config.style_image.scale'
        )
