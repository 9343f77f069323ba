"""A batch's inputs: their checks, each pair's styles and guides, and colour control.

The checks (`check_contents`, `check_images`, `check_init_images`, `check_guides`,
`check_pair_guides`) turn what a caller passes into float32 arrays or raise one-line errors.

The pairs of a batch share one list of style images; a pair uses those with a positive blend
weight (`PairStyles`). Colour control (`config.color_control`, see `nst_jax.core.color`) changes
the contents and styles before optimisation (`control_inputs`) and the result after it
(`control_result`). Guides (masks, a video's previous frame) are images in [0, 1] that travel
with their image: a pair's guides with its content, a style's guides with that style.
"""

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nst_jax.core import colorspaces, losses, padding
from nst_jax.core.color import (
  Palette,
  match_color,
  match_luminance,
  nnst_colors,
  preserve_colors,
  style_palette,
  to_luminance_rgb,
)
from nst_jax.core.terms import LossTerm
from nst_jax.errors import ConfigError, ImageError


class PairStyles(NamedTuple):
  """A batch's style images after colour control, per pair.

  Attributes:
    images: for each pair, its style images with a positive blend weight, (Hs, Ws, 3) each.
    weights: for each pair, those styles' blend weights.
    ids: for each pair, a key per style image: equal keys mean equal images, so that their
      features are computed once.
    guides: for each pair, each of its style images' guides `{name: (Hs, Ws, C)}`; empty
      without style guides.
  """

  images: list[list[jax.Array]]
  weights: list[tuple[float, ...]]
  ids: list[list[Hashable]]
  guides: Sequence[Sequence[Mapping[str, jax.Array]]] = ()


def control_inputs(
  contents: jax.Array,
  styles: Sequence[jax.Array],
  blend: np.ndarray,
  mode: str,
  style_guides: Sequence[Mapping[str, jax.Array]] | None = None,
) -> tuple[jax.Array, PairStyles]:
  """What colour-control `mode` does to a batch's inputs before optimisation.

  Args:
    contents: (B, H, W, 3) in [0, 1].
    styles: S style images (Hs, Ws, 3) in [0, 1].
    blend: (B, S) blend weights; a pair uses the styles with a positive weight.
    mode: `config.color_control`: 'match_style' recolours each style to each content
      (`match_color`); 'luminance_only' turns contents and styles grey, the styles' luminance
      matched to the content's (`match_luminance`); 'none' and 'preserve_colors' change nothing.
    style_guides: each style image's guides `{name: (Hs, Ws, C)}`, or None.

  Returns:
    `(contents, pair_styles)`: the contents to optimise towards, (B, H, W, 3), and the styles.
  """
  images, weights, ids, guides = [], [], [], []
  for b, row in enumerate(blend):
    used = [s for s in range(len(styles)) if row[s] > 0]
    weights.append(tuple(float(row[s]) for s in used))
    if style_guides is not None:
      guides.append([style_guides[s] for s in used])
    if mode == 'match_style':
      images.append([match_color(styles[s], contents[b]) for s in used])
      ids.append([(s, b) for s in used])
    elif mode == 'luminance_only':
      content_luminance = colorspaces.luminance(contents[b])
      images.append([match_luminance(to_luminance_rgb(styles[s]), content_luminance) for s in used])
      ids.append([(s, b) for s in used])
    else:
      images.append([styles[s] for s in used])
      ids.append([(s,) for s in used])
  if mode == 'luminance_only':
    contents = jax.tree.map(to_luminance_rgb, contents)  # A batch, or a list of sizes.
  return contents, PairStyles(images, weights, ids, guides)


_preserve_colors_batch = jax.jit(jax.vmap(preserve_colors))
_nnst_colors_batch = jax.jit(jax.vmap(nnst_colors))


def pair_palettes(pair_styles: PairStyles) -> Palette:
  """Each pair's style palette (`style_palette` of its blend), stacked: leaves (B, ...)."""
  palettes = [
    style_palette(images, weights)
    for images, weights in zip(pair_styles.images, pair_styles.weights, strict=True)
  ]
  return jax.tree.map(lambda *xs: jnp.stack(xs), *palettes)


def control_result(
  images: jax.Array, contents: jax.Array, mode: str, palettes: Palette | None = None
) -> jax.Array:
  """What colour-control `mode` does to the result: 'preserve_colors' and 'luminance_only' put
  the original contents' chroma back (`preserve_colors`); 'nnst' maps the contents' chroma onto
  each pair's style palette (`nnst_colors`); the others change nothing.

  Args:
    images: (B, H, W, 3) optimised images in [0, 1].
    contents: (B, H, W, 3) the contents as given, before `control_inputs`.
    palettes: each pair's style `Palette` (leaves (B, ...), see `pair_palettes`), for 'nnst'.
  """
  if mode in ('preserve_colors', 'luminance_only'):
    return _preserve_colors_batch(images, contents)
  if mode == 'nnst':
    if palettes is None:
      raise ValueError("color_control 'nnst' needs the pairs' style palettes")
    return _nnst_colors_batch(images, contents, palettes)
  return images


def pair_weights(
  pair_weights: Mapping[str, Any] | None, terms: Mapping[str, LossTerm], num_pairs: int
) -> dict[str, np.ndarray] | None:
  """`{term: (B,)}` every term's weight for every pair (`pair_weights`, else the term's own)."""
  if pair_weights is None:
    return None
  unknown = sorted(set(pair_weights) - set(terms))
  if unknown:
    raise ConfigError(f'pair_weights names term(s) {unknown} that the objective does not have')
  out = {}
  for name, term in terms.items():
    w = np.asarray(pair_weights.get(name, np.full(num_pairs, term.weight)), np.float32)
    if w.shape != (num_pairs,) or not np.isfinite(w).all() or (w < 0).any():
      raise ConfigError(
        f'pair_weights[{name!r}] must be {num_pairs} finite weights >= 0, got {w.tolist()}'
      )
    out[name] = w
  if out and not (np.stack(list(out.values())) > 0).any(axis=0).all():
    raise ConfigError('pair_weights leave a pair whose loss term weights are all zero')
  return out


def blend_weights(style_weights: Any, num_pairs: int, num_styles: int) -> np.ndarray:
  """(B, S) blend weights of the styles for each pair, from `stylize`'s `style_weights`."""
  if num_styles == 0:
    return np.zeros((num_pairs, 0))
  if style_weights is None:
    return np.eye(num_pairs) if num_styles == num_pairs else np.ones((num_pairs, num_styles))
  w = np.asarray(style_weights, np.float64)
  if w.ndim == 1:
    w = np.broadcast_to(w, (num_pairs, w.shape[0]))
  if w.shape != (num_pairs, num_styles):
    raise ConfigError(
      f'style weights have shape {w.shape}; expected ({num_styles},) or '
      f'({num_pairs}, {num_styles}) for {num_pairs} pair(s) and {num_styles} style(s)'
    )
  return losses.check_blend_weights(w, 'style weights of every pair')


def check_guides(
  guides: Mapping[str, Any] | None, shape: tuple[int, ...], name: str
) -> dict[str, jax.Array]:
  """`guides` `{name: (B, H, W, C)}` (or (H, W, C) for one image) as float32, for images of
  `shape` (B, H, W, 3) (or (H, W, 3)); `{}` for None. `ImageError` naming `name` otherwise."""
  if guides is None:
    return {}
  if not isinstance(guides, Mapping):
    raise ImageError(f'{name} must be a mapping {{name: images}}, got a {type(guides).__name__}')
  out = {}
  for key, value in guides.items():
    array = jnp.asarray(value)
    if array.ndim != len(shape) or tuple(array.shape[:-1]) != tuple(shape[:-1]):
      raise ImageError(
        f"{name}[{key!r}] must be of shape {(*shape[:-1], 'C')} (the images' own height and "
        f'width), got shape {array.shape}'
      )
    if not jnp.issubdtype(array.dtype, jnp.floating):
      raise ImageError(f'{name}[{key!r}] must be floats in [0, 1], got dtype {array.dtype}')
    out[key] = array.astype(jnp.float32)
  return out


def check_images(images: Any, name: str, *, batched: bool = True) -> jax.Array:
  """RGB images (B, H, W, 3) (or (H, W, 3) with `batched=False`) of floats as float32;
  `ImageError` naming `name` otherwise."""
  array = jnp.asarray(images)
  ndim = 4 if batched else 3
  if array.ndim != ndim or array.shape[-1] != 3 or 0 in array.shape:
    shape = '(B, H, W, 3)' if batched else '(H, W, 3)'
    raise ImageError(f'{name} must be RGB images of shape {shape}, got shape {array.shape}')
  if not jnp.issubdtype(array.dtype, jnp.floating):
    raise ImageError(f'{name} must be floats in [0, 1], got dtype {array.dtype}')
  return array.astype(jnp.float32)


def check_contents(contents: Any) -> tuple[Any, list[tuple[int, int]]]:
  """`contents` as one checked batch (B, H, W, 3), or, where their sizes differ, a list of checked
  (H_i, W_i, 3) images; and their sizes."""
  if isinstance(contents, Sequence) and not isinstance(contents, np.ndarray | jax.Array):
    shapes = {np.shape(c) for c in contents}
    if len(shapes) > 1:
      items = [check_images(c, f'contents[{i}]', batched=False) for i, c in enumerate(contents)]
      return items, [tuple(c.shape[:2]) for c in items]
  batch = check_images(contents, 'contents')
  return batch, [tuple(batch.shape[1:3])] * batch.shape[0]


def check_init_images(init_images: Any, num_pairs: int) -> Any:
  """`stylize`'s `init_images` for `config.init.kind='image'`, checked as contents are
  (`check_contents`): one per pair."""
  if init_images is None:
    raise ConfigError("config.init.kind='image' needs init_images")
  init_images, _ = check_contents(init_images)
  if len(init_images) != num_pairs:
    raise ConfigError(f'init_images has {len(init_images)} images for {num_pairs} pairs')
  return init_images


def check_pair_guides(guides: Any, sizes: Sequence[tuple[int, int]]) -> dict[str, Any]:
  """`stylize`'s `guides` (`check_guides`): `{name: (B, H, W, C)}`, or
  where the contents' sizes differ, `{name: [(H_i, W_i, C), ...]}` one per content."""
  if guides is not None and padding.VALID in guides:
    raise ConfigError(f'guides: the name {padding.VALID!r} is reserved for padded batches')
  if len(set(sizes)) <= 1 or not guides:
    return check_guides(guides, (len(sizes), *(sizes[0] if sizes else (0, 0)), 3), 'guides')
  per_pair = []
  for b, size in enumerate(sizes):
    mine = {}
    for name, images in guides.items():
      if len(images) != len(sizes):
        raise ImageError(f'guides[{name!r}] has {len(images)} images for {len(sizes)} contents')
      mine[name] = images[b]
    per_pair.append(check_guides(mine, (*size, 3), f'guides (content {b})'))
  return {name: [mine[name] for mine in per_pair] for name in guides}
