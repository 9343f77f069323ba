"""Tests for nst_jax.app.records: the loss history, its plot and the workdir."""

import json
import os

import numpy as np
from PIL import Image

import nst_jax
from nst_jax.app import records
from nst_jax.run.history import History


def _history():
  return History(
    total=np.array([[9.0, 8.0], [7.0, 6.0], [5.0, 4.0], [3.0, 2.0]]),
    evaluations=np.array([[3, 4], [1, 1], [2, 1], [1, 0]]),
    scale=np.array([0, 0, 1, 1]),
    term_steps=np.array([2, 4]),
    terms={'content': np.array([[1.0, 2.0], [3.0, 4.0]]), 'style': np.ones((2, 2))},
    term_totals=np.array([[12.0, 14.0], [16.0, 18.0]]),
    pair_steps=np.array([[2, 2], [2, 1]]),
  )


def test_history_lines():
  record = records.BatchRecord(['a', 'b'], (32, 32), _history())
  lines = list(records.history_lines([record]))
  assert [line['step'] for line in lines] == [2, 4]
  assert [line['scale'] for line in lines] == [0, 1]
  assert lines[1] == {
    'batch': 0,
    'pairs': ['a', 'b'],
    'step': 4,
    'scale': 1,
    'total': [16.0, 18.0],
    'terms': {'content': [3.0, 4.0], 'style': [1.0, 1.0]},
    'evaluations': [7, 6],
  }


def test_plot_losses_draws_curves_and_skips_nonpositive():
  curves = {
    'total': (np.arange(50), np.geomspace(1e6, 1e3, 50)),
    'content': (np.array([0, 10, 20]), np.array([0.0, 5.0, np.nan])),
  }
  image = records.plot_losses(curves, title='t', markers=[25], size=(640, 400))
  assert image.size == (640, 400)
  pixels = np.asarray(image)
  blue = np.all(pixels == records.CURVE_COLOURS[0], axis=-1)
  red = np.all(pixels == records.CURVE_COLOURS[1], axis=-1)
  assert blue.sum() > 200 and red.sum() > 10  # The curve, and the legend swatch / one point.
  # A falling curve on a log axis: its pixels' rows rise towards the right.
  rows, columns = np.nonzero(blue[:, :500])
  assert np.corrcoef(rows, columns)[0, 1] > 0.9
  empty = records.plot_losses({'x': ([0, 1], [0.0, -1.0])})
  assert empty.size == (800, 480)


def test_write_workdir(tmp_path):
  config = nst_jax.default_config()
  batches = [records.BatchRecord(['a', 'b'], (32, 32), _history(), 1.5)]
  records.write_workdir(tmp_path / 'wd', config, batches, {'status': 'done'})
  assert json.loads((tmp_path / 'wd' / 'config.json').read_text())['image_size'] == 512
  run = json.loads((tmp_path / 'wd' / 'run.json').read_text())
  assert run['status'] == 'done' and run['batches'][0]['pairs'] == ['a', 'b']
  assert run['batches'][0]['steps'] == [[2, 2], [2, 1]]  # Per pair, per scale.
  lines = (tmp_path / 'wd' / 'history.jsonl').read_text().splitlines()
  assert len(lines) == 2 and all(json.loads(line)['pairs'] == ['a', 'b'] for line in lines)
  with Image.open(tmp_path / 'wd' / 'loss.png') as plot:
    assert plot.format == 'PNG'
  # Without a history (interrupted before any batch finished): config and run record only.
  records.write_workdir(tmp_path / 'wd2', config, [records.BatchRecord(['a'], (32, 32))], {})
  assert sorted(os.listdir(tmp_path / 'wd2')) == ['config.json', 'run.json']
