"""Tests for regions: the box rule (nst_jax.core.masks), every style loss's region rule (an
all-ones region is the plain loss; a region's gradient depends on its own style only; a region's
Gram and Gaussian losses do not move with it), which style feeds which region
(nst_jax.run.regions), and batches of pairs with their own masks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from small import small_config, small_pairs

import nst_jax
from nst_jax.core import losses, masks, objective
from nst_jax.errors import ConfigError
from nst_jax.run import regions
from nst_jax.run import targets as targets_lib

LAYERS = {'relu1_1': 0.5, 'relu2_1': 0.5}
TERMS = {
  'gram': lambda: losses.gram_term(LAYERS),
  'gaussian': lambda: losses.gaussian_term(LAYERS),
  'sliced': lambda: losses.sliced_term(LAYERS, num_directions=16),
  'nearest_neighbor': lambda: losses.nearest_neighbor_term(
    {'relu1_1': 1.0, 'relu2_1': 1.0}, stride=2
  ),
}
KEY = jax.random.key(0)


def _image(seed, shape=(32, 32)):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=(*shape, 3)), jnp.float32)


_COMPILED = {}


def _compiled(network, name):
  """Jitted features, targets and value-and-gradient of the term `name` (compiled once)."""
  if name not in _COMPILED:
    model, params = network
    obj = objective.Objective(model, (('style', TERMS[name]()),))
    guide = lambda g: None if g is None else {masks.REGIONS: g}  # noqa: E731

    def features(x, g):
      batch = None if g is None else g[None]
      return jax.tree.map(lambda a: a[0], obj.features(params, x[None], guide(batch)))

    def targets(content, styles):
      return targets_lib.compute_targets(dict(obj.terms), content, styles, [1.0] * len(styles))

    def value(x, t, g):
      return obj(params, x, t, {'style': 1.0}, KEY, guide(g))[0]

    _COMPILED[name] = tuple(map(jax.jit, (features, targets, jax.value_and_grad(value))))
  return _COMPILED[name]


def _value_and_grad(network, name, image, content, styles, guides=None, style_guides=None):
  """The term's value and gradient at `image`, its targets from `content` and `styles` (blended
  equally), with the contents' regions `guides` (H, W, R) and the styles' `style_guides`."""
  features, targets, value_and_grad = _compiled(network, name)
  style_guides = style_guides or [None] * len(styles)
  style_features = [features(s, g) for s, g in zip(styles, style_guides, strict=True)]
  return value_and_grad(image, targets(features(content, guides), style_features), guides)


def _halves(shape, split):
  """Two regions: the columns left of `split`, and the rest."""
  left = np.zeros((*shape, 2), np.float32)
  left[:, :split, 0] = 1.0
  left[:, split:, 1] = 1.0
  return jnp.asarray(left)


@pytest.mark.parametrize('positions', [7, 20, 21])
def test_region_outer_products_block_by_block_equal_one_sum(monkeypatch, positions):
  """`masked_outers` sums blocks of 7 positions here (in a loop, a shorter last block apart):
  its value and gradient are those of the one-line sum, whatever P."""
  monkeypatch.setattr(losses.sums, '_BLOCK_BYTES', 4 * 7 * 3)
  rng = np.random.default_rng(positions)
  f = jnp.asarray(rng.normal(size=(positions, 3)), jnp.float32)
  w = jnp.asarray(rng.uniform(size=(positions, 2)), jnp.float32)
  probe = jnp.asarray(rng.normal(size=(2, 3, 3)), jnp.float32)
  direct = lambda f: jnp.einsum('pr,pc,pd->rcd', w, f, f, precision='highest')  # noqa: E731
  blocked = lambda f: losses.sums.masked_outers(f, w)  # noqa: E731
  np.testing.assert_allclose(blocked(f), direct(f), rtol=1e-6, atol=1e-5)
  grad = lambda fn: jax.grad(lambda f: jnp.sum(fn(f) * probe))(f)  # noqa: E731
  np.testing.assert_allclose(grad(blocked), grad(direct), rtol=1e-6, atol=1e-5)


def test_region_outer_products_keep_block_sized_temporaries():
  """At a 512 px image's relu1_1 (P = 262144, C = 64: 67 MB), two regions' outer products, their
  gradient and a style's guided Gram sums allocate a few blocks (4 MB each), not weighted copies
  of the features."""
  f = jax.ShapeDtypeStruct((512 * 512, 64), jnp.float32)
  w = jax.ShapeDtypeStruct((512 * 512, 2), jnp.float32)
  outers = losses.sums.masked_outers
  grad = jax.grad(lambda f, w: jnp.sum(outers(f, w) ** 2))
  style = lambda f, w: losses.gram.gram_region_sums(  # noqa: E731
    f.reshape(512, 512, 64), jnp.ones((512, 512)), w.reshape(512, 512, 2)
  )
  for fn in (outers, grad, style):
    temp = jax.jit(fn).lower(f, w).compile().memory_analysis().temp_size_in_bytes
    assert temp < 4 * losses.sums._BLOCK_BYTES, temp


@pytest.mark.parametrize('name', list(TERMS))
@pytest.mark.parametrize('with_regions', [False, True])
def test_styles_reduced_to_statistics_give_the_same_targets(random_network, name, with_regions):
  """`reduce_style` (what a batch keeps of each style image): the same targets as the style's
  features, with or without regions; the Gram and Gaussian terms keep statistics, no layers."""
  features = _compiled(random_network, name)[0]
  terms = {'style': TERMS[name]()}
  guides, style_guides = (
    (_halves((32, 32), 16), [_halves((28, 36), 10)] * 2) if with_regions else (None, [None] * 2)
  )
  content = features(_image(1), guides)
  styles = [features(_image(s, (28, 36)), g) for s, g in zip((4, 5), style_guides, strict=True)]
  reduced = [targets_lib.reduce_style(terms, s) for s in styles]
  blend = [0.5, 0.5] if name == 'nearest_neighbor' else [0.3, 0.7]  # NN: equal only.
  plain = targets_lib.compute_targets(terms, content, styles, blend)
  from_reduced = targets_lib.compute_targets(terms, content, reduced, blend)
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), from_reduced, plain)
  if name in ('gram', 'gaussian'):
    assert not set(LAYERS) & set(reduced[0]), sorted(reduced[0])


def test_downsample_is_the_mean_of_each_cell_and_commutes_with_aligned_crops():
  mask = np.random.default_rng(0).uniform(size=(37, 29, 2)).astype(np.float32)
  out = np.asarray(masks.downsample(mask, 4, (9, 7)))
  expected = mask[:36, :28].reshape(9, 4, 7, 4, 2).mean(axis=(1, 3))
  np.testing.assert_allclose(out, expected, rtol=1e-6)
  # A window that starts on the grid has the image's cells: its mask is the crop of the image's.
  window = np.asarray(masks.downsample(mask[8:32, 4:24], 4, (6, 5)))
  np.testing.assert_array_equal(window, out[2:8, 1:6])
  np.testing.assert_allclose(masks.downsample(mask[:3], 4, (1, 7))[0, 0], mask[:3, :4].mean((0, 1)))
  # Shares are kept: regions that partition the pixels partition every layer.
  two = _halves((32, 32), 13)
  np.testing.assert_allclose(masks.downsample(two, 8, (4, 4)).sum(-1), 1.0)


@pytest.mark.parametrize('name', list(TERMS))
def test_each_losss_region_rule(random_network, name):
  """One compiled loss per kind, three properties: (1) a region of ones is the plain loss and
  gradient; (2) left half style A, right half style B: away from the edge (relu2_1 sees 5 px
  beyond its 2 px cell), the left half's gradient ignores B and follows A, and the other way
  round; (3, Gram and Gaussian) a textured square on a flat background, its region the square,
  moved by a multiple of the deepest stride (2) and kept farther from the image's border than
  the receptive field, has the same loss (positions are a set; only the cells' alignment and
  the zero padding at the border could tell the places apart)."""
  image, content = _image(0), _image(1)
  a, other_a = _image(2), _image(3)
  b, other_b = _image(4, (28, 36)), _image(5, (28, 36))  # Styles of different sizes.
  ones, ones_b = jnp.ones((32, 32, 1)), [jnp.ones((28, 36, 1))]

  value, grad = _value_and_grad(random_network, name, image, content, [b])
  r_value, r_grad = _value_and_grad(random_network, name, image, content, [b], ones, ones_b)
  # Gaussian: with regions the moments are summed about a shift, not centred first, and W2 is a
  # difference of traces: float32 rounding of about 2e-5 of the value.
  rtol = 1e-4 if name == 'gaussian' else 1e-6
  np.testing.assert_allclose(r_value, value, rtol=rtol)
  assert float(jnp.linalg.norm(r_grad - grad) / jnp.linalg.norm(grad)) < 10 * rtol

  guides = _halves((32, 32), 16)
  style_guides = [_halves((32, 32), 32), _halves((28, 36), 0)]  # Style i feeds region i.

  def two_regions(styles):
    return _value_and_grad(random_network, name, image, content, styles, guides, style_guides)[1]

  base, b_changed, a_changed = (two_regions(s) for s in ([a, b], [a, other_b], [other_a, b]))
  left, right = (slice(None), slice(0, 8)), (slice(None), slice(24, None))  # 8 px from the edge.
  scale = float(jnp.abs(base[left]).max())
  assert scale > 0
  # Gaussian: the regions' moments are summed about one shift, the mean of their targets' means,
  # which the other style moves: rounding of a few 1e-4 of the gradient's scale.
  atol = (1e-3 if name == 'gaussian' else 1e-4) * scale
  np.testing.assert_allclose(b_changed[left], base[left], atol=atol)
  assert float(jnp.abs(a_changed[left] - base[left]).max()) > 0.05 * scale
  np.testing.assert_allclose(a_changed[right], base[right], atol=atol)
  assert float(jnp.abs(b_changed[right] - base[right]).max()) > 0.05 * scale

  if name not in ('gram', 'gaussian'):
    return
  patch = np.asarray(_image(6, (8, 8)))
  values = []
  for top, left_ in ((6, 6), (18, 16)):
    moved = np.full((32, 32, 3), 0.5, np.float32)
    moved[top : top + 8, left_ : left_ + 8] = patch
    region = np.zeros((32, 32, 1), np.float32)
    region[top : top + 8, left_ : left_ + 8] = 1.0
    args = (jnp.asarray(moved), content, [b], jnp.asarray(region), ones_b)
    values.append(float(_value_and_grad(random_network, name, *args)[0]))
  # Gaussian: W2 is a difference of traces, float32 rounding is about 3e-5 of the value here.
  np.testing.assert_allclose(values[1], values[0], rtol=1e-5 if name == 'gram' else 1e-4)


def test_which_style_feeds_which_region():
  shapes = [(4, 6), (5, 5)]
  # One region (a strength map): every style of a blend feeds it, all of it.
  one = regions.assign_styles(1, np.ones((1, 2)), shapes)
  assert [g.shape for g in one] == [(4, 6, 1), (5, 5, 1)] and all((g == 1).all() for g in one)
  # All styles, one per region: style i feeds region i alone.
  two = regions.assign_styles(2, np.ones((3, 2)), shapes)
  np.testing.assert_array_equal(two[0].max((0, 1)), [1, 0])
  np.testing.assert_array_equal(two[1].max((0, 1)), [0, 1])
  # One style per pair (a grid): it feeds every region, from its own mask's regions.
  own = [np.stack([np.eye(4, 6), 1 - np.eye(4, 6)], -1), None]
  grid = regions.assign_styles(2, np.eye(2), shapes, own)
  np.testing.assert_array_equal(grid[0], own[0])
  assert (grid[1] == 1).all()
  with pytest.raises(ConfigError, match='every pair uses either one style .* or all'):
    regions.assign_styles(2, np.ones((1, 3)), shapes + [(3, 3)])


def test_region_checks_name_the_problem():
  config = small_config()
  gram = {'gram': losses.gram_term(LAYERS)}
  tiny = np.zeros((32, 32, 2), np.float32)
  tiny[:, :, 0] = 1.0
  tiny[0, 0] = (0.0, 1.0)  # One pixel of region 1: a quarter of a relu2_1 cell.
  with pytest.raises(ConfigError, match=r'style 0: its pixels of region 1 make 0\.\d+ positions'):
    regions.check_region_sizes(gram, [tiny], [(32, 32)], config)
  tiny[:4, :4] = (0.0, 1.0)
  regions.check_region_sizes(gram, [tiny], [(32, 32)], config)
  content = np.ones((1, 8, 8, 2), np.float32)
  only_left = np.zeros((8, 8, 2), np.float32)
  only_left[..., 0] = 1.0
  with pytest.raises(ConfigError, match='pair 0 has pixels in region 1, but none of its styles'):
    regions.check_served(content, [only_left], np.ones((1, 1)))
  blend = np.eye(2)
  settled, guides = regions.settle({}, None, [(8, 8)], blend, None)
  assert guides is None and settled is blend
  with pytest.raises(ConfigError, match="style_guides have 'regions' but the contents have none"):
    regions.settle({}, [{'regions': only_left}], [(8, 8)], blend, None)


def test_pairs_with_their_own_masks_batch_like_pairs_alone(random_network):
  """Two pairs, each with its own regions and both styles (one per region), in one batch; and
  a pair alone: the same image."""
  contents, styles = small_pairs()
  config = small_config('schedule.num_steps=2', 'schedule.chunk_size=2')
  guides = np.stack([_halves((32, 32), 12), _halves((32, 32), 20)[..., ::-1]])
  batch = nst_jax.stylize(
    contents, styles, config, guides={'regions': guides}, network=random_network
  )
  # The second pair, whose regions are the other way round, alone.
  alone = nst_jax.stylize(
    contents[1:], styles, config, guides={'regions': guides[1:]}, network=random_network
  )
  np.testing.assert_allclose(alone.images[0], batch.images[1], atol=1e-5)
