"""Targets: the one place where a pair's targets are built, whole-image or tiled, and sized.

A term's target is computed once per pair and scale from the features of the pair's content and
style images (`LossTerm.target`), where each features mapping also holds the image's guides
(`'guides'`, `{name: (h, w, C)}` in [0, 1]) when there are any: the content's guides are the
pair's, each style image's its own. `batch_targets` does it for a batch (each distinct style image's
features computed once, at the scale's style size, and reduced at once to the statistics that
`PerStyleTarget` terms read), `TiledTarget` wraps a target for a tiled
objective (`nst_jax.run.tiles`), and `target_bytes` is what the memory plan counts.
"""

import dataclasses
import functools
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from nst_jax.core import resample, vgg
from nst_jax.core.objective import Objective
from nst_jax.core.terms import (
  STYLE_VIEWS,
  Features,
  Guides,
  LossTerm,
  PerStyleTarget,
  WindowTarget,
)
from nst_jax.errors import ConfigError
from nst_jax.run.inputs import PairStyles


def compute_targets(
  terms: Mapping[str, LossTerm],
  content: Features,
  styles: Sequence[Features],
  style_weights: Sequence[float],
  views: Mapping[str, Sequence[Features]] | None = None,
) -> dict[str, Any]:
  """Each term's target for one (content, styles) pair; blend weights are normalised here.

  `views[name]` holds the features of view `name` of each style, for terms with `style_views`.
  A style's features may be `reduce_style`'s (a `PerStyleTarget` term's statistics computed).
  """
  total = sum(style_weights)
  blend = [w / total for w in style_weights]
  look = {'identity': styles, **(views or {})}
  targets = {}
  for name, term in terms.items():
    if term.target is None:
      targets[name] = None
      continue
    chosen, weights = styles, blend
    if term.style_views:
      count = len(term.style_views)
      chosen = [look[v][i] for i in range(len(styles)) for v in term.style_views]
      weights = [w / count for w in blend for _ in term.style_views]
    if isinstance(term.target, PerStyleTarget):
      per_style = [_statistics(term.target, name, s) for s in chosen]
      targets[name] = term.target.from_style_statistics(content, per_style, weights)
    else:
      targets[name] = term.target(content, chosen, weights)
  return targets


# Where `reduce_style` puts each `PerStyleTarget` term's statistics: `{term name: statistics}`.
STYLE_STATISTICS = 'style_statistics'


def reduce_style(terms: Mapping[str, LossTerm], style: Features) -> Features:
  """One style image's features as the targets read them: each `PerStyleTarget` term's
  statistics (under `STYLE_STATISTICS`) in place of the layers that only such terms read, so
  that a batch holds each style's statistics, not its feature maps (a 512 px image's relu1_1
  alone is 67 MB)."""
  reduced = {n: t.target for n, t in terms.items() if isinstance(t.target, PerStyleTarget)}
  if not reduced:
    return style
  read = {
    layer
    for n, t in terms.items()
    if t.target is not None and n not in reduced
    for layer in t.layers
  }
  kept = {k: v for k, v in style.items() if k not in vgg.LAYER_NAMES or k in read}
  return {**kept, STYLE_STATISTICS: {n: t.style_statistics(style) for n, t in reduced.items()}}


def _statistics(target: PerStyleTarget, name: str, style: Features) -> Any:
  reduced = style.get(STYLE_STATISTICS)
  return target.style_statistics(style) if reduced is None else reduced[name]


def batch_targets(
  objective: Objective,
  params: Any,
  contents: jax.Array,
  pair_styles: PairStyles,
  style_side: int,
  guides: Guides | None = None,
) -> Any:
  """Every term's target for each pair, stacked on a leading B axis (not yet sharded).

  Args:
    objective: the terms and the network (tiled objectives give window statistics).
    contents: (B, h, w, 3) contents at this scale.
    pair_styles: each pair's style images, blend weights and guides; styles are resized so that
      their longest side is `style_side`, and each distinct style's features are computed once.
    guides: `{name: (B, h, w, C)}` the pairs' guides at this scale, or None.
  """
  features, one_style, pair_targets = _target_fns(objective)
  views = objective.style_views
  content_features = features(params, contents, guides or None)
  cache: dict[Hashable, Any] = {}
  per_pair = []
  for b in range(contents.shape[0]):
    style_features = []
    for i, (key, image) in enumerate(zip(pair_styles.ids[b], pair_styles.images[b], strict=True)):
      if key not in cache:
        size = resample.fit_size(image.shape[:2], style_side)
        style_guides = pair_styles.guides[b][i] if pair_styles.guides else {}
        image = resample.resize(image, size)
        style_guides = {k: resample.resize(g, size) for k, g in style_guides.items()}

        def one(view, image=image, style_guides=style_guides):
          g = {k: view(x)[None] for k, x in style_guides.items()} or None
          return one_style(params, view(image)[None], g)

        cache[key] = one(STYLE_VIEWS['identity']), {v: one(STYLE_VIEWS[v]) for v in views}
      style_features.append(cache[key])
    content_b = jax.tree.map(lambda x, b=b: x[b], content_features)
    plain = [f for f, _ in style_features]
    viewed = {v: [by_view[v] for _, by_view in style_features] for v in views}
    per_pair.append(pair_targets(content_b, plain, pair_styles.weights[b], viewed))
  return stack_pairs(per_pair)


def stack_pairs(per_pair: Sequence[dict[str, Any]]) -> Any:
  """The pairs' targets stacked on a leading axis; `ConfigError` naming the term if they differ
  in shape (a term whose target keeps the style's positions, given styles of different sizes or
  different numbers of styles in one batch)."""
  for name in per_pair[0]:
    shapes = [jax.tree.map(jnp.shape, targets[name]) for targets in per_pair]
    if any(s != shapes[0] for s in shapes):
      raise ConfigError(
        f'loss term {name!r}: its targets differ in shape between the pairs of one batch '
        f'({shapes[0]} and {next(s for s in shapes if s != shapes[0])}); give every pair the '
        'same number of styles, or run such pairs in separate batches'
      )
  return jax.tree.map(lambda *xs: jnp.stack(xs), *per_pair)


def memoized(builder: Callable[..., Any]) -> Callable[..., Any]:
  """`builder` with its results kept for equal arguments (the 8 latest). Arguments that cannot
  be hashed (a user's term holding an array, say) are built afresh each time."""
  cached = functools.lru_cache(maxsize=8)(builder)

  @functools.wraps(builder)
  def build(*args):
    try:
      hash(args)
    except TypeError:
      return builder(*args)
    return cached(*args)

  build.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
  return build


@memoized
def _target_fns(objective: Objective) -> tuple[Callable, Callable, Callable]:
  """Jitted: the features of (N, H, W, 3) images, one style image's (`reduce_style`: its
  statistics come out, its feature maps are freed), and a pair's targets."""
  terms = dict(objective.terms)

  @jax.jit
  def one_style(params, image, guides):
    one = jax.tree.map(lambda y: y[0], objective.features(params, image, guides))
    return reduce_style(terms, one)

  @functools.partial(jax.jit, static_argnums=2)
  def pair_targets(content, styles, blend: Sequence[float], views):
    return compute_targets(terms, content, styles, blend, views)

  return jax.jit(objective.features), one_style, pair_targets


def target_bytes(
  objective: Objective, params: Any, size: tuple[int, int], guides: Mapping[str, int] | None = None
) -> int:
  """Bytes of one pair's targets at `size` (h, w), whole-image, with one style of that size
  (and its style views) and guides of `{name: channels}`: what the memory plan counts."""

  def targets(params):
    g = {k: jnp.zeros((1, *size, c), jnp.float32) for k, c in (guides or {}).items()} or None
    one = jax.tree.map(lambda x: x[0], objective.features(params, jnp.zeros((1, *size, 3)), g))
    views = {view: [one] for view in objective.style_views}
    return compute_targets(dict(objective.terms), one, [one], [1.0], views)

  shapes = jax.eval_shape(targets, params)
  return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(shapes))


@dataclasses.dataclass(frozen=True)
class TiledTarget:
  """A term's target in a tiled objective: from the style images' window statistics
  (`features['tile_stats']`, see `TiledObjective.features`), or, for a `WindowTarget`, the
  content image itself and its guides (each window computes its own from them)."""

  name: str
  target: Any

  def __call__(self, content: Features, styles: Sequence[Features], blend: Sequence[float]) -> Any:
    if isinstance(self.target, WindowTarget):
      return content['image']
    return self.target.from_tile_stats([s['tile_stats'][self.name] for s in styles], blend)
