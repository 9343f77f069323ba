"""Tests for nst_jax.lab.quality and scripts/quality_curve.py's report."""

import json
import pathlib
import sys

import numpy as np
import pytest

from nst_jax.io import images
from nst_jax.lab import quality
from nst_jax.run import config as config_lib

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'
SCRIPTS = CONFIGS.parent / 'scripts'


def test_time_to_reach_is_the_first_checkpoint_at_or_below_the_target():
  points = [
    quality.Point(s, 10 * k, 0, (v, w))
    for k, (s, v, w) in enumerate([(1.0, 9.0, 5.0), (2.0, 4.0, 6.0), (3.0, 5.0, 1.0)])
  ]
  assert quality.time_to_reach(points, [4.5, 1.0]) == [2.0, 3.0]
  assert quality.time_to_reach(points, [0.5, 5.0]) == [float('inf'), 1.0]


def test_config_specs_override_fields_by_their_types():
  config = config_lib.from_spec(
    f'{CONFIGS / "default.py"}@schedule.num_scales=3@losses.gram.weight=0.25'
    '@optim.warm_start=true@optim.name=adam'
  )
  schedule, optim = config.schedule, config.optim
  assert (schedule.num_scales, config.losses.gram.weight, optim.warm_start) == (3, 0.25, True)
  assert optim.name == 'adam'
  for bad in (
    '@schedule.num_scale=3',
    '@schedule.num_scales=three',
    '@optim.warm_start=maybe',
    '@losses.zz.weight=1',
    '@num_scales=3',  # Renamed: schedule.num_scales.
  ):
    with pytest.raises(config_lib.ConfigError, match='config spec'):
      config_lib.from_spec(f'{CONFIGS / "default.py"}{bad}')


FAKE_PASTICHE = """#!{python}
import argparse, shutil, time
parser = argparse.ArgumentParser()
parser.add_argument('script')
for flag in ('content', 'style', 'style_size', 'steps', 'every', 'out'):
  parser.add_argument('--' + flag)
args = parser.parse_args()
for step in range(0, int(args.steps) + 1, int(args.every)):
  time.sleep(0.05)
  shutil.copy(args.content, f'{{args.out}}/step{{step:04d}}.png')
"""


@pytest.mark.slow
@pytest.mark.weights
def test_compare_writes_the_documented_report(tmp_path, vgg19_params):
  """One config and a stand-in for pastiche (a python that saves the content as its images),
  each a whole process."""
  y, x = np.mgrid[0:40, 0:48] / 40.0
  images.save_image(tmp_path / 'c.png', np.stack([x / 1.2, y, 0.5 + 0.4 * np.sin(9 * x)], -1))
  images.save_image(tmp_path / 's.png', np.stack([np.sin(20 * x) ** 2, y, 1 - y], -1))
  fake = tmp_path / 'python'
  fake.write_text(FAKE_PASTICHE.format(python=sys.executable))
  fake.chmod(0o755)
  default = str(CONFIGS / 'default.py')
  report = quality.compare(
    [f'{default}@schedule.num_steps=4@optim.name=adam'],
    [str(tmp_path / 'c.png')],
    [str(tmp_path / 's.png')],
    size=32,
    eval_spec=default,
    output_dir=str(tmp_path / 'out'),
    scripts_dir=str(SCRIPTS),
    pastiche_python=str(fake),
    pastiche_steps=6,
    every=2,
  )
  written = json.loads((tmp_path / 'out' / 'quality.json').read_text())
  assert written == json.loads(json.dumps(report))
  assert set(written) == {
    'size', 'eval_config', 'pairs', 'runs', 'pastiche', 'pastiche_seconds_per_evaluation',
    'equal_times',
  }  # fmt: skip
  (pair,) = written['pairs']
  assert pair['content'] == str(tmp_path / 'c.png')
  assert pair['pastiche']['best_step'] == 0  # The stand-in never improves on its first image.
  assert [p['step'] for p in written['pastiche'][0]] == [0, 2, 4, 6]
  adam = written['runs']['default schedule.num_steps=4 optim.name=adam']
  assert set(adam) == {
    'spec', 'points', 'final', 'seconds', 'seconds_per_evaluation', 'seconds_to_first_final',
    'seconds_to_pastiche_best', 'speedup', 'median_speedup',
  }  # fmt: skip
  (points,) = adam['points']
  assert [p['step'] for p in points] == [2, 4]
  assert [p['evaluations'] for p in points] == [[2], [4]]  # Adam: one a step.
  assert 0 < points[0]['seconds'] < points[1]['seconds'] < adam['seconds'][0]
  assert adam['seconds_per_evaluation'][0] > 0
  assert points[-1]['objective'] == [adam['final'][0]]
  assert points[1]['objective'][0] < points[0]['objective'][0]
  # Stylized from the content, its first saved image already beats the content itself.
  assert adam['seconds_to_pastiche_best'] == [points[0]['seconds']]
  median = written['equal_times']['median']
  assert set(median) == {'default schedule.num_steps=4 optim.name=adam', 'pastiche 1.6'}
  assert len(median['pastiche 1.6']) == len(written['equal_times']['seconds'])
  assert median['pastiche 1.6'][-1] == 1.0
  assert (tmp_path / 'out' / 'quality.png').stat().st_size > 1000
