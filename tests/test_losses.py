"""Tests for nst_jax.core.losses (`nst_jax.losses`): NumPy references, finite differences,
invariances, vmap, blending, and the sums over positions that tiling uses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from nst_jax.core import losses
from nst_jax.errors import ConfigError


def _features(seed, h=3, w=4, c=5, relu=False):
  x = np.random.default_rng(seed).normal(size=(h, w, c))
  return np.maximum(x, 0.0) if relu else x


def _np_stats(x):
  f = x.reshape(-1, x.shape[-1])
  mean = f.mean(0)
  cov = (f - mean).T @ (f - mean) / f.shape[0]
  return mean, cov


def _np_w2(x, y):
  """W2^2 / C via tr sqrt(S S_t) = sum sqrt(eig(S S_t)) (same spectrum as S_t^½ S S_t^½)."""
  m, s = _np_stats(x)
  mt, st = _np_stats(y)
  eig = np.linalg.eigvals(s @ st)
  cross = np.sum(np.sqrt(np.maximum(eig.real, 0.0)))
  w2 = np.sum((m - mt) ** 2) + np.trace(s) + np.trace(st) - 2 * cross
  return w2 / x.shape[-1]


def _permute_positions(x, seed):
  h, w, c = x.shape
  perm = np.random.default_rng(seed).permutation(h * w)
  return x.reshape(-1, c)[perm].reshape(h, w, c)


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


# --- NumPy references ----------------------------------------------------------------------------


def test_gram_matrix_matches_numpy():
  x = _features(0)
  f = x.reshape(-1, 5)
  np.testing.assert_allclose(losses.gram_matrix(x), f.T @ f / 12, rtol=1e-5, atol=1e-6)


def test_content_loss_matches_numpy():
  x, y = _features(0), _features(1)
  np.testing.assert_allclose(losses.content_loss(x, y), np.mean((x - y) ** 2), rtol=1e-6)


def test_gram_style_loss_matches_numpy():
  x, y = _features(0), _features(1, h=5, w=2)  # Target from a different image size.
  fx, fy = x.reshape(-1, 5), y.reshape(-1, 5)
  expected = np.mean((fx.T @ fx / 12 - fy.T @ fy / 10) ** 2)
  target = losses.gram_style_target(y)
  np.testing.assert_allclose(losses.gram_style_loss(x, target.gram), expected, rtol=1e-5)
  np.testing.assert_allclose(losses.style_loss(x, target), expected, rtol=1e-5)


def test_mean_and_covariance_matches_numpy():
  x = _features(0)
  mean, cov = losses.mean_and_covariance(x)
  np.testing.assert_allclose(mean, x.reshape(-1, 5).mean(0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(cov, np.cov(x.reshape(-1, 5).T, bias=True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('relu', [False, True])
def test_wasserstein2_matches_numpy(x64, relu):
  x, y = _features(0, relu=relu), _features(1, h=4, w=5, relu=relu)
  target = losses.gaussian_style_target(y)
  expected = _np_w2(x, y)
  np.testing.assert_allclose(losses.wasserstein2_style_loss(x, *target), expected, rtol=1e-9)
  # Without the precomputed square root, and through the dispatcher.
  np.testing.assert_allclose(
    losses.wasserstein2_style_loss(x, target.mean, target.cov), expected, rtol=1e-9
  )
  np.testing.assert_allclose(losses.style_loss(x, target), expected, rtol=1e-9)


def test_gaussian_target_sqrt_squares_to_cov(x64):
  target = losses.gaussian_style_target(_features(2, relu=True))
  np.testing.assert_allclose(target.cov_sqrt @ target.cov_sqrt, target.cov, atol=1e-12)
  np.testing.assert_allclose(target.cov_sqrt, target.cov_sqrt.T, atol=1e-14)


def test_wasserstein2_float32_close_to_float64_reference():
  x, y = _features(0, 8, 8, 6), _features(1, 8, 8, 6)
  loss = losses.wasserstein2_style_loss(x, *losses.gaussian_style_target(y))
  assert loss.dtype == jnp.float32
  np.testing.assert_allclose(loss, _np_w2(x, y), rtol=1e-4)


def test_trace_sqrtm_matches_numpy(x64):
  a = np.random.default_rng(3).normal(size=(6, 4))
  m = a @ a.T  # Rank 4 of 6.
  expected = np.sum(np.sqrt(np.maximum(np.linalg.eigvalsh(m), 0.0)))
  np.testing.assert_allclose(losses.trace_sqrtm(m), expected, atol=1e-6)  # sqrt(±1e-15) noise.


@pytest.mark.parametrize('kind', ['l1', 'l2'])
def test_total_variation_matches_numpy(kind):
  image = np.random.default_rng(0).uniform(size=(4, 5, 3))
  dx, dy = np.diff(image, axis=1).ravel(), np.diff(image, axis=0).ravel()
  d = np.concatenate([dx, dy])
  expected = np.mean(np.abs(d)) if kind == 'l1' else np.mean(d**2)
  np.testing.assert_allclose(losses.total_variation(image, kind=kind), expected, rtol=1e-5)


def test_total_variation_zero_for_constant_image():
  assert losses.total_variation(jnp.full((4, 4, 3), 0.3)) == 0.0


# --- Gradients vs finite differences -------------------------------------------------------------


def test_gradients_match_finite_differences(x64):
  x, y = _features(0), _features(1)
  gram = losses.gram_matrix(y)
  target = losses.gaussian_style_target(_features(2))
  image = np.random.default_rng(3).uniform(size=(3, 4, 3))
  kw = dict(order=1, modes=['rev'], atol=1e-6, rtol=1e-6)
  check_grads(lambda f: losses.content_loss(f, y), (x,), **kw)
  check_grads(lambda f: losses.gram_style_loss(f, gram), (x,), **kw)
  check_grads(lambda f: losses.wasserstein2_style_loss(f, *target), (x,), **kw)
  check_grads(lambda i: losses.total_variation(i, kind='l1'), (image,), **kw)
  check_grads(lambda i: losses.total_variation(i, kind='l2'), (image,), **kw)


def test_trace_sqrtm_gradient_is_half_inverse_sqrt(x64):
  a = np.random.default_rng(4).normal(size=(5, 8))
  m = a @ a.T / 8 + 0.1 * np.eye(5)  # Well conditioned.
  check_grads(losses.trace_sqrtm, (m,), order=1, modes=['rev'], atol=1e-6, rtol=1e-6)
  lam, v = np.linalg.eigh(m)
  np.testing.assert_allclose(
    jax.grad(losses.trace_sqrtm)(m), 0.5 * (v / np.sqrt(lam)) @ v.T, rtol=1e-10
  )


@pytest.mark.parametrize(
  'features',
  [
    pytest.param(_features(5, h=1, w=3, c=8, relu=True), id='8_channels_3_positions'),
    pytest.param(_features(6, c=8, relu=True) * (np.arange(8) < 3), id='5_zeroed_channels'),
    pytest.param(np.zeros((3, 4, 8)), id='all_zero'),
    pytest.param(np.ones((3, 4, 8)), id='constant'),
  ],
)
def test_wasserstein2_gradient_finite_for_rank_deficient_features(features):
  features = jnp.asarray(features, jnp.float32)
  for target_features in (_features(7, c=8, relu=True), features):  # Full rank; same rank-deficit.
    target = losses.gaussian_style_target(target_features)
    loss, grad = jax.value_and_grad(losses.wasserstein2_style_loss)(features, *target)
    assert np.isfinite(loss)
    assert np.all(np.isfinite(grad))


def test_wasserstein2_rank_deficient_gradient_descends(x64):
  # 8 channels but 3 positions: a descent step along the (finite) gradient lowers the loss.
  x = jnp.asarray(_features(5, h=1, w=3, c=8, relu=True))
  target = losses.gaussian_style_target(_features(8, c=8))
  loss, grad = jax.value_and_grad(losses.wasserstein2_style_loss)(x, *target)
  assert losses.wasserstein2_style_loss(x - 1e-3 * grad, *target) < loss


# --- Invariances ---------------------------------------------------------------------------------


@pytest.mark.parametrize('relu', [False, True])
def test_style_losses_zero_for_identical_features(relu):
  x = _features(0, 6, 6, 8, relu=relu).astype(np.float32)
  assert abs(losses.gram_style_loss(x, losses.gram_matrix(x))) < 1e-10
  w2 = losses.wasserstein2_style_loss(x, *losses.gaussian_style_target(x))
  scale = np.trace(np.cov(x.reshape(-1, 8).T)) / 8
  assert abs(w2) < 1e-5 * scale


def test_style_losses_invariant_to_permuting_positions(x64):
  x, y = _features(0, relu=True), _features(1, relu=True)
  xp = _permute_positions(x, seed=9)
  gram, target = losses.gram_matrix(y), losses.gaussian_style_target(y)
  np.testing.assert_allclose(losses.gram_style_loss(xp, gram), losses.gram_style_loss(x, gram))
  np.testing.assert_allclose(
    losses.wasserstein2_style_loss(xp, *target), losses.wasserstein2_style_loss(x, *target)
  )
  assert losses.gram_style_loss(xp, losses.gram_matrix(x)) < 1e-24
  assert abs(losses.wasserstein2_style_loss(xp, *losses.gaussian_style_target(x))) < 1e-12


def test_wasserstein2_of_shifted_features_is_mean_term(x64):
  x = _features(0)
  shift = np.arange(5.0)
  loss = losses.wasserstein2_style_loss(x + shift, *losses.gaussian_style_target(x))
  np.testing.assert_allclose(loss, np.sum(shift**2) / 5, rtol=1e-9)


# --- blending ------------------------------------------------------------------------------------


@pytest.mark.parametrize('kind', ['gram', 'gaussian'])
def test_blend_with_weights_one_zero_is_first_target(x64, kind):
  a = losses.style_target(_features(0), kind)
  b = losses.style_target(_features(1), kind)
  blended = losses.blend_style_targets([a, b], [1.0, 0.0])
  assert type(blended) is type(a)
  for got, want in zip(blended, a, strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('kind', ['gram', 'gaussian'])
def test_blend_50_50_equals_stats_of_concatenation(x64, kind):
  x, y = _features(0, relu=True), _features(1, relu=True) + 0.5
  both = np.concatenate([x, y], axis=0)  # Equal sizes: the mixture's samples.
  blended = losses.blend_style_targets(
    [losses.style_target(x, kind), losses.style_target(y, kind)], [2.0, 2.0]
  )
  want = losses.style_target(both, kind)
  for got, ref in zip(blended, want, strict=True):
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
  if kind == 'gaussian':
    mean, cov = _np_stats(both)
    np.testing.assert_allclose(blended.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(blended.cov, cov, rtol=1e-12, atol=1e-14)


def test_blend_of_unequal_weights_matches_weighted_samples(x64):
  # Weights 1:3 with equal-size sets = concatenating x once and y three times.
  x, y = _features(0), _features(1)
  blended = losses.blend_style_targets(
    [losses.gaussian_style_target(x), losses.gaussian_style_target(y)], [0.25, 0.75]
  )
  mean, cov = _np_stats(np.concatenate([x, y, y, y], axis=0))
  np.testing.assert_allclose(blended.mean, mean, rtol=1e-12)
  np.testing.assert_allclose(blended.cov, cov, rtol=1e-12, atol=1e-14)


def test_blend_pytree_of_layer_targets():
  def targets(seed):
    return {
      'relu1_1': losses.gram_style_target(_features(seed)),
      'relu2_1': losses.gaussian_style_target(_features(seed + 10)),
    }

  blended = losses.blend_style_targets([targets(0), targets(1)], [1.0, 3.0])
  assert isinstance(blended['relu1_1'], losses.GramTarget)
  assert isinstance(blended['relu2_1'], losses.GaussianTarget)
  np.testing.assert_allclose(
    blended['relu1_1'].gram,
    0.25 * targets(0)['relu1_1'].gram + 0.75 * targets(1)['relu1_1'].gram,
    rtol=1e-6,
  )


def test_blend_rejects_bad_inputs():
  a, b = losses.gram_style_target(_features(0)), losses.gaussian_style_target(_features(1))
  with pytest.raises(ValueError, match='different or unknown types'):
    losses.blend_style_targets([a, b], [1.0, 1.0])
  with pytest.raises(ConfigError, match='one blend weight per style target'):
    losses.blend_style_targets([a, a], [1.0])
  with pytest.raises(ConfigError, match='>= 0 and not all zero'):
    losses.blend_style_targets([a, a], [1.0, -1.0])
  with pytest.raises(ConfigError, match='>= 0 and not all zero'):
    losses.blend_style_targets([a, a], [0.0, 0.0])
  with pytest.raises(ValueError, match='differ in structure'):
    losses.blend_style_targets([{'x': a}, {'y': a}], [1.0, 1.0])
  with pytest.raises(ValueError, match='at least one'):
    losses.blend_style_targets([], [])


def test_each_target_type_blends_itself_as_blend_style_targets_does():
  x, y = _features(0), _features(1)
  for make in (losses.gram_style_target, losses.gaussian_style_target, losses.sliced_style_target):
    a, b = make(x), make(y)
    ours = type(a).blend([0.25, 0.75], [a, b])
    assert type(ours) is type(a)
    for got, want in zip(ours, losses.blend_style_targets([a, b], [1.0, 3.0]), strict=True):
      np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_check_blend_weights_names_what_it_checks():
  np.testing.assert_array_equal(losses.check_blend_weights([[1, 0], [2, 2]]), [[1, 0], [2, 2]])
  with pytest.raises(ConfigError, match='style_weights must be finite'):
    losses.check_blend_weights([[1.0, np.nan]], 'style_weights')


# --- vmap and jit --------------------------------------------------------------------------------


def test_vmap_gram_style_loss_equals_loop():
  batch = np.stack([_features(i) for i in range(4)]).astype(np.float32)
  grams = np.stack([np.asarray(losses.gram_matrix(_features(10 + i))) for i in range(4)])
  batched = jax.vmap(losses.gram_style_loss)(batch, grams)
  looped = [losses.gram_style_loss(f, g) for f, g in zip(batch, grams, strict=True)]
  np.testing.assert_allclose(batched, looped, rtol=1e-6)


def test_vmap_jit_wasserstein2_value_and_grad_equals_loop():
  batch = np.stack([_features(i, c=6, relu=True) for i in range(3)]).astype(np.float32)
  target = losses.gaussian_style_target(_features(9, c=6, relu=True))
  fn = jax.value_and_grad(lambda f: losses.style_loss(f, target))
  values, grads = jax.jit(jax.vmap(fn))(batch)
  for i, features in enumerate(batch):
    value, grad = fn(features)
    np.testing.assert_allclose(values[i], value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[i], grad, rtol=1e-4, atol=1e-6)


def test_vmap_over_batched_targets():
  styles = np.stack([_features(i) for i in range(3)])
  targets = jax.vmap(losses.gaussian_style_target)(styles)  # A GaussianTarget of (3, ...) arrays.
  assert targets.cov.shape == (3, 5, 5)
  batched = jax.vmap(losses.style_loss)(styles[::-1], targets)
  looped = [
    losses.style_loss(styles[2 - i], losses.gaussian_style_target(styles[i])) for i in range(3)
  ]
  np.testing.assert_allclose(batched, looped, rtol=1e-4, atol=1e-6)


# --- input checks --------------------------------------------------------------------------------


def test_shape_errors_are_value_errors():
  x = np.zeros((3, 4, 5))
  with pytest.raises(ValueError, match=r'features must be 3-D \(H, W, C\).*\(2, 3, 4, 5\)'):
    losses.gram_matrix(np.zeros((2, 3, 4, 5)))
  with pytest.raises(ValueError, match='shape'):
    losses.content_loss(x, np.zeros((3, 4, 6)))
  with pytest.raises(ValueError, match=r'target_gram must be \(5, 5\)'):
    losses.gram_style_loss(x, np.zeros((4, 4)))
  with pytest.raises(ValueError, match=r'target_mean must have shape \(5,\)'):
    losses.wasserstein2_style_loss(x, np.zeros(4), np.eye(5))
  with pytest.raises(ValueError, match=r'target_cov must be \(5, 5\)'):
    losses.wasserstein2_style_loss(x, np.zeros(5), np.eye(4))
  with pytest.raises(ValueError, match='m must be square'):
    losses.trace_sqrtm(np.zeros((2, 3)))
  with pytest.raises(ValueError, match='H, W >= 2'):
    losses.total_variation(np.zeros((1, 4, 3)))


def test_bad_kinds_are_config_errors():
  with pytest.raises(ConfigError, match="unknown total variation kind 'l3'"):
    losses.total_variation(np.zeros((4, 4, 3)), kind='l3')
  with pytest.raises(ConfigError, match="unknown style loss kind 'foo'"):
    losses.style_target(np.zeros((4, 4, 3)), 'foo')


# --- Sums over positions (tiling) ---------------------------------------------------------------


def test_losses_from_the_sums_of_a_partition_equal_the_whole(x64):
  """Three windows whose masks partition the positions give the whole image's losses."""
  from nst_jax.core.losses import content, gaussian, gram, sums, tv

  x, y = _features(0, h=6, w=5, relu=True), _features(1, h=6, w=5, relu=True)
  content_features = _features(2, h=6, w=5)
  image = np.random.default_rng(3).uniform(size=(6, 5, 3))
  masks = [np.zeros((6, 5)) for _ in range(3)]
  masks[0][:2], masks[1][2:, :3], masks[2][2:, 3:] = 1, 1, 1
  add = lambda parts: jax.tree.map(lambda *a: sum(a), *parts)  # noqa: E731
  gram_target = losses.gram_style_target(y)
  totals = add([gram.gram_sums(x, m) for m in masks])
  np.testing.assert_allclose(
    gram.gram_loss_from_sums(totals, gram_target.gram),
    losses.gram_style_loss(x, gram_target.gram),
    rtol=1e-10,
  )
  gaussian_target = losses.gaussian_style_target(y)
  totals = add([gaussian.moment_sums(x, m, gaussian_target.mean) for m in masks])
  np.testing.assert_allclose(
    gaussian.gaussian_loss_from_sums(totals, gaussian_target),
    losses.wasserstein2_style_loss(x, *gaussian_target),
    rtol=1e-8,
  )
  totals = add([content.squared_error_sums(x, content_features, m) for m in masks])
  np.testing.assert_allclose(sums.mean_from_sums(totals), losses.content_loss(x, content_features))
  # TV pairs belong to their first pixel; each mask's window here is the whole image.
  totals = add([tv.total_variation_sums(image, m, kind='l2') for m in masks])
  np.testing.assert_allclose(
    sums.mean_from_sums(totals), losses.total_variation(image, kind='l2'), rtol=1e-10
  )
  # Style targets from window statistics, merged pairwise.
  stats = [gaussian.gaussian_stats(y, m) for m in masks[:2]] + [
    gaussian.gaussian_stats(y, 1 - sum(masks[:2]))
  ]
  merged = gaussian.merge_gaussian_stats(
    gaussian.merge_gaussian_stats(stats[0], stats[1]), stats[2]
  )
  for a, b in zip(gaussian.gaussian_target_from_stats(merged), gaussian_target, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
  np.testing.assert_allclose(
    gram.gram_target_from_sums(
      add([gram.gram_sums(y, m) for m in masks[:2]] + [gram.gram_sums(y, 1 - sum(masks[:2]))])
    ).gram,
    gram_target.gram,
    rtol=1e-10,
  )


def test_gram_sums_gradient_matches_autodiff():
  from nst_jax.core.losses import gram

  x = jnp.asarray(_features(0, relu=True), jnp.float32)
  mask = jnp.asarray(np.random.default_rng(1).integers(0, 2, (3, 4)), jnp.float32)
  g = jnp.asarray(np.random.default_rng(2).normal(size=(5, 5)), jnp.float32)
  ours = jax.grad(lambda x: jnp.sum(gram.gram_sums(x, mask).outer * g))(x)
  plain = lambda x: jnp.einsum('hwc,hwd->cd', x * mask[..., None], x)  # noqa: E731
  theirs = jax.grad(lambda x: jnp.sum(plain(x) * g))(x)
  np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
