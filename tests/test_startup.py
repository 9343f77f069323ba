"""Tests for nst_jax.lab.startup and nst_jax.lab.versus: the phases of a start, the summary and
table of the start-up suite, and the side-by-side commands."""

import os
import pathlib
import time

import pytest

from nst_jax.lab import startup, versus

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'


@pytest.mark.weights
def test_a_cold_case_times_every_phase_and_fills_the_cache(tmp_path, vgg19_params):
  del vgg19_params
  settings = {
    'config': f'{CONFIGS / "fast.py"}@schedule.num_steps=2',
    'size': 32,
    'mode': 'cold',
    'cache_dir': str(tmp_path / 'cache'),
    'spawned': time.time(),
  }
  case = startup.run_case(settings)
  for clock in ('wall', 'cpu'):
    assert set(case[clock]) == {*startup.PHASES, 'to_first_step'}
    assert all(seconds >= 0 for seconds in case[clock].values())
    parts = sum(case[clock][p] for p in startup.PHASES[:-1])
    assert case[clock]['to_first_step'] == pytest.approx(parts)
  assert len(os.listdir(tmp_path / 'cache')) > 5


def test_summary_takes_medians_per_size_and_mode():
  def case(size, mode, seconds):
    times = {p: seconds for p in (*startup.PHASES, 'to_first_step')}
    return {'size': size, 'mode': mode, 'wall': times, 'cpu': times}

  failed = {'size': 64, 'mode': 'off', 'error': 'x'}
  cases = [*(case(64, 'warm', s) for s in (1.0, 3.0, 2.0)), failed]
  commands = [{'size': 64, 'mode': 'warm', 'seconds': s} for s in (5.0, 4.0)]
  rows = {(r['size'], r['mode']): r for r in startup.summarize(cases, commands)}
  assert rows[64, 'warm']['wall']['compile'] == 2.0 and rows[64, 'warm']['runs'] == 3
  assert rows[64, 'warm']['command_s'] == 4.5
  assert rows[64, 'off']['runs'] == 0 and 'wall' not in rows[64, 'off']
  text = startup.table({'summary': list(rows.values())})
  assert 'every run failed' in text and '2.00 (  2.00)' in text


def test_both_tools_run_the_same_steps_size_and_pair():
  common = dict(content='c.png', style='s.png', size=256, optimizer='adam', output='o.png')
  ours = versus.commands(
    'nst_jax', 50, **common, python='py', stylize_script='stylize.py', config='p.py@seed=1',
    cache_dir='cache',
  )  # fmt: skip
  theirs = versus.commands('pastiche', 50, **common, python='torchpy')
  assert '--config.schedule.num_steps=50' in ours and '--config.schedule.chunk_size=50' in ours
  assert '--config.optim.name=adam' in ours and '--config.seed=1' in ours
  assert '--compile_cache=cache' in ours and '--config.image_size=256' in ours
  assert theirs[:3] == ['torchpy', '-m', 'pastiche']
  for flag, value in (('--num-steps', '50'), ('--optimizer', 'adam'), ('--size', '256')):
    assert theirs[theirs.index(flag) + 1] == value
