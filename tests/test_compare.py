"""Tests for nst_jax.lab.compare: which methods share a batch, their combined objective,
overrides and the score tables. (The sheet is tested in tests/test_sheets.py, the script end to
end in tests/test_scripts.py.)"""

import pathlib

import numpy as np
import pytest

import nst_jax
from nst_jax.core import terms
from nst_jax.lab import compare

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'


def _configs(methods=tuple(compare.METHODS), **kwargs):
  return compare.method_configs(list(methods), configs_dir=CONFIGS, size=64, **kwargs)


def test_methods_that_differ_only_in_their_objective_share_a_batch():
  configs = _configs()
  assert compare.group_methods(configs) == [
    ['gram', 'gaussian', 'sliced'],
    ['nearest_neighbor'],
    ['hq'],
  ]
  assert all(c.image_size == 64 for c in configs.values())
  quick = _configs(steps=3, overrides=['schedule.num_scales=1'])
  assert all(
    c.schedule.num_steps == c.schedule.coarse_steps == 3 and c.schedule.num_scales == 1
    for c in quick.values()
  )
  # One scale each, nearest neighbours and hq still differ (in their colour control).
  assert ['gram', 'gaussian', 'sliced'] in compare.group_methods(quick)


def test_combined_terms_share_equal_terms_and_weight_each_pair_by_its_method():
  configs = _configs()
  chosen, weights = compare.combined_terms(configs, ['gram', 'gaussian', 'sliced'])
  assert list(chosen) == ['content', 'gram', 'gaussian', 'sliced']
  assert chosen['content'] == terms.terms_from_config(configs['gram'])['content']._replace(
    weight=1.0
  )
  np.testing.assert_allclose(weights['content'], [1.0, 1.0, 1.0])
  np.testing.assert_allclose(weights['gram'], [1.0, 0.0, 0.0])
  np.testing.assert_allclose(weights['gaussian'], [0.0, 1.0, 0.0])
  assert weights['sliced'][2] > 0 and not weights['sliced'][:2].any()


def test_combined_terms_prefix_a_taken_name_of_another_term():
  configs = _configs(['gram', 'gaussian'])
  configs['gaussian'].losses.content.layers = {'relu3_1': 1.0}  # Another content term.
  chosen, weights = compare.combined_terms(configs, ['gram', 'gaussian'])
  assert list(chosen) == ['content', 'gram', 'gaussian.content', 'gaussian']
  assert chosen['gaussian.content'].layers == ('relu3_1',)
  np.testing.assert_allclose(weights['content'], [1.0, 0.0])
  np.testing.assert_allclose(weights['gaussian.content'], [0.0, 1.0])


def test_bad_methods_and_overrides_are_config_errors():
  with pytest.raises(nst_jax.ConfigError, match='unknown'):
    _configs(['gram', 'strotss'])
  with pytest.raises(nst_jax.ConfigError, match="no field 'schedule.num_step'"):
    _configs(['gram'], overrides=['schedule.num_step=3'])
  with pytest.raises(nst_jax.ConfigError, match='FIELD=VALUE'):
    _configs(['gram'], overrides=['schedule.num_scales'])
  with pytest.raises(nst_jax.ConfigError, match='use config.losses.nearest_neighbor.augment'):
    _configs(['gram'], overrides=['nn_augment=rotations'])
  (config,) = _configs(
    ['nearest_neighbor'],
    overrides=['losses.nearest_neighbor.augment=none', 'losses.gram.weight=2e-3'],
  ).values()
  assert config.losses.nearest_neighbor.augment == 'none' and config.losses.gram.weight == 2e-3
  with pytest.raises(nst_jax.ConfigError, match='config.schedule.num_scales'):
    _configs(['gram'], overrides=['schedule.num_scales=0'])
  with pytest.raises(nst_jax.ConfigError, match='file not found'):
    compare.method_configs(['gram'], configs_dir=CONFIGS / 'absent', size=64)


def test_score_tables_summarise_every_method():
  found = [
    compare.Record(
      's',
      c,
      m,
      10.0 + i,
      ['gram', 'sliced'] if m != 'hq' else ['hq'],
      {'content': 4.0 * (i + 1), 'gram': 1e10, 'gaussian': 100.0 * (i + 1)},
      'x.png',
    )
    for i, c in enumerate(['a', 'b'])
    for m in ('gram', 'sliced', 'hq')
  ]
  table = compare.score_tables(found, ['gram', 'sliced', 'hq'])
  assert '| gram | 5.657 | 1e+10 | 141.4 | 10 | gram, sliced |' in table  # Geometric means.
  assert '| hq |' in table and '| alone |' in table
  assert '| s | b | 1e+10 / 200 |' in table
