"""Tests for nst_jax.io.images: every bad file gives a one-line ImageError, odd files load right."""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

from nst_jax.errors import ConfigError, ImageError
from nst_jax.io import images

LABEL = 'content image'


def _png_bytes(width, height, bit_depth, colour_type, pixels=None, *, idat=None, extra=b''):
  """A minimal PNG written by hand (Pillow cannot write 16-bit RGB): rows unfiltered."""

  def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

  if idat is None:
    rows = np.asarray(pixels).reshape(height, -1)
    idat = zlib.compress(b''.join(b'\x00' + row.tobytes() for row in rows))
  header = struct.pack('>IIBBBBB', width, height, bit_depth, colour_type, 0, 0, 0)
  return (
    b'\x89PNG\r\n\x1a\n'
    + chunk(b'IHDR', header)
    + extra
    + chunk(b'IDAT', idat)
    + chunk(b'IEND', b'')
  )


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, format=fmt, **options)
  return buffer.getvalue()


def _noise(mode='RGB', size=(16, 12), seed=0) -> Image.Image:
  rng = np.random.default_rng(seed)
  return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)


def _assert_image_error(path, **kwargs) -> str:
  with pytest.raises(ImageError) as info:
    images.load_image(path, label=LABEL, **kwargs)
  message = str(info.value)
  assert '\n' not in message
  assert message.startswith(f'{LABEL} {str(path)!r}: '), message
  return message


def _assert_valid(image, shape):
  assert isinstance(image, np.ndarray)
  assert image.dtype == np.float32
  assert image.shape == shape
  assert np.all(image >= 0.0) and np.all(image <= 1.0)


# --- Files that must be refused. ------------------------------------------------------------------


def _write(path, data: bytes):
  path.write_bytes(data)
  return path


_WARN_SIDE = int((1.5 * Image.MAX_IMAGE_PIXELS) ** 0.5)

BAD_FILES = {
  'missing': (lambda p: p / 'missing.png', 'file not found'),
  'folder': (lambda p: (p / 'folder.png').mkdir() or p / 'folder.png', 'folder'),
  'empty': (lambda p: _write(p / 'empty.png', b''), 'empty'),
  'random bytes': (
    lambda p: _write(p / 'random.jpg', np.random.default_rng(0).bytes(1000)),
    'not an image',
  ),
  'text': (lambda p: _write(p / 'notes.png', b'hello, world\n' * 20), 'not an image'),
  'truncated jpeg': (
    lambda p: _write(p / 'cut.jpg', _encoded(_noise(size=(64, 64)), 'JPEG')[:1500]),
    'corrupt or truncated',
  ),
  'truncated png': (
    lambda p: _write(p / 'cut.png', _encoded(_noise(size=(64, 64)), 'PNG')[:3000]),
    'corrupt or truncated',
  ),
  'corrupt png data': (
    lambda p: _write(p / 'bad.png', _png_bytes(8, 8, 8, 2, idat=b'\x78\x9c' + b'\xff' * 40)),
    'corrupt or truncated',
  ),
  'png signature only': (lambda p: _write(p / 'sig.png', b'\x89PNG\r\n\x1a\n'), 'not an image'),
  'zero width': (
    lambda p: _write(p / 'zero.png', _png_bytes(0, 5, 8, 2, idat=zlib.compress(b''))),
    'not an image',
  ),
  'bomb': (
    lambda p: _write(p / 'bomb.png', _png_bytes(100_000, 100_000, 8, 2, idat=b'')),
    'decompression bomb',
  ),
  # Between Pillow's limit and twice it, Pillow only warns: that must be an error too.
  'bomb warning zone': (
    lambda p: _write(p / 'warn.png', _png_bytes(_WARN_SIDE, _WARN_SIDE, 8, 2, idat=b'')),
    'decompression bomb',
  ),
}


@pytest.mark.parametrize('case', BAD_FILES)
def test_bad_files_raise_one_line_image_error(tmp_path, case):
  make, expected = BAD_FILES[case]
  message = _assert_image_error(make(tmp_path))
  assert expected in message


def test_bomb_message_says_how_to_raise_the_limit(tmp_path):
  path = _write(tmp_path / 'bomb.png', _png_bytes(100_000, 100_000, 8, 2, idat=b''))
  message = _assert_image_error(path)
  assert 'max_pixels' in message and images.MAX_PIXELS_ENV in message


def test_pixel_limit_can_be_lowered_by_argument_and_environment(tmp_path, monkeypatch):
  path = tmp_path / 'small.png'
  _noise(size=(5, 4)).save(path)
  assert '5x4 = 20' in _assert_image_error(path, max_pixels=19)
  assert images.load_image(path, max_pixels=20).shape == (4, 5, 3)
  monkeypatch.setenv(images.MAX_PIXELS_ENV, '19')
  assert 'limit of 19' in _assert_image_error(path)
  assert images.load_image(path, max_pixels=20).shape == (4, 5, 3)  # The argument wins.
  monkeypatch.setenv(images.MAX_PIXELS_ENV, 'lots')
  with pytest.raises(ConfigError, match=images.MAX_PIXELS_ENV):
    images.load_image(path)
  with pytest.raises(ConfigError, match='max_pixels'):
    images.load_image(path, max_pixels=0)
  with pytest.raises(ConfigError, match='max_side'):
    images.load_image(path, max_side=0)


def test_pixel_limit_can_be_raised_without_changing_pillow(tmp_path, monkeypatch):
  path = tmp_path / 'image.png'
  _noise(size=(20, 20)).save(path)
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 100)  # 400 pixels: Pillow refuses outright.
  _assert_image_error(path)
  assert images.load_image(path, max_pixels=400).shape == (20, 20, 3)
  monkeypatch.setenv(images.MAX_PIXELS_ENV, '1000')
  assert images.load_image(path).shape == (20, 20, 3)
  assert Image.MAX_IMAGE_PIXELS == 100
  assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_label_is_optional(tmp_path):
  with pytest.raises(ImageError, match=r"^'.*missing\.png': file not found$"):
    images.load_image(tmp_path / 'missing.png')


# --- Odd but valid files. -------------------------------------------------------------------------

RED = (1.0, 0.0, 0.0)
WHITE = (1.0, 1.0, 1.0)


def _palette_red(transparent: bool) -> Image.Image:
  image = Image.new('P', (3, 2), 0)
  image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
  image.putpixel((2, 1), 1)
  if transparent:
    image.info['transparency'] = 1
  return image


# name -> (file format, image, expected colour of pixel (0, 0), of the last pixel)
VALID = {
  'L': ('PNG', Image.new('L', (3, 2), 51), (0.2,) * 3, (0.2,) * 3),
  '1': ('PNG', Image.new('1', (3, 2), 1), WHITE, WHITE),
  'LA transparent': ('PNG', Image.new('LA', (3, 2), (0, 0)), WHITE, WHITE),
  'LA opaque': ('PNG', Image.new('LA', (3, 2), (51, 255)), (0.2,) * 3, (0.2,) * 3),
  'I;16': ('PNG', Image.new('I;16', (3, 2), 12345), (12345 / 65535,) * 3, (12345 / 65535,) * 3),
  'I': ('TIFF', Image.new('I', (3, 2), 40000), (40000 / 65535,) * 3, (40000 / 65535,) * 3),
  'F': ('TIFF', Image.new('F', (3, 2), 0.3), (0.3,) * 3, (0.3,) * 3),
  'F out of range': ('TIFF', Image.new('F', (3, 2), 7.0), WHITE, WHITE),
  'P red': ('PNG', _palette_red(False), RED, (0.0, 0.0, 1.0)),
  'P transparency': ('PNG', _palette_red(True), RED, WHITE),
  'GIF red': ('GIF', _palette_red(False), RED, (0.0, 0.0, 1.0)),
  'GIF transparency': ('GIF', _palette_red(True), RED, WHITE),
  'RGBA transparent': ('PNG', Image.new('RGBA', (3, 2), (10, 20, 30, 0)), WHITE, WHITE),
  'RGBA opaque': (
    'PNG',
    Image.new('RGBA', (3, 2), (0, 0, 0, 255)),
    (0.0, 0.0, 0.0),
    (0.0, 0.0, 0.0),
  ),
  'CMYK': ('TIFF', Image.new('CMYK', (3, 2), (0, 255, 255, 0)), RED, RED),
  'CMYK JPEG': ('JPEG', Image.new('CMYK', (8, 8), (0, 255, 255, 0)), RED, RED),
  'RGB': ('BMP', Image.new('RGB', (3, 2), (255, 0, 0)), RED, RED),
  'YCbCr JPEG': ('JPEG', Image.new('RGB', (8, 8), (255, 0, 0)), RED, RED),
}


@pytest.mark.parametrize('case', VALID)
def test_odd_modes_load_as_float_rgb(tmp_path, case):
  fmt, image, first, last = VALID[case]
  path = _write(tmp_path / f'image.{fmt.lower()}', _encoded(image, fmt))
  loaded = images.load_image(path)
  _assert_valid(loaded, (image.height, image.width, 3))
  atol = 0.02 if fmt == 'JPEG' else 1e-6
  np.testing.assert_allclose(loaded[0, 0], first, atol=atol)
  np.testing.assert_allclose(loaded[-1, -1], last, atol=atol)


def test_alpha_is_composited_over_white(tmp_path):
  image = Image.new('RGBA', (2, 1), (0, 0, 0, 0))
  image.putpixel((1, 0), (0, 0, 0, 102))  # 40% black over white.
  image.save(tmp_path / 'a.png')
  np.testing.assert_allclose(
    images.load_image(tmp_path / 'a.png')[0], [WHITE, (0.6,) * 3], atol=1e-6
  )


def test_tRNS_colour_key_transparency(tmp_path):
  for mode, key, other in (('L', 7, 9), ('RGB', (7, 8, 9), (1, 2, 3))):
    image = Image.new(mode, (2, 1), key)
    image.putpixel((1, 0), other)
    image.save(tmp_path / 'key.png', transparency=key)
    loaded = images.load_image(tmp_path / 'key.png')
    np.testing.assert_allclose(loaded[0, 0], WHITE)
    np.testing.assert_allclose(loaded[0, 1], np.broadcast_to(other, 3) / 255, atol=1e-6)


def test_16_bit_png_keeps_precision(tmp_path):
  rng = np.random.default_rng(1)
  grey = rng.integers(0, 65536, (4, 5), dtype=np.uint16)
  Image.fromarray(grey).save(tmp_path / 'grey16.png')
  loaded = images.load_image(tmp_path / 'grey16.png')
  np.testing.assert_allclose(loaded[..., 1], grey / 65535, atol=1e-7)

  rgb = rng.integers(0, 65536, (4, 5, 3)).astype('>u2')
  _write(tmp_path / 'rgb16.png', _png_bytes(5, 4, 16, 2, rgb))
  loaded = images.load_image(tmp_path / 'rgb16.png')
  _assert_valid(loaded, (4, 5, 3))
  np.testing.assert_allclose(loaded, rgb / 65535, atol=1e-7)

  rgba = rng.integers(0, 65536, (4, 5, 4)).astype('>u2')
  _write(tmp_path / 'rgba16.png', _png_bytes(5, 4, 16, 6, rgba))
  alpha = rgba[..., 3:] / 65535
  expected = rgba[..., :3] / 65535 * alpha + (1 - alpha)
  np.testing.assert_allclose(images.load_image(tmp_path / 'rgba16.png'), expected, atol=1e-6)


def test_exif_orientation_6_is_rotated_as_displayed(tmp_path):
  image = Image.new('RGB', (8, 4), (0, 0, 255))
  image.paste((255, 0, 0), (0, 0, 4, 4))  # Left half red, right half blue.
  exif = Image.Exif()
  exif[0x0112] = 6  # Displayed rotated 90 degrees clockwise: the left half ends on top.
  image.save(tmp_path / 'photo.jpg', exif=exif, quality=95)
  loaded = images.load_image(tmp_path / 'photo.jpg')
  _assert_valid(loaded, (8, 4, 3))
  np.testing.assert_allclose(loaded[1, 1], RED, atol=0.05)
  np.testing.assert_allclose(loaded[-2, -2], (0.0, 0.0, 1.0), atol=0.05)


@pytest.mark.parametrize('orientation', range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path, orientation):
  image = _noise(size=(5, 3), seed=orientation)
  exif = Image.Exif()
  exif[0x0112] = orientation
  image.save(tmp_path / 'o.png', exif=exif)
  with Image.open(tmp_path / 'o.png') as opened:
    expected = np.asarray(ImageOps.exif_transpose(opened), np.float32) / 255
  np.testing.assert_allclose(images.load_image(tmp_path / 'o.png'), expected, atol=1e-7)


def test_max_side_resizes_keeping_aspect(tmp_path):
  Image.new('RGB', (40, 20), (51, 102, 153)).save(tmp_path / 'wide.png')
  small = images.load_image(tmp_path / 'wide.png', max_side=10)
  _assert_valid(small, (5, 10, 3))
  np.testing.assert_allclose(small, np.broadcast_to([0.2, 0.4, 0.6], (5, 10, 3)), atol=1e-5)
  _assert_valid(images.load_image(tmp_path / 'wide.png', max_side=80), (40, 80, 3))
  _assert_valid(images.load_image(tmp_path / 'wide.png', max_side=1), (1, 1, 3))


# --- Property: any bytes either load correctly or raise ImageError. -----------------------------

# (format, modes Pillow can write in it)
FORMATS = {
  'PNG': ('1', 'L', 'LA', 'P', 'RGB', 'RGBA', 'I;16'),
  'JPEG': ('L', 'RGB', 'CMYK'),
  'BMP': ('1', 'L', 'P', 'RGB', 'RGBA'),
  'GIF': ('L', 'P', 'RGB'),
  'TIFF': ('1', 'L', 'LA', 'P', 'RGB', 'RGBA', 'CMYK', 'I;16', 'I', 'F'),
}


@st.composite
def encoded_images(draw):
  fmt = draw(st.sampled_from(sorted(FORMATS)))
  mode = draw(st.sampled_from(FORMATS[fmt]))
  width, height = draw(st.integers(1, 12)), draw(st.integers(1, 12))
  seed = draw(st.integers(0, 2**16))
  image = _noise(size=(width, height), seed=seed)
  if mode == 'I;16' or mode == 'I':
    image = Image.fromarray((np.asarray(image.convert('L'), np.uint16) * 257).astype(np.uint16))
    image = image if mode == 'I;16' else image.convert('I')
  elif mode == 'F':
    image = Image.fromarray(np.asarray(image.convert('L'), np.float32) / 255)
  else:
    image = image.convert(mode)
  return _encoded(image, fmt), (height, width, 3)


@st.composite
def damaged(draw, encoded):
  data, shape = draw(encoded)
  data = bytearray(data)
  for _ in range(draw(st.integers(0, 4))):
    data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
  if draw(st.booleans()):
    data = data[: draw(st.integers(0, len(data)))]
  return bytes(data), None


_PROPERTY = settings(
  max_examples=300,
  derandomize=True,
  deadline=None,
  database=None,
  suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.filterwarnings('ignore::UserWarning')  # Pillow on damaged metadata.
@_PROPERTY
@given(
  case=st.one_of(encoded_images(), damaged(encoded_images()), st.tuples(st.binary(), st.none()))
)
def test_load_returns_valid_image_or_raises_image_error(tmp_path_factory, case):
  data, shape = case
  path = tmp_path_factory.getbasetemp() / 'property_case'
  path.write_bytes(data)
  try:
    loaded = images.load_image(path, label=LABEL)
  except ImageError as error:
    assert shape is None, f'a valid image was refused: {error}'
    message = str(error)
    assert '\n' not in message and message.startswith(f'{LABEL} {str(path)!r}: ')
  else:
    assert loaded.dtype == np.float32 and loaded.ndim == 3 and loaded.shape[-1] == 3
    assert np.all(loaded >= 0.0) and np.all(loaded <= 1.0)
    if shape is not None:
      assert loaded.shape == shape
