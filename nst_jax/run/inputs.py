"""A batch's inputs: each pair's styles and guides, and colour control of inputs and results.

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

from nst_jax.core import colorspaces, losses
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
from nst_jax.errors import ConfigError


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
    contents = jax.vmap(to_luminance_rgb)(contents)
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
