"""Tests for nst_jax.run.resume and nst_jax.io.checkpoints: a resumed run equals an uninterrupted
one (Adam and L-BFGS, mid-scale and at a scale boundary, with the iterate average), and bad or
damaged checkpoints are named."""

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import small

from nst_jax.errors import ConfigError, StylizeInterrupted
from nst_jax.io.checkpoints import CheckpointStore
from nst_jax.run import engine, resume

# Two scales of 3 chunks each: a stop after step 2 is mid-scale, after step 6 a scale boundary.
OVERRIDES = (
  'schedule.num_scales=2',
  'schedule.num_steps=6',
  'schedule.chunk_size=2',
  'optim.ema_decay=0.9',
)
STOPS = ((0, 2), (0, 6), (1, 4))  # (scale, step at that scale) after which Ctrl-C comes.


def stop_at(where):
  def callback(progress):
    if (progress.scale, progress.step) == where:
      raise KeyboardInterrupt

  return callback


def check_resumes_exactly(tmp_path, network, config, stops):
  contents, styles = small.small_pairs()
  full = engine.stylize(contents, styles, config, network=network)
  for where in stops:
    folder = tmp_path / f'{where[0]}_{where[1]}'
    with pytest.raises(StylizeInterrupted) as interrupted:
      engine.stylize(
        contents, styles, config, network=network, callback=stop_at(where), checkpoints=folder
      )
    assert (interrupted.value.scale, interrupted.value.step) == where
    checkpoints = resume.OrbaxCheckpoints(folder)
    seen = []
    resumed = engine.stylize(
      contents, styles, config, network=network, callback=seen.append, checkpoints=checkpoints
    )
    # The step count continues: the resumed run reports only the chunks after the checkpoint.
    offset = where[0] * 6 + where[1]
    assert checkpoints.restored.step == offset
    assert [p.scale * 6 + p.step for p in seen] == list(range(offset + 2, 13, 2))
    np.testing.assert_allclose(resumed.images, full.images, rtol=0, atol=1e-6)
    history, expected = resumed.history, full.history
    np.testing.assert_array_equal(history.total, expected.total)  # Every step, once.
    np.testing.assert_array_equal(history.scale, expected.scale)
    np.testing.assert_array_equal(history.term_steps, expected.term_steps)
    np.testing.assert_array_equal(history.term_totals, expected.term_totals)
    np.testing.assert_array_equal(history.pair_steps, expected.pair_steps)
    for name in expected.terms:
      np.testing.assert_array_equal(history.terms[name], expected.terms[name])


def test_adam_resumes_exactly(tmp_path, random_network):
  config = small.small_config(*OVERRIDES)
  check_resumes_exactly(tmp_path, random_network, config, STOPS)


@pytest.mark.slow
def test_lbfgs_resumes_exactly_with_its_memory(tmp_path, random_network):
  config = small.small_config(*OVERRIDES, 'optim.name=lbfgs')
  check_resumes_exactly(tmp_path, random_network, config, STOPS[:2])


def test_a_finished_run_resumes_to_its_result_and_checkpoints_are_periodic(
  tmp_path, random_network
):
  contents, styles = small.small_pairs()
  config = small.small_config(*OVERRIDES)
  checkpoints = resume.OrbaxCheckpoints(tmp_path, every=3, keep=3)
  first = engine.stylize(contents, styles, config, network=random_network, checkpoints=checkpoints)
  # At the first chunk boundary after each multiple of 3 steps (4, 10), and at each scale's end
  # (6, 12); the last 3 are kept.
  assert checkpoints.store.steps() == [6, 10, 12]
  seen = []
  again = engine.stylize(
    contents, styles, config, network=random_network, callback=seen.append, checkpoints=tmp_path
  )
  assert seen == []  # Nothing left to run.
  np.testing.assert_array_equal(again.images, first.images)
  np.testing.assert_array_equal(again.history.total, first.history.total)


def test_another_runs_checkpoint_is_refused_naming_what_differs(tmp_path, random_network):
  contents, styles = small.small_pairs()
  config = small.small_config(*OVERRIDES)
  with pytest.raises(StylizeInterrupted):
    engine.stylize(
      contents,
      styles,
      config,
      network=random_network,
      callback=stop_at((0, 2)),
      checkpoints=tmp_path,
    )
  other = small.small_config(*OVERRIDES, 'losses.gram.weight=0.01')
  with pytest.raises(
    ConfigError, match=r'config.losses.gram.weight is 0.01, the checkpoint has 0.001'
  ):
    engine.stylize(contents, styles, other, network=random_network, checkpoints=tmp_path)
  changed = contents.copy()
  changed[1, 0, 0] = 0.0
  with pytest.raises(ConfigError, match=r'is of another run: other contents for pair\(s\) 1;'):
    engine.stylize(changed, styles, config, network=random_network, checkpoints=tmp_path)
  with pytest.raises(ConfigError, match=r'other styles for pair\(s\) 0, 1'):
    engine.stylize(contents, styles[::-1], config, network=random_network, checkpoints=tmp_path)
  with pytest.raises(
    ConfigError, match=r'1 pair\(s\) padded to 1 for the devices, the checkpoint has 2'
  ):
    engine.stylize(contents[:1], styles[:1], config, network=random_network, checkpoints=tmp_path)


def test_fingerprint_differences_are_one_phrase_each():
  saved = {
    'config': {'seed': 0, 'image_size': 32},
    'pairs': [2, 2],
    'inputs': {'contents': ['a', 'b']},
  }
  now = {
    'config': {'seed': 1, 'image_size': 32},
    'pairs': [2, 2],
    'inputs': {'contents': ['a', 'c']},
  }
  assert resume.fingerprint_differences(saved, saved) == []
  assert resume.fingerprint_differences(saved, now, names=['x', 'y']) == [
    'config.seed is 1, the checkpoint has 0',
    'other contents for pair(s) y',
  ]


def _tree(value):
  return {'x': np.full((4, 8), value, np.float32), 'step': np.asarray(value, np.int32)}


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(tmp_path):
  store = CheckpointStore(tmp_path)
  for step in (1, 2):
    store.save(step, _tree(step), {'step': step})
  store.close()
  for path in (tmp_path / '2').rglob('*'):  # Damage every file of the latest.
    if path.is_file() and 'commit_success' not in path.name:
      path.write_bytes(b'')
  store = CheckpointStore(tmp_path)
  restored = store.restore(lambda meta: _tree(0))
  assert restored.step == 1 and restored.meta == {'step': 1}
  np.testing.assert_array_equal(restored.tree['x'], _tree(1)['x'])
  assert len(restored.skipped) == 1 and restored.skipped[0].startswith('step 2 (')
  store.close()


SAVER = textwrap.dedent(
  """
  import sys, time
  import numpy as np
  from nst_jax.io.checkpoints import CheckpointStore
  store = CheckpointStore(sys.argv[1])
  store.save(1, {'x': np.ones(8, np.float32)}, {'step': 1})
  store.wait()
  print('saved 1', flush=True)
  big = {f'x{i}': np.full(2**24, i, np.float32) for i in range(8)}  # 512 MiB: takes a while.
  store.save(2, big, {'step': 2})
  store.wait()
  """
)


def test_a_save_cut_short_loses_nothing_saved_before(tmp_path):
  process = subprocess.Popen(
    [sys.executable, '-c', SAVER, str(tmp_path)],
    stdout=subprocess.PIPE,
    text=True,
    env={**os.environ, 'JAX_PLATFORMS': 'cpu'},
  )
  assert process.stdout.readline().strip() == 'saved 1'
  writing = []
  while not writing and process.poll() is None:
    writing = [p for p in pathlib.Path(tmp_path).iterdir() if 'tmp' in p.name]
    time.sleep(0.005)
  process.send_signal(signal.SIGKILL)  # A pre-emption, in the middle of writing step 2.
  process.wait()
  assert writing and writing[0].exists()  # The save cut short, left in its temporary folder.
  store = CheckpointStore(tmp_path)
  assert store.steps() == [1]
  restored = store.restore(lambda meta: {'x': np.zeros(8, np.float32)})
  assert restored.step == 1
  np.testing.assert_array_equal(restored.tree['x'], np.ones(8))
  store.close()
