"""Tests for nst_jax.cli (the scripts' logic) and nst_jax.samples, in process and without compiling.

The scripts themselves run end to end in tests/test_scripts.py.
"""

import io
import json
import os
import pathlib

import ml_collections
import numpy as np
import pytest
from PIL import Image

import nst_jax
from nst_jax import cli, engine, grid, images, records, reporting, samples
from nst_jax.errors import ConfigError, ImageError, NonFiniteLossError, StylizeInterrupted


def _write(path, height, width, seed=0):
  rng = np.random.default_rng(seed)
  images.save_image(path, rng.uniform(size=(height, width, 3)).astype(np.float32))
  return str(path)


# Exit codes and messages.


@pytest.mark.parametrize(
  'exc, code, prefix',
  [
    (ConfigError('bad\nthing'), 2, 'error: bad thing'),
    (ImageError("content image 'x.jpg': file not found"), 2, "error: content image 'x.jpg'"),
    (NonFiniteLossError('loss went NaN'), 1, 'error: loss went NaN'),
    (cli.Interrupted('saved x'), 130, 'interrupted: saved x'),
    (KeyboardInterrupt(), 130, 'interrupted: '),
  ],
)
def test_exit_codes_and_one_line_messages(exc, code, prefix, capsys):
  def main(argv):
    raise exc

  with pytest.raises(SystemExit) as info:
    cli._call_main(main, ['prog'])
  assert info.value.code == code
  err = capsys.readouterr().err
  assert err.startswith(prefix) and err.count('\n') == 1, err


def test_other_exceptions_are_bugs_and_propagate():
  def main(argv):
    raise RuntimeError('a bug')

  with pytest.raises(RuntimeError):
    cli._call_main(main, ['prog'])


def test_unknown_field_message_names_the_override_and_suggests():
  exc = AttributeError('\'num_step\'\nDid you mean "num_steps" instead of "num_step"?')
  argv = ['prog', '--config=c.py', '--config.num_step=3']
  assert cli._unknown_field_message(exc, argv) == (
    "--config.num_step: the config has no field 'num_step' (did you mean 'num_steps'?)"
  )
  nested = AttributeError('"\'zz\'"')
  message = cli._unknown_field_message(nested, ['prog', '--config.terms.zz=1'])
  assert message == "--config.terms.zz: the config has no field 'zz'"


def test_config_file_errors_are_one_line():
  text = (
    'flag --config=c.py:x: Error whilst parsing config file:\n\nTraceback (most recent call '
    'last):\n  File "c.py", line 3\nTypeError: get_config() takes 0 positional arguments\n'
  )
  message = cli._flag_error_message(text)
  assert '\n' not in message and message.endswith(
    'TypeError: get_config() takes 0 positional arguments'
  )
  assert (
    cli._flag_error_message('flag --output=None: Flag --output must have a value other than None.')
    == '--output is required'
  )


def test_check_config_fields():
  config = nst_jax.default_config()
  cli.check_config_fields(config)
  extra = nst_jax.default_config()
  extra.num_step = 3
  with pytest.raises(ConfigError, match='unknown field.*num_step'):
    cli.check_config_fields(extra, 'c.py')
  partial = ml_collections.ConfigDict({'image_size': 64})
  with pytest.raises(ConfigError, match='lacks field.*default_config'):
    cli.check_config_fields(partial, 'c.py')


def test_positional_arguments_are_refused():
  cli.check_no_arguments(['prog'])
  with pytest.raises(ConfigError, match="unexpected argument.*'out.png'"):
    cli.check_no_arguments(['prog', 'out.png'])


# Inputs and outputs.


def test_output_paths(tmp_path):
  contents = ['in/a.jpg', 'other/b.png']
  assert cli.output_paths(str(tmp_path / 'out.png'), ['a.jpg']) == [tmp_path / 'out.png']
  assert cli.output_paths('res/', contents) == [
    pathlib.Path('res/a.png'),
    pathlib.Path('res/b.png'),
  ]
  assert cli.output_paths('res', contents)[1] == pathlib.Path('res/b.png')
  assert cli.output_paths(str(tmp_path), contents)[0] == tmp_path / 'a.png'  # Existing folder.
  assert cli.output_paths('o/{content}_{index}.jpg', contents) == [
    pathlib.Path('o/a_0.jpg'),
    pathlib.Path('o/b_1.jpg'),
  ]
  with pytest.raises(
    ConfigError, match="names one file but there are 2 content images.*'o/{content}.png'"
  ):
    cli.output_paths('o/out.png', contents)
  with pytest.raises(ConfigError, match="'x/a.jpg' and 'y/a.png' would both be written"):
    cli.output_paths('res/', ['x/a.jpg', 'y/a.png'])
  with pytest.raises(ConfigError, match='bad pattern'):
    cli.output_paths('o/{name}.png', contents)


def test_content_paths_and_dir(tmp_path):
  for name in ('b.png', 'a.jpg', 'notes.txt'):
    (tmp_path / name).write_bytes(b'x')
  assert cli.content_paths(['c.png'], str(tmp_path)) == [
    'c.png',
    str(tmp_path / 'a.jpg'),
    str(tmp_path / 'b.png'),
  ]
  with pytest.raises(ConfigError, match='no content image'):
    cli.content_paths([], None)
  with pytest.raises(ImageError, match='folder not found'):
    cli.content_paths([], str(tmp_path / 'missing'))
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(ImageError, match='no image files'):
    cli.content_paths([], str(empty))


def test_parse_style_weights():
  assert cli.parse_style_weights(None, 2) is None
  np.testing.assert_allclose(cli.parse_style_weights(['0.7', '0.3'], 2), [0.7, 0.3])
  with pytest.raises(ConfigError, match='has 1 value.*names 2 style'):
    cli.parse_style_weights(['1'], 2)
  with pytest.raises(ConfigError, match="'x' is not a number"):
    cli.parse_style_weights(['x'], 1)
  with pytest.raises(ConfigError, match='not all zero'):
    cli.parse_style_weights(['0', '0'], 2)
  with pytest.raises(ConfigError, match='>= 0'):
    cli.parse_style_weights(['-1', '2'], 2)


def test_check_not_inputs_resolves_paths_and_links(tmp_path):
  source = _write(tmp_path / 'a.png', 8, 8)
  link = tmp_path / 'link.png'
  os.symlink(source, link)
  os.link(source, tmp_path / 'hard.png')
  cli.check_not_inputs([tmp_path / 'out.png'], [source])
  for output in (source, str(tmp_path / '.' / 'a.png'), link, tmp_path / 'hard.png'):
    with pytest.raises(ConfigError, match='would overwrite the input image'):
      cli.check_not_inputs([output], [source])


def test_check_folder_writable(tmp_path):
  cli.check_folder_writable(tmp_path / 'new' / 'deeper', '--workdir')
  (tmp_path / 'file').write_text('x')
  with pytest.raises(ConfigError, match='is a file, not a folder'):
    cli.check_folder_writable(tmp_path / 'file', '--workdir')
  with pytest.raises(ConfigError, match='cannot create it'):
    cli.check_folder_writable(tmp_path / 'file' / 'sub', '--workdir')


def test_image_shape_matches_loading(tmp_path):
  for height, width in ((40, 60), (61, 17), (32, 32)):
    path = _write(tmp_path / f'{height}x{width}.png', height, width)
    loaded = images.load_image(path, max_side=32)
    assert cli.image_shape(path, 'content image', 32) == loaded.shape[:2]
  # EXIF rotation swaps the sides.
  rotated = tmp_path / 'rotated.jpg'
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.new('RGB', (60, 40)).save(rotated, exif=exif)
  assert cli.image_shape(str(rotated), 'c', 30) == images.load_image(rotated, max_side=30).shape[:2]
  with pytest.raises(ImageError, match="content image '.*missing.png': file not found"):
    cli.image_shape(str(tmp_path / 'missing.png'), 'content image', 32)


def test_group_by_size_keeps_order_and_limits_batches():
  shapes = [(32, 32), (21, 32), (32, 32), (21, 32), (32, 32)]
  assert cli.group_by_size(shapes) == [((32, 32), [0, 2, 4]), ((21, 32), [1, 3])]
  assert cli.group_by_size(shapes, batch_size=2) == [
    ((32, 32), [0, 2]),
    ((32, 32), [4]),
    ((21, 32), [1, 3]),
  ]


def test_save_points_round_to_chunks():
  config = nst_jax.default_config()
  config.update(num_steps=100, chunk_size=30)
  # Chunk boundaries 30, 60, 90, 100: the first at or after each multiple of 50, not the end.
  assert cli.save_points(config, 50) == [60]
  assert cli.save_points(config, 30) == [30, 60, 90]
  assert cli.save_points(config, 0) == []
  config.update(num_scales=2, coarse_steps=40, num_steps=40, chunk_size=20)
  assert cli.save_points(config, 20) == [20, 40, 60]  # Counted over both scales.


@pytest.mark.parametrize('num_pairs, processes', [(1, 1), (5, 1), (5, 2), (4, 4), (2, 4), (7, 3)])
def test_process_share_covers_the_batch_in_order(num_pairs, processes):
  shares = [cli.process_share(num_pairs, cli.Distributed(p, processes)) for p in range(processes)]
  real = [i for rows, duplicate in shares if not duplicate for i in rows]
  assert real == list(range(num_pairs))
  # Duplicates (processes without pairs) come after every real pair, so results[:B] are real.
  flags = [duplicate for _, duplicate in shares]
  assert flags == sorted(flags)
  assert all(len(rows) >= 1 for rows, _ in shares)


def test_cluster_detection():
  assert not cli.cluster_detected({})
  assert not cli.cluster_detected({'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '1'})
  assert cli.cluster_detected({'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '4'})
  # In an sbatch script (one process), the step has one task even if the job has several.
  assert not cli.cluster_detected(
    {'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '4', 'SLURM_STEP_NUM_TASKS': '1'}
  )
  assert cli.cluster_detected({'OMPI_COMM_WORLD_SIZE': '2'})


def test_nomultihost_with_addresses_is_refused():
  with pytest.raises(ConfigError, match='contradicts'):
    cli.setup_devices(multihost=False, num_processes=2)


# Progress.


def _progress(scale=0, step=10, num_scales=1, num_steps=100):
  return engine.Progress(
    scale,
    num_scales,
    step,
    num_steps,
    np.array([4.0, 6.0]),
    {'content': np.array([1.0, 3.0]), 'style': np.array([2e5, 4e5])},
    np.zeros((2, 4, 4, 3), np.float32),
  )


class _Clock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def test_progress_bar_shows_step_losses_and_eta():
  config = nst_jax.default_config()
  config.update(num_steps=100, chunk_size=10)
  stream, clock = io.StringIO(), _Clock()
  reporter = reporting.ProgressReporter(config, stream=stream, bar=True, clock=clock)
  clock.now = 5.0  # Compiling.
  reporter(_progress(step=10))
  assert '10/100' in stream.getvalue() and '--:--' in stream.getvalue()
  clock.now = 7.0  # Then 10 steps in 2 s: 80 steps left take 16 s.
  reporter(_progress(step=20))
  line = stream.getvalue().split('\r')[-1]
  assert line.startswith('[####') and ' 20/100 ' in line
  assert 'loss 5 ' in line and 'content 2 ' in line and 'style 3e+05' in line
  assert '0:07<0:16' in line
  assert '\n' not in stream.getvalue()
  reporter.close()
  assert stream.getvalue().endswith('\n')


def test_progress_counts_scales_and_batches(caplog):
  config = nst_jax.default_config()
  config.update(num_steps=30, num_scales=2, coarse_steps=20, chunk_size=10)
  reporter = reporting.ProgressReporter(config, 2, stream=io.StringIO(), bar=False)
  reporter.start_batch(1)
  with caplog.at_level('INFO'):
    reporter(_progress(scale=1, step=10, num_scales=2, num_steps=30))
  assert reporter.done == 50 + 20 + 10
  assert 'step 80/100 (scale 2/2, batch 2/2): loss 5' in caplog.text


# History, plot and workdir.


def _history():
  return engine.History(
    total=np.array([[9.0, 8.0], [7.0, 6.0], [5.0, 4.0], [3.0, 2.0]]),
    scale=np.array([0, 0, 1, 1]),
    term_steps=np.array([2, 4]),
    terms={'content': np.array([[1.0, 2.0], [3.0, 4.0]]), 'style': np.ones((2, 2))},
    term_totals=np.array([[12.0, 14.0], [16.0, 18.0]]),
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
  }


def test_plot_losses_draws_curves_and_skips_nonpositive():
  curves = {
    'total': (np.arange(50), np.geomspace(1e6, 1e3, 50)),
    'content': (np.array([0, 10, 20]), np.array([0.0, 5.0, np.nan])),
  }
  image = records.plot_losses(curves, title='t', markers=[25], size=(640, 400))
  assert image.size == (640, 400)
  pixels = np.asarray(image)
  blue = np.all(pixels == records._COLOURS[0], axis=-1)
  red = np.all(pixels == records._COLOURS[1], axis=-1)
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
  lines = (tmp_path / 'wd' / 'history.jsonl').read_text().splitlines()
  assert len(lines) == 2 and all(json.loads(line)['pairs'] == ['a', 'b'] for line in lines)
  with Image.open(tmp_path / 'wd' / 'loss.png') as plot:
    assert plot.format == 'PNG'
  # Without a history (interrupted before any batch finished): config and run record only.
  records.write_workdir(tmp_path / 'wd2', config, [records.BatchRecord(['a'], (32, 32))], {})
  assert sorted(os.listdir(tmp_path / 'wd2')) == ['config.json', 'run.json']


# Grids.


def test_fit_and_pad_never_distorts():
  image = np.zeros((20, 40, 3), np.float32)
  out = grid.fit_and_pad(image, (30, 30))
  assert out.shape == (30, 30, 3)
  dark = out.mean(axis=-1) < 0.5
  rows, columns = np.nonzero(dark)
  assert columns.min() == 0 and columns.max() == 29
  assert rows.max() - rows.min() + 1 == 15  # 20x40 scaled by 0.75, centred on white.
  assert out[0].min() == 1.0 and out[-1].min() == 1.0


def test_compose_grid_layout():
  cell, gutter = (10, 12), 2
  red, green, blue = (np.zeros((10, 12, 3), np.float32) for _ in range(3))
  red[..., 0] = green[..., 1] = blue[..., 2] = 1.0
  results = [[red, None], [green, blue]]
  sheet = grid.compose_grid(results, [red, green], [blue, blue], cell, gutter)
  assert sheet.shape == (gutter + 3 * (10 + gutter), gutter + 3 * (12 + gutter), 3)

  def at(row, column):
    top, left = gutter + row * (10 + gutter), gutter + column * (12 + gutter)
    return sheet[top : top + 10, left : left + 12]

  assert at(0, 0).min() == 1.0  # Blank corner.
  np.testing.assert_array_equal(at(0, 1), blue)  # Style headers.
  np.testing.assert_array_equal(at(2, 0), green)  # Content headers.
  np.testing.assert_array_equal(at(1, 1), red)
  assert at(1, 2).min() == 1.0  # A missing cell stays blank.
  np.testing.assert_array_equal(at(2, 2), blue)
  assert sheet[:gutter].min() == 1.0 and sheet[:, :gutter].min() == 1.0  # White gutters.


def test_grid_cell_names_must_not_collide():
  paths = cli.grid_cell_paths('out/grid.png', ['a/x.jpg', 'b.png'], ['s.jpg'])
  assert paths == [
    [pathlib.Path('out/grid_cells/x__s.png')],
    [pathlib.Path('out/grid_cells/b__s.png')],
  ]
  with pytest.raises(ConfigError, match='same name'):
    cli.grid_cell_paths('grid.png', ['a/x.jpg', 'b/x.png'], ['s.jpg'])


# The commands with a stand-in engine: what is written when a run is interrupted or fails.


@pytest.fixture
def small_inputs(tmp_path, monkeypatch):
  monkeypatch.setattr(cli.weights, 'load_vgg19', lambda *args, **kwargs: None)
  contents = [_write(tmp_path / f'c{i}.png', 20, 30, seed=i) for i in range(2)]
  style = _write(tmp_path / 'style.png', 24, 24, seed=9)
  config = nst_jax.default_config()
  config.update(image_size=24, num_steps=4, chunk_size=2)
  return contents, style, config


def test_interrupt_saves_current_images_and_says_how_to_resume(small_inputs, tmp_path, monkeypatch):
  contents, style, config = small_inputs

  def interrupted(contents_, styles, config_, **kwargs):
    raise StylizeInterrupted(np.full((len(contents_), 16, 24, 3), 0.5, np.float32), 0, 2)

  monkeypatch.setattr(engine, 'stylize', interrupted)
  with pytest.raises(cli.Interrupted) as info:
    cli.stylize_files(
      config,
      contents=contents,
      styles=[style],
      output=str(tmp_path / 'out/'),
      workdir=str(tmp_path / 'wd'),
    )
  saved = [tmp_path / 'out' / f'c{i}.interrupted.png' for i in range(2)]
  assert all(p.exists() for p in saved)
  message = str(info.value)
  assert f'--init_image {saved[0]},{saved[1]}' in message and 'at step 2 of 4' in message
  assert json.loads((tmp_path / 'wd' / 'run.json').read_text())['status'] == 'interrupted'
  assert not (tmp_path / 'out' / 'c0.png').exists()


def test_non_finite_saves_last_finite_images(small_inputs, tmp_path, monkeypatch):
  contents, style, config = small_inputs

  def failing(contents_, styles, config_, **kwargs):
    images_ = np.full((len(contents_), 16, 24, 3), 0.25, np.float32)
    raise NonFiniteLossError("loss term 'style' became non-finite", images=images_)

  monkeypatch.setattr(engine, 'stylize', failing)
  with pytest.raises(NonFiniteLossError, match='saved to .*last_finite.png'):
    cli.style_grid_files(config, contents=contents, styles=[style], output=str(tmp_path / 'g.png'))
  with Image.open(tmp_path / 'g.last_finite.png') as grid:
    assert grid.size == (8 + 2 * (24 + 8), 8 + 3 * (16 + 8))
  assert not (tmp_path / 'g.png').exists()


# Samples.


def test_samples_are_deterministic_colourful_and_distinct(tmp_path):
  paths = samples.write_samples(tmp_path / 'a', size=128)
  assert set(paths) == {'astronaut', 'coffee', 'chelsea', 'swirls', 'mosaic', 'waves', 'ihc'}
  again = samples.write_samples(tmp_path / 'b', size=128)
  styles = {}
  for name in ('swirls', 'mosaic', 'waves'):
    assert pathlib.Path(paths[name]).read_bytes() == pathlib.Path(again[name]).read_bytes()
    image = images.load_image(paths[name])
    assert image.shape == (128, 128, 3)
    saturation = image.max(axis=-1) - image.min(axis=-1)
    assert saturation.mean() > 0.2, name  # Colourful, not grey.
    texture = np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean()
    assert texture > 0.02, name  # Textured, not flat.
    styles[name] = image
  names = list(styles)
  for i, a in enumerate(names):
    for b in names[i + 1 :]:
      assert np.abs(styles[a] - styles[b]).mean() > 0.1, (a, b)
  assert images.load_image(paths['astronaut']).shape == (512, 512, 3)
  other = samples.swirls(64, seed=1)
  assert np.abs(other - samples.swirls(64, seed=0)).mean() > 0.05
