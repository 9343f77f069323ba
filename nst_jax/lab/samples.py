"""Sample images for trying nst_jax: photographs to stylize and painting-like styles.

The content images are photographs bundled with scikit-image (the optional `samples` extra:
`pip install "nst_jax[samples]"`). The styles are drawn here by code, deterministically from a
seed, with NumPy and Pillow only, so that no artwork has to be downloaded:

  * 'swirls': brush strokes along a swirling flow field, in a night-sky blue and yellow palette,
    with glowing stars;
  * 'mosaic': Voronoi tiles in warm colours, separated by dark grout;
  * 'waves': woodblock-print bands of blue and cream with dark outlines and wood grain;
  * 'ihc': scikit-image's immunohistochemistry slide, a ready-made colourful texture.

    paths = nst_jax.lab.samples.write_samples('samples')
    # {'astronaut': 'samples/astronaut.png', ..., 'swirls': 'samples/style_swirls.png', ...}
"""

import os
import pathlib
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from nst_jax.errors import NSTError
from nst_jax.io import images

CONTENTS = ('astronaut', 'coffee', 'chelsea')
STYLES = ('swirls', 'mosaic', 'waves', 'ihc')


def skimage_data():
  try:
    from skimage import data
  except ImportError:
    raise NSTError(
      'the sample photographs come from scikit-image, which is not installed: '
      'pip install "nst_jax[samples]" (or scikit-image)'
    ) from None
  return data


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
  """(y, x) coordinates in [0, 1), each (size, size)."""
  axis = np.arange(size, dtype=np.float32) / size
  return np.meshgrid(axis, axis, indexing='ij')


def _palette(value: np.ndarray, stops: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
  """Maps `value` in [0, 1] through a piecewise-linear colour ramp to (..., 3) floats."""
  positions = np.asarray([p for p, _ in stops], np.float32)
  colours = np.asarray([c for _, c in stops], np.float32) / 255.0
  value = np.clip(value, 0.0, 1.0)
  return np.stack([np.interp(value, positions, colours[:, c]) for c in range(3)], axis=-1)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
  """Smooth value noise in [0, 1]: random values on a `cells` grid, bicubically upsampled."""
  coarse = rng.random((cells, cells), dtype=np.float32)
  image = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
  out = np.asarray(image, np.float32)
  return (out - out.min()) / max(float(np.ptp(out)), 1e-6)


def _bilinear(field: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
  """Samples a (H, W) array at float pixel coordinates, wrapping around the edges."""
  height, width = field.shape
  y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
  fy, fx = y - y0, x - x0
  y0, x0 = y0 % height, x0 % width
  y1, x1 = (y0 + 1) % height, (x0 + 1) % width
  top = field[y0, x0] * (1 - fx) + field[y0, x1] * fx
  bottom = field[y1, x0] * (1 - fx) + field[y1, x1] * fx
  return top * (1 - fy) + bottom * fy


def _line_integral(
  noise: np.ndarray, vy: np.ndarray, vx: np.ndarray, length: int, step: float = 1.0
) -> np.ndarray:
  """Line integral convolution: `noise` averaged along the streamlines of the unit field."""
  height, width = noise.shape
  y0, x0 = np.meshgrid(
    np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32), indexing='ij'
  )
  total = noise.copy()
  for direction in (1.0, -1.0):
    y, x = y0.copy(), x0.copy()
    for _ in range(length):
      dy, dx = _bilinear(vy, y, x), _bilinear(vx, y, x)
      y, x = y + direction * step * dy, x + direction * step * dx
      total += _bilinear(noise, y, x)
  return total / (2 * length + 1)


def swirls(size: int = 512, seed: int = 0) -> np.ndarray:
  """Swirling brush strokes in a starry-night palette, (size, size, 3) floats in [0, 1]."""
  rng = np.random.default_rng(seed)
  y, x = _grid(size)
  # A stream function made of a few vortices and a slow wave; strokes follow its level lines.
  psi = 0.35 * np.sin(2 * np.pi * (1.3 * x + 0.4 * y)) * np.cos(2 * np.pi * 0.7 * y)
  centres = rng.random((6, 2), dtype=np.float32)
  for (cy, cx), strength in zip(centres, rng.uniform(-1.0, 1.0, 6), strict=True):
    psi += strength * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 0.02)
  gy, gx = np.gradient(psi)
  norm = np.hypot(gy, gx) + 1e-8
  vy, vx = gx / norm, -gy / norm  # Perpendicular to the gradient: along the level lines.
  # Coarse noise makes strokes a few pixels wide rather than single-pixel hatching.
  grain = np.asarray(
    Image.fromarray(rng.random((size // 3, size // 3), dtype=np.float32)).resize(
      (size, size), Image.Resampling.NEAREST
    ),
    np.float32,
  )
  strokes = _line_integral(grain, vy, vx, length=14)
  strokes = (strokes - strokes.mean()) / (strokes.std() + 1e-6)
  bands = 0.5 + 0.5 * np.sin(12 * psi + 0.6 * strokes)
  value = 0.55 * bands + 0.12 * strokes + 0.25 * _smooth_noise(rng, size, 5)
  image = _palette(
    value,
    [
      (0.0, (10, 22, 60)),
      (0.3, (25, 60, 140)),
      (0.55, (70, 120, 190)),
      (0.72, (150, 185, 200)),
      (0.86, (235, 200, 80)),
      (1.0, (250, 240, 170)),
    ],
  )
  # Stars: yellow discs with halo rings.
  for cy, cx in rng.random((7, 2), dtype=np.float32):
    distance = np.hypot(y - cy, x - cx) * size
    radius = rng.uniform(8, 18)
    halo = np.exp(-(((distance - 2.2 * radius) / 3.0) ** 2)) * 0.7
    disc = np.clip(radius - distance, 0.0, 1.0)
    glow = np.clip(np.maximum(disc, halo) + 0.15 * strokes * disc, 0.0, 1.0)[..., None]
    image = image * (1 - glow) + glow * np.asarray([0.98, 0.9, 0.45], np.float32)
  return np.clip(image, 0.0, 1.0).astype(np.float32)


def mosaic(size: int = 512, seed: int = 1) -> np.ndarray:
  """Voronoi tiles in warm colours with dark grout, (size, size, 3) floats in [0, 1]."""
  rng = np.random.default_rng(seed)
  cell = 28  # Mean tile size in pixels: one jittered seed point per grid cell.
  cells = size // cell + 3  # Grid cell (i, j) covers pixels from (i - 1) * cell, (j - 1) * cell.
  index = np.arange(cells, dtype=np.float32)
  jitter = rng.random((cells, cells, 2), dtype=np.float32)
  seeds_y = (index[:, None] - 1 + jitter[..., 0]) * cell
  seeds_x = (index[None, :] - 1 + jitter[..., 1]) * cell
  py, px = np.meshgrid(
    np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32), indexing='ij'
  )
  gy, gx = (py // cell).astype(np.int64) + 1, (px // cell).astype(np.int64) + 1
  distances, owners = [], []
  for dy in (-1, 0, 1):
    for dx in (-1, 0, 1):
      ny, nx = np.clip(gy + dy, 0, cells - 1), np.clip(gx + dx, 0, cells - 1)
      distances.append(np.hypot(py - seeds_y[ny, nx], px - seeds_x[ny, nx]))
      owners.append(ny * cells + nx)
  distances, owners = np.stack(distances), np.stack(owners)
  order = np.argsort(distances, axis=0)
  nearest = np.take_along_axis(distances, order[:1], axis=0)[0]
  second = np.take_along_axis(distances, order[1:2], axis=0)[0]
  owner = np.take_along_axis(owners, order[:1], axis=0)[0]
  warm = np.asarray(
    [
      (178, 62, 38),
      (214, 120, 45),
      (232, 170, 60),
      (240, 210, 140),
      (150, 40, 45),
      (196, 92, 60),
      (120, 60, 40),
      (226, 146, 92),
    ],
    np.float32,
  )
  tile_colour = warm[rng.integers(0, len(warm), cells * cells)] / 255.0
  tile_colour *= rng.uniform(0.85, 1.1, (cells * cells, 1))
  image = tile_colour[owner]
  # Glaze: each tile brighter towards its centre, plus fine speckle.
  image *= (1.05 - 0.25 * np.clip(nearest / cell, 0.0, 1.0))[..., None]
  image *= 1.0 + 0.08 * (rng.random((size, size, 1), dtype=np.float32) - 0.5)
  grout = np.clip((second - nearest - 1.5) / 1.5, 0.0, 1.0)[..., None]
  image = image * grout + (1 - grout) * np.asarray([0.16, 0.11, 0.09], np.float32)
  return np.clip(image, 0.0, 1.0).astype(np.float32)


def waves(size: int = 512, seed: int = 2) -> np.ndarray:
  """Woodblock-print wave bands in blue and cream with outlines, (size, size, 3) in [0, 1]."""
  rng = np.random.default_rng(seed)
  y, x = _grid(size)
  warp = 0.05 * np.sin(2 * np.pi * (3 * x + rng.random())) + 0.03 * np.sin(
    2 * np.pi * (7 * x + 2 * y + rng.random())
  )
  warp += 0.04 * (_smooth_noise(rng, size, 6) - 0.5)
  # Crests: a sharp sawtooth profile gives the curling, claw-like wave fronts.
  phase = 9.0 * (y + warp) + 0.25 * np.sin(2 * np.pi * 2 * x)
  band = np.floor(phase)
  within = phase - band
  colours = np.asarray(
    [(20, 40, 90), (45, 85, 150), (110, 160, 200), (235, 228, 205), (60, 110, 170)], np.float32
  )
  image = colours[band.astype(np.int64) % len(colours)] / 255.0
  # Inner stripes near each band's top edge, like carved foam lines.
  stripes = (np.sin(2 * np.pi * 5 * within) > 0.6) & (within < 0.45)
  image = np.where(stripes[..., None], image * 0.55 + 0.45 * np.float32(0.93), image)
  outline = np.clip(1.0 - np.minimum(within, 1 - within) * size / 9 / 1.2, 0.0, 1.0)[..., None]
  image = image * (1 - outline) + outline * np.asarray([0.08, 0.1, 0.18], np.float32)
  # Wood grain: long horizontal streaks of slightly darker ink.
  grain = np.asarray(
    Image.fromarray(rng.random((size, size // 16), dtype=np.float32)).resize(
      (size, size), Image.Resampling.BILINEAR
    ),
    np.float32,
  )
  image *= (0.9 + 0.12 * grain)[..., None]
  return np.clip(image, 0.0, 1.0).astype(np.float32)


def _from_skimage(name: str) -> Callable[[], np.ndarray]:
  def load() -> np.ndarray:
    return np.asarray(getattr(skimage_data(), name)(), np.float32)[..., :3] / 255.0

  return load


def _soften(image: np.ndarray) -> np.ndarray:
  """A very slight blur, so that procedural edges are not single-pixel aliased steps."""
  pil = Image.fromarray(np.round(image * 255).astype(np.uint8))
  return np.asarray(pil.filter(ImageFilter.GaussianBlur(0.6)), np.float32) / 255.0


def smooth_image(rng: np.random.Generator, size: int) -> np.ndarray:
  """A smooth RGB test image (size, size, 3) float32 in [0, 1] for benchmarks: four random
  sinusoids per channel, built one channel and one sinusoid at a time so that its temporaries
  stay small next to it (memory benchmarks measure the whole process)."""
  y = np.linspace(0, 1, size, dtype=np.float32)[:, None]
  x = np.linspace(0, 1, size, dtype=np.float32)[None, :]
  out = np.full((size, size, 3), 0.5, np.float32)
  for c in range(3):
    for _ in range(4):
      fy, fx = rng.uniform(1, 12, 2).astype(np.float32)
      phase = np.float32(rng.uniform(0, 2 * np.pi))
      out[..., c] += 0.12 * np.sin(2 * np.pi * (fx * x + fy * y) + phase)
  return np.clip(out, 0.0, 1.0, out=out)


def photo(name: str) -> np.ndarray:
  """A scikit-image image by name (`skimage.data.<name>`, 'motorcycle': the left of the stereo
  pair) as (H, W, 3) RGB floats in [0, 1], grey repeated; or a style drawn here ('swirls',
  'mosaic', 'waves')."""
  drawn = {'swirls': swirls, 'mosaic': mosaic, 'waves': waves}
  if name in drawn:
    return drawn[name]()
  data = skimage_data()
  if name != 'motorcycle' and not callable(getattr(data, name, None)):
    raise NSTError(f"{name!r} is not an image of scikit-image's skimage.data")
  image = data.stereo_motorcycle()[0] if name == 'motorcycle' else getattr(data, name)()
  image = np.asarray(image, np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
  return np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]


def write_photos(folder: str | os.PathLike, names: Sequence[str]) -> dict[str, str]:
  """Writes each image of `photo(name)` as `<folder>/<name>.png`; `{name: path}`."""
  written = {}
  for name in names:
    written[name] = str(pathlib.Path(folder, f'{name}.png'))
    images.save_image(written[name], photo(name))
  return written


def write_samples(folder: str | os.PathLike, *, size: int = 512, seed: int = 0) -> dict[str, str]:
  """Writes the sample contents and styles as PNG files into `folder` (created if missing).

  Args:
    folder: output folder.
    size: side of the square procedural styles, in pixels.
    seed: seeds the procedural styles; the same seed gives the same images.

  Returns:
    `{name: path}`: contents 'astronaut', 'coffee', 'chelsea' (`<name>.png`) and styles
    'swirls', 'mosaic', 'waves', 'ihc' (`style_<name>.png`).

  Raises:
    NSTError: scikit-image is not installed.
  """
  folder = pathlib.Path(folder)
  data = skimage_data()  # Fails early, before anything is written.
  del data
  makers: dict[str, tuple[str, Callable[[], np.ndarray]]] = {
    name: (f'{name}.png', _from_skimage(name)) for name in CONTENTS
  }
  makers['swirls'] = ('style_swirls.png', lambda: _soften(swirls(size, seed)))
  makers['mosaic'] = ('style_mosaic.png', lambda: _soften(mosaic(size, seed + 1)))
  makers['waves'] = ('style_waves.png', lambda: _soften(waves(size, seed + 2)))
  makers['ihc'] = ('style_ihc.png', _from_skimage('immunohistochemistry'))
  paths = {}
  for name, (filename, make) in makers.items():
    path = folder / filename
    images.save_image(path, make(), label=f'sample {name!r}')
    paths[name] = str(path)
  return paths


# --- Masks for the samples (docs/masks.md), made by code ------------------------------------------


def _blurred(mask: np.ndarray, radius: float) -> np.ndarray:
  pil = Image.fromarray(np.round(mask * 255).astype(np.uint8))
  return np.asarray(pil.filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255.0


def _label_image(region: np.ndarray) -> np.ndarray:
  """A boolean map (H, W) -> a label map: black where True, white elsewhere."""
  return np.repeat(np.where(region, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)


def sky_labels(image: np.ndarray) -> np.ndarray:
  """A label map of a photograph's sky: black where the pixels are blue (blue above red by 0.06)
  and reach the top edge, white elsewhere; small specks closed. (H, W, 3) in {0, 1}."""
  from scipy import ndimage

  blue = (image[..., 2] - image[..., 0] > 0.06) & (image[..., 2] > 0.15)
  blue = ndimage.binary_closing(ndimage.binary_opening(blue), iterations=2)
  parts, _ = ndimage.label(blue)
  sky = np.isin(parts, np.setdiff1d(np.unique(parts[:5]), [0]))
  return _label_image(ndimage.binary_fill_holes(sky))


def stain_labels(image: np.ndarray) -> np.ndarray:
  """A label map of an immunohistochemistry slide: white on the brown-stained tissue (red above
  blue by 0.1, smoothed over about 8 px), black on the pale blue rest. (H, W, 3) in {0, 1}."""
  brown = _blurred((image[..., 0] - image[..., 2] > 0.1).astype(np.float32), 8.0) > 0.5
  return _label_image(~brown)


def face_strength(image: np.ndarray) -> np.ndarray:
  """A strength map that keeps faces photographic: black (no style) on an ellipse around each
  face that scikit-image's frontal-face detector finds, fading to white (full style) over about
  a tenth of the face. (H, W, 3) grey in [0, 1]."""
  from skimage import feature

  data = skimage_data()
  detector = feature.Cascade(data.lbp_frontal_face_cascade_filename())
  pixels = np.round(image * 255).astype(np.uint8)
  faces = detector.detect_multi_scale(pixels, 1.2, 1, (60, 60), (400, 400))
  y, x = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
  keep = np.zeros(image.shape[:2], np.float32)
  for face in faces:
    cy, cx = face['r'] + 0.55 * face['height'], face['c'] + 0.5 * face['width']
    inside = ((y - cy) / (0.8 * face['height'])) ** 2 + ((x - cx) / (0.62 * face['width'])) ** 2
    keep = np.maximum(keep, (inside <= 1).astype(np.float32))
  radius = 0.1 * max((f['width'] for f in faces), default=10)
  return np.repeat(1.0 - _blurred(keep, radius)[..., None], 3, axis=-1)


def write_mask_samples(folder: str | os.PathLike) -> dict[str, str]:
  """Writes the masks of the gallery's regions examples (docs/masks.md) into `folder`.

  Returns:
    `{name: path}`: 'rocket' (scikit-image's photograph), 'rocket_labels' (`sky_labels`),
    'astronaut_face' (`face_strength` of the astronaut) and 'style_ihc_labels' (`stain_labels`
    of the 'ihc' style).
  """
  folder = pathlib.Path(folder)
  rocket = _from_skimage('rocket')()
  made = {
    'rocket': rocket,
    'rocket_labels': sky_labels(rocket),
    'astronaut_face': face_strength(_from_skimage('astronaut')()),
    'style_ihc_labels': stain_labels(_from_skimage('immunohistochemistry')()),
  }
  paths = {}
  for name, image in made.items():
    paths[name] = str(folder / f'{name}.png')
    images.save_image(paths[name], image, label=f'sample {name!r}')
  return paths
