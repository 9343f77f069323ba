"""Scoring results with a fixed objective, so that methods and settings compare on equal terms.

An evaluation objective is a config of its own, its weights fixed (never normalised per pair):
by default `classic_objective()`, the classic Gatys et al. content and Gram terms of
`default_config()`'s layers with weights 1 and 5e-4 (nst_jax 0.1's defaults). `Evaluator`
scores images as they are saved (rounded to 8 bits) against each pair's content and style, and
gives the two ratios that say whether a result is balanced:

* style ratio: the style term of the result / that of the content photograph itself (how much
  of the photograph's distance to the style is left; 1 means no style at all);
* content ratio: the content term of the result / that of the style image itself, resized to
  the content's size (how far the content drifted, relative to an image with none of it).
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import ml_collections
import numpy as np

from nst_jax.core import objective, resample, vgg
from nst_jax.io import images as images_lib
from nst_jax.run import config as config_lib
from nst_jax.run import engine, inputs


def classic_objective() -> ml_collections.ConfigDict:
  """The default evaluation objective: content (relu4_2) 1.0 and Gram (relu1_1..relu5_1) 5e-4,
  unnormalised."""
  config = config_lib.default_config()
  config.normalize_losses = False
  config.losses.gram.weight = 5e-4
  return config


def quantize(images: Any) -> np.ndarray:
  """Images as a saved 8-bit file holds them: float32 in [0, 1], on 256 levels."""
  return images_lib.to_8bit(images).astype(np.float32) / 255.0


@dataclasses.dataclass(frozen=True)
class Scores:
  """Evaluation of a batch of B images.

  Attributes:
    total: (B,) the weighted objective.
    terms: `{name: (B,)}` each term's unweighted value.
  """

  total: np.ndarray
  terms: dict[str, np.ndarray]


class Evaluator:
  """Scores images for a batch of (content, style) pairs with a fixed objective.

  Args:
    contents: (B, H, W, 3) in [0, 1], at the size of the images to score.
    styles: S style images (Hs, Ws, 3) in [0, 1].
    config: the evaluation objective (terms, layers, style loss and scale); default
      `classic_objective()`. Its size settings are replaced by the contents', and its weights are
      used as they are (`normalize_losses` off).
    style_weights: as for `stylize`.
    terms: `{name: LossTerm}` to score with instead of the config's terms (as for `stylize`).
    network: `(VGG19, params)`, default the config's weights.
  """

  def __init__(
    self,
    contents: Any,
    styles: Sequence[Any],
    config: ml_collections.ConfigDict | None = None,
    *,
    style_weights: Any = None,
    terms: Mapping[str, objective.LossTerm] | None = None,
    network: tuple[vgg.VGG19, Any] | None = None,
  ):
    config = classic_objective() if config is None else config
    config = ml_collections.ConfigDict(config.to_dict())
    contents = jnp.asarray(contents, jnp.float32)
    config.image_size = max(contents.shape[1:3])
    config.schedule.num_scales = 1
    config.init.kind = 'content'
    config.normalize_losses = False  # A fixed objective: the same weights for every pair.
    self._contents, self._styles = contents, [jnp.asarray(s, jnp.float32) for s in styles]
    self._style_weights = style_weights
    self._prepared = engine.prepare(
      contents, styles, config, style_weights=style_weights, terms=terms, network=network
    )
    self._state = self._prepared.start_state(0)
    self._weights = self._prepared.pair_weights(0, self._state)

  def __call__(self, images: Any, *, as_saved: bool = True) -> Scores:
    """Scores (B, H, W, 3) images in [0, 1]; `as_saved` rounds them to 8 bits first."""
    prepared = self._prepared
    images = quantize(images) if as_saved else np.asarray(images, np.float32)
    if images.shape != tuple(self._contents.shape):
      raise ValueError(f'images have shape {images.shape}; expected {self._contents.shape}')
    total, values = prepared.program.evaluate(
      prepared.params,
      prepared.layout.shard(images),
      self._state.targets,
      self._weights,
      prepared.program.step_keys(self._state),
      self._state.guides,
    )
    gather = prepared.layout.gather
    return Scores(gather(total), {name: gather(v) for name, v in values.items()})

  def balance(self, images: Any, *, as_saved: bool = True) -> dict[str, np.ndarray]:
    """`{'style': (B,), 'content': (B,)}`: the style and content ratios (module docstring).

    The style ratio is of the 'gram' term (the classic style loss), the content ratio of the
    'content' term; each pair's reference style image is its most weighted.
    """
    scores = self(images, as_saved=as_saved)
    photo = self(self._contents, as_saved=False)
    size = tuple(self._contents.shape[1:3])
    blend = inputs.blend_weights(self._style_weights, len(self._contents), len(self._styles))
    stretched = jnp.stack([resample.resize(self._styles[int(np.argmax(w))], size) for w in blend])
    painting = self(stretched, as_saved=False)
    return {
      'style': scores.terms['gram'] / photo.terms['gram'],
      'content': scores.terms['content'] / painting.terms['content'],
    }
