"""Start images: the content, uniform noise, noise in the style's colours, or given images."""

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from nst_jax.core import color, resample
from nst_jax.run.inputs import PairStyles


def initial_images(
  contents: jax.Array,
  pair_styles: PairStyles,
  init_images: Any,
  size: tuple[int, int],
  config: ml_collections.ConfigDict,
  first: int = 0,
) -> jax.Array:
  """Start images of a process's pairs at the first scale, following `config.init.kind`.

  Args:
    contents: (B, h, w, 3) contents at this scale, in [0, 1].
    pair_styles: the pairs' styles; 'style_colors' recolours noise to each pair's main style.
    init_images: (B, H', W', 3) images for `config.init.kind == 'image'` (resized), else unused.
    size: (h, w) of the scale.
    config: `init`, `init_noise` (Gaussian noise added to every init but 'noise') and `seed`.
    first: global index of the first pair, so that each pair's noise depends on its own index
      only, whichever process holds it.

  Returns:
    (B, h, w, 3) float32 in [0, 1].
  """
  key = jax.random.key(config.seed)
  keys = jax.vmap(lambda b: jax.random.fold_in(key, b))(first + jnp.arange(contents.shape[0]))
  if config.init.kind == 'noise':
    return jax.vmap(lambda k: jax.random.uniform(k, (*size, 3)))(keys)
  if config.init.kind == 'style_colors':
    noise = jax.vmap(lambda k: jax.random.normal(k, (*size, 3)))(keys)
    pairs = zip(pair_styles.images, pair_styles.weights, strict=True)
    dominant = [images[int(np.argmax(w))] for images, w in pairs]
    start = jnp.stack([color.match_color(n, s) for n, s in zip(noise, dominant, strict=True)])
  elif config.init.kind == 'image':
    start = resample.resize(init_images, size)
  else:
    start = contents
  if config.init.noise:
    noise = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 1), (*size, 3)))(keys)
    start = start + config.init.noise * noise
  return jnp.clip(start, 0.0, 1.0)
