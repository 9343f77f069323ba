"""Tests for nst_jax.app.summaries and the workdir's resume through the command protocol: the
event files hold the documented tags (read back with TensorBoard's own reader), and a command run
again after Ctrl-C or a pre-emption continues with no gaps and no duplicate steps."""

import glob
import json

import numpy as np
import pytest
import small
from tensorboard.backend.event_processing import event_accumulator, event_file_loader
from tensorboard.plugins.hparams import plugin_data_pb2

from nst_jax.app import cli, script, session, summaries
from nst_jax.app.workdir import Workdir
from nst_jax.io import images
from nst_jax.run import engine

OVERRIDES = ('schedule.num_scales=2', 'schedule.num_steps=6', 'schedule.chunk_size=2')
TERMS = ('total', 'content', 'gram', 'step_size')


class Preempted(Exception):
  """A job killed from outside: no Ctrl-C handling, nothing saved on the way out."""


@pytest.fixture
def grid(tmp_path, monkeypatch, random_network):
  """A 2 x 2 grid command in two batches of 2 pairs, on the random network."""
  monkeypatch.setattr(session.weights, 'load_vgg19', lambda *args, **kwargs: random_network)
  contents, styles = small.small_pairs()
  content_files, style_files = [], []
  for i in range(2):
    content_files.append(str(tmp_path / f'c{i}.png'))
    images.save_image(content_files[-1], contents[i])
    style_files.append(str(tmp_path / f's{i}.png'))
    images.save_image(style_files[-1], styles[i])
  config = small.small_config(*OVERRIDES, 'optim.ema_decay=0.9')
  original = engine.stylize

  def run(name, workdir, callback=None):
    command = cli.GridCommand(
      config,
      cli.Distributed(),
      content_files,
      style_files,
      str(tmp_path / f'{name}.png'),
      0,
      0,
      workdir.path,
      2,
    )
    if callback is not None:
      hook = callback

      def stylize(*args, callback=None, **kwargs):
        def both(progress):
          callback(progress)
          hook(command, progress)

        return original(*args, callback=both, **kwargs)

      monkeypatch.setattr(session.engine, 'stylize', stylize)
    try:
      return session.run_command(command, config, cli.Distributed(), workdir)
    finally:
      monkeypatch.setattr(session.engine, 'stylize', original)

  return run


def read(workdir):
  accumulator = event_accumulator.EventAccumulator(
    str(workdir), size_guidance={'scalars': 0, 'images': 0, 'tensors': 0}
  )
  accumulator.Reload()
  return accumulator


def steps_of(accumulator):
  tags = accumulator.Tags()
  out = {tag: [e.step for e in accumulator.Scalars(tag)] for tag in tags['scalars']}
  out['images'] = [e.step for e in accumulator.Images('images')]
  return out


PAIRS = ('c0__s0', 'c0__s1', 'c1__s0', 'c1__s1')


def test_event_files_hold_the_documented_tags(grid, tmp_path):
  workdir = Workdir(str(tmp_path / 'wd'), image_every=4)
  grid('grid', workdir)
  accumulator = read(workdir.path)
  steps = steps_of(accumulator)
  # Per pair, every term and the total at every chunk's end; steps continue over the batches.
  for p, pair in enumerate(PAIRS):
    batch = p // 2
    for term in TERMS:
      assert steps[f'{pair}/{term}'] == list(range(12 * batch + 2, 12 * batch + 13, 2))
  # Steps per second: all chunks but the first of each scale (which compiles).
  assert steps['steps_per_second'] == [4, 6, 10, 12, 16, 18, 22, 24]
  assert all(e.value > 0 for e in accumulator.Scalars('steps_per_second'))
  np.testing.assert_allclose([e.value for e in accumulator.Scalars('c0__s0/step_size')], 0.02)
  # Images: every 4 steps of a batch (at the next chunk's end) and at its end.
  assert steps['images'] == [4, 8, 12, 16, 20, 24]
  image = accumulator.Images('images')[-1]
  rows, columns = 2, 3  # A row per pair: content, style, current image.
  cell = summaries.IMAGE_CELL + 4
  assert (image.height, image.width) == (4 + rows * cell, 4 + columns * cell)
  # The config as hyperparameters, each pair's total its metric.
  (events,) = glob.glob(f'{workdir.path}/events.out.tfevents.*')
  start = [
    value
    for event in event_file_loader.EventFileLoader(events).Load()
    for value in event.summary.value
    if value.tag == '_hparams_/session_start_info'
  ]
  assert len(start) == 1
  info = plugin_data_pb2.HParamsPluginData.FromString(start[0].metadata.plugin_data.content)
  hparams = info.session_start_info.hparams
  assert hparams['losses.gram.weight'].number_value == pytest.approx(1e-3)
  assert hparams['optim.name'].string_value == 'adam'
  assert json.loads(hparams['losses.gram.layers'].string_value) == {'relu1_1': 0.5, 'relu2_1': 0.5}


def test_resumed_commands_continue_with_no_gaps_or_duplicates(grid, tmp_path, capsys):
  full = Workdir(str(tmp_path / 'full'), image_every=4)
  grid('full', full)
  expected = steps_of(read(full.path))
  history = (tmp_path / 'full' / 'history.jsonl').read_text()

  # Ctrl-C in the second batch's first scale: a checkpoint is saved on the way out.
  stopped = Workdir(str(tmp_path / 'stopped'), image_every=4)

  def ctrl_c(command, progress):
    if command.session.current == 1 and progress.step == 4:
      raise KeyboardInterrupt

  with pytest.raises(SystemExit) as exit_:
    script.call_main(lambda argv: grid('stopped', stopped, ctrl_c), [])
  assert exit_.value.code == script.EXIT_INTERRUPTED
  assert 'run the same command again to resume exactly' in capsys.readouterr().err
  grid('stopped', stopped)

  # A pre-emption in the second batch's second scale, after summaries beyond the last
  # checkpoint (at step 8 of the batch) were written: the resumed run discards them.
  preempted = Workdir(str(tmp_path / 'preempted'), checkpoint_every=4, image_every=4)

  def kill(command, progress):
    if command.session.current == 1 and (progress.scale, progress.step) == (1, 4):
      command.session.summaries.close()  # What the killed job had written to disk.
      raise Preempted

  with pytest.raises(Preempted):
    grid('preempted', preempted, kill)
  (events,) = glob.glob(f'{preempted.path}/events.out.tfevents.*')
  written = [e.step for e in event_file_loader.EventFileLoader(events).Load() if e.summary.value]
  assert max(written) == 22  # Beyond the checkpoint at 12 + 8.
  grid('preempted', preempted)

  for name, workdir in (('stopped', stopped), ('preempted', preempted)):
    steps = steps_of(read(workdir.path))
    # The first chunk after a resume compiles: like a scale's first, it has no steps per second.
    speed = steps.pop('steps_per_second')
    assert speed == sorted(set(speed)) and set(speed) <= set(expected['steps_per_second'])
    assert steps == {tag: s for tag, s in expected.items() if tag != 'steps_per_second'}
    assert (tmp_path / name / 'history.jsonl').read_text() == history
    np.testing.assert_array_equal(
      images.load_image(tmp_path / f'{name}.png'), images.load_image(tmp_path / 'full.png')
    )

  # --restart: the checkpoints go, every chunk runs again, and the summaries start over.
  seen = []
  grid(
    'preempted', Workdir(preempted.path, restart=True, image_every=4), lambda c, p: seen.append(p)
  )
  assert len(seen) == 2 * 6
  steps = steps_of(read(preempted.path))
  assert steps.pop('steps_per_second') == expected['steps_per_second']
  assert steps == {tag: s for tag, s in expected.items() if tag != 'steps_per_second'}


def test_only_the_writing_process_writes(tmp_path):
  writer = summaries.open_writer(tmp_path, is_writer=False)
  writer.scalars(1, {'a': 1.0})
  writer.close()
  assert list(tmp_path.iterdir()) == []
  assert isinstance(summaries.open_writer(None), summaries.NullWriter)
