"""Tests for nst_jax.lab.levers: runs measured in objective evaluations."""

import pathlib

import numpy as np
import pytest
from small import small_config, small_pairs

import nst_jax
from nst_jax.lab import levers


def test_a_curve_counts_evaluations_as_the_history_does(random_network):
  contents, styles = small_pairs()
  config = small_config('optim.name=lbfgs', 'schedule.chunk_size=4')
  curve = levers.evaluation_curve(config, contents[0], styles[0], budget=10, network=random_network)
  # At least the budget, at a chunk's end: whole chunks of 4 steps of 1 or more evaluations.
  assert curve.evaluations[-1] >= 10 and len(curve.evaluations) % 4 == 0
  assert np.all(np.diff(curve.evaluations) >= 1)
  steps = len(curve.evaluations)
  config.schedule.num_steps = steps
  result = nst_jax.stylize(contents[:1], styles[:1], config, network=random_network)
  np.testing.assert_array_equal(curve.evaluations, np.cumsum(result.history.evaluations[:, 0]))
  # The objective after each step is the history's before the next one.
  np.testing.assert_allclose(curve.objective[:-1], result.history.total[1:, 0], rtol=1e-4)
  assert levers.evaluations_to_reach(curve, curve.objective[2]) <= curve.evaluations[2]
  assert levers.evaluations_to_reach(curve, 0.0) == float('inf')


def test_coarser_scales_count_by_their_pixels(random_network):
  contents, styles = small_pairs()
  config = small_config(
    'schedule.num_scales=2', 'schedule.scale_ratio=2.0', 'schedule.coarse_steps=4'
  )
  curve = levers.evaluation_curve(config, contents[0], styles[0], budget=6, network=random_network)
  assert curve.steps[0] == 4
  # Adam: one evaluation a step; 4 steps at 16x16 cost one at 32x32.
  np.testing.assert_allclose(curve.evaluations[:3], [2.0, 3.0, 4.0])


@pytest.mark.slow
def test_study_reports_evaluations_to_each_target(tmp_path, random_network, monkeypatch):
  from nst_jax.io import images, weights

  contents, styles = small_pairs()
  for i in range(2):
    images.save_image(tmp_path / f'c{i}.png', contents[i])
    images.save_image(tmp_path / f's{i}.png', styles[i])
  monkeypatch.setattr(weights, 'load_vgg19', lambda *a, **k: random_network)
  config = tmp_path / 'small.py'
  tests = pathlib.Path(__file__).parent
  config.write_text(
    f'import sys\nsys.path.insert(0, {str(tests)!r})\nfrom small import small_config\n'
    'def get_config():\n  return small_config("schedule.chunk_size=2")\n'
  )
  pairs = [(str(tmp_path / f'c{i}.png'), str(tmp_path / f's{i}.png')) for i in range(2)]
  report = levers.study(
    [str(config), f'{config}@optim.name=lbfgs'], pairs, budget=4, output=str(tmp_path / 'r.json')
  )
  adam = report['runs'][str(config)]
  assert [p['target'] for p in report['pairs']] == [
    levers.value_at(levers.Curve(**c), 2) for c in adam['curves']
  ]
  assert adam['to_target'] == [2.0, 2.0]  # Its own objective at half the budget.
  table = levers.table(report)
  assert table.count('\n') == 3 and 'optim.name=lbfgs' in table
  assert (tmp_path / 'r.json').stat().st_size > 100
