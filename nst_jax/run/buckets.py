"""Buckets: contents of different sizes in one batch, each padded to the batch's size.

The rule: contents whose fitted sizes differ share a batch when its bucket, the largest height
and the largest width among them, adds at most `config.devices.bucket_padding` (a fraction) to
each pair's pixels, and every loss term can leave padding out (`nst_jax.core.padding`: terms
that are sums over positions; not sliced, nearest_neighbor or self_similarity). Each pair is then
optimised at exactly the sizes it would have alone, at every scale; the bucket at a scale is the
largest of them. Its content, start image and guides are fitted to its own size and padded by
reflection (top-left aligned); its own region travels as the guide `padding.VALID`, which leaves
the padding out of the network and every loss, so that results equal those of each pair alone up
to float rounding. `Frames.crop` cuts the results back to each pair's size.

    frames = Frames.create([(170, 256), (171, 256)], config)   # one bucket of 171x256
    frames.fit([a, b], scale)                                    # (2, 171, 256, 3)
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from nst_jax.core import padding, resample
from nst_jax.core.terms import LossTerm, terms_from_config
from nst_jax.errors import ConfigError
from nst_jax.run import inits, schedule
from nst_jax.run.inputs import PairStyles

Size = tuple[int, int]


def padding_fraction(size: Size, bucket: Size) -> float:
  """The pixels that `bucket` adds to `size`, as a fraction of `size`'s."""
  return bucket[0] * bucket[1] / (size[0] * size[1]) - 1.0


def bucket_of(sizes: Sequence[Size]) -> Size:
  """The largest height and the largest width of `sizes`."""
  return max(h for h, _ in sizes), max(w for _, w in sizes)


def why_not_bucketed(
  sizes: Sequence[Size], config: ml_collections.ConfigDict, terms: Mapping[str, LossTerm]
) -> str | None:
  """Why contents fitted to `sizes` cannot share one batch under the rule (None: they can)."""
  if len(set(sizes)) <= 1:
    return None
  blocked = padding.blocking_terms(terms)
  if blocked:
    return (
      f'loss term(s) {", ".join(map(repr, blocked))} cannot leave padding out (only sums over '
      'positions can: content, gram, gaussian, tv)'
    )
  if config.optim.parametrization != 'pixels':
    return f"config.optim.parametrization={config.optim.parametrization!r} is not 'pixels'"
  if config.optim.warm_start:
    return "config.optim.warm_start carries Adam's moments across the padding"
  if config.memory.tile_size > 0:
    return f'config.memory.tile_size={config.memory.tile_size}: tiles need contents of one size'

  bucket, limit = bucket_of(sizes), config.devices.bucket_padding
  worst = max(sizes, key=lambda s: padding_fraction(s, bucket))
  if padding_fraction(worst, bucket) > limit:
    return (
      f'padding {_text(worst)} to {_text(bucket)} adds {padding_fraction(worst, bucket):.0%} '
      f'of its pixels, more than config.devices.bucket_padding={limit}'
    )
  return None


def _text(size: Size) -> str:
  return f'{size[0]}x{size[1]}'


def group(
  sizes: Sequence[Size],
  config: ml_collections.ConfigDict | None = None,
  batch_size: int = 0,
  processes: int = 1,
) -> tuple[list[tuple[Size, list[int]]], str | None]:
  """Indices of contents fitted to `sizes` in batches: `([(bucket, indices)], why_split)`.

  In order of first appearance, each size joins the first group whose bucket it keeps within
  the rule (without `config`, or with several `processes`: the group of its own size); groups
  are then cut into batches of at most `batch_size` (0: no limit). `why_split` says why sizes
  that differ did not all share one group (None: they did, all are equal, or no `config`).
  """
  terms = None if config is None else terms_from_config(config)
  groups: list[list[int]] = []
  why = None
  for i, size in enumerate(sizes):
    for members in groups:
      joined = [sizes[j] for j in members] + [size]
      if config is None or processes > 1:
        reason = None if len(set(joined)) == 1 else 'several processes run the batches'
      else:
        reason = why_not_bucketed(joined, config, terms)
      if reason is None:
        members.append(i)
        break
      why = why or (reason if config is not None else None)
    else:
      groups.append([i])
  batches = []
  for members in groups:
    step = batch_size or len(members)
    for k in range(0, len(members), step):
      chunk = members[k : k + step]
      batches.append((bucket_of([sizes[j] for j in chunk]), chunk))
  return batches, why


def _pad(image: jax.Array, size: Size) -> jax.Array:
  """(h, w, C) reflected into (H, W, C) = `size`, top-left aligned (edge-repeated beyond 2x)."""
  h, w = image.shape[:2]
  while image.shape[0] < size[0] or image.shape[1] < size[1]:
    extra = [min(size[0] - image.shape[0], h - 1), min(size[1] - image.shape[1], w - 1)]
    mode = 'reflect' if min(h, w) > 1 else 'edge'
    if extra == [0, 0]:
      mode, extra = 'edge', [size[0] - image.shape[0], size[1] - image.shape[1]]
    image = jnp.pad(image, ((0, extra[0]), (0, extra[1]), (0, 0)), mode=mode)
  return image


@dataclasses.dataclass(frozen=True)
class Frames:
  """Each pair's own size at every scale (`own[scale][pair]`, coarsest first), and the batch's.

  `padded` is False when every pair has the bucket's size: then every method is the plain
  resize (or nothing), and the program is the one of an equal-size batch.
  """

  own: tuple[tuple[Size, ...], ...]

  @classmethod
  def create(
    cls,
    shapes: Sequence[Size],
    config: ml_collections.ConfigDict,
    terms: Mapping[str, LossTerm] | None = None,
  ) -> 'Frames':
    """The frames of contents of `shapes` (height, width) fitted by `config`'s schedule; with
    `terms`, checked (`check`)."""
    per_pair = [schedule.scale_sizes(tuple(shape), config) for shape in shapes]
    frames = cls(tuple(tuple(map(tuple, scale)) for scale in zip(*per_pair, strict=True)))
    if terms is not None:
      frames.check(config, terms)
    return frames

  @property
  def padded(self) -> bool:
    return any(len(set(scale)) > 1 for scale in self.own)

  @property
  def sizes(self) -> list[Size]:
    """The bucket at each scale, coarsest first."""
    return [bucket_of(scale) for scale in self.own]

  def check(
    self, config: ml_collections.ConfigDict, terms: Mapping[str, LossTerm], tiled: bool = False
  ) -> None:
    """Raises `ConfigError` where these contents cannot share one batch (see the module), or
    would run in tiles (`tiled`: the memory plan chose them)."""
    if not self.padded:
      return
    sizes = ', '.join(_text(s) for s in self.own[-1])
    why = why_not_bucketed(self.own[-1], config, terms)
    if why is not None:
      raise ConfigError(
        f'contents of sizes {sizes} cannot share one batch: {why}; pass them in separate '
        'batches of one size each'
      )
    if tiled:
      raise ConfigError(
        f'contents of sizes {sizes} share a batch (config.devices.bucket_padding) but would run '
        'in tiles (config.memory.tile_size): tiles need contents of one size; pass them in '
        'batches of one size (scripts: config.devices.bucket_padding=0)'
      )

  def terms(self, terms: Mapping[str, LossTerm]) -> dict[str, LossTerm]:
    """`terms`, over each pair's own region where padded (`padding.padded_terms`)."""
    return padding.padded_terms(terms) if self.padded else dict(terms)

  def fit(self, images: Any, scale: int) -> jax.Array:
    """(B, h, w, C) at `scale`'s bucket: each of `images` (a sequence of (H_i, W_i, C), or a
    batch) resized from its own pixels to its own size, padded by reflection."""
    if not self.padded:  # Contents of different sizes may still fit to one.
      if isinstance(images, jax.Array | np.ndarray):
        return resample.resize(images, self.sizes[scale])
      return jnp.stack([resample.resize(x, self.sizes[scale]) for x in images])
    bucket = self.sizes[scale]
    return jnp.stack(
      [
        _pad(resample.resize(x, own), bucket)
        for x, own in zip(images, self.own[scale], strict=True)
      ]
    )

  def crop(self, images: Any, scale: int = -1) -> Any:
    """Each pair's own region of `images` (B, h, w, C) at `scale`: a list of (h_i, w_i, C),
    or `images` itself when nothing is padded."""
    if not self.padded:
      return images
    return [x[:h, :w] for x, (h, w) in zip(images, self.own[scale], strict=True)]

  def resize(self, images: jax.Array, scale: int, source: int = -1) -> jax.Array:
    """`images` (B, h, w, C) at scale `source` resized to `scale`, each pair's own region alone."""
    if not self.padded:
      return resample.resize(images, self.sizes[scale])
    return self.fit(self.crop(images, source), scale)

  def guides(self, guides: Mapping[str, jax.Array], scale: int) -> dict[str, jax.Array]:
    """The pairs' guides (at the final bucket) at `scale`, with each pair's region
    (`padding.VALID`, (B, h, w, 1)) when padded."""
    out = {name: self.resize(g, scale) for name, g in guides.items()}
    if self.padded:
      h, w = self.sizes[scale]
      sizes = jnp.asarray(self.own[scale], jnp.float32)
      inside = (jnp.arange(h) < sizes[:, 0, None])[:, :, None] & (
        jnp.arange(w) < sizes[:, 1, None]
      )[:, None, :]
      out[padding.VALID] = inside[..., None].astype(jnp.float32)
    return out

  def initial_images(
    self,
    contents: jax.Array,
    pair_styles: PairStyles,
    init_images: Any,
    config: ml_collections.ConfigDict,
    first: int = 0,
  ) -> jax.Array:
    """`inits.initial_images` at the first scale, each pair's drawn at its own size."""
    if not self.padded:
      return inits.initial_images(contents, pair_styles, init_images, self.sizes[0], config, first)
    starts = []
    for b, (content, own) in enumerate(zip(self.crop(contents, 0), self.own[0], strict=True)):
      styles = PairStyles(*(field[b : b + 1] for field in pair_styles))
      init = None if init_images is None else init_images[b][None]
      starts.append(inits.initial_images(content[None], styles, init, own, config, first + b)[0])
    return self.fit(starts, 0)
