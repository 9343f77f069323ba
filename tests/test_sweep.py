"""Tests for nst_jax.lab.sweep (scripts/sweep.py): cells, batching by compiled program, and a grid
whose labels and cells line up with their configs."""

import json

import numpy as np
import pytest
import small
from tensorboard.backend.event_processing import event_accumulator

from nst_jax.app import session, sheets
from nst_jax.app.workdir import Workdir
from nst_jax.errors import ConfigError
from nst_jax.io import images
from nst_jax.lab import sweep
from nst_jax.run import engine


def test_axes_and_cells_follow_the_config():
  config = small.small_config()
  gram = sweep.parse_axis('losses.gram.weight=1e-3,1e-2', config)
  assert gram.values == (1e-3, 1e-2) and gram.texts == ('1e-3', '1e-2')
  seed = sweep.parse_axis('seed=0,1', config)
  cells = sweep.plan_cells(config, [gram, seed])
  assert [(c.column, c.row, c.label) for c in cells] == [
    (0, 0, 'gram.weight=1e-3__seed=0'),
    (1, 0, 'gram.weight=1e-2__seed=0'),
    (0, 1, 'gram.weight=1e-3__seed=1'),
    (1, 1, 'gram.weight=1e-2__seed=1'),
  ]
  assert [(c.config.losses.gram.weight, c.config.seed) for c in cells] == [
    (1e-3, 0),
    (1e-2, 0),
    (1e-3, 1),
    (1e-2, 1),
  ]
  # Weights vary inside a batch; the seed needs a run of its own per value.
  groups = sweep.program_groups(cells, [gram, seed])
  assert [g.cells for g in groups] == [[0, 1], [2, 3]]
  assert [g.config.seed for g in groups] == [0, 1]
  np.testing.assert_allclose(groups[0].weights['gram'], [1e-3, 1e-2])
  tv = sweep.parse_axis('losses.tv.weight=0,0.1', config)
  (group,) = sweep.program_groups(sweep.plan_cells(config, [gram, tv]), [gram, tv])
  assert group.config.losses.tv.weight == 0.1  # So that the term is built.
  np.testing.assert_allclose(group.weights['tv'], [0, 0, 0.1, 0.1])


@pytest.mark.parametrize(
  'specs, match',
  [
    (['losses.gram.weight'], 'is not FIELD=VALUE,VALUE'),
    (['losses.gram.wieght=1,2'], 'has no field'),
    (['losses.gram.weight=1,x'], "'x' is not a float"),
    (['seed=1,1'], 'repeats a value'),
    (['seed=1,2', 'seed=3,4'], 'names seed twice'),
    (['seed=1', 'image_size=32', 'init.noise=0'], 'one or two --sweep fields'),
    (['losses.gram.weight=0', 'losses.content.weight=0'], 'cell gram.weight=0__content.weight=0'),
  ],
)
def test_bad_sweeps_are_one_line(specs, match):
  config = small.small_config()
  with pytest.raises(ConfigError, match=match):
    sweep.plan_cells(config, [sweep.parse_axis(s, config) for s in specs])


@pytest.mark.slow  # Three programs to compile: the batch, and a cell run alone with and without TV.
def test_grid_labels_and_cells_line_up_with_their_configs(tmp_path, monkeypatch, random_network):
  monkeypatch.setattr(session.weights, 'load_vgg19', lambda *args, **kwargs: random_network)
  contents, styles = small.small_pairs()
  content, style = tmp_path / 'content.png', tmp_path / 'style.png'
  images.save_image(content, contents[1])
  images.save_image(style, styles[1])
  config = small.small_config('schedule.num_steps=4', 'schedule.chunk_size=2')
  specs = ['losses.gram.weight=1e-4,1e-2', 'losses.tv.weight=0,0.05']
  grid = sweep.sweep_files(
    config,
    content=str(content),
    style=str(style),
    sweeps=specs,
    output=str(tmp_path / 'sweep.png'),
    cell_size=40,
    workdir=Workdir(str(tmp_path / 'wd')),
  )
  run = json.loads((tmp_path / 'wd' / 'run.json').read_text())
  assert len(run['batches']) == 1 and run['programs'] == 1  # Four cells, one batch.
  rows = json.loads((tmp_path / 'sweep.json').read_text())
  sheet = images.load_image(grid)
  gutter, side = 8, 40

  def block(row, column):
    top, left = gutter + row * (side + gutter), gutter + column * (side + gutter)
    return sheet[top : top + side, left : left + side]

  def as_saved(image):
    return np.round(np.asarray(image) * 255) / 255

  loaded_content = images.load_image(content)
  loaded_style = images.load_image(style)
  for c, gram in enumerate(('1e-4', '1e-2')):
    label = sheets.text_image(f'gram.weight={gram}', (side, side), max(10, side // 9))
    np.testing.assert_allclose(block(0, c + 1), as_saved(label), atol=1 / 255)
  for r, tv in enumerate(('0', '0.05')):
    label = sheets.text_image(f'tv.weight={tv}', (side, side), max(10, side // 9))
    np.testing.assert_allclose(block(r + 1, 0), as_saved(label), atol=1 / 255)
    for c, gram in enumerate(('1e-4', '1e-2')):
      # Each cell is what a run of its own config makes (the batch only shares the program).
      alone = small.small_config(
        'schedule.num_steps=4',
        'schedule.chunk_size=2',
        f'losses.gram.weight={gram}',
        f'losses.tv.weight={tv}',
      )
      own = engine.stylize(loaded_content[None], [loaded_style], alone, network=random_network)
      cell = images.load_image(tmp_path / 'sweep_cells' / f'gram.weight={gram}__tv.weight={tv}.png')
      np.testing.assert_allclose(cell, as_saved(own.images[0]), atol=1.01 / 255)
      expected = sheets.fit_and_pad(cell, (side, side))
      np.testing.assert_allclose(block(r + 1, c + 1), as_saved(expected), atol=1.01 / 255)
      row = rows[r * 2 + c]
      assert row['fields'] == {'losses.gram.weight': float(gram), 'losses.tv.weight': float(tv)}
      assert row['total'] == pytest.approx(float(own.history.term_totals[-1][0]), rel=1e-4)
      assert row['terms']['content'] == pytest.approx(
        float(own.history.terms['content'][-1][0]), rel=1e-4
      )
  # Every cell is in TensorBoard, tagged by its label.
  accumulator = event_accumulator.EventAccumulator(str(tmp_path / 'wd'))
  accumulator.Reload()
  for gram in ('1e-4', '1e-2'):
    for tv in ('0', '0.05'):
      assert f'gram.weight_{gram}__tv.weight_{tv}/total' in accumulator.Tags()['scalars']
  table = (tmp_path / 'sweep.md').read_text().splitlines()
  assert (
    table[0] == '| losses.gram.weight | losses.tv.weight | batch | total | content | gram | tv |'
  )
  assert table[2].startswith('| 0.0001 | 0.0 | 0 |')
