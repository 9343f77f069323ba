"""Gatys et al.'s Gram-matrix style loss, for ONE example's features (H, W, C)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nst_jax.core.losses.common import PRECISION, check_features, check_square, positions


class GramTarget(NamedTuple):
  """Gram-matrix style statistics of one style image at one layer.

  Attributes:
    gram: (C, C) symmetric PSD, `gram_matrix` of the style features.
  """

  gram: jax.Array


def gram_matrix(features: ArrayLike) -> jax.Array:
  """Gram matrix of one example's features, normalised by the number of positions.

  Args:
    features: (H, W, C) activations of one layer for one image.

  Returns:
    (C, C) symmetric PSD matrix `F^T F / (H*W)`, where F is `features` reshaped to (H*W, C): the
    uncentred second moment of the feature vectors, independent of the image size.

  Raises:
    ValueError: if `features` is not 3-D or is empty.
  """
  f = positions(check_features(features))
  return _gram(f)


def _gram(f: jax.Array) -> jax.Array:
  """(P, C) -> (C, C) `f^T f / P`, contracting the positions in place (no transposed copy)."""
  return jnp.einsum('pc,pd->cd', f, f, precision=PRECISION) / f.shape[0]


def gram_style_loss(features: ArrayLike, target_gram: ArrayLike) -> jax.Array:
  """Gatys et al.'s style loss: mean squared difference of Gram matrices.

  Normalisation: the Gram matrix is divided by H*W and the loss averages over the C*C entries, so
  the value does not grow with image size or channel count (it scales as features**4).

  Args:
    features: (H, W, C) activations of the image being optimised.
    target_gram: (C, C) Gram matrix of the style features, e.g. `GramTarget.gram`.

  Returns:
    Scalar >= 0, `mean((gram_matrix(features) - target_gram)**2)`.

  Raises:
    ValueError: if `features` is not 3-D or `target_gram` is not (C, C).
  """
  x = check_features(features)
  t = check_square(target_gram, 'target_gram', x.shape[-1])
  return _gram_loss(positions(x), t)


@jax.custom_vjp
def _gram_loss(f: jax.Array, target: jax.Array) -> jax.Array:
  """`mean((gram(f) - target)**2)` for f (P, C), with a one-matmul gradient.

  d loss / d f = f (D + D^T) / P, with D = d loss / d gram = 2 (gram - target) / C^2: one
  (P, C) x (C, C) product, where autodiff of the Gram matrix makes two products and transposes
  at full resolution (relu1_1: P = 65536 at 256 px).
  """
  return jnp.mean(jnp.square(_gram(f) - target))


def _gram_loss_fwd(f, target):
  diff = _gram(f) - target
  return jnp.mean(jnp.square(diff)), (f, diff)


def _gram_loss_bwd(residuals, g):
  f, diff = residuals
  d_gram = (2.0 / diff.size) * g * diff
  d_f = jnp.matmul(f, (d_gram + d_gram.T) / f.shape[0], precision=PRECISION)
  return d_f, -d_gram


_gram_loss.defvjp(_gram_loss_fwd, _gram_loss_bwd)


def gram_style_target(features: ArrayLike) -> GramTarget:
  """Precomputes the Gram style target of one style image's features, shape (H, W, C)."""
  return GramTarget(gram_matrix(features))
