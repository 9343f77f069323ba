"""Tests for nst_jax.run.pairs: sharding, padding and grouping the pairs, and process shares.

Equivalences only, so a random-weight network serves (no download).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from small import small_config, small_pairs

import nst_jax
from nst_jax.run import engine, pairs, program


def _four_pairs():
  contents, styles = small_pairs()
  contents = np.concatenate([contents, contents[::-1]])
  weights = np.array([[1, 0], [0, 1], [1, 1], [1, 0]], np.float32)
  return contents, styles, weights


def test_sharded_equals_unsharded(random_network):
  assert jax.device_count() == 4, 'conftest forces four CPU devices'
  contents, styles, weights = _four_pairs()
  config = small_config('schedule.num_steps=4', 'schedule.chunk_size=2')
  one = nst_jax.stylize(contents, styles, config, style_weights=weights, network=random_network)
  config.devices.count = 4
  four = nst_jax.stylize(contents, styles, config, style_weights=weights, network=random_network)
  np.testing.assert_allclose(one.images, four.images, atol=2e-5)


@pytest.mark.parametrize('optimizer', ['adam', 'lbfgs'])
def test_pair_groups_on_sharded_devices_match_and_move_nothing(random_network, optimizer):
  """Two devices with two pairs each: groups of one and two pairs, and both unsharded."""
  contents, styles, weights = _four_pairs()
  config = small_config(
    'schedule.num_steps=4',
    'schedule.chunk_size=2',
    f'optim.name={optimizer}',
    'devices.pair_group_size=4',
  )
  reference = nst_jax.stylize(
    contents, styles, config, style_weights=weights, network=random_network
  )
  config.devices.count = 2
  for group_size in (1, 2):
    config.devices.pair_group_size = group_size
    prepared = engine.prepare(
      contents, styles, config, style_weights=weights, network=random_network
    )
    result = prepared.run()
    np.testing.assert_allclose(result.images, reference.images, atol=2e-5)
    np.testing.assert_allclose(result.history.total, reference.history.total, rtol=1e-4)
    state = prepared.start_state(0)
    args = (prepared.params, state, prepared.pair_weights(0, state), jnp.int32(4))
    hlo = prepared.program.run_chunk.lower(*args).compile().as_text()
    assert not re.search(r' (all-gather|all-to-all|collective-permute)\(', hlo)
    # L-BFGS decides once for the batch whether its cached gradient is usable: one bool.
    assert len(re.findall(r' all-reduce\(', hlo)) == (optimizer == 'lbfgs')


def test_pair_groups_default_to_one_pair_at_a_time_on_a_cpu():
  def size(num_pairs, num_devices, group_size):
    return pairs.PairLayout.create(num_pairs, num_devices).pair_groups(group_size).size

  assert size(4, 1, 0) == 1  # A CPU: one pair at a time.
  assert size(4, 2, 0) == 1  # On each device.
  assert size(4, 1, 2) == 2
  assert size(6, 1, 4) == 3  # Groups are full: the largest size <= 4 that divides 6.
  assert size(4, 1, 8) == 4  # All at once.


def test_batch_is_padded_to_the_device_count(random_network):
  contents, styles = small_pairs()
  # All four devices, 3 pairs.
  config = small_config('schedule.num_steps=2', 'schedule.chunk_size=2', 'devices.count=0')
  result = nst_jax.stylize(contents[:1].repeat(3, 0), styles[:1], config, network=random_network)
  assert result.images.shape == (3, 32, 32, 3)
  np.testing.assert_allclose(result.images[0], result.images[2], atol=2e-5)


@pytest.mark.parametrize('num_pairs, processes', [(1, 1), (5, 1), (5, 2), (4, 4), (2, 4), (7, 3)])
def test_process_share_covers_the_batch_in_order(num_pairs, processes):
  shares = [
    pairs.process_share(num_pairs, pairs.Distributed(p, processes)) for p in range(processes)
  ]
  real = [i for rows, duplicate in shares if not duplicate for i in rows]
  assert real == list(range(num_pairs))
  # Duplicates (processes without pairs) come after every real pair, so results[:B] are real.
  flags = [duplicate for _, duplicate in shares]
  assert flags == sorted(flags)
  assert all(len(rows) >= 1 for rows, _ in shares)


def test_a_sharded_run_compiles_its_chunk_once(random_network, caplog):
  """The start state is placed where the chunk leaves its state, so chunk 2 reuses chunk 1's
  program (it used to recompile for a replicated optimizer state)."""
  contents, styles = small_pairs()
  program.build_program.cache_clear()
  config = small_config('schedule.num_steps=6', 'schedule.chunk_size=2', 'devices.count=2')
  with jax.log_compiles(), caplog.at_level('WARNING'):
    nst_jax.stylize(contents, styles, config, network=random_network)
  assert sum('Compiling jit(_run_chunk)' in r.getMessage() for r in caplog.records) == 1
