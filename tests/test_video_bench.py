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
  alone = {'multipass': {'warp_error': 1.0}}
  assert video_bench.add_ratios(alone) == {'multipass': {'warp_error': 1.0}}


def test_a_mode_spec_sets_the_mode_and_its_overrides_over_the_base():
  config = video_bench.mode_config(
    f'{VIDEO_CONFIG}@schedule.num_steps=7', 'multipass@losses.temporal.weight=100'
  )
  assert config.video.mode == 'multipass'
  assert config.schedule.num_steps == 7 and config.losses.temporal.weight == 100
