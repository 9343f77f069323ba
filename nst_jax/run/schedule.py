"""The coarse-to-fine schedule: the size and steps of each scale, and the style images' size.

Images are resized by the one rule of `nst_jax.core.resample`.
"""

import ml_collections

from nst_jax.core.resample import fit_size


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
