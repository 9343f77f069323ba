"""Tests for nst_jax.run.program: the compiled chunk is vmapped and chunked without changing
results, and is compiled once for equal settings.

Equivalences only, so a random-weight network serves (no download).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from small import small_config, small_pairs

import nst_jax
from nst_jax import losses
from nst_jax.core import resample
from nst_jax.run import engine, optimizers, program


@pytest.mark.parametrize('group_size', [2, 1])  # Both pairs vmapped; one pair after the other.
def test_vmapped_batch_equals_each_pair_alone(random_network, group_size):
  contents, styles = small_pairs()
  config = small_config(f'devices.pair_group_size={group_size}')
  batch = nst_jax.stylize(contents, styles, config, network=random_network)
  for i in range(2):
    alone = nst_jax.stylize(contents[i : i + 1], [styles[i]], config, network=random_network)
    np.testing.assert_allclose(batch.images[i], alone.images[0], atol=2e-5)
    np.testing.assert_allclose(batch.history.total[:, i], alone.history.total[:, 0], rtol=1e-4)


def _compiles(caplog) -> int:
  return sum('Compiling jit(_run_chunk)' in r.getMessage() for r in caplog.records)


def test_chunked_scan_equals_one_scan_without_retracing(random_network, caplog):
  contents, styles = small_pairs()
  program.build_program.cache_clear()  # Earlier tests may have compiled these settings.
  progress = []
  with jax.log_compiles(), caplog.at_level('WARNING'):
    chunked = nst_jax.stylize(
      contents,
      styles,
      small_config('schedule.num_steps=7', 'schedule.chunk_size=2'),
      network=random_network,
      callback=progress.append,
    )
  assert [p.step for p in progress] == [2, 4, 6, 7]
  # Four chunks (the last one partial) and one compilation of the chunk function.
  assert _compiles(caplog) == 1
  single = nst_jax.stylize(
    contents,
    styles,
    small_config('schedule.num_steps=7', 'schedule.chunk_size=7'),
    network=random_network,
  )
  np.testing.assert_allclose(chunked.images, single.images, atol=2e-5)
  np.testing.assert_allclose(chunked.history.total, single.history.total, rtol=1e-5)
  assert chunked.history.total.shape == (7, 2)
  assert (chunked.history.evaluations == 1).all()  # Adam: one evaluation a step.
  assert list(chunked.history.term_steps) == [2, 4, 6, 7]
  assert chunked.history.terms['gram'].shape == (4, 2)


def test_calls_with_new_weights_or_step_counts_reuse_the_compiled_chunk(random_network, caplog):
  contents, styles = small_pairs()
  program.build_program.cache_clear()
  config = small_config('schedule.num_steps=2', 'schedule.chunk_size=2')
  with jax.log_compiles(), caplog.at_level('WARNING'):
    first = nst_jax.stylize(contents, styles, config, network=random_network)
    config.losses.gram.weight = 0.1
    config.schedule.num_steps = 4
    second = nst_jax.stylize(contents, styles, config, network=random_network)
  assert _compiles(caplog) == 1
  assert first.history.total.shape == (2, 2) and second.history.total.shape == (4, 2)
  # The new weight took effect, exactly as in a program built for it.
  assert not np.allclose(first.images, second.images, atol=1e-3)
  program.build_program.cache_clear()
  fresh = nst_jax.stylize(contents, styles, config, network=random_network)
  np.testing.assert_allclose(fresh.images, second.images, atol=1e-6)
  np.testing.assert_allclose(fresh.history.total, second.history.total, rtol=1e-6)


def test_equal_settings_give_the_same_program_and_optimizer(random_network):
  contents, styles = small_pairs()
  config = small_config()
  a = engine.prepare(contents, styles, config, network=random_network)
  b = engine.prepare(contents, styles, small_config(), network=random_network)
  assert a.program is b.program and a.program.spec == b.program.spec
  assert optimizers.make_optimizer(config) is optimizers.make_optimizer(small_config())
  lbfgs = engine.prepare(contents, styles, small_config('optim.name=lbfgs'), network=random_network)
  assert lbfgs.program.spec.optimizer.line_search
  assert not a.program.spec.optimizer.line_search


def test_a_bare_optax_lbfgs_runs_without_line_search_shortcuts(random_network):
  """The loop's L-BFGS shortcuts are an optimisation: without them the result is the same."""
  import optax

  contents, styles = small_pairs()
  config = small_config('optim.name=lbfgs', 'schedule.num_steps=3', 'schedule.chunk_size=3')
  fast = nst_jax.stylize(contents, styles, config, network=random_network)
  plain = nst_jax.stylize(
    contents, styles, config, optimizer=optax.lbfgs(memory_size=10), network=random_network
  )
  np.testing.assert_allclose(plain.images, fast.images, atol=1e-4)


def test_refreshed_targets_follow_the_image_every_k_steps(random_network):
  """A term whose target is refreshed to the current image every 2 steps."""
  contents, styles = small_pairs()
  follow = nst_jax.LossTerm(
    loss=lambda f, t: jnp.mean((f['image'] - t) ** 2),
    target=lambda content, styles, blend: content['image'],
    refresh=lambda f, t: f['image'],
    refresh_every=2,
  )
  chosen = {'gram': nst_jax.terms_from_config(small_config())['gram'], 'follow': follow}
  config = small_config('schedule.num_steps=3', 'schedule.chunk_size=3')
  prepared = engine.prepare(contents, styles, config, terms=chosen, network=random_network)
  start = prepared.start_state(0)
  np.testing.assert_allclose(start.targets['follow'], contents, atol=1e-6)
  weights = prepared.pair_weights(0, start)
  two = prepared.program.run_chunk(prepared.params, start, weights, jnp.int32(2))[0]
  np.testing.assert_allclose(two.targets['follow'], contents, atol=1e-6)  # Not yet at step 2.
  start = prepared.start_state(0)  # run_chunk donated the first one.
  three = prepared.program.run_chunk(prepared.params, start, weights, jnp.int32(3))[0]
  np.testing.assert_allclose(three.targets['follow'], two.variables, atol=1e-6)  # At step 2.
  with pytest.raises(nst_jax.ConfigError, match='refresh_every'):
    nst_jax.stylize(
      contents,
      styles,
      config,
      terms={'follow': follow._replace(refresh_every=0)},
      network=random_network,
    )


def test_stochastic_terms_get_a_new_key_each_step_and_seeded_runs_repeat(random_network):
  contents, styles = small_pairs()
  noisy = nst_jax.LossTerm(
    loss=lambda f, t: (f['image'].mean() - jax.random.uniform(f['key'])) ** 2, stochastic=True
  )
  steps = ('schedule.num_steps=4', 'schedule.chunk_size=4')
  config = small_config(*steps, 'optim.name=lbfgs')
  run = lambda seed: nst_jax.stylize(  # noqa: E731
    contents,
    styles,
    small_config(*steps, f'seed={seed}'),
    terms={'noisy': noisy},
    network=random_network,
  )
  a, b, c = run(0), run(0), run(1)
  np.testing.assert_array_equal(a.images, b.images)
  assert not np.allclose(a.history.total, c.history.total)
  # Each pair and step draws its own target brightness.
  assert len(np.unique(np.round(a.history.total, 6))) == a.history.total.size
  lbfgs = nst_jax.stylize(contents, styles, config, terms={'noisy': noisy}, network=random_network)
  assert np.isfinite(lbfgs.history.total).all()


def test_a_stopped_pair_stays_frozen_while_the_others_run(random_network):
  contents, styles = small_pairs()
  config = small_config(
    'init.kind=noise', 'schedule.plateau_tolerance=1e-9', 'schedule.plateau_steps=50'
  )
  prepared = engine.prepare(contents, styles, config, network=random_network)
  start = prepared.start_state(0)
  start = start._replace(stopped=jnp.array([True, False]))  # Pair 0 already on its plateau.
  weights = prepared.pair_weights(0, start)
  before = jax.tree.map(np.asarray, start)  # run_chunk donates `start`.
  end = prepared.program.run_chunk(prepared.params, start, weights, jnp.int32(3))[0]
  assert list(end.pair_steps) == [0, 3] and int(end.step) == 3
  for field in ('variables', 'opt_state', 'average'):
    pair_0 = lambda state: jax.tree.map(lambda x: np.asarray(x[0]), getattr(state, field))  # noqa: B023, E731
    jax.tree.map(np.testing.assert_array_equal, pair_0(end), pair_0(before))
  assert not np.allclose(end.variables[1], before.variables[1])


def test_pairs_stop_on_their_plateau_and_report_their_steps(random_network):
  contents, styles = small_pairs()
  config = small_config(
    'init.kind=noise',
    'schedule.num_steps=40',
    'schedule.chunk_size=10',
    'optim.learning_rate=0.02',
  )
  full = nst_jax.stylize(contents, styles, config, network=random_network)
  assert full.history.pair_steps.tolist() == [[40, 40]]
  config.schedule.plateau_tolerance, config.schedule.plateau_steps = 0.3, 5
  early = nst_jax.stylize(contents, styles, config, network=random_network)
  # Each pair stops at the first step whose objective is less than 30% below that 5 steps
  # earlier (the trajectories agree until then), and keeps its image from before that step.
  total = full.history.total
  gain = 1 - total[5:] / total[:-5]
  expected = [
    5 + int(np.argmax(gain[:, b] < 0.3)) if (gain[:, b] < 0.3).any() else 40 for b in (0, 1)
  ]
  assert early.history.pair_steps[0].tolist() == expected and min(expected) < 40, gain


def test_warm_started_scales_equal_a_hand_written_two_scale_run(random_network):
  """Adam's moments carry over to the next scale, resized; the count goes on."""
  contents, styles = small_pairs()
  config = small_config(
    'schedule.num_scales=2',
    'schedule.scale_ratio=2.0',
    'schedule.coarse_steps=3',
    'schedule.num_steps=3',
    'schedule.chunk_size=3',
    'optim.warm_start=true',
  )
  prepared = engine.prepare(contents, styles, config, network=random_network)
  program, params = prepared.program, prepared.params
  coarse = prepared.start_state(0)
  coarse = program.run_chunk(params, coarse, prepared.pair_weights(0, coarse), jnp.int32(3))[0]
  # By hand: the images and Adam's moments resized to the fine scale, the count kept.
  images = resample.resize(program.images(coarse), (32, 32))
  fine = prepared.start_state(1)  # Fresh, from the start images: replace what carries over.
  (adam, rest), (old, _) = fine.opt_state, coarse.opt_state
  resize = lambda m: jax.image.resize(m, images.shape, 'linear')  # noqa: E731
  adam = adam._replace(count=old.count, mu=resize(old.mu), nu=resize(old.nu))
  by_hand = fine._replace(variables=images, average=jnp.copy(images), opt_state=(adam, rest))
  by_hand = program.run_chunk(params, by_hand, prepared.pair_weights(1, by_hand), jnp.int32(3))[0]
  result = prepared.run()
  np.testing.assert_allclose(result.images, program.images(by_hand), atol=1e-5)
  config.optim.warm_start = False
  cold = nst_jax.stylize(contents, styles, config, network=random_network)
  assert not np.allclose(cold.images, result.images, atol=1e-4)


def test_the_pyramid_parametrization_optimizes_the_image(random_network):
  contents, styles = small_pairs()
  config = small_config(
    'init.kind=noise',
    'schedule.num_steps=20',
    'schedule.chunk_size=10',
    'optim.parametrization=pyramid',
  )
  result = nst_jax.stylize(contents, styles, config, network=random_network)
  total = result.history.total
  assert (total[-1] < 0.5 * total[0]).all()
  assert 0.0 <= result.images.min() and result.images.max() <= 1.0


def test_the_state_carries_each_pairs_guides_to_the_terms(random_network):
  """`LoopState.guides` (`{name: (B, h, w, C)}`) reach the loss as `features['guides']`; an
  empty mapping means none."""
  contents, styles = small_pairs()
  reads = nst_jax.LossTerm(
    loss=lambda f, t: (
      jnp.mean(f['guides']['mask'] * f['image']) if 'guides' in f else jnp.float32(-1.0)
    )
  )
  guides = {'mask': np.stack([np.full((32, 32, 1), v, np.float32) for v in (0.25, 1.0)])}
  for given in (None, guides):
    prepared = engine.prepare(
      contents, styles, small_config(), terms={'reads': reads}, guides=given, network=random_network
    )
    state = prepared.start_state(0)
    assert jax.tree.map(jnp.shape, state.guides) == (
      {} if given is None else {'mask': (2, 32, 32, 1)}
    )
    program, ones = prepared.program, {'reads': jnp.ones(2)}
    keys = program.step_keys(state)
    images = program.images(state)
    _, values = program.evaluate(prepared.params, images, state.targets, ones, keys, state.guides)
    expected = [-1.0, -1.0] if given is None else [0.25 * contents[0].mean(), contents[1].mean()]
    np.testing.assert_allclose(values['reads'], expected, rtol=1e-5)
    value, _ = program.value_and_grad(
      prepared.params, state.variables, state.targets, ones, keys, state.guides
    )
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_terms_with_style_views_see_rotated_and_mirrored_styles(random_network):
  """A term's target gets each style's views (network features of the rotated image, not
  rotated features), each with its share of the style's blend weight; other terms do not."""
  contents, styles = small_pairs()
  seen = nst_jax.LossTerm(
    loss=lambda f, t: jnp.mean(f['image']) * 0.0,
    target=lambda content, styles, blend: (
      jnp.stack([s['image'] for s in styles]),
      jnp.stack([s['relu1_1'] for s in styles]),
      jnp.asarray(blend),
    ),
    layers=('relu1_1',),
    style_views=('identity', 'rot90', 'flip'),
  )
  square = [s[:32, :32] for s in styles]
  chosen = {'gram': nst_jax.terms_from_config(small_config())['gram'], 'seen': seen}
  prepared = engine.prepare(contents, square, small_config(), terms=chosen, network=random_network)
  images, features, blend = prepared.targets(0)['seen']
  model, params = random_network
  for b in range(2):
    style = square[b]
    views = [style, jnp.rot90(style, 1, axes=(0, 1)), style[:, ::-1]]
    np.testing.assert_allclose(images[b], np.stack(views), atol=1e-6)
    expected = model.apply(params, jnp.stack(views), ('relu1_1',))['relu1_1']
    np.testing.assert_allclose(features[b], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(blend[b], [1 / 3] * 3, rtol=1e-6)
  with pytest.raises(nst_jax.ConfigError, match='unknown style views'):
    engine.prepare(
      contents,
      square,
      small_config(),
      terms={'seen': seen._replace(style_views=('rot45',))},
      network=random_network,
    )


@pytest.mark.parametrize('group_size', [1, 2])  # Gated conds pair by pair; vmapped selects.
def test_pair_weights_run_different_objectives_in_one_batch(random_network, group_size):
  """Pair 0 with a Gram style loss, pair 1 with a sliced one: one batch, one program, the same
  images as each objective run on its own."""
  contents, styles = small_pairs()
  config = small_config(
    'schedule.num_steps=4', 'schedule.chunk_size=2', f'devices.pair_group_size={group_size}'
  )
  content = nst_jax.terms_from_config(config)['content']
  layers = config.losses.gram.layers
  gram = losses.gram_term(layers)._replace(weight=1e-2)
  sliced = losses.sliced_term(layers, 8, fixed_directions=True)._replace(weight=1e-2)
  both = {'content': content, 'gram': gram, 'sliced': sliced}
  batch = nst_jax.stylize(
    contents,
    styles,
    config,
    terms=both,
    network=random_network,
    pair_weights={'gram': [1e-2, 0.0], 'sliced': [0.0, 1e-2]},
  )
  for i, own in enumerate(
    ({'content': content, 'gram': gram}, {'content': content, 'sliced': sliced})
  ):
    alone = nst_jax.stylize(
      contents[i : i + 1], [styles[i]], config, terms=own, network=random_network
    )
    np.testing.assert_allclose(batch.images[i], alone.images[0], atol=2e-5)
    np.testing.assert_allclose(batch.history.total[:, i], alone.history.total[:, 0], rtol=1e-4)
  assert batch.history.terms['sliced'][-1, 0] == 0.0 < batch.history.terms['sliced'][-1, 1]
  with pytest.raises(nst_jax.ConfigError, match='pair_weights'):
    nst_jax.stylize(
      contents,
      styles,
      config,
      terms=both,
      network=random_network,
      pair_weights={'gram': [1.0, -1.0]},
    )
  with pytest.raises(nst_jax.ConfigError, match='all zero'):
    nst_jax.stylize(
      contents,
      styles,
      config,
      terms={'gram': gram},
      network=random_network,
      pair_weights={'gram': [1.0, 0.0]},
    )


@pytest.mark.parametrize('line_search', ['zoom', 'none'])  # optax's; nst_jax.run.lbfgs's.
def test_the_history_counts_every_objective_evaluation(random_network, line_search):
  """The history's evaluations per step equal the times the objective ran (a term that counts
  its calls), less the one evaluation of the terms at each chunk's end."""
  contents, styles = small_pairs()
  calls = []

  def counted(features, target):
    jax.debug.callback(lambda: calls.append(1))
    return jnp.mean((features['image'] - 0.5) ** 2)

  terms = nst_jax.terms_from_config(small_config())
  terms['counted'] = nst_jax.LossTerm(loss=counted)
  config = small_config(
    'optim.name=lbfgs', f'optim.line_search={line_search}', 'schedule.num_steps=8'
  )
  result = nst_jax.stylize(contents[:1], styles[:1], config, terms=terms, network=random_network)
  jax.effects_barrier()
  evaluations = result.history.evaluations
  assert evaluations.shape == (8, 1) and evaluations.dtype == np.int32
  chunks = len(result.history.term_steps)
  assert evaluations.sum() + chunks == len(calls)
  assert evaluations[0, 0] >= 2  # The first step evaluates its start, then its line search.
  if line_search == 'none':
    assert evaluations[1:].tolist() == [[1]] * 7
