"""Temporal consistency for video (Ruder et al. 2016), for ONE frame, and its term.

The term reads the frame's guides (`features['guides']`, see `nst_jax.core.terms`): its
neighbour's stylized frame warped onto it, `'previous'` (H, W, 3), and the certainty of that
warp, `'certainty'` (H, W, 1) (`nst_jax.core.motion.certainty`). Long-term targets come in pairs
`'previous_<k>'` / `'certainty_<k>'` (k the frame offset) and add their own terms.
`nst_jax.stylize_video` makes these guides; the term has nothing to do without them.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core import colorspaces, terms
from nst_jax.core.losses.common import as_float
from nst_jax.core.losses.sums import ErrorSums, mean_from_sums
from nst_jax.errors import ConfigError

PREVIOUS, CERTAINTY = 'previous', 'certainty'


def guide_names(offset: int = 1) -> tuple[str, str]:
  """The guide names of the target `offset` frames away: ('previous', 'certainty') for 1,
  ('previous_<k>', 'certainty_<k>') for k > 1."""
  suffix = '' if offset == 1 else f'_{offset}'
  return PREVIOUS + suffix, CERTAINTY + suffix


def temporal_loss(
  image: ArrayLike, previous: ArrayLike, certainty: ArrayLike, *, luminance: bool = False
) -> jax.Array:
  """Ruder et al.'s temporal loss: (1/D) sum_k c_k (x_k - previous_k)^2.

  Args:
    image: (H, W, 3) the frame being optimised, in [0, 1].
    previous: (H, W, 3) the target: the neighbour's stylized frame warped onto this one.
    certainty: (H, W, 1) or (H, W) c in [0, 1]: where the target can be trusted.
    luminance: compare luminance only (D = H*W), for colour controls that keep only the
      result's luminance; else RGB (D = H*W*3).

  Returns:
    Scalar >= 0; 0 where the image equals the target wherever c > 0.
  """
  x, p, c = _aligned(image, previous, certainty, luminance)
  return jnp.mean(c * jnp.square(x - p))


def _aligned(image, previous, certainty, luminance: bool):
  x, p, c = as_float(image), as_float(previous), as_float(certainty)
  if x.ndim != 3 or p.shape != x.shape:
    raise ValueError(f'image and previous must be (H, W, C) of one shape, got {x.shape}, {p.shape}')
  c = c.reshape(x.shape[:2] + (1,))
  if luminance:
    x, p = colorspaces.luminance(x)[..., None], colorspaces.luminance(p)[..., None]
  return x, p, c


def _pairs(features: terms.Features) -> list[tuple[jax.Array, jax.Array]]:
  """The (target, certainty) guide pairs of one frame, offset 1 first."""
  guides = features.get('guides') or {}
  if PREVIOUS not in guides or CERTAINTY not in guides:
    raise ConfigError(
      f'the temporal loss needs the guides {PREVIOUS!r} and {CERTAINTY!r} (got '
      f'{sorted(guides)}); it is for video: use nst_jax.stylize_video or scripts/stylize_video.py'
    )
  offsets = sorted(
    int(name.rsplit('_', 1)[1]) for name in guides if name.startswith(CERTAINTY + '_')
  )
  return [tuple(guides[n] for n in guide_names(k)) for k in (1, *offsets)]


@dataclasses.dataclass(frozen=True)
class TemporalLoss:
  """`temporal_loss` of `features['image']` against each of the frame's targets; tileable."""

  luminance: bool = False

  def __call__(self, features: terms.Features, target: Any) -> jax.Array:
    del target
    image = features['image']
    return sum(temporal_loss(image, p, c, luminance=self.luminance) for p, c in _pairs(features))

  def tile_sums(self, features: terms.Features, masks: Mapping[str, jax.Array], target) -> Any:
    del target
    m = as_float(masks['image'])[..., None]
    sums = []
    for p, c in _pairs(features):
      x, p, c = _aligned(features['image'], p, c, self.luminance)
      sums.append(ErrorSums(jnp.sum(c * jnp.square(x - p) * m), jnp.sum(m) * x.shape[-1]))
    return sums

  def from_tile_sums(self, totals: Any, target: Any) -> jax.Array:
    del target
    return sum(mean_from_sums(t) for t in totals)


def temporal_term(luminance: bool = False) -> terms.LossTerm:
  """Ruder et al.'s temporal term: each frame kept close to its warped stylized neighbour where
  the warp is certain (`luminance`: in luminance only, see `temporal_loss`)."""
  if not isinstance(luminance, bool):
    raise ConfigError(f'luminance={luminance!r} must be True or False')
  return terms.LossTerm(TemporalLoss(luminance))


terms.register_loss('temporal', temporal_term, built_in=True, luminance=False)
