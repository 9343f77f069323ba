"""Start-up time of a stylization, cold and warm, split into phases (`scripts/benchmark.py
--suite=startup`).

Each case runs in a fresh Python process, as a command does, and times (wall clock and this
process's CPU time) what comes before the first step and the first step itself:

* imports: from the moment the parent started the process to the package imported (what
  `scripts/stylize.py` imports) and the backend up;
* weights: loading the cached VGG19 weights;
* targets: checking and fitting the inputs, the memory plan, every pair's targets and the start
  state (`engine.prepare`, `Stylization.start_state`): dozens of small compiled programs;
* compile: the optimizer's chunk (`Program.run_chunk`), compiled or loaded from the cache;
* first_step: one step of that chunk, with its closing evaluation.

`to_first_step` is the sum of the first four. The modes: 'off' (no persistent compilation
cache), 'cold' (an empty cache, which the run fills) and 'warm' (the cache the cold run filled).
`command_seconds` times a whole script run the same three ways.
"""

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nst_jax.lab import fresh_process, samples

PHASES = ('imports', 'weights', 'targets', 'compile', 'first_step')
MODES = ('off', 'cold', 'warm')


class _Phases:
  """Wall and CPU seconds of consecutive phases."""

  def __init__(self, wall: float, cpu: float):
    self.wall, self.cpu = {}, {}
    self._last = (time.perf_counter(), time.process_time())
    self.wall['imports'], self.cpu['imports'] = wall, cpu

  def mark(self, name: str) -> None:
    now = (time.perf_counter(), time.process_time())
    self.wall[name], self.cpu[name] = now[0] - self._last[0], now[1] - self._last[1]
    self._last = now


def _image(size: int, seed: int) -> np.ndarray:
  return samples.smooth_image(np.random.default_rng(seed), size)


def run_case(settings: dict[str, Any]) -> dict[str, Any]:
  """One case in this (fresh) process: `settings` has `spawned` (the parent's `time.time()` just
  before starting it), `config` (a config spec, `FILE[@field=value...]`), `size`, `mode` and
  `cache_dir`. Returns the settings with `wall` and `cpu`, `{phase: seconds}`."""
  import jax
  import jax.numpy as jnp

  from nst_jax.app import cli  # noqa: F401  (What scripts/stylize.py imports.)
  from nst_jax.io import caches, weights
  from nst_jax.run import config as config_lib
  from nst_jax.run import engine

  jax.devices()
  phases = _Phases(time.time() - settings['spawned'], time.process_time())
  if settings['mode'] == 'off':
    caches.disable_compilation_cache()
  else:
    caches.enable_compilation_cache(settings['cache_dir'])
  config = config_lib.from_spec(settings['config'])
  config.image_size = settings['size']
  content, style = (_image(settings['size'], seed) for seed in (0, 1))
  phases.mark('start')  # Setting the cache and making the images: not counted.
  network = weights.load_vgg19(
    config.network.weights,
    pooling=config.network.pooling,
    dtype=jnp.dtype(config.network.dtype),
  )
  phases.mark('weights')
  prepared = engine.prepare(content[None], [style], config, network=network)
  state = prepared.start_state(0)
  pair_weights = prepared.pair_weights(0, state)
  jax.block_until_ready((state, pair_weights))
  phases.mark('targets')
  params, one = prepared.params, jnp.int32(1)
  chunk = prepared.program.run_chunk.lower(params, state, pair_weights, one).compile()
  phases.mark('compile')
  jax.block_until_ready(chunk(params, state, pair_weights, one))
  phases.mark('first_step')
  for times in (phases.wall, phases.cpu):
    del times['start']
    times['to_first_step'] = sum(times[p] for p in PHASES[:-1])
  return {**settings, 'wall': phases.wall, 'cpu': phases.cpu}


def command_seconds(command: Sequence[str], mode: str, cache_dir: str) -> float:
  """Wall seconds of `command` (a script run through `nst_jax.app.script.run`) in `mode`."""
  flag = '--compile_cache=off' if mode == 'off' else f'--compile_cache={cache_dir}'
  start = time.perf_counter()
  done = subprocess.run([*command, flag], capture_output=True, text=True)
  seconds = time.perf_counter() - start
  if done.returncode != 0:
    lines = done.stderr.strip().splitlines()
    raise RuntimeError(f'{" ".join(command)} failed: {lines[-1] if lines else done.returncode}')
  return seconds


def measure(
  config: str, sizes: Sequence[int], rounds: int, stylize_script: str | None = None
) -> dict[str, Any]:
  """Every size's cases, `rounds` times, the three modes interleaved in each round (off, cold,
  warm: the warm case uses the folder its round's cold case filled); with `stylize_script`,
  also that script's whole run of one step, the same three ways.

  Returns `{'cases': [...], 'commands': [...], 'summary': [{size, mode, wall: {phase: median},
  cpu: {...}, command_s: median}]}`.
  """
  from nst_jax.io import images

  cases, commands = [], []
  for size in sizes:
    for round_ in range(rounds):
      with tempfile.TemporaryDirectory() as folder:
        for mode in MODES:
          settings = {'config': config, 'size': size, 'mode': mode, 'round': round_}
          settings['cache_dir'] = os.path.join(folder, 'cases')
          settings['spawned'] = time.time()
          cases.append(fresh_process.run_case(__name__, settings))
        if stylize_script is None:
          continue
        paths = [os.path.join(folder, f'{name}.png') for name in ('content', 'style')]
        for path, seed in zip(paths, (0, 1), strict=True):
          images.save_image(path, _image(size, seed))
        file, *overrides = config.split('@')
        command = [sys.executable, stylize_script, f'--content={paths[0]}', f'--style={paths[1]}']
        command += [f'--output={os.path.join(folder, "out.png")}', f'--config={file}']
        command += [f'--config.{o}' for o in overrides]
        command += [f'--config.image_size={size}', '--config.schedule.num_steps=1']
        for mode in MODES:
          seconds = command_seconds(command, mode, os.path.join(folder, 'commands'))
          commands.append({'size': size, 'mode': mode, 'round': round_, 'seconds': seconds})
  return {'cases': cases, 'commands': commands, 'summary': summarize(cases, commands)}


def summarize(cases: list[dict[str, Any]], commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """One row per size and mode: the median of each phase over the rounds, and of the whole
  command's seconds where it was timed."""
  rows = []
  for size in sorted({c['size'] for c in cases}):
    for mode in MODES:
      done = [c for c in cases if c['size'] == size and c['mode'] == mode and 'error' not in c]
      row: dict[str, Any] = {'size': size, 'mode': mode, 'runs': len(done)}
      for clock in ('wall', 'cpu'):
        if done:
          row[clock] = {k: float(np.median([c[clock][k] for c in done])) for k in done[0][clock]}
      runs = [c['seconds'] for c in commands if c['size'] == size and c['mode'] == mode]
      if runs:
        row['command_s'] = float(np.median(runs))
      rows.append(row)
  return rows


def table(results: dict[str, Any]) -> str:
  """The summary as text: one row per size and mode, wall-clock medians (CPU in brackets)."""
  columns = (*PHASES[:-1], 'to_first_step', 'first_step')
  lines = [f'{"size":>5} {"mode":>5} ' + ' '.join(f'{c:>17}' for c in columns) + f' {"command":>8}']
  for row in results['summary']:
    if 'wall' not in row:
      lines.append(f'{row["size"]:>5} {row["mode"]:>5} (every run failed)')
      continue
    cells = [f'{row["wall"][c]:>7.2f} ({row["cpu"][c]:>6.2f})' for c in columns]
    command = f'{row["command_s"]:>8.2f}' if 'command_s' in row else ''
    lines.append(
      f'{row["size"]:>5} {row["mode"]:>5} ' + ' '.join(f'{c:>17}' for c in cells) + f' {command}'
    )
  return '\n'.join(lines)
