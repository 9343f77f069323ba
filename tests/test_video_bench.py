"""Tests for nst_jax.lab.video_bench: the known-motion pans and the figures computed on them."""

import pathlib

import numpy as np
import pytest

from nst_jax.lab import video_bench

pytest.importorskip('skimage')
VIDEO_CONFIG = pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'video.py'


def test_a_pan_moves_by_its_shift_so_its_own_warp_error_is_zero():
  frames = video_bench.pan('astronaut', 24, 3, (3, 2))
  assert frames.shape == (3, 24, 24, 3) and 0 <= frames.min() and frames.max() <= 1
  np.testing.assert_array_equal(frames[1, :-2, :-3], frames[0, 2:, 3:])
  assert video_bench.pan_warp_error(frames, (3, 2)) == 0.0
  # The same frames taken as moving the other way are not consistent.
  assert video_bench.pan_warp_error(frames, (0, 0)) > 1.0


def test_the_occlusion_clip_hides_and_shows_its_background_again():
  frames, covered = video_bench.occlusion('chelsea', 32, 6, 2, 4)
  assert frames.shape == (6, 32, 32, 3) and covered[:, :, 2:6].all(axis=(1, 2))[0]
  both = ~covered[0] & ~covered[5]
  np.testing.assert_array_equal(frames[0][both], frames[5][both])  # A still background.
  assert video_bench.still_warp_error(frames, covered) == 0.0
  assert video_bench.reappearance_error(frames, covered, 4) == 0.0
  # Column 7 is behind the bar in frames 1 and 2 and in view in frames 0 and 4: changed in
  # frame 4, it counts in the reappearance error against frame 0.
  assert covered[1:3, :, 7].all() and not covered[[0, 4], :, 7].any()
  changed = frames.copy()
  changed[4, :, 7] = 1.0 - changed[4, :, 7]
  assert video_bench.reappearance_error(changed, covered, 4) > 1.0


def test_ratios_are_against_the_independent_mode():
  rows = {
    'independent': {'warp_error': 20.0, 'gram': [1.0, 3.0, 2.0], 'content': [4.0]},
    'sequential': {'warp_error': 5.0, 'gram': [2.0, 2.5, 3.0], 'content': [2.0]},
  }
  video_bench.add_ratios(rows)
  assert rows['sequential']['warp_error_ratio'] == 0.25
  assert rows['sequential']['gram_ratio'] == 1.25
  assert rows['sequential']['content_ratio'] == 0.5
  assert rows['independent']['warp_error_ratio'] == 1.0
  rows['sequential']['reappearance_error'] = 1.0  # Every '*_error' the base has gets a ratio.
  rows['independent']['reappearance_error'] = 4.0
  assert video_bench.add_ratios(rows)['sequential']['reappearance_error_ratio'] == 0.25
  alone = {'multipass': {'warp_error': 1.0}}
  assert video_bench.add_ratios(alone) == {'multipass': {'warp_error': 1.0}}


def test_a_mode_spec_sets_the_mode_and_its_overrides_over_the_base():
  config = video_bench.mode_config(
    f'{VIDEO_CONFIG}@schedule.num_steps=7', 'multipass@losses.temporal.weight=100'
  )
  assert config.video.mode == 'multipass'
  assert config.schedule.num_steps == 7 and config.losses.temporal.weight == 100


def test_flow_errors_compare_each_presets_own_scale_with_full_resolution():
  """On a 64 px pan under a clear sky, 'medium' refined to full resolution errs less than at its
  own half resolution; both are endpoint errors in pixels against the exact flow."""
  errors = video_bench.flow_errors('rocket', 64, 3, (3, 2), ['medium'])
  assert set(errors) == {'medium'} and set(errors['medium']) == {'own', 'full'}
  assert 0 < errors['medium']['full'] < 0.5 * errors['medium']['own'] < 1.0, errors
