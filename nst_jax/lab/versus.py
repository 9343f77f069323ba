"""Step time against pastiche 1.6, measured as a user sees it: whole processes, side by side.

Each tool runs the same pair with the same objective (pastiche's: content relu4_2, Gram style on
relu1_1..relu5_1) for a short and a long number of steps; a step costs (long - short) / (the
steps between), so that start-up, targets and saving cancel. The runs are interleaved (ours
short, pastiche short, ours long, pastiche long, then again) so that each round's four see the
same load, and both the best of each (the least disturbed by other processes) and the median of
the rounds are reported. nst_jax runs `scripts/stylize.py` with a warm compilation cache (so
compilation cannot leak into the difference); pastiche runs its own command-line tool in its
own environment (`python -m pastiche`, torch is not a dependency of nst_jax).
"""

import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np


def _seconds(command: Sequence[str]) -> float:
  start = time.perf_counter()
  done = subprocess.run(list(command), capture_output=True, text=True)
  seconds = time.perf_counter() - start
  if done.returncode != 0:
    lines = (done.stderr or done.stdout).strip().splitlines()
    raise RuntimeError(f'{command[0]} ... failed: {lines[-1] if lines else done.returncode}')
  return seconds


def commands(
  tool: str,
  steps: int,
  *,
  content: str,
  style: str,
  size: int,
  optimizer: str,
  output: str,
  stylize_script: str = '',
  config: str = '',
  python: str = '',
  cache_dir: str = '',
) -> list[str]:
  """The command line of `tool` ('nst_jax' or 'pastiche') for `steps` steps."""
  if tool == 'pastiche':
    return [
      python, '-m', 'pastiche', '--optimizer', optimizer, '--num-steps', str(steps),
      '--size', str(size), '--style-size', str(size), '--no-verbose', '--seed', '0',
      '--content', content, '--styles', style, '--output', output,
    ]  # fmt: skip
  file, *overrides = config.split('@')
  return [
    python, stylize_script, f'--content={content}', f'--style={style}', f'--output={output}',
    f'--config={file}', *[f'--config.{o}' for o in overrides], f'--config.image_size={size}',
    f'--config.optim.name={optimizer}', f'--config.schedule.num_steps={steps}',
    f'--config.schedule.chunk_size={steps}', f'--compile_cache={cache_dir}',
  ]  # fmt: skip


def measure(
  *,
  content: str,
  style: str,
  size: int,
  optimizer: str,
  steps: tuple[int, int],
  rounds: int,
  python: str,
  pastiche_python: str,
  stylize_script: str,
  config: str,
) -> dict[str, Any]:
  """Per-step seconds of both tools, `rounds` interleaved rounds of (short, long) runs.

  Returns `{'runs': {tool: {steps: [seconds per round]}}, 'step_s': {tool: {'best', 'median'}},
  'ratio': {'best', 'median'}}`, where ratio is pastiche's step / ours (above 1: ours is faster).
  """
  short, long_ = steps
  runs: dict[str, dict[int, list[float]]] = {
    tool: {short: [], long_: []} for tool in ('nst_jax', 'pastiche')
  }
  with tempfile.TemporaryDirectory() as folder:
    options = dict(content=content, style=style, size=size, optimizer=optimizer)
    tools = {
      'nst_jax': dict(
        python=python,
        stylize_script=stylize_script,
        config=config,
        cache_dir=f'{folder}/cache',
        output=f'{folder}/nst_jax.png',
      ),
      'pastiche': dict(python=pastiche_python, output=f'{folder}/pastiche.png'),
    }
    _seconds(commands('nst_jax', short, **options, **tools['nst_jax']))  # Fills the cache.
    for _ in range(rounds):
      for count in (short, long_):
        for tool, settings in tools.items():
          runs[tool][count].append(_seconds(commands(tool, count, **options, **settings)))
  span = long_ - short
  step_s = {
    tool: {
      'best': (min(times[long_]) - min(times[short])) / span,
      'median': float(np.median(np.subtract(times[long_], times[short]) / span)),
    }
    for tool, times in runs.items()
  }
  ratio = {k: step_s['pastiche'][k] / step_s['nst_jax'][k] for k in ('best', 'median')}
  return {'runs': runs, 'step_s': step_s, 'ratio': ratio}
