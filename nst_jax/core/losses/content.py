"""Losses that keep the content: feature reconstruction, for ONE example."""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core.losses.common import check_features


def content_loss(features: ArrayLike, target: ArrayLike) -> jax.Array:
  """Mean squared error between two feature maps.

  Args:
    features: (H, W, C) activations of the image being optimised.
    target: (H, W, C) activations of the content image, same shape.

  Returns:
    Scalar >= 0, the mean over all H*W*C entries of `(features - target)**2`.

  Raises:
    ValueError: if either input is not 3-D, or the shapes differ.
  """
  x = check_features(features)
  t = check_features(target, 'target')
  if x.shape != t.shape:
    raise ValueError(f'features shape {x.shape} and target shape {t.shape} differ')
  return jnp.mean(jnp.square(x - t))
