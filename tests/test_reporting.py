"""Tests for nst_jax.app.reporting: the progress bar and log lines."""

import io

import numpy as np
import pytest

import nst_jax
from nst_jax.app import reporting
from nst_jax.run.history import Progress


def _progress(scale=0, step=10, num_scales=1, num_steps=100):
  return Progress(
    scale,
    num_scales,
    step,
    num_steps,
    np.array([4.0, 6.0]),
    {'content': np.array([1.0, 3.0]), 'gram': np.array([2e5, 4e5])},
    np.zeros((2, 4, 4, 3), np.float32),
  )


class _Clock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def test_progress_bar_shows_step_losses_and_eta():
  config = nst_jax.default_config()
  config.schedule.num_steps, config.schedule.chunk_size = 100, 10
  stream, clock = io.StringIO(), _Clock()
  reporter = reporting.ProgressReporter(config, stream=stream, bar=True, clock=clock)
  clock.now = 5.0  # Compiling.
  reporter(_progress(step=10))
  assert '10/100' in stream.getvalue() and '--:--' in stream.getvalue()
  clock.now = 7.0  # Then 10 steps in 2 s: 80 steps left take 16 s.
  reporter(_progress(step=20))
  line = stream.getvalue().split('\r')[-1]
  assert line.startswith('[####') and ' 20/100 ' in line
  assert 'loss 5 ' in line and 'content 2 ' in line and 'gram 3e+05' in line
  assert '0:07<0:16' in line
  assert '\n' not in stream.getvalue()
  reporter.close()
  assert stream.getvalue().endswith('\n')


def test_progress_counts_scales_and_batches(caplog):
  config = nst_jax.default_config()
  config.schedule.num_steps, config.schedule.num_scales = 30, 2
  config.schedule.coarse_steps, config.schedule.chunk_size = 20, 10
  reporter = reporting.ProgressReporter(config, 2, stream=io.StringIO(), bar=False)
  reporter.start_batch(1)
  with caplog.at_level('INFO'):
    reporter(_progress(scale=1, step=10, num_scales=2, num_steps=30))
  assert reporter.done == 50 + 20 + 10
  assert 'step 80/100 (scale 2/2, batch 2/2): loss 5' in caplog.text


def test_eta_counts_a_step_by_its_scales_pixels(caplog):
  config = nst_jax.default_config()
  config.image_size, config.schedule.num_scales, config.schedule.scale_ratio = 64, 2, 2.0
  config.schedule.coarse_steps = config.schedule.num_steps = 20
  config.schedule.chunk_size = 10
  clock = _Clock()
  reporter = reporting.ProgressReporter(config, stream=io.StringIO(), bar=False, clock=clock)
  clock.now = 5.0  # Compiling.
  reporter(_progress(scale=0, step=10, num_scales=2, num_steps=20))
  clock.now = 6.0  # 10 steps at 32 px in 1 s: a 64 px step, four times the pixels, takes 0.4 s.
  with caplog.at_level('INFO'):
    reporter(_progress(scale=0, step=20, num_scales=2, num_steps=20))
  assert reporter.eta() == pytest.approx(20 * 0.4)
  assert 'step 20/40 (scale 1/2): loss 5' in caplog.text and 'ETA 0:08' in caplog.text
