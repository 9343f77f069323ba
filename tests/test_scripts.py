"""The scripts end to end, as a user runs them: subprocesses, tiny images, the real weights.

Each run costs a JAX start and a compile (seconds), so one run serves several assertions.
"""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from script_runs import CONFIGS, SCRIPTS, TINY, env_with_devices, error_line, run, size_of

from nst_jax.app import sheets
from nst_jax.core import resample
from nst_jax.io import images


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
  """Contents of two aspect ratios (two batches) and two styles, as files."""
  folder = tmp_path_factory.mktemp('inputs')
  rng = np.random.default_rng(0)
  y, x = np.mgrid[0:1:64j, 0:1:64j]
  square = np.stack([x, y, 0.5 + 0.5 * np.sin(9 * x * y)], -1)
  paths = {
    'square': folder / 'square.png',
    'square2': folder / 'square2.jpg',
    'wide': folder / 'wide.png',
    'dots': folder / 'dots.png',
    'stripes': folder / 'stripes.png',
  }
  images.save_image(paths['square'], square)
  images.save_image(paths['square2'], square[::-1] * 0.8)
  images.save_image(paths['wide'], np.asarray(resample.resize(square, (48, 72))))
  images.save_image(paths['dots'], rng.uniform(size=(48, 48, 3)))
  stripes = np.stack([np.sin(20 * x) ** 2, 0.3 * np.ones_like(x), np.cos(13 * y) ** 2], -1)
  images.save_image(paths['stripes'], stripes[:40])
  return {name: str(path) for name, path in paths.items()}


# Errors: one line, exit code 2, nothing written. These fail before the weights are loaded.


@pytest.mark.parametrize(
  'case, expected',
  [
    ('missing_content', "error: content image '.*missing.jpg': file not found"),
    ('output_over_input', "error: output '.*square.png' would overwrite the input image"),
    ('unwritable_output', "error: output image '.*blocker/out.png': cannot create the output"),
    ('style_weights', 'error: --style_weights has 1 value.*names 2 style image'),
    ('several_contents_one_file', 'error: --output .* names one file but there are 2 content'),
    ('unknown_flag', "error: Unknown command line flag 'bogus'"),
    ('mask_colour', "error: --mask_colors: #123456 matches no pixel of content mask '.*square"),
  ],
)
def test_stylize_errors_are_one_line_and_write_nothing(inputs, tmp_path, case, expected):
  (tmp_path / 'blocker').write_text('a regular file')
  out = tmp_path / 'out' / 'out.png'
  args = {
    'missing_content': ['--content', tmp_path / 'missing.jpg', '--output', out],
    'output_over_input': ['--content', inputs['square'], '--output', inputs['square']],
    'unwritable_output': ['--content', inputs['square'], '--output', tmp_path / 'blocker/out.png'],
    'style_weights': ['--content', inputs['square'], '--output', out, '--style_weights', '1'],
    'several_contents_one_file': [
      '--content',
      f'{inputs["square"]},{inputs["wide"]}',
      '--output',
      out,
    ],
    'unknown_flag': ['--content', inputs['square'], '--output', out, '--bogus'],
    'mask_colour': [
      *('--content', inputs['square'], '--output', out, '--content_mask', inputs['square']),
      *('--mask_colors', '#123456'),
    ],
  }[case]
  style = inputs['dots'] if case != 'style_weights' else f'{inputs["dots"]},{inputs["stripes"]}'
  before = sorted(os.listdir(tmp_path))
  result = run('stylize.py', *args, '--style', style, *TINY, cwd=tmp_path)
  assert result.returncode == 2, result.stderr
  assert re.match(expected, error_line(result)), result.stderr
  assert sorted(os.listdir(tmp_path)) == before  # No output folder, no partial files.
  assert 'Loading VGG19 weights' not in result.stderr  # Checked before the weights.


@pytest.mark.parametrize(
  'overrides, expected',
  [
    (
      ['--config.num_steps=3'],
      'error: --config.num_steps: config.num_steps was renamed: use config.schedule.num_steps',
    ),
    (
      ['--config=CONFIGS/fast.py', '--config.losses.colour=1'],
      "error: --config.losses.colour: the config has no field 'colour'",
    ),
    (
      ['--config.schedule.num_steps=many'],
      'error: flag --config.schedule.num_steps=many: invalid literal',
    ),
    (['--config.optim.name=sgd'], "error: config.optim.name='sgd' is not one of: 'lbfgs', 'adam'"),
    (['--config=CONFIGS/missing.py'], "error: config file '.*missing.py': file not found"),
    (['--config=BROKEN'], r'error: loading the config file: SyntaxError: invalid syntax'),
  ],
)
def test_config_errors(inputs, tmp_path, tmp_path_factory, overrides, expected):
  broken = tmp_path_factory.mktemp('configs') / 'broken.py'
  broken.write_text('def get_config(:\n')
  overrides = [
    o.replace('CONFIGS', str(SCRIPTS.parent / 'configs')).replace('BROKEN', str(broken))
    for o in overrides
  ]
  result = run(
    'stylize.py',
    *('--content', inputs['square'], '--style', inputs['dots'], '--output', tmp_path / 'o.png'),
    *overrides,
    cwd=tmp_path,
  )
  assert result.returncode == 2, result.stderr
  assert re.match(expected, error_line(result)), result.stderr
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
  'case, expected',
  [
    ('folder', "error: content image '.*folder': .*folder"),
    ('text', "error: content image '.*notes.png': not an image"),
    ('truncated', "error: content image '.*truncated.png': .*(truncated|corrupt)"),
    ('empty', "error: content image '.*empty.png': .*empty"),
    ('bomb', "error: content image '.*square.png': .*pixels.*NST_JAX_MAX_IMAGE_PIXELS"),
    ('too_small', 'error: .*too small for layer relu5_1'),
    ('negative_layer_weight', 'error: config.losses.gram: layers has a negative weight'),
    ('zero_steps', 'error: config.schedule.num_steps=0 must be > 0'),
    ('all_zero_terms', 'error: config.losses: every weight is zero'),
    ('devices', 'error: a batch of 1 pairs cannot be split evenly over config.devices.count=3'),
  ],
)
def test_bad_inputs_and_settings_through_the_script(inputs, tmp_path, case, expected):
  """Each is one line and exit code 2, with no traceback and no output written."""
  folder = tmp_path / 'in'
  folder.mkdir()
  (folder / 'folder').mkdir()
  (folder / 'notes.png').write_text('not a picture')
  (folder / 'empty.png').write_bytes(b'')
  data = pathlib.Path(inputs['square']).read_bytes()
  (folder / 'truncated.png').write_bytes(data[: len(data) // 2])
  thin = np.zeros((4, 64, 3))
  images.save_image(folder / 'thin.png', thin)
  content = {
    'folder': folder / 'folder',
    'text': folder / 'notes.png',
    'truncated': folder / 'truncated.png',
    'empty': folder / 'empty.png',
    'too_small': folder / 'thin.png',
  }.get(case, inputs['square'])
  overrides = {
    'too_small': ['--config.image_size=16', '--config.schedule.num_steps=1'],
    'negative_layer_weight': ['--config.losses.gram.layers.relu1_1=-1'],
    'zero_steps': ['--config.schedule.num_steps=0'],
    'all_zero_terms': ['--config.losses.content.weight=0', '--config.losses.gram.weight=0'],
    'devices': ['--config.devices.count=3'],
  }.get(case, [])
  env = dict(os.environ, NST_JAX_MAX_IMAGE_PIXELS='3000') if case == 'bomb' else None
  result = run(
    'stylize.py',
    *('--content', content, '--style', inputs['dots'], '--output', tmp_path / 'out' / 'o.png'),
    *TINY,
    *overrides,
    cwd=tmp_path,
    env=env,
  )
  assert result.returncode == 2, result.stderr
  assert re.match(expected, error_line(result)), result.stderr
  assert sorted(os.listdir(tmp_path)) == ['in']


# Full runs.


@pytest.mark.weights
def test_stylize_batches_intermediates_and_workdir(inputs, tmp_path):
  """Three contents in two batches, a blend of two styles, each content with a strength map."""
  names = ('square', 'wide', 'square2')
  contents = ','.join(inputs[n] for n in names)
  for name, (height, width) in zip(names, [(64, 64), (48, 72), (64, 64)], strict=True):
    ramp = np.broadcast_to(np.linspace(0, 1, width)[None, :, None], (height, width, 3))
    images.save_image(tmp_path / f'{name}_strength.png', ramp)
  result = run(
    'stylize.py',
    *('--content', contents, '--style', f'{inputs["dots"]},{inputs["stripes"]}'),
    *('--style_weights', '0.7,0.3', '--output', 'out/', '--save_every', 2),
    *('--content_mask', ','.join(f'{n}_strength.png' for n in names)),
    *('--workdir', 'wd', *TINY),
    cwd=tmp_path,  # Not the repository: the default config is found next to the script.
  )
  assert result.returncode == 0, result.stderr
  assert 'Traceback' not in result.stderr
  assert 'device(s)' in result.stderr  # The devices are logged.
  assert 'step 2/8' in result.stderr and 'ETA' in result.stderr  # Progress over both batches.
  out = tmp_path / 'out'
  # Same-size contents share a batch; aspect ratios are kept.
  assert size_of(out / 'square.png') == (32, 32)
  assert size_of(out / 'square2.png') == (32, 32)
  assert size_of(out / 'wide.png') == (32, 21)
  # Intermediate images at step 2, not at the last step (that is the output).
  assert sorted(p.name for p in out.glob('*.step*')) == [
    'square.step0002.png',
    'square2.step0002.png',
    'wide.step0002.png',
  ]
  config = json.loads((tmp_path / 'wd' / 'config.json').read_text())
  assert config['image_size'] == 32 and config['optim']['name'] == 'adam'
  lines = [
    json.loads(line) for line in (tmp_path / 'wd' / 'history.jsonl').read_text().splitlines()
  ]
  assert len(lines) == 2 * 2  # Two batches, terms at the ends of the chunks: steps 2 and 4.
  assert [(line['batch'], line['step']) for line in lines] == [
    (b, s) for b in (0, 1) for s in (2, 4)
  ]
  assert lines[0]['pairs'] == ['square', 'square2'] and lines[3]['pairs'] == ['wide']
  for line in lines:
    assert set(line) == {'batch', 'pairs', 'step', 'scale', 'total', 'terms', 'evaluations'}
    assert set(line['terms']) == {'content', 'gram'}
    assert len(line['total']) == len(line['pairs']) == len(line['terms']['gram'])
  assert lines[1]['terms']['gram'][0] < lines[0]['terms']['gram'][0]  # It optimises.
  assert size_of(tmp_path / 'wd' / 'loss.png') == (800, 480)
  run_info = json.loads((tmp_path / 'wd' / 'run.json').read_text())
  assert run_info['status'] == 'done' and run_info['style_weights'] == [0.7, 0.3]
  assert len(run_info['content_masks']) == 3 and run_info['mask_colors'] == []
  assert size_of(tmp_path / 'wd' / 'regions' / 'wide.png')[0] > 3 * 32  # Three panels.


@pytest.mark.weights
def test_style_grid(inputs, tmp_path):
  result = run(
    'style_grid.py',
    *('--contents', f'{inputs["square"]},{inputs["wide"]}'),
    *('--styles', f'{inputs["dots"]},{inputs["stripes"]}'),
    *('--output', tmp_path / 'grids' / 'grid.png', '--gutter', 4),
    *[a.replace('num_steps=4', 'num_steps=2') for a in TINY],
    cwd=tmp_path,
  )
  assert result.returncode == 0, result.stderr
  sheet = images.load_image(tmp_path / 'grids' / 'grid.png')
  cell, gutter = 32, 4  # The largest result is 32x32.
  assert sheet.shape == (gutter + 3 * (cell + gutter), gutter + 3 * (cell + gutter), 3)

  def at(row, column):
    top, left = gutter + row * (cell + gutter), gutter + column * (cell + gutter)
    return sheet[top : top + cell, left : left + cell]

  assert at(0, 0).min() == 1.0  # Blank corner, white gutters.
  assert sheet[:gutter].min() == 1.0 and sheet[:, :gutter].min() == 1.0
  for column, style in ((1, 'dots'), (2, 'stripes')):  # Styles head the columns.
    header = sheets.fit_and_pad(images.load_image(inputs[style]), (cell, cell))
    np.testing.assert_allclose(at(0, column), header, atol=0.02)
  for row, content in ((1, 'square'), (2, 'wide')):
    header = sheets.fit_and_pad(images.load_image(inputs[content]), (cell, cell))
    np.testing.assert_allclose(at(row, 0), header, atol=0.02)
    for column, style in ((1, 'dots'), (2, 'stripes')):
      path = tmp_path / 'grids' / 'grid_cells' / f'{content}__{style}.png'
      assert size_of(path) == ((32, 32) if content == 'square' else (32, 21))
      expected = sheets.fit_and_pad(images.load_image(path), (cell, cell))
      np.testing.assert_allclose(at(row, column), expected, atol=1e-6)
  # The wide result is padded, not stretched: white above and below it.
  assert at(2, 1)[:5].min() == 1.0 and at(2, 1)[-5:].min() == 1.0


@pytest.mark.slow
def test_compare_methods_sheet_scores_and_batches(inputs, tmp_path):
  """Two contents, one style, three methods at 32 px for 2 steps: Gram and sliced share a batch
  per content, nearest neighbours runs alone; one sheet, every cell, times and scores."""
  out = tmp_path / 'compare'
  result = run(
    'compare_methods.py',
    *('--contents', f'{inputs["square"]},{inputs["square2"]}'),
    *('--styles', inputs['stripes'], '--output_dir', out, '--size', 32, '--steps', 2),
    *('--methods', 'gram,sliced,nearest_neighbor', '--sheet_format', 'png'),
    *('--overrides', 'schedule.num_scales=1,schedule.chunk_size=2'),
    cwd=tmp_path,
  )
  assert result.returncode == 0, result.stderr
  records = json.loads((out / 'results.json').read_text())
  assert [(r['content'], r['method']) for r in records] == [
    (c, m) for c in ('square', 'square2') for m in ('gram', 'sliced', 'nearest_neighbor')
  ]
  for r in records:
    assert r['batch'] == (
      ['gram', 'sliced'] if r['method'] != 'nearest_neighbor' else [r['method']]
    )
    assert r['seconds'] > 0 and set(r['scores']) == {'content', 'gram', 'gaussian'}
    assert all(np.isfinite(v) and v >= 0 for v in r['scores'].values())
    assert size_of(out / r['image']) == (32, 32)
  sheet = images.load_image(out / 'stripes.png')
  assert sheet.shape[1] == 8 + 4 * (32 + 8)  # Content column and three methods.
  table = (out / 'scores.md').read_text()
  assert all(f'| {m} |' in table for m in ('gram', 'sliced', 'nearest_neighbor'))
  bad = run(
    'compare_methods.py',
    '--contents',
    inputs['square'],
    '--styles',
    inputs['stripes'],
    '--output_dir',
    out,
    '--methods',
    'gram,strotss',
    cwd=tmp_path,
  )
  assert bad.returncode == 2 and 'strotss' in error_line(bad)


@pytest.mark.weights
def test_ctrl_c_saves_the_image_and_the_run_resumes_from_it(inputs, tmp_path):
  args = ['--content', inputs['square'], '--style', inputs['dots'], '--output', 'out/a.png']
  process = subprocess.Popen(
    [
      sys.executable,
      str(SCRIPTS / 'stylize.py'),
      *args,
      *TINY,
      '--config.schedule.num_steps=100000',
      *('--workdir', 'run', '--checkpoint_every=-1'),
    ],
    cwd=tmp_path,
    stderr=subprocess.PIPE,
    text=True,
    # A shell's background job starts with SIGINT ignored, and Python then installs no Ctrl-C
    # handler: give the child the default, whoever launched the tests.
    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
  )
  stderr = []
  deadline = time.monotonic() + 240
  for line in process.stderr:
    stderr.append(line)
    if 'step 2/' in line or time.monotonic() > deadline:
      break
  process.send_signal(signal.SIGINT)
  try:
    stderr.append(process.communicate(timeout=60)[1])
  except subprocess.TimeoutExpired:
    process.kill()
    raise
  assert process.returncode == 130, ''.join(stderr)
  stderr = ''.join(stderr)
  assert 'Traceback' not in stderr
  saved = tmp_path / 'out' / 'a.interrupted.png'
  assert size_of(saved) == (32, 32)
  assert not (tmp_path / 'out' / 'a.png').exists()
  message = next(line for line in stderr.splitlines() if line.startswith('interrupted:'))
  assert f'--init_image {pathlib.Path("out/a.interrupted.png")}' in message, message
  # The workdir keeps the record of the steps run: history, plot and an honest run.json.
  record = json.loads((tmp_path / 'run' / 'run.json').read_text())
  assert record['status'] == 'interrupted'
  [batch] = record['batches']
  [[steps]] = batch['steps']
  assert steps >= 2 and batch['seconds'] > 0
  history = (tmp_path / 'run' / 'history.jsonl').read_text().splitlines()
  assert json.loads(history[-1])['step'] == steps
  assert size_of(tmp_path / 'run' / 'loss.png')[0] > 0

  resumed = run('stylize.py', *args, '--init_image', 'out/a.interrupted.png', *TINY, cwd=tmp_path)
  assert resumed.returncode == 0, resumed.stderr
  assert size_of(tmp_path / 'out' / 'a.png') == (32, 32)


@pytest.mark.weights
@pytest.mark.slow
def test_two_processes_share_the_batch_and_process_0_writes(inputs, tmp_path):
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    address = f'127.0.0.1:{s.getsockname()[1]}'
  env = env_with_devices(1)
  contents = ','.join(inputs[n] for n in ('square', 'wide', 'square2'))
  workers = [
    subprocess.Popen(
      [
        sys.executable,
        str(SCRIPTS / 'stylize.py'),
        *('--content', contents, '--style', inputs['dots'], '--output', 'out/'),
        *('--workdir', 'wd', *TINY, '--config.schedule.num_steps=2'),
        *('--coordinator_address', address, '--num_processes', '2', '--process_id', str(i)),
      ],
      cwd=tmp_path,
      env=env,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  errors = [w.communicate(timeout=600)[1] for w in workers]
  for worker, err in zip(workers, errors, strict=True):
    assert worker.returncode == 0, err[-3000:]
  assert 'process 1 of 2' in errors[1]
  assert sorted(os.listdir(tmp_path / 'out')) == ['square.png', 'square2.png', 'wide.png']
  assert 'Wrote' not in errors[1]  # Only process 0 writes.
  lines = (tmp_path / 'wd' / 'history.jsonl').read_text().splitlines()
  # The one-pair batch ran on both processes (one duplicate), but the history has one pair.
  assert [len(json.loads(line)['total']) for line in lines] == [2, 1]


@pytest.mark.weights
def test_the_hires_preset_and_the_memory_error_from_the_script(inputs, tmp_path):
  """configs/hires.py, shrunk, with forced tiles; and a size that cannot fit: one line, exit 2."""
  common = ['--content', inputs['square'], '--style', inputs['dots']]
  small = [
    '--config.image_size=128',
    '--config.schedule.num_scales=2',  # Of its 4: each scale compiles its own programs.
    '--config.schedule.coarse_steps=2',
    '--config.schedule.num_steps=2',
    '--config.schedule.chunk_size=2',
    '--config.memory.tile_size=64',
    '--config.memory.tile_margin=16',
  ]
  result = run(
    'stylize.py',
    *common,
    '--output',
    'hires.png',
    '--config',
    CONFIGS / 'hires.py',
    *small,
    cwd=tmp_path,
  )
  assert result.returncode == 0, result.stderr
  assert size_of(tmp_path / 'hires.png') == (128, 128)
  assert 'tiles of 64 px' in result.stderr  # The memory plan says what it chose.
  too_big = run(
    'stylize.py',
    *common,
    '--output',
    'big.png',
    *TINY,
    '--config.memory.budget_gb=0.001',
    cwd=tmp_path,
  )
  assert too_big.returncode == 2, too_big.stderr
  assert re.match(r'error: .*needs about .* GB is available', error_line(too_big)), too_big.stderr
  assert not (tmp_path / 'big.png').exists()
