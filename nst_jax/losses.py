"""Style-transfer losses (Gatys et al., 2016) as pure functions of ONE example.

Features are one VGG layer's activation for one image, shape (H, W, C), any real values (after a
ReLU they are >= 0). Images are (H, W, C) RGB in [0, 1]. Nothing here has a batch dimension: batch
with `jax.vmap`, as for the `optax.losses` functions. Every function works under `jax.jit`,
`jax.vmap` and `jax.grad`.

Style statistics are precomputed once per style image as a *target*:

* `GramTarget(gram)`: the Gram matrix, compared with `gram_style_loss` (Gatys et al.).
* `GaussianTarget(mean, cov, cov_sqrt)`: a Gaussian fit, compared with `wasserstein2_style_loss`
  (the closed-form Wasserstein-2 distance between Gaussians).

`style_target` and `style_loss` dispatch on the kind; `blend_style_targets` mixes several styles by
mixing their statistics (not their losses). `combine_terms` forms the weighted total, optionally
dividing each term by its own (gradient-stopped) value so that weights are pure ratios.

Matrix products use `Precision.HIGHEST`, so that float32 statistics stay accurate on GPUs/TPUs
(TF32/bf16 passes would perturb the eigenvalues of nearly singular covariances).
"""

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nst_jax.errors import ConfigError

_PRECISION = jax.lax.Precision.HIGHEST

StyleKind = Literal['gram', 'gaussian']
TVKind = Literal['l1', 'l2']


class GramTarget(NamedTuple):
  """Gram-matrix style statistics of one style image at one layer.

  Attributes:
    gram: (C, C) symmetric PSD, `gram_matrix` of the style features.
  """

  gram: jax.Array


class GaussianTarget(NamedTuple):
  """Gaussian-fit style statistics of one style image at one layer.

  Attributes:
    mean: (C,) mean feature vector over the H*W positions.
    cov: (C, C) symmetric PSD population covariance over the positions.
    cov_sqrt: (C, C) symmetric PSD square root of `cov`, precomputed so that each optimisation
      step needs only one eigendecomposition.
  """

  mean: jax.Array
  cov: jax.Array
  cov_sqrt: jax.Array


StyleTarget = GramTarget | GaussianTarget


def _as_float(x: ArrayLike) -> jax.Array:
  """`x` as a JAX array of a floating dtype of at least float32 precision."""
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _check_features(features: ArrayLike, name: str = 'features') -> jax.Array:
  x = _as_float(features)
  if x.ndim != 3:
    raise ValueError(f'{name} must be 3-D (H, W, C) for one example, got shape {x.shape}')
  if x.shape[0] * x.shape[1] == 0 or x.shape[2] == 0:
    raise ValueError(f'{name} must have at least one position and one channel, got {x.shape}')
  return x


def _check_square(m: ArrayLike, name: str, size: int | None = None) -> jax.Array:
  m = _as_float(m)
  if m.ndim != 2 or m.shape[0] != m.shape[1] or (size is not None and m.shape[0] != size):
    want = f'({size}, {size})' if size is not None else 'square (C, C)'
    raise ValueError(f'{name} must be {want}, got shape {m.shape}')
  return m


def _positions(features: jax.Array) -> jax.Array:
  """(H, W, C) -> (H*W, C)."""
  return features.reshape(-1, features.shape[-1])


def _symmetrize(m: jax.Array) -> jax.Array:
  return 0.5 * (m + m.T)


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
  f = _positions(_check_features(features))
  return _gram(f)


def _gram(f: jax.Array) -> jax.Array:
  """(P, C) -> (C, C) `f^T f / P`, contracting the positions in place (no transposed copy)."""
  return jnp.einsum('pc,pd->cd', f, f, precision=_PRECISION) / f.shape[0]


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
  x = _check_features(features)
  t = _check_features(target, 'target')
  if x.shape != t.shape:
    raise ValueError(f'features shape {x.shape} and target shape {t.shape} differ')
  return jnp.mean(jnp.square(x - t))


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
  x = _check_features(features)
  t = _check_square(target_gram, 'target_gram', x.shape[-1])
  return _gram_loss(_positions(x), t)


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
  d_f = jnp.matmul(f, (d_gram + d_gram.T) / f.shape[0], precision=_PRECISION)
  return d_f, -d_gram


_gram_loss.defvjp(_gram_loss_fwd, _gram_loss_bwd)


def mean_and_covariance(features: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Mean and population covariance of the feature vectors over the H*W positions.

  Args:
    features: (H, W, C) activations of one layer for one image.

  Returns:
    `(mean, cov)`: mean (C,), and cov (C, C) symmetric PSD, `sum_p (f_p - mean)(f_p - mean)^T /
    (H*W)` (divided by H*W, not H*W - 1).

  Raises:
    ValueError: if `features` is not 3-D or is empty.
  """
  f = _positions(_check_features(features))
  mean = jnp.mean(f, axis=0)
  centred = f - mean
  cov = jnp.matmul(centred.T, centred, precision=_PRECISION) / f.shape[0]
  return mean, _symmetrize(cov)


def _psd_sqrtm(m: jax.Array) -> jax.Array:
  """Symmetric PSD square root `V diag(sqrt(max(lam, 0))) V^T` of a symmetric matrix."""
  lam, v = jnp.linalg.eigh(_symmetrize(m))
  root = (v * jnp.sqrt(jnp.maximum(lam, 0.0))) @ v.T
  return _symmetrize(root)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _trace_sqrtm(m: jax.Array, eps: float) -> jax.Array:
  lam = jnp.linalg.eigvalsh(m)
  return jnp.sum(jnp.sqrt(jnp.maximum(lam, 0.0)))


def _trace_sqrtm_fwd(m: jax.Array, eps: float) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
  lam, v = jnp.linalg.eigh(m)
  return jnp.sum(jnp.sqrt(jnp.maximum(lam, 0.0))), (lam, v)


def _trace_sqrtm_bwd(
  eps: float, residuals: tuple[jax.Array, jax.Array], g: jax.Array
) -> tuple[jax.Array]:
  lam, v = residuals
  # Relative floor (absolute below 1) keeps the gradient finite on (numerically) zero eigenvalues,
  # whose true derivative d sqrt(lam) / d lam is infinite.
  floor = eps * jnp.maximum(lam[-1], 1.0)
  inv_sqrt = 1.0 / jnp.sqrt(jnp.maximum(lam, floor))
  return (0.5 * g * (v * inv_sqrt) @ v.T,)


_trace_sqrtm.defvjp(_trace_sqrtm_fwd, _trace_sqrtm_bwd)


def trace_sqrtm(m: ArrayLike, *, eps: float = 1e-6) -> jax.Array:
  """Trace of the PSD square root of a symmetric PSD matrix, with a finite gradient.

  The value is `sum(sqrt(max(lam, 0)))` over the eigenvalues `lam` of `m` (one `eigh`). The
  gradient is a custom VJP, `0.5 * V diag(1 / sqrt(max(lam, floor))) V^T` with
  `floor = eps * max(lam_max, 1)`: the exact gradient `0.5 * m^{-1/2}` where `m` is well
  conditioned, and finite (instead of NaN/inf from differentiating `eigh`) where `m` is singular,
  e.g. the covariance of ReLU features with dead channels or fewer positions than channels.
  Only reverse mode is defined.

  Args:
    m: (C, C) symmetric PSD matrix (only its lower triangle is read by `eigh`; pass a symmetric
      matrix).
    eps: relative floor on the eigenvalues used in the gradient (not in the value).

  Returns:
    Scalar >= 0, `tr(m^{1/2})`.

  Raises:
    ValueError: if `m` is not square 2-D.
  """
  return _trace_sqrtm(_check_square(m, 'm'), float(eps))


def gram_style_target(features: ArrayLike) -> GramTarget:
  """Precomputes the Gram style target of one style image's features, shape (H, W, C)."""
  return GramTarget(gram_matrix(features))


def gaussian_style_target(features: ArrayLike) -> GaussianTarget:
  """Precomputes the Gaussian style target (mean, cov, cov_sqrt) of features (H, W, C).

  Args:
    features: (H, W, C) activations of the style image at one layer.

  Returns:
    `GaussianTarget` with mean (C,), cov (C, C) and its PSD square root cov_sqrt (C, C).
  """
  mean, cov = mean_and_covariance(features)
  return GaussianTarget(mean, cov, _psd_sqrtm(cov))


def wasserstein2_style_loss(
  features: ArrayLike,
  target_mean: ArrayLike,
  target_cov: ArrayLike,
  target_cov_sqrt: ArrayLike | None = None,
  *,
  eps: float = 1e-6,
) -> jax.Array:
  """Squared Wasserstein-2 distance between Gaussian fits of features and style, per channel.

  With `(m, S)` = `mean_and_covariance(features)` and `(m_t, S_t)` the target,

    W2^2 = ||m - m_t||^2 + tr(S) + tr(S_t) - 2 tr((S_t^{1/2} S S_t^{1/2})^{1/2}),

  and the loss is `W2^2 / C`: the average per channel, so that layers with different channel
  counts contribute comparably (the value scales as features**2, and not with image size). One
  `eigh` runs per call when `target_cov_sqrt` is given (see `gaussian_style_target`); the gradient
  is finite even for rank-deficient covariances (see `trace_sqrtm`). Rounding can make the value
  slightly negative (about -1e-6 * tr(S) / C in float32) when the distributions coincide.

  Args:
    features: (H, W, C) activations of the image being optimised.
    target_mean: (C,) mean of the style features.
    target_cov: (C, C) covariance of the style features.
    target_cov_sqrt: (C, C) PSD square root of `target_cov`; computed here (one more `eigh`) if
      None. `wasserstein2_style_loss(features, *gaussian_target)` passes all three.
    eps: relative eigenvalue floor for the gradient of the trace term, see `trace_sqrtm`.

  Returns:
    Scalar, `W2^2 / C` (>= 0 up to rounding).

  Raises:
    ValueError: if `features` is not 3-D or a target has the wrong shape.
  """
  x = _check_features(features)
  c = x.shape[-1]
  t_mean = _as_float(target_mean)
  if t_mean.shape != (c,):
    raise ValueError(f'target_mean must have shape ({c},), got {t_mean.shape}')
  t_cov = _check_square(target_cov, 'target_cov', c)
  if target_cov_sqrt is None:
    t_root = _psd_sqrtm(t_cov)
  else:
    t_root = _check_square(target_cov_sqrt, 'target_cov_sqrt', c)
  mean, cov = mean_and_covariance(x)
  inner = jnp.matmul(jnp.matmul(t_root, cov, precision=_PRECISION), t_root, precision=_PRECISION)
  w2 = (
    jnp.sum(jnp.square(mean - t_mean))
    + jnp.trace(cov)
    + jnp.trace(t_cov)
    - 2.0 * _trace_sqrtm(_symmetrize(inner), float(eps))
  )
  return w2 / c


def style_target(features: ArrayLike, kind: StyleKind) -> StyleTarget:
  """Precomputes the style target of `kind` ('gram' or 'gaussian') for features (H, W, C).

  Raises:
    ConfigError: if `kind` is not 'gram' or 'gaussian'.
  """
  if kind == 'gram':
    return gram_style_target(features)
  if kind == 'gaussian':
    return gaussian_style_target(features)
  raise ConfigError(f"unknown style loss kind {kind!r}; expected 'gram' or 'gaussian'")


def style_loss(features: ArrayLike, target: StyleTarget, *, eps: float = 1e-6) -> jax.Array:
  """`gram_style_loss` or `wasserstein2_style_loss` (with `eps`), chosen by the type of `target`.

  Args:
    features: (H, W, C) activations of the image being optimised.
    target: a `GramTarget` or `GaussianTarget` for C channels.
    eps: see `wasserstein2_style_loss`; unused for Gram targets.

  Returns:
    Scalar loss.
  """
  if isinstance(target, GramTarget):
    return gram_style_loss(features, target.gram)
  if isinstance(target, GaussianTarget):
    return wasserstein2_style_loss(features, *target, eps=eps)
  raise TypeError(f'target must be a GramTarget or GaussianTarget, got {type(target).__name__}')


def _is_target(x: Any) -> bool:
  return isinstance(x, GramTarget | GaussianTarget)


def _blend_one(weights: np.ndarray, *targets: StyleTarget) -> StyleTarget:
  kinds = {type(t) for t in targets}
  if len(kinds) != 1 or not _is_target(targets[0]):
    names = sorted(type(t).__name__ for t in targets)
    raise ValueError(f'cannot blend targets of different or unknown types: {names}')
  w = [float(wi) for wi in weights]
  if isinstance(targets[0], GramTarget):
    return GramTarget(sum(wi * jnp.asarray(t.gram) for wi, t in zip(w, targets, strict=True)))
  means = [jnp.asarray(t.mean) for t in targets]
  mean = sum(wi * m for wi, m in zip(w, means, strict=True))
  second = sum(
    wi * (jnp.asarray(t.cov) + jnp.outer(m, m)) for wi, t, m in zip(w, targets, means, strict=True)
  )
  cov = _symmetrize(second - jnp.outer(mean, mean))
  return GaussianTarget(mean, cov, _psd_sqrtm(cov))


def blend_style_targets(targets: Sequence[Any], weights: Sequence[float]) -> Any:
  """Blends several styles' statistics into one target, as the statistics of their mixture.

  Each element of `targets` is a `GramTarget`, a `GaussianTarget`, or a pytree of them with the
  same structure (e.g. a dict from layer name to target). With weights `w_i` normalised to sum 1:

  * Gram: `sum_i w_i G_i` (the Gram matrix is a second moment, so this is the mixture's).
  * Gaussian: mixture mean `m = sum_i w_i m_i`, covariance `sum_i w_i (S_i + m_i m_i^T) - m m^T`,
    and `cov_sqrt` recomputed from it.

  So a 50/50 blend of two equal-size feature sets equals the statistics of their concatenation.

  Args:
    targets: N >= 1 targets (or pytrees of targets) of the same structure and shapes.
    weights: N concrete non-negative numbers, not all zero; only their ratios matter.

  Returns:
    One target (or pytree of targets) of the same structure.

  Raises:
    ConfigError: if the weights are not N finite non-negative numbers with a positive sum.
    ValueError: if the targets are empty, or differ in structure or type.
  """
  if len(targets) == 0:
    raise ValueError('blend_style_targets needs at least one target')
  w = np.asarray(weights, np.float64)
  if w.shape != (len(targets),):
    raise ConfigError(f'need one blend weight per style target ({len(targets)}), got {w.shape}')
  if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
    raise ConfigError(f'blend weights must be finite, >= 0 and not all zero, got {w.tolist()}')
  structures = {jax.tree.structure(t, is_leaf=_is_target) for t in targets}
  if len(structures) != 1:
    raise ValueError(f'style targets differ in structure: {sorted(map(str, structures))}')
  return jax.tree.map(functools.partial(_blend_one, w / w.sum()), *targets, is_leaf=_is_target)


def total_variation(image: ArrayLike, *, kind: TVKind = 'l1') -> jax.Array:
  """Total-variation smoothness penalty of one image.

  Args:
    image: (H, W, C) image (usually RGB in [0, 1]), H >= 2 and W >= 2.
    kind: 'l1' for absolute differences (anisotropic TV), 'l2' for squared differences.

  Returns:
    Scalar >= 0: the mean, over all H*(W-1)*C horizontal and (H-1)*W*C vertical pairs of
    neighbouring pixels, of `|a - b|` ('l1') or `(a - b)**2` ('l2'); independent of image size.

  Raises:
    ValueError: if `image` is not 3-D or smaller than 2x2.
    ConfigError: if `kind` is not 'l1' or 'l2'.
  """
  if kind == 'l1':
    penalty = jnp.abs
  elif kind == 'l2':
    penalty = jnp.square
  else:
    raise ConfigError(f"unknown total variation kind {kind!r}; expected 'l1' or 'l2'")
  x = _as_float(image)
  if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 2:
    raise ValueError(f'image must be (H, W, C) with H, W >= 2, got shape {x.shape}')
  dx = penalty(x[:, 1:] - x[:, :-1])
  dy = penalty(x[1:] - x[:-1])
  return (jnp.sum(dx) + jnp.sum(dy)) / (dx.size + dy.size)


def combine_terms(
  values: Mapping[str, ArrayLike],
  weights: Mapping[str, float],
  *,
  normalize: bool,
  eps: float = 1e-8,
) -> jax.Array:
  """Weighted total of named loss terms, optionally self-normalised.

  * `normalize=False`: `sum_k weights[k] * values[k]`.
  * `normalize=True`: `sum_k weights[k] * values[k] / (|stop_gradient(values[k])| + eps)`. Each
    term's value is then about `weights[k]` (so the total is about `sum(weights)`) and its
    gradient is `weights[k] * grad(values[k]) / values[k]`: the weights are pure ratios between
    the terms' relative rates of change, whatever the image size or feature scale.

  Args:
    values: scalar loss terms by name, e.g. {'content': ..., 'style': ..., 'tv': ...}.
    weights: a weight for every name in `values`, no others.
    normalize: whether to divide each term by its own gradient-stopped value.
    eps: added to the denominator when normalising, so a zero term stays finite.

  Returns:
    Scalar total.

  Raises:
    ValueError: if the names in `values` and `weights` differ, or a value is not a scalar.
  """
  if set(values) != set(weights):
    missing = sorted(set(values) - set(weights))
    extra = sorted(set(weights) - set(values))
    raise ValueError(f'loss weights do not match terms: missing {missing}, unexpected {extra}')
  total = jnp.zeros((), jnp.float32)
  for name in sorted(values):
    value = _as_float(values[name])
    if value.ndim != 0:
      raise ValueError(f'loss term {name!r} must be a scalar, got shape {value.shape}')
    if normalize:
      value = value / (jnp.abs(jax.lax.stop_gradient(value)) + eps)
    total = total + weights[name] * value
  return total


def log_combine_terms(
  values: Mapping[str, ArrayLike], weights: Mapping[str, float], *, eps: float = 1e-8
) -> jax.Array:
  """`sum_k weights[k] * log(|values[k]| + eps)`: the normalized combination as an objective.

  Its gradient is `sum_k weights[k] * grad(values[k]) / (|values[k]| + eps)`, exactly that of
  `combine_terms(..., normalize=True)` at every point; but it is one fixed function whose value
  falls as the terms do, which line searches (L-BFGS) and loss curves need. The seed's form
  is constant (= sum of weights) in value.

  Args:
    values: scalar loss terms by name.
    weights: a weight for every name in `values`, no others.
    eps: keeps a zero term finite.

  Returns:
    Scalar total (may be negative).
  """
  if set(values) != set(weights):
    raise ValueError(f'loss weights {sorted(weights)} do not match terms {sorted(values)}')
  return sum(
    (weights[name] * jnp.log(jnp.abs(_as_float(values[name])) + eps) for name in sorted(values)),
    jnp.zeros((), jnp.float32),
  )
