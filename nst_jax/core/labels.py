"""Label maps: colour-coded regions and greyscale strength maps, as region weights (NumPy).

A label map is an image whose colours name regions, as in deep-photo-styletransfer's
segmentation masks (Luan et al., 2017): `match` assigns every pixel to one of the listed colours
or to none (-1: content only), and `one_hot` turns that into region weights (H, W, R) for the
`'regions'` guide (`nst_jax.core.masks`). A greyscale image is a strength map instead
(`strength`): one region, weighted by the grey level.

Colour matching, robust to JPEG noise at region edges (`match`):

1. A pixel within `tolerance` of a listed colour in every channel (deep-photo's +-0.1) is that
   colour's (the nearest one, if several are that close).
2. The map's other colours, those that cover at least `MIN_SHARE` of its pixels (in bins of
   `tolerance` per channel), are regions that are not listed: their pixels within `tolerance` of
   their mean colour keep the content only.
3. The pixels left are what compression and antialiasing make of edges (JPEG's ringing, blends of
   two neighbouring colours, a seam one or two pixels wide): each goes to the nearest colour of
   steps 1 and 2, so that a region ends where its edge is, not a seam of content-only pixels
   short of it.
"""

import re
from collections.abc import Sequence

import numpy as np

from nst_jax.errors import ConfigError

DEFAULT_TOLERANCE = 0.1
# A colour that is not listed must cover this share of a label map to be a region of its own;
# fewer pixels of it are edge noise, given to the nearest region.
MIN_SHARE = 0.005

_HEX = re.compile(r'^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$')


def parse_colors(texts: Sequence[str], label: str = '--mask_colors') -> np.ndarray:
  """'#rrggbb' (or '#rgb', '#' optional) colours -> (R, 3) float32 in [0, 1].

  Raises:
    ConfigError: a colour that is not hexadecimal, or the same colour twice.
  """
  colors = []
  for text in texts:
    found = _HEX.match(text.strip())
    if not found:
      raise ConfigError(f"{label}: {text!r} is not a colour like '#ff8800' or '#f80'")
    digits = found.group(1)
    if len(digits) == 3:
      digits = ''.join(2 * d for d in digits)
    colors.append([int(digits[i : i + 2], 16) / 255.0 for i in (0, 2, 4)])
  out = np.asarray(colors, np.float32).reshape(-1, 3)
  for i in range(len(out)):
    for j in range(i):
      if np.array_equal(out[i], out[j]):
        raise ConfigError(f'{label}: {format_color(out[i])} is listed twice')
  return out


def format_color(color: Sequence[float]) -> str:
  """(3,) in [0, 1] -> '#rrggbb'."""
  return '#' + ''.join(f'{round(float(c) * 255):02x}' for c in color)


def is_greyscale(image: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> bool:
  """Whether every pixel of an RGB image (H, W, 3) has its channels within `tolerance`."""
  image = np.asarray(image, np.float32)
  return bool(np.all(np.ptp(image, axis=-1) <= tolerance))


def strength(image: np.ndarray) -> np.ndarray:
  """A greyscale image (H, W, 3) -> (H, W, 1) weights: white is 1 (full style), black 0."""
  return np.mean(np.asarray(image, np.float32), axis=-1, keepdims=True)


def _nearest(pixels: np.ndarray, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(N, 3), (K, 3) -> each pixel's nearest colour (N,) by Euclidean distance, and the largest
  channel difference to it (N,). One colour at a time: no (N, K, 3) array."""
  nearest = np.zeros(len(pixels), np.int64)
  best = np.full(len(pixels), np.inf, np.float32)
  for k, color in enumerate(colors):
    squared = np.sum(np.square(pixels - color), axis=-1)
    closer = squared < best
    nearest[closer], best[closer] = k, squared[closer]
  return nearest, np.max(np.abs(pixels - colors[nearest]), axis=-1)


def unlisted_colors(
  image: np.ndarray, colors: np.ndarray, tolerance: float = DEFAULT_TOLERANCE
) -> list[tuple[np.ndarray, float]]:
  """The map's colours that are not listed: `(colour (3,), share of the pixels)` for each bin of
  `tolerance` per channel that holds at least `MIN_SHARE` of the pixels outside every listed
  colour's tolerance, most common first."""
  pixels = np.asarray(image, np.float32).reshape(-1, 3)
  if len(colors):
    _, distance = _nearest(pixels, colors)
    pixels = pixels[distance > tolerance]
  if not len(pixels):
    return []
  bins = np.round(pixels / tolerance).astype(np.int32)
  keys, inverse, counts = np.unique(bins, axis=0, return_inverse=True, return_counts=True)
  total = np.asarray(image).shape[0] * np.asarray(image).shape[1]
  found = []
  for k in np.argsort(-counts, kind='stable'):
    if counts[k] < MIN_SHARE * total:
      break
    found.append((pixels[inverse.reshape(-1) == k].mean(axis=0), counts[k] / total))
  return found


def match(
  image: np.ndarray, colors: np.ndarray, tolerance: float = DEFAULT_TOLERANCE
) -> tuple[np.ndarray, np.ndarray]:
  """Each pixel's region in a colour-coded label map (see the module docstring).

  Args:
    image: (H, W, 3) in [0, 1], the label map as read.
    colors: (R, 3) the listed colours, in [0, 1]; region r is colour r.
    tolerance: the largest difference per channel of a pixel that matches a colour.

  Returns:
    `(labels, matched)`: labels (H, W) int32, r for region r and -1 for content only; matched
    (R,) how many pixels were within `tolerance` of each colour (0: the colour is not there).
  """
  image = np.asarray(image, np.float32)
  colors = np.asarray(colors, np.float32).reshape(-1, 3)
  pixels = image.reshape(-1, 3)
  nearest, distance = _nearest(pixels, colors)
  close = distance <= tolerance
  labels = np.where(close, nearest, -2)
  matched = np.bincount(nearest[close], minlength=len(colors))
  others = [color for color, _ in unlisted_colors(image, colors, tolerance)]
  if others:
    _, other_distance = _nearest(pixels, np.asarray(others))
    labels = np.where((labels == -2) & (other_distance <= tolerance), -1, labels)
  left = labels == -2
  if left.any():
    palette = np.concatenate([colors, np.asarray(others, np.float32).reshape(-1, 3)])
    nearest_all, _ = _nearest(pixels[left], palette)
    labels[left] = np.where(nearest_all < len(colors), nearest_all, -1)
  return labels.reshape(image.shape[:2]).astype(np.int32), matched


def one_hot(labels: np.ndarray, count: int) -> np.ndarray:
  """(H, W) labels in [-1, count) -> (H, W, count) float32 weights (-1: all zero)."""
  return (np.asarray(labels)[..., None] == np.arange(count)).astype(np.float32)


def main_colors(image: np.ndarray, tolerance: float = DEFAULT_TOLERANCE, count: int = 4) -> str:
  """The `count` most common colours of a label map, e.g. '#000000 (61%), #ffffff (39%)', for
  error messages."""
  found = unlisted_colors(image, np.zeros((0, 3), np.float32), tolerance)[:count]
  return ', '.join(f'{format_color(c)} ({100 * share:.0f}%)' for c, share in found) or 'none'
