"""Colour control for style transfer (Gatys et al. 2017); conversions: `nst_jax.core.colorspaces`.

"Controlling Perceptual Factors in Neural Style Transfer" (Gatys, Ecker, Bethge, Hertzmann and
Shechtman, CVPR 2017) keeps the content image's colours in two ways, both supported here:

  * Colour histogram matching: recolour the style image so that its pixel mean and covariance
    match the content image's (`match_color`), then stylise as usual.
  * Luminance-only transfer: stylise luminance only (`to_luminance_rgb`, with the style luminance
    matched to the content's by `match_luminance`), then put the content's chroma back
    (`preserve_colors`), which also works on any stylised result after the fact.

Every colour function acts on one example, an RGB image of shape (H, W, 3) with values in
[0, 1], and is pure `jax.numpy` with no branching on values, so it can be jitted and vmapped over
a batch. Results that are images are clipped to [0, 1], the range the rest of nst_jax expects:
swapping luminance and chroma or matching statistics can leave the RGB gamut.

A third way, NNST's (Kolkin et al. 2022, `nnst_colors`), recolours the result after the fact in
OkLab: the result's lightness, and the content's chroma mapped affinely onto the style's palette
(its chroma mean and covariance), smoothed along the result's edges.

`config.color_control` names a mode; `nst_jax.run.inputs` applies it to a batch's inputs before
optimisation and to the result.
"""

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nst_jax.core import colorspaces

_HIGHEST = jax.lax.Precision.HIGHEST  # No TF32/bfloat16 passes: keep transforms exact.


def to_luminance_rgb(image: ArrayLike) -> jax.Array:
  """The luminance as a grey RGB image, for luminance-only style transfer.

  VGG19 takes three channels, so the luminance is repeated in each; the result's own luminance
  equals the input's, and `preserve_colors(stylized, content)` turns a stylised grey image back
  into colour.

  Args:
    image: RGB, shape (H, W, 3), values in [0, 1].

  Returns:
    shape (H, W, 3), values in [0, 1], all three channels equal.
  """
  lum = colorspaces.luminance(image)
  return jnp.broadcast_to(lum[..., None], lum.shape + (3,))


def match_luminance(
  source_lum: ArrayLike, target_lum: ArrayLike, *, eps: float = 1e-5
) -> jax.Array:
  """Shifts and scales `source_lum` to the mean and standard deviation of `target_lum`.

  Gatys et al. (2017), Sec. 5.1: before luminance-only transfer the style luminance L_s is
  matched to the content luminance L_c, L_s' = sigma_c / sigma_s * (L_s - mu_s) + mu_c, so that a
  dark style does not darken the result. Statistics are over all elements, so the inputs may be
  luminance maps (H, W) or grey RGB images (H, W, 3) from `to_luminance_rgb`, of different sizes.

  Args:
    source_lum: luminance to adjust (the style's), any shape, values in [0, 1].
    target_lum: luminance whose statistics to copy (the content's), any shape, values in [0, 1].
    eps: lower bound on the source variance (the std floor is sqrt(eps), about 1/300), so a flat
      source maps to the target mean instead of amplifying rounding noise.

  Returns:
    same shape as `source_lum`, clipped to [0, 1] (a high-contrast target can push the extremes
    of a low-contrast source out of range).
  """
  source = colorspaces.to_float(source_lum)
  target = colorspaces.to_float(target_lum).astype(source.dtype)
  scale = jnp.std(target) / jnp.sqrt(jnp.maximum(jnp.var(source), eps))
  return jnp.clip((source - jnp.mean(source)) * scale + jnp.mean(target), 0.0, 1.0)


def preserve_colors(
  stylized: ArrayLike, content: ArrayLike, *, match_stats: bool = False, eps: float = 1e-5
) -> jax.Array:
  """Luminance transfer: the stylised image's luminance with the content image's colours.

  Gatys et al. (2017), Sec. 5.1: Y (YIQ) comes from `stylized`, I and Q (chroma) from `content`.
  Use it after optimisation, on a full-colour or a luminance-only (grey) result.

  Args:
    stylized: RGB, shape (H, W, 3), values in [0, 1].
    content: RGB, same shape, values in [0, 1].
    match_stats: if True, first match the stylised luminance's mean and standard deviation to
      the content's (`match_luminance`). Off by default: the stylised luminance is the result
      of the optimisation, and for luminance-only transfer the matching belongs before it, on
      the style image.
    eps: passed to `match_luminance`.

  Returns:
    RGB, shape (H, W, 3), clipped to [0, 1]: a luminance from one image and chroma from another
    can fall outside the RGB gamut.
  """
  stylized, content = colorspaces.to_float(stylized), colorspaces.to_float(content)
  colorspaces.check_rgb(stylized, 'stylized')
  if stylized.shape != content.shape:
    raise ValueError(
      f'stylized and content must have the same shape, got {stylized.shape} and {content.shape}'
    )
  y = colorspaces.luminance(stylized)
  if match_stats:
    y = match_luminance(y, colorspaces.luminance(content), eps=eps)
  yiq = colorspaces.rgb_to_yiq(content).at[..., 0].set(y.astype(content.dtype))
  return jnp.clip(colorspaces.yiq_to_rgb(yiq), 0.0, 1.0)


def _sym_power(cov: jax.Array, power: float, eps: float) -> jax.Array:
  """cov ** power for a symmetric positive semi-definite 3x3 matrix, eigenvalues >= eps."""
  values, vectors = jnp.linalg.eigh(cov)
  values = jnp.maximum(values, eps) ** power
  return jnp.matmul(vectors * values, vectors.T, precision=_HIGHEST)


def _mean_cov(pixels: jax.Array) -> tuple[jax.Array, jax.Array]:
  mean = jnp.mean(pixels, axis=0)
  centred = pixels - mean
  return mean, jnp.matmul(centred.T, centred, precision=_HIGHEST) / pixels.shape[0]


def match_color(source: ArrayLike, target: ArrayLike, *, eps: float = 1e-5) -> jax.Array:
  """Recolours `source` so that its pixels' mean and covariance match `target`'s.

  Gatys et al. (2017), Sec. 5.1, colour histogram matching with the linear transform of Image
  Analogies: x' = A (x - mu_s) + mu_t with A = Sigma_t^(1/2) Sigma_s^(-1/2), the symmetric matrix
  square roots computed by eigendecomposition. Use it on the style image (source) with the content
  image (target) before stylising, so that the style's textures come in the content's colours.

  Args:
    source: RGB, shape (H, W, 3), values in [0, 1]: the image to recolour.
    target: RGB, shape (H', W', 3), values in [0, 1]: the image whose colours to copy; its size
      may differ from the source's.
    eps: lower bound on the covariance eigenvalues (variance units, [0, 1] scale), so that flat
      or grey images (singular covariance) do not divide by zero.

  Returns:
    RGB, shape (H, W, 3), clipped to [0, 1]: the exact statistics hold where no pixel needs
    clipping.
  """
  source, target = colorspaces.to_float(source), colorspaces.to_float(target)
  colorspaces.check_rgb(source, 'source')
  colorspaces.check_rgb(target, 'target')
  if source.ndim != 3 or target.ndim != 3:
    raise ValueError(f'expected (H, W, 3) images, got {source.shape} and {target.shape}')
  target = target.astype(source.dtype)
  pixels = source.reshape(-1, 3)
  mu_s, cov_s = _mean_cov(pixels)
  mu_t, cov_t = _mean_cov(target.reshape(-1, 3))
  transform = jnp.matmul(
    _sym_power(cov_t, 0.5, eps), _sym_power(cov_s, -0.5, eps), precision=_HIGHEST
  )
  matched = jnp.matmul(pixels - mu_s, transform.T, precision=_HIGHEST) + mu_t
  return jnp.clip(matched.reshape(source.shape), 0.0, 1.0)


class Palette(NamedTuple):
  """A style's colours in OkLab: what `nnst_colors` maps a result onto.

  Attributes:
    mean: (3,) mean (L, a, b) of the style's pixels.
    cov: (3, 3) their covariance.
    low, high: (3,) per-channel minimum and maximum.
  """

  mean: jax.Array
  cov: jax.Array
  low: jax.Array
  high: jax.Array


def style_palette(styles: Sequence[ArrayLike], weights: Sequence[float] | None = None) -> Palette:
  """The OkLab palette of one style, or of a blend of styles (the mixture's moments and the
  union's range).

  Args:
    styles: images (Hs, Ws, 3) in [0, 1], sizes may differ.
    weights: blend weights, one per style (only ratios matter); None: equal.
  """
  w = np.ones(len(styles)) if weights is None else np.asarray(weights, np.float64)
  w = w / w.sum()
  pixels = [colorspaces.rgb_to_oklab(s).reshape(-1, 3) for s in styles]
  stats = [_mean_cov(p) for p in pixels]
  mean = sum(float(wi) * m for wi, (m, _) in zip(w, stats, strict=True))
  second = sum(float(wi) * (c + jnp.outer(m, m)) for wi, (m, c) in zip(w, stats, strict=True))
  return Palette(
    mean,
    second - jnp.outer(mean, mean),
    jnp.min(jnp.stack([p.min(0) for p in pixels]), axis=0),
    jnp.max(jnp.stack([p.max(0) for p in pixels]), axis=0),
  )


def _match_moments(
  pixels: jax.Array, mean: jax.Array, cov: jax.Array, eps: float = 1e-5
) -> jax.Array:
  """(N, d) pixels moved affinely to the given mean and covariance (Image Analogies' transform)."""
  mu_s, cov_s = _mean_cov(pixels)
  transform = jnp.matmul(
    _sym_power(cov, 0.5, eps), _sym_power(cov_s, -0.5, eps), precision=_HIGHEST
  )
  return jnp.matmul(pixels - mu_s, transform.T, precision=_HIGHEST) + mean


def _edge_aware_smooth(
  values: jax.Array, guide: jax.Array, iterations: int, sharpness: float
) -> jax.Array:
  """Repeated 3x3 averages of (H, W, k) `values`, each neighbour weighted by
  `exp(-sharpness * |guide difference|)`, so that they are smoothed along the guide's edges but
  not across them (NNST's cross-bilateral filter of the chroma, guided by lightness)."""
  h, w = guide.shape
  padded = jnp.pad(guide, 1, mode='edge')
  offsets = [(i, j) for i in range(3) for j in range(3)]
  weights = jnp.stack(
    [jnp.exp(-sharpness * jnp.abs(padded[i : i + h, j : j + w] - guide)) for i, j in offsets]
  )[..., None]
  for _ in range(iterations):
    padded_values = jnp.pad(values, ((1, 1), (1, 1), (0, 0)), mode='edge')
    shifted = jnp.stack([padded_values[i : i + h, j : j + w] for i, j in offsets])
    values = jnp.sum(weights * shifted, axis=0) / jnp.sum(weights, axis=0)
  return values


# Below this chroma (co)variance (OkLab units squared) the style counts as grey, and NNST matches
# the result's own colours to it instead of mapping the content's chroma onto a flat palette.
_GREY_CHROMA = 6e-5


def nnst_colors(
  stylized: ArrayLike,
  content: ArrayLike,
  palette: Palette,
  *,
  iterations: int = 5,
  sharpness: float = 10.0,
) -> jax.Array:
  """NNST's colour post-process (Kolkin et al. 2022): the result's lightness with the content's
  chroma, mapped onto the style's palette.

  In OkLab: the lightness L of `stylized`, clipped to the style's range; the chroma (a, b) of
  `content`, moved affinely to the style's chroma mean and covariance (the content's colour
  layout in the style's palette), then smoothed along the result's lightness edges (so that it
  follows the new strokes, not the content's old outlines); every channel finally clipped to the
  style's range. For an almost grey style (chroma variance below 6e-5), the result's own (L, a,
  b) are moved to the style's mean and covariance instead. (NNST applies its conversion to sRGB
  values directly; here sRGB is decoded to linear light first, as OkLab is defined.)

  Args:
    stylized: (H, W, 3) RGB in [0, 1], the optimised image.
    content: (H, W, 3) RGB in [0, 1], the content image (same shape).
    palette: the style's `Palette` (see `style_palette`).
    iterations, sharpness: of the edge-aware chroma smoothing.

  Returns:
    (H, W, 3) RGB in [0, 1].
  """
  stylized, content = colorspaces.to_float(stylized), colorspaces.to_float(content)
  if stylized.ndim != 3 or stylized.shape != content.shape or stylized.shape[-1] != 3:
    raise ValueError(
      f'stylized and content must be (H, W, 3) of one shape, got {stylized.shape}, {content.shape}'
    )
  h, w, _ = stylized.shape
  ours, theirs = colorspaces.rgb_to_oklab(stylized), colorspaces.rgb_to_oklab(content)
  lightness = jnp.clip(ours[..., 0], palette.low[0], palette.high[0])
  chroma = _match_moments(theirs[..., 1:].reshape(-1, 2), palette.mean[1:], palette.cov[1:, 1:])
  chroma = _edge_aware_smooth(chroma.reshape(h, w, 2), lightness, iterations, sharpness)
  colour = jnp.concatenate([lightness[..., None], chroma], axis=-1)
  own = jnp.concatenate([lightness[..., None], ours[..., 1:]], axis=-1).reshape(-1, 3)
  grey = _match_moments(own, palette.mean, palette.cov).reshape(h, w, 3)
  is_grey = jnp.max(jnp.abs(palette.cov[1:, 1:])) < _GREY_CHROMA
  lab = jnp.clip(jnp.where(is_grey, grey, colour), palette.low, palette.high)
  return jnp.clip(colorspaces.oklab_to_rgb(lab), 0.0, 1.0)
