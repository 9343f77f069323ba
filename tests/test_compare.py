"""Tests for nst_jax.compare: which methods share a batch, their combined objective, overrides,
the sheet and the score tables. (The script end to end is in tests/test_scripts.py.)"""

import numpy as np
import pytest

import nst_jax
from nst_jax.core import terms
from nst_jax.lab import compare


def _configs(**kwargs):
  return compare.method_configs(list(compare.METHODS), size=64, **kwargs)


def test_methods_that_differ_only_in_their_objective_share_a_batch():
  configs = _configs()
  assert compare.group_methods(configs) == [
    ['gram', 'gaussian', 'sliced'],
    ['nearest_neighbor'],
    ['hq'],
  ]
  assert all(c.image_size == 64 for c in configs.values())
  quick = _configs(steps=3, overrides=[('num_scales', 1)])
  assert all(c.num_steps == c.coarse_steps == 3 and c.num_scales == 1 for c in quick.values())
  # One scale each, nearest neighbours and hq still differ (colours, content loss aside).
  assert ['gram', 'gaussian', 'sliced'] in compare.group_methods(quick)


def test_combined_terms_share_equal_terms_and_weight_each_pair_by_its_method():
  configs = _configs()
  chosen, weights = compare.combined_terms(configs, ['gram', 'gaussian', 'sliced'])
  assert list(chosen) == ['content', 'style', 'gaussian.style', 'sliced.style']
  assert chosen['content'] == terms.terms_from_config(configs['gram'])['content']._replace(
    weight=1.0
  )
  np.testing.assert_allclose(weights['content'], [1.0, 1.0, 1.0])
  np.testing.assert_allclose(weights['style'], [5e-4, 0.0, 0.0])
  np.testing.assert_allclose(weights['gaussian.style'], [0.0, 50.0, 0.0])
  assert weights['sliced.style'][2] > 0 and not weights['sliced.style'][:2].any()


def test_bad_methods_and_overrides_are_config_errors():
  with pytest.raises(nst_jax.ConfigError, match='unknown'):
    compare.method_configs(['gram', 'strotss'], size=64)
  with pytest.raises(nst_jax.ConfigError, match="no field 'num_step'"):
    compare.method_configs(['gram'], size=64, overrides=[('num_step', 3)])
  with pytest.raises(nst_jax.ConfigError, match='field=value'):
    compare.parse_override('num_scales')
  assert compare.parse_override('nn_augment=rotations') == ('nn_augment', 'rotations')
  assert compare.parse_override('terms.style=2e-3') == ('terms.style', 2e-3)
  with pytest.raises(nst_jax.ConfigError, match='config.num_scales'):
    compare.method_configs(['gram'], size=64, overrides=[('num_scales', 0)])


def test_sheet_has_a_header_row_and_a_row_per_content():
  rng = np.random.default_rng(0)
  style = rng.random((20, 30, 3)).astype(np.float32)
  contents = [rng.random((24, 16, 3)).astype(np.float32) for _ in range(2)]
  cells = [[c * 0.5, c] for c in contents]
  sheet = compare.compose_sheet(style, contents, cells, ['gram', 'nearest_neighbor'], gutter=4)
  header = max(32, 24 // 3)
  assert sheet.shape == (4 + header + 4 + 2 * (24 + 4), 4 + 3 * (16 + 4), 3)
  np.testing.assert_allclose(
    sheet[4 + header + 4 : 4 + header + 4 + 24, 4 + 20 : 4 + 36], cells[0][0]
  )
  assert sheet[4 : 4 + header, 4 + 40 : 4 + 56].min() < 0.5  # Some dark text in the label.


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
