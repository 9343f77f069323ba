"""Tests for nst_jax.program: the compiled chunk is vmapped and chunked without changing results,
and is compiled once for equal settings.

Equivalences only, so a random-weight network serves (no download).
"""

import jax
import numpy as np
import pytest
from small import small_config, small_pairs

import nst_jax
from nst_jax import engine, optimizers, program


@pytest.mark.parametrize('group_size', [2, 1])  # Both pairs vmapped; one pair after the other.
def test_vmapped_batch_equals_each_pair_alone(random_network, group_size):
  contents, styles = small_pairs()
  config = small_config(pair_group_size=group_size)
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
      small_config(num_steps=7, chunk_size=2),
      network=random_network,
      callback=progress.append,
    )
  assert [p.step for p in progress] == [2, 4, 6, 7]
  # Four chunks (the last one partial) and one compilation of the chunk function.
  assert _compiles(caplog) == 1
  single = nst_jax.stylize(
    contents, styles, small_config(num_steps=7, chunk_size=7), network=random_network
  )
  np.testing.assert_allclose(chunked.images, single.images, atol=2e-5)
  np.testing.assert_allclose(chunked.history.total, single.history.total, rtol=1e-5)
  assert chunked.history.total.shape == (7, 2)
  assert list(chunked.history.term_steps) == [2, 4, 6, 7]
  assert chunked.history.terms['style'].shape == (4, 2)


def test_calls_with_new_weights_or_step_counts_reuse_the_compiled_chunk(random_network, caplog):
  contents, styles = small_pairs()
  program.build_program.cache_clear()
  config = small_config(num_steps=2, chunk_size=2)
  with jax.log_compiles(), caplog.at_level('WARNING'):
    first = nst_jax.stylize(contents, styles, config, network=random_network)
    config.terms.style = 0.1
    config.num_steps = 4
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
  lbfgs = engine.prepare(contents, styles, small_config(optimizer='lbfgs'), network=random_network)
  assert lbfgs.program.spec.optimizer.line_search
  assert not a.program.spec.optimizer.line_search


def test_a_bare_optax_lbfgs_runs_without_line_search_shortcuts(random_network):
  """The loop's L-BFGS shortcuts are an optimisation: without them the result is the same."""
  import optax

  contents, styles = small_pairs()
  config = small_config(optimizer='lbfgs', num_steps=3, chunk_size=3)
  fast = nst_jax.stylize(contents, styles, config, network=random_network)
  plain = nst_jax.stylize(
    contents, styles, config, optimizer=optax.lbfgs(memory_size=10), network=random_network
  )
  np.testing.assert_allclose(plain.images, fast.images, atol=1e-4)
