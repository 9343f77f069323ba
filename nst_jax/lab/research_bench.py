"""What the research tools cost: `scripts/benchmark_research.py`.

* `overheads`: at `size` px with a config (default: `configs/default.py`, L-BFGS), runs chunks of
  `steps` steps; after each, times what the workdir adds at its default intervals. Summaries:
  `RunSummaries.chunk` (scalars every chunk, the image grid every other chunk, as with 50-step
  chunks and images every 100 steps). Checkpoints: rounds of two chunks in turn (A B A B), one
  plain, one right after a save (`OrbaxCheckpoints`): a save costs its blocking part plus what
  its background write slows the chunk after it. Each cost is reported as a fraction of the
  steps between two events at the default intervals (50 for summaries, 100 for checkpoints).
* `sweep`: a 3 x 3 weight sweep (`losses.gram.weight` x `losses.tv.weight`) of one pair as one
  batch (`scripts/sweep.py`, one process) against nine `scripts/stylize.py` processes, start-up
  and compilation included, in turns (A B A B).
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from nst_jax.app import summaries
from nst_jax.run import engine, resume
from nst_jax.run.history import HistoryLog, Progress

SUMMARY_INTERVAL, CHECKPOINT_INTERVAL = 50, resume.DEFAULT_EVERY


def _pair(size: int) -> tuple[np.ndarray, np.ndarray]:
  y, x = np.mgrid[0:size, 0:size] / (size - 1)
  content = np.stack([x, y, 0.5 + 0.4 * np.sin(6 * x * y)], -1).astype(np.float32)
  style = np.stack([np.sin(9 * x) ** 2, np.cos(7 * y) ** 2, x * y], -1).astype(np.float32)
  return content, style


def overheads(
  config: ml_collections.ConfigDict, size: int, steps: int, rounds: int, folder: str
) -> dict[str, Any]:
  """Summary and checkpoint costs relative to step time (see the module docstring)."""
  config = config.copy_and_resolve_references()
  config.image_size, config.schedule.chunk_size = size, steps
  config.schedule.num_steps = steps * (4 * rounds + 2)
  content, style = _pair(size)
  run = engine.prepare(content[None], [style], config)
  state = run.start_state(0)
  weights = run.pair_weights(0, state)
  limit = jnp.int32(config.schedule.num_steps)
  log = HistoryLog()
  writer = summaries.RunSummaries(summaries.open_writer(folder), config, SUMMARY_INTERVAL * 2)
  writer.start_batch(config, ['pair'], content[None], [style])
  saver = resume.OrbaxCheckpoints(pathlib.Path(folder) / 'checkpoints', every=1)
  saver.fingerprint = resume.run_fingerprint(run)
  done = 0

  def chunk():
    nonlocal state, done
    start = time.perf_counter()
    outputs = run.program.run_chunk(run.params, state, weights, limit)
    state = outputs[0]
    done, total, values = log.add_chunk(0, done, outputs, run.layout.gather)
    seconds = time.perf_counter() - start
    images = run.layout.gather(run.program.result(state))
    return seconds, Progress(0, 1, done, config.schedule.num_steps, total, values, images)

  chunk()  # Compiles.
  plain, after_save, blocking, summary = [], [], [], []
  for i in range(rounds):
    seconds, progress = chunk()
    plain.append(seconds)
    start = time.perf_counter()
    # Step numbers as if each chunk were 50 steps: an image every other chunk.
    writer.chunk(progress._replace(step=SUMMARY_INTERVAL * (2 * i + 1)))
    summary.append(time.perf_counter() - start)
    start = time.perf_counter()
    saver.save(resume.Snapshot(0, done, False, state, log.to_json()))
    blocking.append(time.perf_counter() - start)
    seconds, progress = chunk()
    after_save.append(seconds)
    saver.wait()
    start = time.perf_counter()
    writer.chunk(progress._replace(step=SUMMARY_INTERVAL * (2 * i + 2)))
    summary.append(time.perf_counter() - start)
  writer.close()
  saver.close()
  step = float(np.median(plain)) / steps
  summary_s = float(np.median(summary[1:]))  # The first resizes compile.
  save_s = float(np.median(blocking)) + float(np.median(after_save)) - float(np.median(plain))
  state_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
  return {
    'size': size,
    'optimizer': config.optim.name,
    'step_s': step,
    'summary_s': summary_s,
    'summary_fraction': summary_s / (SUMMARY_INTERVAL * step),
    'checkpoint_blocking_s': float(np.median(blocking)),
    'checkpoint_slowdown_s': float(np.median(after_save) - np.median(plain)),
    'checkpoint_s': save_s,
    'checkpoint_fraction': save_s / (CHECKPOINT_INTERVAL * step),
    'state_mb': state_bytes / 2**20,
    'plain_chunk_s': plain,
    'chunk_after_save_s': after_save,
  }


def sweep_against_runs(
  root: pathlib.Path, config_file: str, overrides: Sequence[str], rounds: int
) -> dict[str, Any]:
  """One `scripts/sweep.py` process against nine `scripts/stylize.py` ones (module docstring)."""
  folder = pathlib.Path(tempfile.mkdtemp(prefix='sweep_bench_'))
  try:
    content, style = _files(folder)
    grams, tvs = ('1e-4', '5e-4', '2e-3'), ('0', '1e-3', '1e-2')
    common = [f'--config={config_file}', *(f'--config.{o}' for o in overrides)]
    sweeps = [
      f'--sweep=losses.gram.weight={",".join(grams)}',
      f'--sweep=losses.tv.weight={",".join(tvs)}',
    ]
    batch = [sys.executable, str(root / 'scripts' / 'sweep.py'), f'--content={content}']
    batch += [f'--style={style}', *sweeps, f'--output={folder / "sweep.png"}', *common]
    separate = [
      [
        sys.executable,
        str(root / 'scripts' / 'stylize.py'),
        f'--content={content}',
        f'--style={style}',
        f'--output={folder / f"{g}_{t}.png"}',
        *common,
        f'--config.losses.gram.weight={g}',
        f'--config.losses.tv.weight={t}',
      ]
      for g in grams
      for t in tvs
    ]
    one_batch, nine_runs = [], []
    for _ in range(rounds):
      one_batch.append(_timed([batch]))
      nine_runs.append(_timed(separate))
    return {
      'overrides': list(overrides),
      'one_batch_s': one_batch,
      'nine_runs_s': nine_runs,
      'ratio': float(np.median(nine_runs) / np.median(one_batch)),
    }
  finally:
    shutil.rmtree(folder, ignore_errors=True)


def _files(folder: pathlib.Path) -> tuple[str, str]:
  from nst_jax.io import images

  content, style = _pair(256)
  images.save_image(folder / 'content.png', content)
  images.save_image(folder / 'style.png', style)
  return str(folder / 'content.png'), str(folder / 'style.png')


def _timed(commands: Sequence[Sequence[str]]) -> float:
  start = time.perf_counter()
  for command in commands:
    subprocess.run(command, check=True, capture_output=True)
  return time.perf_counter() - start
