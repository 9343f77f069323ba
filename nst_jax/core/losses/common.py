"""Input checks and small helpers shared by the loss functions (one example, no batch axis)."""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

# Matrix products of feature statistics use full float32 precision, so that they stay accurate
# on GPUs and TPUs (TF32 or bfloat16 passes would perturb the eigenvalues of nearly singular
# covariances).
PRECISION = jax.lax.Precision.HIGHEST


def as_float(x: ArrayLike) -> jax.Array:
  """`x` as a JAX array of a floating dtype of at least float32 precision."""
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def check_features(features: ArrayLike, name: str = 'features') -> jax.Array:
  """`features` as a float array; raises `ValueError` unless it is a non-empty (H, W, C)."""
  x = as_float(features)
  if x.ndim != 3:
    raise ValueError(f'{name} must be 3-D (H, W, C) for one example, got shape {x.shape}')
  if x.shape[0] * x.shape[1] == 0 or x.shape[2] == 0:
    raise ValueError(f'{name} must have at least one position and one channel, got {x.shape}')
  return x


def check_square(m: ArrayLike, name: str, size: int | None = None) -> jax.Array:
  """`m` as a float array; raises `ValueError` unless it is (size, size), or square."""
  m = as_float(m)
  if m.ndim != 2 or m.shape[0] != m.shape[1] or (size is not None and m.shape[0] != size):
    want = f'({size}, {size})' if size is not None else 'square (C, C)'
    raise ValueError(f'{name} must be {want}, got shape {m.shape}')
  return m


def positions(features: jax.Array) -> jax.Array:
  """(H, W, C) -> (H*W, C): one row per position."""
  return features.reshape(-1, features.shape[-1])


def symmetrize(m: jax.Array) -> jax.Array:
  return 0.5 * (m + m.T)
