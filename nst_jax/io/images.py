"""Reading and writing image files: the I/O edge of nst_jax (NumPy and Pillow).

Inside the library an image is an array of shape (H, W, 3): RGB, float32, values in [0, 1].
`load_image` turns any file Pillow can decode into that form and `save_image` writes it back as
8 bits per channel. Every problem with a file the user named raises `nst_jax.errors.ImageError`
with a one-line message that starts with the file's name.

Conventions of `load_image`:
  * Transparency (RGBA, LA, PA, palette or tRNS transparency) is composited over WHITE, the
    background most viewers show; style transfer needs an opaque image.
  * 16-bit data keeps its precision: 16-bit greyscale (any format Pillow reads as 'I;16' or 'I')
    and 16-bit RGB/RGBA PNG files are scaled by 1/65535, not truncated to 8 bits. Mode 'F' (float
    TIFF) is taken to be in [0, 1] already and clipped.
  * EXIF orientation is applied, so a photo comes out the way viewers display it.
  * The first frame of an animated or multi-page file is used; CMYK is converted naively (no ICC).
  * Images with more pixels than a limit are refused as possible decompression bombs. The limit is
    `max_pixels` if given, else the environment variable `NST_JAX_MAX_IMAGE_PIXELS`, else Pillow's
    `Image.MAX_IMAGE_PIXELS` (89,478,485 pixels by default, e.g. 9459 x 9459). Pillow only warns
    between that limit and twice it; here that zone is over the limit too. Raising the limit sets
    Pillow's global value only while the file is read, under a lock, and then restores it.
"""

import contextlib
import logging
import os
import pathlib
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError, features

from nst_jax.core import resample
from nst_jax.errors import ConfigError, ImageError
from nst_jax.io import files

log = logging.getLogger(__name__)

PathLike = str | os.PathLike

# Environment variable that sets the decompression-bomb limit, in pixels.
MAX_PIXELS_ENV = 'NST_JAX_MAX_IMAGE_PIXELS'

# Output extension -> Pillow format, and the options each format is saved with.
SAVE_FORMATS: dict[str, str] = {
  '.png': 'PNG',
  '.jpg': 'JPEG',
  '.jpeg': 'JPEG',
  '.webp': 'WEBP',
  '.bmp': 'BMP',
  '.tif': 'TIFF',
  '.tiff': 'TIFF',
}
_SAVE_OPTIONS: dict[str, dict[str, object]] = {
  'JPEG': {'quality': 95, 'subsampling': 0},  # 4:4:4: stylised textures have fine colour detail.
  'WEBP': {'quality': 95},
}

_GREY16_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I')
# Pillow decodes 16-bit RGB(A) PNG rows to 8 bits, keeping the high byte. Decoding the same data
# again with the little-endian raw mode keeps the other byte, the low one.
_PNG16_LOW_BYTE_RAWMODE = {'RGB;16B': 'RGB;16L', 'RGBA;16B': 'RGBA;16L'}
_EXIF_ORIENTATION = 0x0112
# EXIF orientation -> how to turn the stored (H, W, C) pixels into the displayed ones; the same
# table as `PIL.ImageOps.exif_transpose`, written for arrays so that it also serves 16-bit data.
_ORIENT = {
  2: lambda a: a[:, ::-1],
  3: lambda a: a[::-1, ::-1],
  4: lambda a: a[::-1],
  5: lambda a: a.transpose(1, 0, 2),
  6: lambda a: np.rot90(a, -1),
  7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
  8: lambda a: np.rot90(a, 1),
}
_PILLOW_LIMIT_LOCK = threading.Lock()


def _where(path: PathLike, label: str | None) -> str:
  name = repr(os.fsdecode(path))
  return f'{label} {name}' if label else name


def _one_line(exc: BaseException) -> str:
  text = ' '.join(str(exc).split())
  if len(text) > 200:
    text = text[:197] + '...'
  return f'{type(exc).__name__}: {text}' if text else type(exc).__name__


def _positive_int(value: object, what: str, where: str) -> int:
  if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
    raise ConfigError(f'{where}: {what} must be a positive integer, got {value!r}')
  return int(value)


def _pixel_limit(max_pixels: int | None, where: str) -> int | None:
  if max_pixels is not None:
    return _positive_int(max_pixels, 'max_pixels', where)
  env = os.environ.get(MAX_PIXELS_ENV, '').strip()
  if env:
    try:
      value = int(env)
    except ValueError:
      value = env
    return _positive_int(value, f'environment variable {MAX_PIXELS_ENV}', where)
  return Image.MAX_IMAGE_PIXELS


def _bomb_error(where: str, limit: int | None, pixels: str) -> ImageError:
  return ImageError(
    f'{where}: image has {pixels} pixels, more than the limit of {limit} (a possible '
    f'decompression bomb); if you trust the file, raise the limit with max_pixels=N or the '
    f'environment variable {MAX_PIXELS_ENV}=N'
  )


@contextlib.contextmanager
def _pillow_limits(limit: int | None) -> Iterator[None]:
  """Lets Pillow read images up to `limit` pixels and turns its bomb warning into an error.

  Pillow's limit is global, so it is raised (never lowered: `_read` checks lower limits itself)
  under a lock and restored afterwards.
  """
  saved = Image.MAX_IMAGE_PIXELS
  raise_it = saved is not None and (limit is None or limit > saved)
  with contextlib.ExitStack() as stack:
    if raise_it:
      stack.enter_context(_PILLOW_LIMIT_LOCK)
      saved = Image.MAX_IMAGE_PIXELS
      Image.MAX_IMAGE_PIXELS = limit
      stack.callback(setattr, Image, 'MAX_IMAGE_PIXELS', saved)
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter('error', Image.DecompressionBombWarning)
    yield


def _png16_low_bytes(path: PathLike, image: Image.Image, tile: Sequence) -> np.ndarray | None:
  """The low bytes of a 16-bit RGB(A) PNG, (H, W, C) uint8, or None for any other file."""
  if image.format != 'PNG' or len(tile) != 1 or getattr(image, 'is_animated', False):
    return None
  low_rawmode = _PNG16_LOW_BYTE_RAWMODE.get(getattr(tile[0], 'args', None))
  if low_rawmode is None:
    return None
  try:
    with Image.open(path) as low:
      low.tile = [tile[0]._replace(args=low_rawmode)]
      low.load()
      if low.size != image.size or low.mode != image.mode:
        return None
      return np.asarray(low)
  except Exception as exc:  # The 8-bit decode already succeeded; keep it.
    log.warning('%r: 16-bit PNG read at 8 bits (%s)', os.fsdecode(path), _one_line(exc))
    return None


def _to_float_rgb(image: Image.Image, low_bytes: np.ndarray | None) -> np.ndarray:
  """Decoded Pillow image -> float32 (H, W, 3) in [0, 1], transparency composited over white."""
  mode = image.mode
  transparency = image.info.get('transparency')
  alpha = None
  if mode in _GREY16_MODES:
    raw = np.asarray(image)
    value = np.clip(raw.astype(np.float32) / 65535.0, 0.0, 1.0)[..., None]
    if isinstance(transparency, int):
      alpha = (raw != transparency)[..., None].astype(np.float32)
  elif mode == 'F':
    value = np.nan_to_num(np.asarray(image, np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    value = np.clip(value, 0.0, 1.0)[..., None]
  elif low_bytes is not None:
    raw = (np.asarray(image).astype(np.uint16) << 8) | low_bytes
    value = raw.astype(np.float32) / 65535.0
    if mode == 'RGBA':
      value, alpha = value[..., :3], value[..., 3:]
    elif isinstance(transparency, tuple) and len(transparency) == 3:
      alpha = np.any(raw != np.asarray(transparency), axis=-1, keepdims=True).astype(np.float32)
  elif 'A' in mode or 'a' in mode or transparency is not None:
    rgba = np.asarray(image.convert('RGBA'), np.float32) / 255.0
    value, alpha = rgba[..., :3], rgba[..., 3:]
  else:
    value = np.asarray(image.convert('RGB'), np.float32) / 255.0
  if alpha is not None:
    value = value * alpha + (1.0 - alpha)
  return np.ascontiguousarray(np.broadcast_to(value, value.shape[:2] + (3,)), np.float32)


def _orient(array: np.ndarray, image: Image.Image, where: str) -> np.ndarray:
  try:
    orientation = image.getexif().get(_EXIF_ORIENTATION)
  except Exception as exc:  # Unreadable EXIF: show the pixels as stored.
    log.warning('%s: EXIF orientation ignored (%s)', where, _one_line(exc))
    return array
  transform = _ORIENT.get(orientation) if isinstance(orientation, int) else None
  return array if transform is None else np.ascontiguousarray(transform(array))


def _read(path: PathLike, where: str, limit: int | None) -> np.ndarray:
  """Decodes the whole file: float32 (H, W, 3) in [0, 1], as displayed."""
  if not os.path.lexists(path):
    raise ImageError(f'{where}: file not found')
  if os.path.isdir(path):
    raise ImageError(f'{where}: is a folder, not an image file')
  try:
    if os.path.getsize(path) == 0:
      raise ImageError(f'{where}: file is empty (0 bytes)')
    with _pillow_limits(limit), Image.open(path) as image:
      width, height = image.size
      if width < 1 or height < 1:
        raise ImageError(f'{where}: image has a zero dimension ({width}x{height})')
      if limit is not None and width * height > limit:
        raise _bomb_error(where, limit, f'{width}x{height} = {width * height}')
      tile = list(image.tile)
      image.load()  # Decodes every pixel now, so a truncated file fails here and not later.
      low_bytes = _png16_low_bytes(path, image, tile)
      array = _to_float_rgb(image, low_bytes)
      return _orient(array, image, where)
  except ImageError:
    raise
  except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
    match = re.search(r'\((\d+) pixels\)', str(exc))
    raise _bomb_error(where, limit, match.group(1) if match else 'too many') from None
  except FileNotFoundError:
    raise ImageError(f'{where}: file not found') from None
  except PermissionError:
    raise ImageError(f'{where}: permission denied') from None
  except UnidentifiedImageError:
    raise ImageError(
      f'{where}: not an image Pillow can read (unknown format or damaged header)'
    ) from None
  except MemoryError:
    raise ImageError(f'{where}: not enough memory to decode the image') from None
  except Exception as exc:  # Pillow's decoders raise many types on bad data.
    raise ImageError(
      f'{where}: cannot decode the image, the file is corrupt or truncated ({_one_line(exc)})'
    ) from exc


def load_image(
  path: PathLike,
  *,
  max_side: int | None = None,
  max_pixels: int | None = None,
  label: str | None = None,
) -> np.ndarray:
  """Reads an image file as RGB floats, applying EXIF orientation and compositing alpha on white.

  Args:
    path: any file Pillow can decode (PNG, JPEG, WebP, BMP, GIF, TIFF, ...).
    max_side: if given, the image is resized by nst_jax's one rule (`resample.resize`: Lanczos,
      antialiased) so that its longer side is exactly `max_side` pixels, up or down, keeping the
      aspect ratio (`resample.fit_size`: the shorter side rounded, at least 1).
    max_pixels: decompression-bomb limit for this call, in pixels (width * height, before any
      resizing). Defaults to `$NST_JAX_MAX_IMAGE_PIXELS`, else Pillow's `Image.MAX_IMAGE_PIXELS`.
    label: what the image is for, e.g. 'content image'; prefixes error messages.

  Returns:
    float32 array of shape (H, W, 3), RGB, values in [0, 1]; 16-bit files keep their precision.

  Raises:
    ImageError: the file is missing, a folder, empty, not an image, corrupt or truncated, or has
      more pixels than the limit. The message is one line starting with `label` and the path.
    ConfigError: `max_side`, `max_pixels` or `$NST_JAX_MAX_IMAGE_PIXELS` is not a positive
      integer.
  """
  where = _where(path, label)
  if max_side is not None:
    max_side = _positive_int(max_side, 'max_side', where)
  image = _read(path, where, _pixel_limit(max_pixels, where))
  if max_side is not None:
    image = np.asarray(resample.resize(image, resample.fit_size(image.shape[:2], max_side)))
  return image


def read_size(path: PathLike, *, label: str | None = None) -> tuple[int, int]:
  """(height, width) of an image file as displayed (EXIF rotation applied), from its header.

  Raises:
    ImageError: as `load_image`, for a file that cannot be read (then it is decoded, so that
      the message is the same).
  """
  try:
    with Image.open(path) as image:
      width, height = image.size
      orientation = image.getexif().get(_EXIF_ORIENTATION)
  except Exception:  # Let load_image report the problem, with its wording.
    return load_image(path, label=label).shape[:2]
  return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def _format_for(path: pathlib.Path, where: str) -> str:
  fmt = SAVE_FORMATS.get(path.suffix.lower())
  if fmt is None:
    raise ImageError(
      f'{where}: unsupported output extension {path.suffix or "(none)"!r}; use one of '
      + ', '.join(SAVE_FORMATS)
    )
  return fmt


def check_writable(path: PathLike, *, label: str | None = None) -> None:
  """Fails early, before a long run, if `save_image(path, ...)` could not succeed.

  Checks that the extension is supported and that the output folder exists and is writable, or
  can be created (its nearest existing ancestor is a writable folder). Creates nothing.

  Raises:
    ImageError: one line naming `path` and the problem.
  """
  where = _where(path, label)
  target = pathlib.Path(os.fsdecode(path))
  if _format_for(target, where) == 'WEBP' and not features.check('webp'):
    raise ImageError(f'{where}: this Pillow was built without WebP support; use .png or .jpg')
  if target.is_dir():
    raise ImageError(f'{where}: is a folder; give a file name such as {str(target / "out.png")!r}')
  problem = files.folder_problem(target.absolute().parent, 'the output folder')
  if problem:
    raise ImageError(f'{where}: {problem}')


def to_8bit(image: Any) -> np.ndarray:
  """The uint8 pixels a saved file holds for an image with values in [0, 1] (clipped, rounded)."""
  return np.round(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def save_image(path: PathLike, image: np.ndarray, *, label: str | None = None) -> None:
  """Writes an image as 8 bits per channel, atomically, creating the folder if needed.

  The data goes to a temporary file in the destination folder, which then replaces `path` in one
  step, so readers never see a partial file and a failed write leaves any old file intact. The
  format follows the extension: .png, .jpg/.jpeg (quality 95, no chroma subsampling), .webp
  (quality 95), .bmp, .tif/.tiff.

  Args:
    path: output file.
    image: array (NumPy or JAX) of shape (H, W, 3), RGB, values in [0, 1]; values outside are
      clipped, then rounded to the nearest of 256 levels.
    label: what the image is, e.g. 'output image'; prefixes error messages.

  Raises:
    ImageError: unsupported extension, or the file or its folder cannot be written.
    ValueError: `image` has the wrong shape or contains NaN or infinity (a bug upstream).
  """
  where = _where(path, label)
  target = pathlib.Path(os.fsdecode(path))
  fmt = _format_for(target, where)
  array = np.asarray(image, np.float32)
  if array.ndim != 3 or array.shape[-1] != 3 or 0 in array.shape:
    raise ValueError(f'{where}: expected an image of shape (H, W, 3), got {array.shape}')
  if not np.isfinite(array).all():
    raise ValueError(f'{where}: image contains NaN or infinite values')
  pixels = Image.fromarray(to_8bit(array))
  try:
    target.parent.mkdir(parents=True, exist_ok=True)
  except OSError as exc:
    raise ImageError(f'{where}: cannot create the output folder ({_one_line(exc)})') from None
  try:
    files.atomic_write(target, lambda f: pixels.save(f, format=fmt, **_SAVE_OPTIONS.get(fmt, {})))
  except (OSError, ValueError, KeyError) as exc:
    raise ImageError(f'{where}: cannot write the image ({_one_line(exc)})') from exc
