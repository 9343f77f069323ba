"""Tests for nst_jax.core.color, checked against NumPy and scikit-image computed independently."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax.core import color, colorspaces


def _random_image(seed: int, shape=(6, 5, 3)) -> np.ndarray:
  return np.random.default_rng(seed).random(shape).astype(np.float32)


def _correlated_image(seed: int, shape, mean, cov) -> np.ndarray:
  """Gaussian pixels with the given mean and covariance, small enough not to need clipping."""
  rng = np.random.default_rng(seed)
  pixels = rng.multivariate_normal(mean, cov, size=shape[0] * shape[1])
  assert pixels.min() > 0.0 and pixels.max() < 1.0
  return pixels.reshape(*shape, 3).astype(np.float32)


def _mean_cov(image) -> tuple[np.ndarray, np.ndarray]:
  pixels = np.asarray(image, np.float64).reshape(-1, 3)
  return pixels.mean(0), np.cov(pixels, rowvar=False, bias=True)


def test_yiq_and_yuv_match_scikit_image():
  skcolor = pytest.importorskip('skimage.color')
  image = _random_image(0)
  np.testing.assert_allclose(colorspaces.rgb_to_yiq(image), skcolor.rgb2yiq(image), atol=1e-6)
  np.testing.assert_allclose(colorspaces.rgb_to_yuv(image), skcolor.rgb2yuv(image), atol=1e-6)


@pytest.mark.parametrize(
  'forward, inverse',
  [
    (colorspaces.rgb_to_yiq, colorspaces.yiq_to_rgb),
    (colorspaces.rgb_to_yuv, colorspaces.yuv_to_rgb),
  ],
)
def test_round_trip(forward, inverse):
  image = _random_image(1)
  np.testing.assert_allclose(inverse(forward(image)), image, atol=1e-6)
  np.testing.assert_allclose(
    colorspaces.RGB_FROM_YIQ @ colorspaces.YIQ_FROM_RGB, np.eye(3), atol=1e-12
  )


def test_grey_has_no_chroma_and_luminance_is_rec601():
  grey = np.full((2, 3, 3), 0.4, np.float32)
  np.testing.assert_allclose(
    colorspaces.rgb_to_yiq(grey), np.broadcast_to([0.4, 0, 0], (2, 3, 3)), atol=1e-6
  )
  image = _random_image(2)
  expected = 0.299 * image[..., 0] + 0.587 * image[..., 1] + 0.114 * image[..., 2]
  lum = colorspaces.luminance(image)
  assert lum.shape == (6, 5)
  np.testing.assert_allclose(lum, expected, atol=1e-6)
  np.testing.assert_allclose(colorspaces.luminance(np.ones((1, 1, 3))), [[1.0]], atol=1e-6)


def test_to_luminance_rgb():
  image = _random_image(3)
  grey = np.asarray(color.to_luminance_rgb(image))
  assert grey.shape == image.shape
  np.testing.assert_array_equal(grey[..., 0], grey[..., 1])
  np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
  np.testing.assert_allclose(colorspaces.luminance(grey), colorspaces.luminance(image), atol=1e-6)


def test_match_luminance_matches_mean_and_std():
  rng = np.random.default_rng(4)
  source = (0.2 + 0.05 * rng.standard_normal((8, 9))).astype(np.float32)  # Dark, flat style.
  target = (0.6 + 0.1 * rng.standard_normal((5, 7))).astype(np.float32)  # Other size.
  out = np.asarray(color.match_luminance(source, target))
  assert out.shape == source.shape
  np.testing.assert_allclose(out.mean(), target.mean(), atol=1e-5)
  np.testing.assert_allclose(out.std(), target.std(), atol=1e-5)
  # Order is kept: it is an increasing affine map.
  np.testing.assert_array_equal(np.argsort(out, axis=None), np.argsort(source, axis=None))
  flat = color.match_luminance(np.full((3, 3), 0.9), target)
  np.testing.assert_allclose(flat, np.full((3, 3), target.mean()), atol=1e-5)
  assert 0.0 <= float(jnp.min(color.match_luminance(source, _random_image(5, (4, 4))))) <= 1.0


def test_preserve_colors_keeps_content_chroma_and_stylized_luminance():
  rng = np.random.default_rng(6)
  # Mid-grey inputs with low saturation, so the swap needs no clipping.
  content = (0.5 + 0.08 * rng.uniform(-1, 1, (6, 5, 3))).astype(np.float32)
  stylized = (0.5 + 0.08 * rng.uniform(-1, 1, (6, 5, 3))).astype(np.float32)
  out = color.preserve_colors(stylized, content)
  assert out.shape == content.shape
  yiq_out, yiq_content = colorspaces.rgb_to_yiq(out), colorspaces.rgb_to_yiq(content)
  np.testing.assert_allclose(yiq_out[..., 0], colorspaces.luminance(stylized), atol=1e-6)
  np.testing.assert_allclose(yiq_out[..., 1:], yiq_content[..., 1:], atol=1e-6)
  # A grey (luminance-only) result gets the content's colours back.
  grey = color.to_luminance_rgb(stylized)
  np.testing.assert_allclose(color.preserve_colors(grey, content), out, atol=1e-6)
  # Content and stylized equal: nothing changes.
  np.testing.assert_allclose(color.preserve_colors(content, content), content, atol=1e-6)


def test_preserve_colors_clips_and_matches_stats():
  content, stylized = _random_image(7), _random_image(8) ** 3
  out = np.asarray(color.preserve_colors(stylized, content))
  assert out.min() >= 0.0 and out.max() <= 1.0
  matched = color.preserve_colors(stylized, content, match_stats=True)
  # The luminance-only pipeline: grey images, the style's luminance matched to the content's.
  grey = color.match_luminance(color.to_luminance_rgb(stylized), color.to_luminance_rgb(content))
  expected = color.preserve_colors(grey, content)
  np.testing.assert_allclose(matched, expected, atol=1e-6)
  with pytest.raises(ValueError, match='same shape'):
    color.preserve_colors(stylized, content[:3])


def test_match_color_gives_target_mean_and_covariance():
  source = _correlated_image(
    9, (40, 30), [0.3, 0.5, 0.6], [[4e-3, 2e-3, -1e-3], [2e-3, 3e-3, 0], [-1e-3, 0, 2e-3]]
  )
  target = _correlated_image(
    10, (20, 50), [0.55, 0.45, 0.4], [[3e-3, -1e-3, 5e-4], [-1e-3, 2e-3, 1e-3], [5e-4, 1e-3, 4e-3]]
  )
  out = np.asarray(color.match_color(source, target))
  assert out.shape == source.shape and out.dtype == np.float32
  assert 0.0 < out.min() and out.max() < 1.0  # Nothing was clipped.
  mean_out, cov_out = _mean_cov(out)
  mean_t, cov_t = _mean_cov(target)
  np.testing.assert_allclose(mean_out, mean_t, atol=1e-5)
  np.testing.assert_allclose(cov_out, cov_t, atol=2e-6)
  # The transform is the symmetric one: matching an image to itself changes nothing.
  np.testing.assert_allclose(color.match_color(source, source), source, atol=1e-5)


def test_match_color_handles_flat_and_grey_images():
  grey = np.repeat(_random_image(11, (5, 5, 1)), 3, axis=-1)  # Singular covariance.
  flat = np.full((4, 4, 3), 0.25, np.float32)
  target = _random_image(12, (7, 3, 3))
  for source in (grey, flat):
    out = np.asarray(color.match_color(source, target))
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
  np.testing.assert_allclose(
    color.match_color(flat, target), np.broadcast_to(target.mean((0, 1)), flat.shape), atol=1e-6
  )


def test_jit_and_vmap():
  batch = np.stack([_random_image(s) for s in range(3)])
  other = np.stack([_random_image(s + 10) for s in range(3)])
  functions = {
    'rgb_to_yiq': (colorspaces.rgb_to_yiq, (batch,)),
    'yiq_to_rgb': (colorspaces.yiq_to_rgb, (batch,)),
    'luminance': (colorspaces.luminance, (batch,)),
    'to_luminance_rgb': (color.to_luminance_rgb, (batch,)),
    'match_luminance': (color.match_luminance, (batch[..., 0], other[..., 0])),
    'preserve_colors': (color.preserve_colors, (batch, other)),
    'match_color': (color.match_color, (batch, other)),
  }
  for name, (fn, args) in functions.items():
    batched = jax.jit(jax.vmap(fn))(*args)
    one_by_one = np.stack([fn(*(a[i] for a in args)) for i in range(3)])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5, err_msg=name)
  stats = jax.jit(lambda s, c: color.preserve_colors(s, c, match_stats=True))(batch[0], other[0])
  assert stats.shape == (6, 5, 3)


def test_gradients_are_finite():
  image = _random_image(13)
  grad = jax.grad(lambda x: jnp.sum(color.match_color(x, image[::-1]) ** 2))(image)
  assert np.isfinite(np.asarray(grad)).all()


def test_shape_errors():
  with pytest.raises(ValueError, match=r'shape \(\.\.\., 3\)'):
    colorspaces.rgb_to_yiq(np.zeros((4, 4, 4)))
  with pytest.raises(ValueError, match='expected'):
    color.match_color(np.zeros((4, 3)), np.zeros((4, 4, 3)))


def test_oklab_reference_values_and_round_trip():
  # White is L = 1 and grey axis has a = b = 0; pure sRGB red per Ottosson's reference.
  np.testing.assert_allclose(colorspaces.rgb_to_oklab([1.0, 1.0, 1.0]), [1.0, 0.0, 0.0], atol=1e-4)
  np.testing.assert_allclose(colorspaces.rgb_to_oklab([0.0, 0.0, 0.0]), [0.0, 0.0, 0.0], atol=1e-6)
  np.testing.assert_allclose(
    colorspaces.rgb_to_oklab([1.0, 0.0, 0.0]), [0.62796, 0.22486, 0.12585], atol=1e-4
  )
  grey = colorspaces.rgb_to_oklab(np.full((2, 2, 3), 0.4, np.float32))
  np.testing.assert_allclose(grey[..., 1:], 0.0, atol=1e-5)
  image = _random_image(3)
  np.testing.assert_allclose(
    colorspaces.oklab_to_rgb(colorspaces.rgb_to_oklab(image)), image, atol=1e-5
  )


def _chroma_stats(image):
  lab = np.asarray(colorspaces.rgb_to_oklab(image), np.float64).reshape(-1, 3)
  return lab.mean(0), np.cov(lab.T, bias=True)


def test_nnst_colors_move_the_content_chroma_to_the_style_palette():
  rng = np.random.default_rng(0)
  y, x = np.mgrid[0:1:24j, 0:1:24j]
  content = np.stack([0.3 + 0.4 * x, 0.5 + 0.2 * y, 0.4 + 0.1 * x * y], -1).astype(np.float32)
  style = np.stack(
    [0.5 + 0.2 * rng.random((24, 24)), 0.45 * np.ones((24, 24)), 0.35 + 0.1 * rng.random((24, 24))],
    -1,
  ).astype(np.float32)
  palette = color.style_palette([style])
  out = np.asarray(color.nnst_colors(content, content, palette, iterations=0))
  # Lightness from the stylized image (here the content, inside the style's range), chroma
  # moved to the style's mean and covariance, all inside the style's ranges.
  mean, cov = _chroma_stats(out)
  want_mean, want_cov = _chroma_stats(style)
  np.testing.assert_allclose(mean[1:], want_mean[1:], atol=3e-3)
  np.testing.assert_allclose(cov[1:, 1:], want_cov[1:, 1:], atol=2e-4)
  lab = np.asarray(colorspaces.rgb_to_oklab(out))
  assert (lab >= np.asarray(palette.low) - 1e-3).all() and (
    lab <= np.asarray(palette.high) + 1e-3
  ).all()
  # The smoothing follows lightness edges: a flat-lightness image's chroma becomes smoother.
  smoothed = np.asarray(color.nnst_colors(content, content, palette))
  assert np.abs(np.diff(smoothed, axis=0)).mean() <= np.abs(np.diff(out, axis=0)).mean() + 1e-6


def test_nnst_colors_of_a_grey_style_match_all_three_channels():
  rng = np.random.default_rng(1)
  grey = np.repeat(0.3 + 0.4 * rng.random((20, 20, 1)), 3, axis=-1).astype(np.float32)
  stylized = _random_image(4, (20, 20, 3))
  out = color.nnst_colors(stylized, _random_image(5, (20, 20, 3)), color.style_palette([grey]))
  np.testing.assert_allclose(np.asarray(colorspaces.rgb_to_oklab(out))[..., 1:], 0.0, atol=2e-3)


def test_style_palette_of_a_blend_is_the_mixture():
  a, b = _random_image(6, (4, 4, 3)), _random_image(7, (4, 4, 3))
  blend = color.style_palette([a, b], [1.0, 1.0])
  both = color.style_palette([np.concatenate([a, b])])
  for got, want in zip(blend, both, strict=True):
    np.testing.assert_allclose(got, want, atol=1e-6)
